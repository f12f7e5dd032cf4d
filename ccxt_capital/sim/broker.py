"""The simulated broker: books, sessions, limits and faults behind one lock, on one clock.

HTTP handlers run on the server's event-loop thread while tests drive the clock and inspect the
books from their own thread; every access goes through :attr:`Broker.lock`, and handlers never
await while holding it. Clock moves are processed eagerly (a :class:`SimClock` listener) and
lazily (each request first catches up to "now", which covers a real-time clock).
"""

from __future__ import annotations

import base64
import copy
import random
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from normalization.runtime.simclock import SimClock

from .account import Account, Transaction
from .catalogue import Catalogue
from .dealing import Dealer
from .errors import unauthorized
from .faults import FaultPlan
from .limits import RateLimiter
from .models import Position, WorkingOrder
from .pricing import SYNTHETIC_END, SYNTHETIC_START, PriceFeed, Quote
from .session import Credentials, SessionStore
from .watchlists import Watchlists


@dataclass
class BrokerConfig:
    """Everything that shapes one simulated broker."""

    seed: int = 0
    currency: str = "USD"
    second_currency: str | None = None
    balance: float = 10_000.0
    rate_limits: str = "sim"
    rejects_on_confirm: bool = False
    tz_offset: float = 0.0
    api_key: str = "demo-api-key"
    identifier: str = "demo@example.com"
    password: str = "demo-password"
    csv: dict[str, str | Path] | None = None


#: The documented encryption key (the collection's example) is a 2048-bit RSA key.
RSA_BITS = 2048
#: How long an encrypted password stays good after the ``timeStamp`` it was made with: the timestamp
#: is there so that a captured ciphertext cannot be replayed later. The broker does not publish its
#: window; a minute covers a client that fetches the key and logs in straight away.
ENCRYPTED_PASSWORD_TTL = 60.0


