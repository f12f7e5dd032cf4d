"""Connection supervision: one state machine for "can I talk to the broker right now?".

Why it exists: without it, a dropped socket shows up in a bot as a call that hangs for a full timeout,
or worse, as an order call that silently reconnects mid-placement. The supervisor keeps one explicit
connection state per exchange object and makes three promises:

* **Fail fast.** While the link is down, :meth:`ConnectionSupervisor.ensure_usable` raises at once --
  before anything is sent -- with the ccxt exception a bot already knows how to handle:

  ===============  ==============================================================================
  state            raised by ``ensure_usable``
  ===============  ==============================================================================
  ``idle``         nothing: never connected (or given up); the caller connects lazily
  ``connected``    nothing, unless that kind of traffic is degraded (``ExchangeNotAvailable``)
  ``outage``       :class:`BrokerOutage` (``ExchangeNotAvailable``): IB 1100, the broker side is gone
                   (also when 1100 arrives while connecting: it outlives the connect, ends at 1101/1102)
  ``maintenance``  :class:`BrokerMaintenance` (``OnMaintenance``): IB's nightly restart
  ``disconnected`` :class:`NotConnected` (``NetworkError``): our socket dropped, reconnecting
                   (without a reconnect loop -- ``auto_reconnect=False`` -- nothing: a lazy connect)
  ``closed``       ``ExchangeClosedByUser``
  ===============  ==============================================================================

  Every one of these also derives from :class:`~normalization.runtime.retry.RequestNotSent`, so
  :func:`~normalization.runtime.retry.retry_if_never_sent` may retry them: the gate raised before send.
* **Reconnect with backoff.** :meth:`lost` starts one background task that reconnects with
  exponential backoff and seeded jitter (:class:`Backoff`), so a fleet of bots restarted by the same
  gateway restart does not reconnect in lock-step, and a test sees the same delays every run.
* **Heal after reconnect.** Hooks registered with :meth:`on_reconnected` run, in order, after every
  reconnect and after an IB 1101/1102 "connectivity restored": the adapters register reconciliation
  (the journal against the broker's open orders, completed orders and executions) and market-data
  resubscription (1101 dropped every subscription).

Market data and execution are separate *kinds*: :meth:`degrade` marks one kind unusable (IB 2103
"market data farm broken") while the other keeps working, so a failing data feed never blocks a cancel.

The supervisor does no I/O itself; the adapter gives it a ``connect`` coroutine. Time is injectable
(``clock``, ``sleep``) so unit tests never wait.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import ccxt

from .retry import RequestNotSent

__all__ = [
    "ACCOUNT",
    "CLOSED",
    "CONNECTED",
    "DISCONNECTED",
    "EXECUTION",
    "IDLE",
    "KINDS",
    "MAINTENANCE",
    "MARKET_DATA",
    "OUTAGE",
    "STATES",
    "Backoff",
    "BrokerMaintenance",
    "BrokerOutage",
    "ConnectionSupervisor",
    "KindUnavailable",
    "MaintenanceWindow",
    "NotConnected",
    "ReconnectEvent",
    "bounded",
    "ib_maintenance_windows",
]

log = logging.getLogger("normalization.runtime.supervisor")

IDLE = "idle"
CONNECTED = "connected"
OUTAGE = "outage"
MAINTENANCE = "maintenance"
DISCONNECTED = "disconnected"
CLOSED = "closed"
STATES = frozenset({IDLE, CONNECTED, OUTAGE, MAINTENANCE, DISCONNECTED, CLOSED})

MARKET_DATA = "market_data"
EXECUTION = "execution"
ACCOUNT = "account"
KINDS = frozenset({MARKET_DATA, EXECUTION, ACCOUNT})


class NotConnected(RequestNotSent):
    """Our connection to the broker dropped and is being re-established; nothing was sent."""


class BrokerOutage(ccxt.ExchangeNotAvailable, RequestNotSent):
    """The broker told us its own side is unreachable (IB 1100); nothing was sent."""


class BrokerMaintenance(ccxt.OnMaintenance, RequestNotSent):
    """The broker is in its maintenance window (IB's nightly restart); nothing was sent."""


class KindUnavailable(ccxt.ExchangeNotAvailable, RequestNotSent):
    """One kind of traffic (market data, say) is degraded while the connection itself is up."""


# ---------------------------------------------------------------------------------------- backoff


@dataclass
class Backoff:
    """Exponential backoff with proportional jitter from a seeded RNG.

    ``delay(n)`` for the n-th consecutive attempt (1-based) is ``min(maximum, initial * factor**(n-1))``
    scaled by a factor drawn uniformly from ``[1 - jitter, 1 + jitter]`` (then capped at
    ``maximum``). Seeded so tests and incident replays see the same schedule; unseeded in production
    so many bots spread out.
    """

    initial: float = 0.5
    factor: float = 2.0
    maximum: float = 30.0
    jitter: float = 0.2
    seed: int | None = None
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.initial < 0 or self.factor < 1 or self.maximum < 0 or not 0 <= self.jitter < 1:
            raise ValueError(f"invalid backoff {self}")
        self._rng = random.Random(self.seed)

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt number ``attempt`` (1 = the first retry)."""
        if attempt < 1:
            raise ValueError("attempt numbers start at 1")
        base = min(self.maximum, self.initial * self.factor ** min(attempt - 1, 64))
        if self.jitter:
            base *= 1.0 + self._rng.uniform(-self.jitter, self.jitter)
        return max(0.0, min(self.maximum, base))

    @classmethod
    def from_options(cls, options: dict[str, Any] | None) -> Backoff:
        """Build from an adapter's ``options["reconnect"]`` dict (camelCase, as ccxt options are)."""
        options = options or {}
        return cls(
            initial=float(options.get("initialDelay", cls.initial)),
            factor=float(options.get("factor", cls.factor)),
            maximum=float(options.get("maxDelay", cls.maximum)),
            jitter=float(options.get("jitter", cls.jitter)),
            seed=options.get("seed"),
        )


# ------------------------------------------------------------------------------- maintenance window


@dataclass(frozen=True)
class MaintenanceWindow:
    """A daily window (local ``start``..``end`` in ``tz``, may wrap past midnight) of planned restarts.

    ``weekdays`` (0 = Monday) restricts the window to days on which it *starts*; None = every day.
    """

    start: dt.time
    end: dt.time
    tz: str = "America/New_York"
    weekdays: frozenset[int] | None = None

    def contains(self, when: float) -> bool:
        """True if the epoch timestamp ``when`` falls inside the window."""
        local = dt.datetime.fromtimestamp(when, ZoneInfo(self.tz))
        t = local.time().replace(tzinfo=None)
        if self.start <= self.end:
            inside, start_day = self.start <= t < self.end, local.weekday()
        elif t >= self.start:
            inside, start_day = True, local.weekday()
        elif t < self.end:
            inside, start_day = True, (local.weekday() - 1) % 7
        else:
            inside, start_day = False, local.weekday()
        return inside and (self.weekdays is None or start_day in self.weekdays)

    @classmethod
    def parse(cls, spec: Any) -> MaintenanceWindow:
        """From ``"23:45-00:45 America/New_York"``, ``("23:45", "00:45", "UTC")`` or a window."""
        if isinstance(spec, MaintenanceWindow):
            return spec
        if isinstance(spec, str):
            span, _, tz = spec.strip().partition(" ")
            start, _, end = span.partition("-")
            parts: Sequence[Any] = (start, end, tz.strip() or "America/New_York")
        else:
            parts = tuple(spec)
        if len(parts) < 2:
            raise ValueError(f"maintenance window needs a start and an end, got {spec!r}")
        tz = parts[2] if len(parts) > 2 and parts[2] else "America/New_York"
        return cls(dt.time.fromisoformat(str(parts[0])), dt.time.fromisoformat(str(parts[1])), str(tz))


def ib_maintenance_windows() -> tuple[MaintenanceWindow, ...]:
    """IB's nightly server reset / TWS auto-restart, North America: around 23:45-00:45 New York time.

    The exact restart time is set per user in TWS / IB Gateway; adapters let ``options`` override it.
    """
    return (MaintenanceWindow(dt.time(23, 45), dt.time(0, 45), "America/New_York"),)


# ------------------------------------------------------------------------------------ supervisor


@dataclass(frozen=True)
class ReconnectEvent:
    """Why the ``on_reconnected`` hooks run.

    ``reason``: ``"reconnect"`` (we re-opened a dropped connection: a new session, so every
    subscription is gone) or ``"restored"`` (IB 1101/1102: the socket stayed up). ``data_lost``: the
    broker dropped market-data subscriptions (a reconnect, or 1101); resubscribe when True.
    """

    reason: str
    data_lost: bool
    attempt: int = 0


Hook = Callable[[ReconnectEvent], Awaitable[Any] | Any]
ConnectFn = Callable[[], Awaitable[Any]]


async def bounded(awaitable: Awaitable[Any], timeout: float, what: str, exchange_id: str = "") -> Any:
    """``await`` with a deadline; a timeout becomes ``ccxt.RequestTimeout`` naming the call.

    Every public call of the adapters is bounded (DESIGN §4). Note: a timeout says nothing about
    whether a request left; callers placing orders must treat it as "sent, outcome unknown".
    """
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except (asyncio.TimeoutError, TimeoutError):
        prefix = f"{exchange_id} " if exchange_id else ""
        raise ccxt.RequestTimeout(f"{prefix}{what} did not finish within {timeout:g} s") from None


class ConnectionSupervisor:
    """The connection state of one exchange object, its reconnect loop and its healing hooks.

    ``connect`` re-opens the connection (and raises a ccxt error when it cannot). ``auto_reconnect``
    False makes :meth:`lost` only record the state (the next call connects lazily). ``max_attempts``
    None retries forever; after that many failures the state goes back to ``idle`` so the next call
    tries a fresh lazy connect and reports its real error. ``maintenance`` are the windows in which
    a drop is reported as :class:`BrokerMaintenance` instead of :class:`NotConnected`; ``now`` is the
    wall clock they are checked against.

    Not thread-safe: it lives on the adapter's event loop, like the transport it supervises.
    """

    def __init__(
        self,
        exchange_id: str,
        connect: ConnectFn | None = None,
        *,
        backoff: Backoff | None = None,
        auto_reconnect: bool = True,
        max_attempts: int | None = None,
        connect_timeout: float = 30.0,
        maintenance: Iterable[Any] = (),
        now: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.exchange_id = exchange_id
        self._connect = connect
        self.backoff = backoff or Backoff()
        self.auto_reconnect = auto_reconnect
        self.max_attempts = max_attempts
        self.connect_timeout = connect_timeout
        self.maintenance = tuple(MaintenanceWindow.parse(w) for w in maintenance)
        self._now = now
        self._clock = clock
        self._sleep = sleep
        self._state = IDLE
        self.reason: str | None = None
        self.last_error: BaseException | None = None
        self.last_hook_error: BaseException | None = None
        self.attempts = 0  # consecutive failed reconnect attempts in the current outage
        self.reconnects = 0  # successful reconnects over the object's life
        self.next_attempt_at: float | None = None
        self._degraded: dict[str, str] = {}
        self._outage_reason: str | None = None  # set by outage(), cleared by restored() / lost()
        self._breakers: list[Any] = []
        #: Bumped on every (re)connect. A caller that notes it when sending can report a failure with
        #: ``lost(..., epoch=...)``: a request that died with the *previous* connection then cannot knock
        #: down the new one (it fails late, after the reconnect already happened).
        self.epoch = 0
        self._hooks: list[Hook] = []
        self._task: asyncio.Task[None] | None = None
        self._changed: asyncio.Event | None = None
        self._healing = 0  # hooks running (reconciliation in progress)

    # ------------------------------------------------------------------ state

    @property
    def state(self) -> str:
        return self._state

    @property
    def reconnecting(self) -> bool:
        """True while the background reconnect loop is running."""
        return self._task is not None and not self._task.done()

    @property
    def healing(self) -> bool:
        """True while the ``on_reconnected`` hooks (reconciliation, resubscription) run."""
        return self._healing > 0

    def degraded(self) -> dict[str, str]:
        """Kinds currently degraded, with the reason."""
        return dict(self._degraded)

    def _event(self) -> asyncio.Event:
        if self._changed is None:
            self._changed = asyncio.Event()
        return self._changed

    def _set(self, state: str, reason: str | None) -> None:
        if state == self._state and reason == self.reason:
            return
        log.info("%s connection: %s -> %s (%s)", self.exchange_id, self._state, state, reason or "-")
        self._state = state
        self.reason = reason
        self._wake()

    def _wake(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def wait_for(self, predicate: Callable[[ConnectionSupervisor], bool], timeout: float) -> None:
        """Wait (bounded) until ``predicate(self)`` holds; woken by state changes, never polling.

        Raises ``ccxt.RequestTimeout`` if it does not hold in time. Tests use it to wait for a
        reconnect and its reconciliation instead of sleeping.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate(self):
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise ccxt.RequestTimeout(
                    f"{self.exchange_id}: connection did not reach the expected state within {timeout:g} s "
                    f"(state {self._state}, reason {self.reason!r}, last error {self.last_error!r})"
                )
            event = self._event()
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except (asyncio.TimeoutError, TimeoutError):
                pass

    async def wait_ready(self, timeout: float) -> None:
        """Wait until connected and healed (reconciled, resubscribed)."""
        await self.wait_for(lambda s: s.state == CONNECTED and not s.healing, timeout)

    # ------------------------------------------------------------------ the gate

    def ensure_usable(self, kind: str = EXECUTION) -> None:
        """Raise at once (before anything is sent) if ``kind`` traffic cannot reach the broker now."""
        if kind not in KINDS:
            raise ValueError(f"unknown traffic kind {kind!r}; expected one of {sorted(KINDS)}")
        state = self._state
        name = self.exchange_id
        if state in (DISCONNECTED, MAINTENANCE) and not self.reconnecting:
            state = IDLE  # nobody is reconnecting (auto_reconnect off): the caller connects lazily
        if state in (IDLE, CONNECTED):
            if kind in self._degraded:
                raise KindUnavailable(f"{name} {kind.replace('_', ' ')} unavailable: {self._degraded[kind]}")
            return
        if state == CLOSED:
            raise ccxt.ExchangeClosedByUser(f"{name}: the exchange is closed")
        detail = self._detail()
        if state == OUTAGE:
            raise BrokerOutage(f"{name}: broker connectivity lost ({self.reason}); failing fast{detail}")
        if state == MAINTENANCE:
            raise BrokerMaintenance(f"{name}: broker in its maintenance window ({self.reason}); failing fast{detail}")
        raise NotConnected(f"{name}: not connected ({self.reason}); reconnecting, failing fast{detail}")

    def _detail(self) -> str:
        if self.next_attempt_at is None or not self.reconnecting:
            return ""
        wait = max(0.0, self.next_attempt_at - self._clock())
        return f"; reconnect attempt {self.attempts + 1} in {wait:.1f}s"

    def degrade(self, kind: str, reason: str) -> None:
        """Mark one kind of traffic unusable while the connection stays up (IB 2103 farm broken)."""
        if kind not in KINDS:
            raise ValueError(f"unknown traffic kind {kind!r}")
        self._degraded[kind] = reason
        self._wake()

    def recover(self, kind: str) -> None:
        if self._degraded.pop(kind, None) is not None:
            self._wake()

    # ------------------------------------------------------------------ transitions

    def reset_on_connect(self, *breakers: Any) -> None:
        """Close these circuit breakers whenever the connection is (re)established (a reconnect or 1101/1102).

        Requests in flight when a socket dies all fail at once and can open a breaker; without this it
        would keep failing calls -- reconciliation included -- for its whole reset timeout after the
        reconnect has already proved the broker reachable. Takes anything with ``record_success()``.
        """
        self._breakers.extend(breakers)

    def _close_breakers(self) -> None:
        for breaker in self._breakers:
            breaker.record_success()

    def on_reconnected(self, hook: Hook) -> None:
        """Run ``hook(event)`` (sync or async) after each reconnect and each 1101/1102, in order."""
        self._hooks.append(hook)

    def forget(self, *hooks: Hook) -> None:
        """Stop running ``hooks`` (an exchange object sharing this connection closed)."""
        self._hooks = [h for h in self._hooks if h not in hooks]

    def connected(self, reason: str = "connected") -> None:
        """The adapter connected (first connect or a lazy re-connect); clears outage state."""
        if self._state == CLOSED:
            return
        self.attempts = 0
        self.next_attempt_at = None
        if self._state not in (CONNECTED, OUTAGE):
            self.epoch += 1
        self._close_breakers()
        if self._outage_reason is not None:
            # The broker said "my side is away" while we were connecting (IB sends 1100 right after the
            # handshake): the socket is up but orders cannot go through until 1101/1102.
            self._set(OUTAGE, self._outage_reason)
            return
        self._set(CONNECTED, reason)

    def in_maintenance(self) -> bool:
        now = self._now()
        return any(window.contains(now) for window in self.maintenance)

    def lost(
        self, reason: str = "connection lost", *, maintenance: bool | None = None, epoch: int | None = None
    ) -> None:
        """The connection dropped without us asking: fail fast and (if enabled) reconnect.

        ``maintenance`` forces the classification; None decides by the configured windows. ``epoch``:
        the :attr:`epoch` the failed request was sent in; a report about an older connection is ignored.
        """
        if self._state == CLOSED or (epoch is not None and epoch != self.epoch):
            return
        self._outage_reason = None  # a new session tells us again if the broker is still away
        if maintenance is None:
            maintenance = self.in_maintenance()
        self._set(MAINTENANCE if maintenance else DISCONNECTED, reason)
        if self.auto_reconnect and self._connect is not None and not self.reconnecting:
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._reconnect_loop(), name=f"{self.exchange_id}-reconnect")
            self._task.add_done_callback(lambda _: self._wake())  # waiters on "not reconnecting"

    def outage(self, reason: str = "broker connectivity lost") -> None:
        """The broker reported its side down while our socket stays up (IB 1100)."""
        if self._state == CLOSED:
            return
        self._outage_reason = reason
        if self._state in (CONNECTED, IDLE):
            self._set(OUTAGE, reason)

    async def restored(self, data_lost: bool, reason: str = "connectivity restored") -> None:
        """The broker reported its side back (IB 1101 ``data_lost=True`` / 1102); heal, then resume."""
        self._outage_reason = None
        if self._state not in (OUTAGE, CONNECTED):
            return  # no live socket (or closed): the reconnect loop, not this message, brings us back
        with self.healing_scope():
            self._close_breakers()
            self._set(CONNECTED, reason)
            await self._heal(ReconnectEvent("restored", data_lost))

    async def close(self) -> None:
        """Stop reconnecting for good (the user closed the exchange)."""
        self._set(CLOSED, "closed by user")
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def reset(self) -> None:
        """Back to ``idle`` (e.g. after a deliberate disconnect), cancelling any reconnect loop."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
        self.attempts = 0
        self.next_attempt_at = None
        if self._state != CLOSED:
            self._set(IDLE, "disconnected by user")

    # ------------------------------------------------------------------ the loop

    async def _reconnect_loop(self) -> None:
        assert self._connect is not None
        attempt = 0
        while self._state not in (CONNECTED, CLOSED, OUTAGE):
            attempt += 1
            if self.max_attempts is not None and attempt > self.max_attempts:
                log.warning("%s: giving up reconnecting after %d attempts", self.exchange_id, attempt - 1)
                self.next_attempt_at = None
                self._set(IDLE, f"reconnect gave up after {attempt - 1} attempts: {self.last_error}")
                return
            delay = self.backoff.delay(attempt)
            self.next_attempt_at = self._clock() + delay
            self._wake()
            await self._sleep(delay)
            if self._state in (CONNECTED, CLOSED):
                return  # someone else (a lazy connect) got there first
            try:
                await bounded(self._connect(), self.connect_timeout, "reconnect", self.exchange_id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure means "try again later"
                self.last_error = exc
                self.attempts = attempt
                maintenance = isinstance(exc, ccxt.OnMaintenance) or self.in_maintenance()
                reason = f"reconnect attempt {attempt} failed: {type(exc).__name__}: {exc}"
                self._set(MAINTENANCE if maintenance else DISCONNECTED, reason)
                continue
            self.reconnects += 1
            with self.healing_scope():  # waiters see "ready" only once the hooks have run
                self.connected(f"reconnected after {attempt} attempt(s)")
                await self._heal(ReconnectEvent("reconnect", True, attempt))
            return

    @contextmanager
    def healing_scope(self) -> Iterator[None]:
        """Mark healing work in progress (``wait_ready`` waits for it); adapters wrap the
        reconciliation they run from their own on-connect listener in it."""
        self._healing += 1
        self._wake()
        try:
            yield
        finally:
            self._healing -= 1
            self._wake()

    async def _heal(self, event: ReconnectEvent) -> None:
        with self.healing_scope():
            for hook in list(self._hooks):
                try:
                    result = hook(event)
                    if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                        await result
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - one failing hook must not stop the others
                    self.last_hook_error = exc
                    log.warning("%s: %s hook %r failed: %s", self.exchange_id, event.reason, hook, exc)