@lru_cache(maxsize=1)
def _rsa_key() -> Any:
    """One RSA key per process for GET /session/encryptionKey (generation costs ~0.1-0.5 s, once)."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)


class Broker:
    """All state of one simulated Capital.com, and the operations the API and tests perform."""

    def __init__(self, config: BrokerConfig | None = None, clock: SimClock | None = None) -> None:
        self.config = config or BrokerConfig()
        self.clock = clock or SimClock()
        self.lock = threading.RLock()
        cfg = self.config
        if not SYNTHETIC_START <= self.clock.now() <= SYNTHETIC_END:
            raise ValueError("the simulated clock must start between 2000-01-02 and 2049 (synthetic price range)")
        self.rng = random.Random(cfg.seed)
        self.catalogue = Catalogue()
        self.feed = PriceFeed(self.catalogue.by_epic, seed=cfg.seed, csv=cfg.csv)
        second = cfg.second_currency or ("EUR" if cfg.currency != "EUR" else "USD")
        now = self.clock.now()
        self.accounts: dict[str, Account] = {}
        for index, (currency, preferred) in enumerate(((cfg.currency, True), (second, False)), start=1):
            account = Account(account_id=f"20000000000000{index}", name=f"Demo {currency} account",
                              currency=currency, preferred=preferred)
            account.book(Transaction(now, "DEPOSIT", cfg.balance, currency, "", "Demo account funding",
                                     f"DEP-{index}"))
            self.accounts[account.account_id] = account
        self.client_id = "10000001"
        self.dealer = Dealer(self.catalogue, self.feed, self.accounts, self.rng, self.clock.now,
                             rejects_on_confirm=cfg.rejects_on_confirm, tz_offset=cfg.tz_offset)
        for account in self.accounts.values():
            try:  # every account currency must convert, or P&L in it could not be booked
                self.dealer.fx_rate(account.currency, "USD", now)
            except (ValueError, KeyError):
                raise ValueError(f"unsupported account currency {account.currency!r}") from None
        self.sessions = SessionStore([Credentials(cfg.api_key, cfg.identifier, cfg.password)])
        self.limiter = RateLimiter(cfg.rate_limits, self.clock.now)
        self.watchlists = Watchlists()
        self.faults = FaultPlan(self._arm_pending, self.expire_sessions)
        #: Rendered JSON of completed bars, keyed (epic, seconds, open time); pins clear an epic.
        self.rendered_bars: dict[tuple[str, int, int], dict[str, Any]] = {}
        self.clock.subscribe(self._on_clock)

    # -- clock -----------------------------------------------------------------------------
    def _on_clock(self, when: float) -> None:
        with self.lock:
            self.dealer.process_until(when)

    def sync(self) -> float:
        """Catch the books up with the clock; returns "now"."""
        now = self.clock.now()
        self.dealer.process_until(now)
        return now

    def close(self) -> None:
        self.clock.unsubscribe(self._on_clock)

    # -- accounts ----------------------------------------------------------------------------
    @property
    def preferred_account(self) -> Account:
        return next(a for a in self.accounts.values() if a.preferred)

    def account(self, account_id: str | None = None) -> Account:
        return self.preferred_account if account_id is None else self.accounts[account_id]

    # -- encrypted passwords -------------------------------------------------------------------
    def encryption_key(self) -> dict[str, Any]:
        from cryptography.hazmat.primitives import serialization

        public = _rsa_key().public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return {"encryptionKey": base64.b64encode(public).decode(), "timeStamp": self.clock.now_ms()}

    def decrypt_password(self, ciphertext: str) -> str:
        """Undo ``base64(RSA(base64(password|timestamp)))`` (or without the inner base64).

        The timestamp must be a recent one of ours (within :data:`ENCRYPTED_PASSWORD_TTL` of the
        simulated clock, not from the future): an old ciphertext is a replay and is refused."""
        from cryptography.hazmat.primitives.asymmetric import padding

        try:
            plain = _rsa_key().decrypt(base64.b64decode(ciphertext), padding.PKCS1v15()).decode()
        except Exception:
            raise unauthorized("error.invalid.details") from None
        try:
            inner = base64.b64decode(plain, validate=True).decode()
            if "|" in inner:
                plain = inner
        except Exception:
            pass
        if "|" not in plain:
            raise unauthorized("error.invalid.details")
        password, _, stamp = plain.rpartition("|")
        try:
            issued = int(stamp) / 1000
        except ValueError:
            raise unauthorized("error.invalid.details") from None
        age = self.clock.now() - issued
        if not -1.0 <= age <= ENCRYPTED_PASSWORD_TTL:
            raise unauthorized("error.invalid.details")
        return password

    # -- faults --------------------------------------------------------------------------------
    def _arm_pending(self, seconds: float, polls: int, deals: int) -> None:
        with self.lock:
            self.dealer.pending_plan.extend([(seconds, polls)] * deals)

    def expire_sessions(self) -> int:
        with self.lock:
            return self.sessions.expire()

    # -- inspection for tests (copies, so callers cannot change the books by accident) -------------
    def quote(self, epic: str, at: float | None = None) -> Quote:
        return self.feed.quote(epic, self.clock.now() if at is None else at)

    def pin_price(self, epic: str, mid: float | None, at: float | None = None) -> None:
        """Hold ``epic``'s mid at ``mid`` from ``at`` (default: now) on; ``None`` releases it."""
        with self.lock:
            self.feed.pin(epic, mid, self.clock.now() if at is None else at)
            for key in [k for k in self.rendered_bars if k[0] == epic]:
                del self.rendered_bars[key]

    def positions(self, account_id: str | None = None) -> list[Position]:
        with self.lock:
            self.sync()
            return [copy.copy(p) for p in self.dealer.positions.values()
                    if account_id is None or p.account_id == account_id]

    def working_orders(self, account_id: str | None = None) -> list[WorkingOrder]:
        with self.lock:
            self.sync()
            return [copy.copy(o) for o in self.dealer.orders.values()
                    if account_id is None or o.account_id == account_id]

    def balances(self, account_id: str | None = None) -> dict[str, float]:
        with self.lock:
            now = self.sync()
            return self.dealer.account_values(self.account(account_id), now)

    def transactions(self, account_id: str | None = None) -> list[Transaction]:
        with self.lock:
            return [copy.copy(t) for t in self.account(account_id).transactions]

    def check_books(self) -> None:
        """Raise AssertionError if the money or the positions do not add up."""
        with self.lock:
            now = self.sync()
            problems = self.dealer.check_books(now)
        if problems:
            raise AssertionError("; ".join(problems))
