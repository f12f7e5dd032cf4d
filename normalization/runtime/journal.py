"""The order journal: a record of every order before it is sent and of everything after.

Its logic is written once, here; the rows live in a store (:mod:`normalization.runtime.journal_store`):
a local SQLite file by default (:mod:`~normalization.runtime.journal_sqlite`), or a PostgreSQL database
shared by bots on several hosts (:mod:`~normalization.runtime.journal_postgres`, what each ``sync``
mode means there is stated in that module). The promises below hold on both; the SQLite specifics are
marked as such.

Why it exists: a bot that crashes or loses its connection between "send" and "acknowledged" must
neither lose track of a live order nor send it a second time. The journal makes three promises:

* **Intent before send.** ``record_intent`` is committed before a single byte reaches the broker,
  and ``mark_sent`` flips the row to ``sent_unknown`` right before the network write (an adapter that
  sends at once records the intent directly as ``sent_unknown``: one commit instead of two). After a
  crash, ``pending_send`` therefore means "provably never sent" and ``sent_unknown`` means "ask the
  broker" (see :mod:`normalization.runtime.reconcile`). One exception, :meth:`OrderJournal.sending`:
  where the broker keeps our clientOrderId and the journal does not fsync, the row is written before
  the send but committed right after it, so that the write runs while the order travels.
* **Durability is a choice, stated once.** Every mode survives the bot process dying (a crash,
  SIGKILL, a restart). What a power cut or an OS crash may take differs:

  - ``sync="full"`` fsyncs the pre-send commits before the send: nothing (~0.2-1 ms per order on
    ordinary disks, on the order's latency);
  - ``sync="behind"`` commits before the send and has a background thread fsync the file right after
    (:mod:`normalization.runtime.journal_disk`), while the order travels: at most the orders sent
    during the last disk flush (about a millisecond), not on the order's latency;
  - ``sync="normal"`` (WAL, ``synchronous=NORMAL``) leaves the disk to the kernel: the last ~30 s.

  Where the broker itself keeps our clientOrderId (IB's orderRef, adopted back by reconciliation)
  ``normal`` loses nothing the broker cannot give back, and IB defaults to it; where it does not
  (Capital.com) the adapter defaults to ``behind``.
* **Idempotency.** The same clientOrderId recorded twice returns the first row, also across restarts
  and across processes sharing the file; a fill with an execution id already seen is a no-op.
* **Shareable.** SQLite: WAL mode plus a busy timeout lets several bot processes use one file; every
  write is a short ``BEGIN IMMEDIATE`` transaction so writers queue instead of deadlocking. PostgreSQL:
  the primary key answers "seen before?" for every connection, from whichever host.

The journal is synchronous on purpose: each call is one small local transaction (tens of microseconds
without fsync, a fraction of a millisecond with), cheaper than a thread hop. It is thread-safe
(one connection guarded by a lock), so the adapters' event-loop thread and the caller's thread can
both use it.

``options["journal"] = None`` turns the file off: :class:`NullJournal` keeps the same interface in
memory (so idempotency still holds for the life of the process) and writes nothing to disk.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from normalization.runtime.journal_store import Connection, JournalStore
from normalization.runtime.latency import COLUMNS as LATENCY_COLUMNS
from normalization.runtime.latency import Stamps, from_row

__all__ = [
    "ABSENT_AFTER_SYNC",
    "ACKNOWLEDGED",
    "BROKER_ID_FIELDS",
    "NEVER_SENT",
    "RETRYABLE_PREFIX",
    "OPEN_STATES",
    "PENDING_SEND",
    "SENT_UNKNOWN",
    "STATES",
    "SYNC_MODES",
    "TERMINAL_STATES",
    "UNRESOLVED_STATES",
    "USE_DEFAULT",
    "JournalFill",
    "JournalOrder",
    "NullJournal",
    "OrderJournal",
    "StatusChange",
    "default_journal_path",
    "open_journal",
    "open_store",
    "sync_option",
]

# Local states: where the order is in *our* lifecycle before the broker has spoken.
PENDING_SEND = "pending_send"  # intent recorded, nothing sent: safe to forget after a crash
SENT_UNKNOWN = "sent_unknown"  # the send may have left the process; only the broker knows
ACKNOWLEDGED = "acknowledged"  # the broker accepted it but has not reported a ccxt status yet
# ccxt statuses, as reported by the broker.
TERMINAL_STATES = frozenset({"closed", "canceled", "rejected", "expired"})
UNRESOLVED_STATES = frozenset({PENDING_SEND, SENT_UNKNOWN})
OPEN_STATES = frozenset({ACKNOWLEDGED, "open"})
STATES = UNRESOLVED_STATES | OPEN_STATES | TERMINAL_STATES

# Reasons of a ``rejected`` row that mean "the broker never received it": the same clientOrderId may
# then be placed again (:meth:`OrderJournal.claim_retry`), exactly once per such verdict.
NEVER_SENT = "never sent"  # reconciliation: pending_send, nothing left the process
ABSENT_AFTER_SYNC = "absent at broker after full sync"  # reconciliation: sent_unknown, the broker lists nothing
RETRYABLE_PREFIX = "retryable: "  # the adapter: refused before the broker looked at it (a 429, never left)
NEVER_RECEIVED_REASONS = (NEVER_SENT, ABSENT_AFTER_SYNC)

BROKER_ID_FIELDS = ("order_id", "perm_id", "deal_reference", "deal_id")
SYNC_MODES = ("full", "behind", "normal")

class _UseDefault:
    """Sentinel type: "no journal option given" (as opposed to ``None``, which means "off")."""

    def __repr__(self) -> str:
        return "USE_DEFAULT"


USE_DEFAULT: Any = _UseDefault()


@dataclass(frozen=True)
class JournalOrder:
    """One row of the ``orders`` table, as the adapters see it."""

    client_order_id: str
    exchange: str
    account: str
    symbol: str
    side: str
    type: str
    amount: float
    price: float | None
    trigger_price: float | None
    params: dict[str, Any]
    state: str
    reason: str | None
    filled: float | None
    remaining: float | None
    order_id: str | None
    perm_id: str | None
    deal_reference: str | None
    deal_id: str | None
    created: int
    updated: int
    info: Any = None
    latency: Stamps | None = None  # the order's stage stamps (normalization.runtime.latency)

    @property
    def unresolved(self) -> bool:
        """True while the placement outcome is unknown to us (``pending_send`` / ``sent_unknown``)."""
        return self.state in UNRESOLVED_STATES

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def never_received(self) -> bool:
        """True when the broker provably never received this order: it may be placed again."""
        reason = self.reason or ""
        return self.state == "rejected" and (reason in NEVER_RECEIVED_REASONS or reason.startswith(RETRYABLE_PREFIX))

    @property
    def ccxt_status(self) -> str | None:
        """The status to show a ccxt caller, or ``None`` while the placement outcome is unknown.

        ``acknowledged`` (the broker has it, no ccxt status yet) reads as ``open``. An unresolved row
        (``pending_send`` / ``sent_unknown``) has no status the broker confirmed: the adapters settle it
        by reconciliation before they answer (:mod:`normalization.runtime.settle`), never show it as open.
        """
        if self.state in TERMINAL_STATES:
            return self.state
        return None if self.state in UNRESOLVED_STATES else "open"


@dataclass(frozen=True)
class JournalFill:
    """One execution, unique by ``exec_id``; the fee may arrive later (IB commissionReport)."""

    exec_id: str
    client_order_id: str | None
    order_id: str | None
    symbol: str | None
    side: str | None
    amount: float
    price: float
    fee_cost: float | None
    fee_currency: str | None
    timestamp: int | None
    info: Any = None


@dataclass(frozen=True)
class StatusChange:
    """One entry of the append-only status history."""

    state: str
    reason: str | None
    timestamp: int
    info: Any = None


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "default"


def default_journal_path(exchange: str, account: str | None = None) -> Path:
    """Per-user journal location: ``$XDG_STATE_HOME/ccxt-brokers/journal-<exchange>-<account>.sqlite``.

    Falls back to ``~/.local/state`` (XDG's default) and, on Windows, ``%LOCALAPPDATA%``. One file per
    exchange and account keeps unrelated accounts from ever matching each other's orders.
    """
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        base = Path(os.environ["LOCALAPPDATA"])
    elif os.environ.get("XDG_STATE_HOME"):
        base = Path(os.environ["XDG_STATE_HOME"])
    else:
        base = Path.home() / ".local" / "state"
    name = f"journal-{_safe_name(exchange)}-{_safe_name(account or 'default')}.sqlite"
    return base / "ccxt-brokers" / name


def _now_ms() -> int:
    return int(time.time() * 1000)


def _dumps(value: Any) -> str | None:
    if value is None:
        return None
    if not value and isinstance(value, dict):
        return "{}"  # most orders carry no extra params: skip the encoder on the hot path
    return _encode(value)


try:  # orjson is a dependency; it encodes an order's params and a broker's answer ~8x faster (every send)
    import orjson

    _ORJSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS

    def _encode(value: Any) -> str:
        return orjson.dumps(value, default=str, option=_ORJSON_OPTIONS).decode()
except ImportError:  # pragma: no cover - a stripped-down install
    def _encode(value: Any) -> str:
        return json.dumps(value, default=str, sort_keys=True, separators=(",", ":"))


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _id(value: Any) -> str | None:
    """Broker ids are stored as text: IB ints and Capital strings compare the same way."""
    return None if value is None else str(value)


class OrderJournal:
    """The order journal bound to one exchange and account, over a SQLite or PostgreSQL store.

    ``path`` is a file path, ``":memory:"`` or a ``postgresql://`` URL (see :func:`open_store`).
    ``exchange`` and ``account`` scope every query, so one database may safely hold several accounts.
    ``busy_timeout`` (seconds) is how long a SQLite write waits for another process holding the write
    lock. ``sync`` is ``"full"`` (fsync before every send),
    ``"behind"`` (fsync right after it, off the send path) or ``"normal"`` (survives the process, not
    a power cut): see the module docstring. ``now_ms`` is injectable for tests.
    """

    persistent = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        exchange: str,
        account: str = "default",
        busy_timeout: float = 10.0,
        sync: str = "full",
        now_ms: Callable[[], int] = _now_ms,
        store: JournalStore | None = None,
    ) -> None:
        if sync not in SYNC_MODES:
            raise ValueError(f"journal sync must be one of {SYNC_MODES}, not {sync!r}")
        self.exchange = exchange
        self.account = account or "default"
        self.now_ms = now_ms  # public: reconciliation and tests read the journal's clock
        self.sync = sync
        self._store = store if store is not None else open_store(path, sync=sync, busy_timeout=busy_timeout)
        self.path: Path | None = self._store.path
        self.persistent = self._store.persistent and type(self).persistent
        # Commit an intent before its send, never while the order travels: with "full" (its promise), and
        # wherever the write could fail after the send (a database server across the network).
        self._commit_first = (sync == "full" and self._store.persistent) or self._store.remote
        self._behind = sync == "behind"

    # ------------------------------------------------------------------ plumbing

    @property
    def store(self) -> JournalStore:
        """Where the rows live; what several processes share (also for locks: :mod:`~.account_lock`)."""
        return self._store

    def _write(self, durable: bool = False, single: bool = False) -> AbstractContextManager[Connection]:
        return self._store.write(durable, single)

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        return self._store.read(sql, args)

    @property
    def _scope(self) -> tuple[str, str]:
        return (self.exchange, self.account)

    def _get(self, conn: Connection, client_order_id: str) -> JournalOrder | None:
        row = conn.execute(
            "SELECT * FROM orders WHERE exchange=? AND account=? AND client_order_id=?",
            (*self._scope, client_order_id),
        ).fetchone()
        return None if row is None else _order(row)

    def _require(self, conn: Connection, client_order_id: str) -> JournalOrder:
        order = self._get(conn, client_order_id)
        if order is None:
            raise KeyError(f"clientOrderId {client_order_id!r} is not in the order journal")
        return order

    # ------------------------------------------------------------------ orders

    def record_intent(
        self,
        client_order_id: str,
        *,
        symbol: str,
        side: str,
        type: str,
        amount: float,
        price: float | None = None,
        trigger_price: float | None = None,
        params: Mapping[str, Any] | None = None,
        state: str = PENDING_SEND,
        latency: Stamps | None = None,
    ) -> tuple[JournalOrder, bool]:
        """Record an order before it is sent (fsynced with ``sync="full"``). Returns ``(order, created)``.

        Idempotent: if ``client_order_id`` is already journaled, nothing is written and the *first*
        order comes back with ``created=False`` -- that is how "the same clientOrderId placed twice
        returns the first order" works, across restarts and processes. The caller sends only when
        ``created`` is True. ``state=SENT_UNKNOWN`` records intent and send mark in one commit, for a
        caller that sends right after; reconciliation passes the state of an order it adopts. ``latency``:
        the order's stage stamps so far (its intent; :mod:`normalization.runtime.latency`).
        """
        if state not in STATES:
            raise ValueError(f"unknown journal state {state!r}")
        order = self._intent(client_order_id, symbol, side, type, amount, price, trigger_price, params, state,
                             latency)
        with self._write(durable=True, single=True) as conn:
            return self._insert(conn, order)

    @contextmanager
    def sending(
        self,
        client_order_id: str,
        *,
        symbol: str,
        side: str,
        type: str,
        amount: float,
        price: float | None = None,
        trigger_price: float | None = None,
        params: Mapping[str, Any] | None = None,
        broker_keeps_id: bool = False,
        latency: Stamps | None = None,
    ) -> Iterator[tuple[JournalOrder, bool]]:
        """Record the intent as ``sent_unknown`` around the send in the ``with`` block; yields
        ``(order, created)`` as :meth:`record_intent` does (send only when ``created``).

        By default, and always with ``sync="full"``, the intent is committed (fsynced in full mode) before
        the block runs. Where the broker keeps our clientOrderId with the order (``broker_keeps_id``:
        IB's orderRef) and the journal does not fsync, the row is inserted before the block -- a repeat
        is refused atomically, also across processes, whose writes wait on the open transaction -- but
        committed right after it, while the order travels: a process dying in between leaves an order
        the broker lists under our clientOrderId, which reconciliation adopts on the next connect (the
        same recovery as for a journal tail lost to a power cut in this mode). A freshly generated id
        needs no such check at all: see :attr:`defers_new_intents`.

        The commit happens even if the block raises: whatever left the process is then asked of the
        broker. The block must not await: the journal's lock may be held while it runs.
        """
        order = self._intent(client_order_id, symbol, side, type, amount, price, trigger_price, params,
                             SENT_UNKNOWN, latency)
        if self._commit_first or not broker_keeps_id:
            with self._write(durable=True, single=True) as conn:
                inserted = self._insert(conn, order)
            yield inserted
            return
        error: BaseException | None = None
        with self._write(durable=True) as conn:
            inserted = self._insert(conn, order)
            try:
                yield inserted
            except BaseException as exc:  # whatever left the process is asked of the broker: commit anyway
                error = exc
        if error is not None:
            raise error

    @property
    def defers_new_intents(self) -> bool:
        """Whether a freshly generated clientOrderId, at a broker that keeps it, may be journaled after
        the order's acknowledgement (:meth:`record_after_send`) instead of around its send.

        Nobody can know such an id before the placing call returns, so no repeat can race it; a crash
        before the write leaves an order the broker lists under our id, adopted on the next connect --
        the recovery ``sync="normal"`` already relies on for a journal tail lost to a power cut. Not with
        ``sync="full"``, whose promise is that every order is on disk before it leaves."""
        if self._store.remote:
            return False  # the write may fail where a file would not (server down): never after the send
        return self.sync != "full" or not self.persistent  # in memory nothing outlives the process anyway

    def record_after_send(
        self,
        client_order_id: str,
        *,
        symbol: str,
        side: str,
        type: str,
        amount: float,
        price: float | None = None,
        trigger_price: float | None = None,
        params: Mapping[str, Any] | None = None,
        sent: int,
        state: str,
        filled: float | None = None,
        remaining: float | None = None,
        ids: Mapping[str, Any] | None = None,
        latency: Stamps | None = None,
    ) -> None:
        """Journal an order sent before it was recorded (see :attr:`defers_new_intents`): its intent as
        ``sent_unknown`` at ``sent`` (ms) and the state the broker answered with, in one transaction --
        the history reads as if the intent had been written before the send."""
        if state not in STATES:
            raise ValueError(f"unknown journal state {state!r}")
        order = self._intent(client_order_id, symbol, side, type, amount, price, trigger_price, params,
                             SENT_UNKNOWN, latency)
        new_ids = _broker_ids(ids or {})
        now = self.now_ms()
        with self._write(durable=True) as conn:
            columns = "".join(f", {k}" for k in new_ids)
            cur = conn.execute(
                "INSERT INTO orders (exchange, account, client_order_id, symbol, side, type, amount,"
                f" price, trigger_price, params, state, initial_state, created, updated, filled, remaining,"
                f" {_LATENCY_LIST}{columns})"
                f" VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?{',?' * len(new_ids)}) ON CONFLICT DO NOTHING",
                (order.exchange, order.account, client_order_id, order.symbol, order.side, order.type,
                 order.amount, order.price, order.trigger_price, _dumps(order.params), state, SENT_UNKNOWN,
                 sent, now, None if filled is None else float(filled),
                 None if remaining is None else float(remaining), *_stamp_values(latency), *new_ids.values()),
            )
            if cur.rowcount and state != SENT_UNKNOWN:
                conn.execute(
                    "INSERT INTO status_history (exchange, account, client_order_id, state, reason, timestamp, info)"
                    " VALUES (?,?,?,?,NULL,?,NULL)",
                    (*self._scope, client_order_id, state, now),
                )
        if not cur.rowcount:  # reconciliation adopted it meanwhile (a reconnect in between): bring it up to date
            self.update_status(client_order_id, state, filled=filled, remaining=remaining, ids=ids, latency=latency)

    def _intent(
        self, client_order_id: str, symbol: str, side: str, type: str, amount: float, price: float | None,
        trigger_price: float | None, params: Mapping[str, Any] | None, state: str, latency: Stamps | None,
    ) -> JournalOrder:
        """The row an intent writes, built from the arguments (the write never reads it back)."""
        now = self.now_ms()
        return _journal_order({
            "client_order_id": client_order_id, "exchange": self.exchange, "account": self.account,
            "symbol": symbol, "side": side, "type": type, "amount": float(amount),
            "price": None if price is None else float(price),
            "trigger_price": None if trigger_price is None else float(trigger_price),
            "params": dict(params or {}), "state": state, "reason": None, "filled": None, "remaining": None,
            "order_id": None, "perm_id": None, "deal_reference": None, "deal_id": None,
            "created": now, "updated": now, "info": None, "latency": None if latency is None else latency.copy(),
        })

    def _insert(self, conn: Connection, order: JournalOrder) -> tuple[JournalOrder, bool]:
        """The intent's one statement: INSERT OR IGNORE answers "seen before?" and writes at once."""
        cur = conn.execute(
            "INSERT INTO orders (exchange, account, client_order_id, symbol, side, type, amount,"
            f" price, trigger_price, params, state, initial_state, created, updated, {_LATENCY_LIST})"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
            (order.exchange, order.account, order.client_order_id, order.symbol, order.side, order.type,
             order.amount, order.price, order.trigger_price, _dumps(order.params), order.state, order.state,
             order.created, order.updated, *_stamp_values(order.latency)),
        )
        if not cur.rowcount:
            return self._require(conn, order.client_order_id), False
        return order, True

    def mark_sent(self, client_order_id: str) -> bool:
        """Flip ``pending_send`` to ``sent_unknown`` right before the network write (durable like the intent).

        A compare-and-set: returns False (and changes nothing) if the row is no longer
        ``pending_send`` -- e.g. a concurrent reconciliation already resolved it as "never sent".
        The caller must then NOT send.
        """
        now = self.now_ms()
        with self._write(durable=True, single=True) as conn:
            cur = conn.execute(
                "UPDATE orders SET state=?, updated=? WHERE exchange=? AND account=? AND client_order_id=? AND state=?",
                (SENT_UNKNOWN, now, *self._scope, client_order_id, PENDING_SEND),
            )
            return bool(cur.rowcount)

    def claim_retry(self, client_order_id: str) -> JournalOrder | None:
        """Take the right to place a never-received order again: a compare-and-set from ``rejected``
        with a never-received reason (:attr:`JournalOrder.never_received`) to ``sent_unknown``, in one
        statement, so of two threads or processes placing the same clientOrderId only one wins and
        sends. Returns the row as now journaled, or ``None`` if someone else claimed (or resolved) it."""
        now = self.now_ms()
        marks = ",".join("?" * len(NEVER_RECEIVED_REASONS))
        with self._write(durable=True, single=True) as conn:
            cur = conn.execute(
                f"UPDATE orders SET state=?, reason='retry after: ' || reason, updated=?"
                f" WHERE exchange=? AND account=? AND client_order_id=? AND state='rejected'"
                f" AND (reason IN ({marks}) OR reason LIKE ?)",  # the prefix holds no LIKE wildcard
                (SENT_UNKNOWN, now, *self._scope, client_order_id, *NEVER_RECEIVED_REASONS, RETRYABLE_PREFIX + "%"),
            )
            claimed = bool(cur.rowcount)
        return self.get(client_order_id) if claimed else None

    def attach_ids(self, client_order_id: str, **ids: Any) -> JournalOrder:
        """Store broker ids as they become known (``order_id``, ``perm_id``, ``deal_reference``,
        ``deal_id``); ``None`` values are ignored so a later partial update never erases an id. Durable
        like the intent: the ids are what reconciliation matches on after a crash. Returns the row."""
        values = _broker_ids(ids)
        current = self._require_row(client_order_id)
        if all(getattr(current, k) == v for k, v in values.items()):
            return current  # nothing new: no write, no fsync (reconciliation calls this a lot)
        now = self.now_ms()
        with self._write(durable=True, single=True) as conn:
            conn.execute(
                f"UPDATE orders SET {', '.join(f'{k}=?' for k in values)}, updated=?"
                " WHERE exchange=? AND account=? AND client_order_id=?",
                (*values.values(), now, *self._scope, client_order_id),
            )
        return replace(current, **values, updated=now)

    def _require_row(self, client_order_id: str) -> JournalOrder:
        with self._store.reading() as conn:
            return self._require(conn, client_order_id)

    def update_status(
        self,
        client_order_id: str,
        status: str,
        info: Any = None,
        *,
        reason: str | None = None,
        filled: float | None = None,
        remaining: float | None = None,
        force: bool = False,
        ids: Mapping[str, Any] | None = None,
        fills: Sequence[Mapping[str, Any]] = (),
        latency: Stamps | None = None,
    ) -> bool:
        """Record a status the broker reported (or reconciliation decided); returns True if it changed.

        Terminal states are sticky: a late ``open`` after ``closed`` (events out of order) is ignored
        unless ``force`` (reconciliation uses it when the broker's full snapshot says otherwise).
        ``filled`` / ``remaining`` / ``info`` are kept even when the state does not change. Every
        state change is appended to the status history. ``ids``: broker ids learned with this status
        (as :meth:`attach_ids`, durable like it) and ``fills``: executions learned with it (each the
        keyword arguments of :meth:`record_fill`), written in the same transaction -- "settled, with its
        ids and fills" is then one write, and a crash leaves either all of it or none. ``latency``: the
        order's stage stamps as this process knows them, merged with the row's (:meth:`Stamps.merge`).
        """
        if status not in STATES:
            raise ValueError(f"unknown journal state {status!r}; expected one of {sorted(STATES)}")
        new_ids = _broker_ids(ids or {})
        now = self.now_ms()
        with self._write(durable=bool(new_ids)) as conn:
            for fill in fills:
                self._insert_fill(conn, **fill)
            current = conn.execute(
                "SELECT state, reason, filled, remaining, info, order_id, perm_id, deal_reference, deal_id,"
                f" {_LATENCY_LIST} FROM orders WHERE exchange=? AND account=? AND client_order_id=?"
                + self._store.row_lock,
                (*self._scope, client_order_id),
            ).fetchone()
            if current is None:
                raise KeyError(f"clientOrderId {client_order_id!r} is not in the order journal")
            state = current[0]
            new_ids = {k: v for k, v in new_ids.items() if current[k] != v}
            regress = state in TERMINAL_STATES and status not in TERMINAL_STATES
            change = status != state and (force or not regress)
            row = (
                status if change else state,
                reason if change or reason is not None else current[1],
                current[2] if filled is None else float(filled),
                current[3] if remaining is None else float(remaining),
                current[4] if info is None else _dumps(info),  # stored as _dumps wrote it: compared as text
            )
            stamps: tuple[Any, ...] = ()
            if latency is not None:
                known = tuple(current[c] for c in LATENCY_COLUMNS)
                merged = from_row(known) or Stamps()
                if merged.merge(latency) or merged.values() != known:
                    stamps = merged.values()
            if row == tuple(current)[:5] and not new_ids and not stamps:
                return False  # nothing new: leave ``updated`` alone
            assignments = "".join(f", {k}=?" for k in new_ids) + (_LATENCY_SET if stamps else "")
            conn.execute(
                f"UPDATE orders SET state=?, reason=?, filled=?, remaining=?, info=?, updated=?{assignments}"
                " WHERE exchange=? AND account=? AND client_order_id=?",
                (*row, now, *new_ids.values(), *stamps, *self._scope, client_order_id),
            )
            return change

    def purge(self, before_ms: int) -> int:
        """Delete terminal orders last updated before ``before_ms``, with their history and fills;
        returns how many orders went. For long-running bots; never touches live or unresolved orders."""
        marks = ",".join("?" * len(TERMINAL_STATES))
        where = f"exchange=? AND account=? AND state IN ({marks}) AND updated < ?"
        args = (*self._scope, *sorted(TERMINAL_STATES), before_ms)
        with self._write() as conn:
            ids = [r[0] for r in conn.execute(f"SELECT client_order_id FROM orders WHERE {where}", args)]
            for table in ("status_history", "fills"):
                conn.executemany(
                    f"DELETE FROM {table} WHERE exchange=? AND account=? AND client_order_id=?",
                    [(*self._scope, cid) for cid in ids],
                )
            conn.execute(f"DELETE FROM orders WHERE {where}", args)
            return len(ids)

    def get(self, client_order_id: str) -> JournalOrder | None:
        with self._store.reading() as conn:
            return self._get(conn, client_order_id)

    def find_by(self, **ids: Any) -> JournalOrder | None:
        """The order carrying a broker id: ``find_by(perm_id=...)``, ``find_by(deal_reference=...)``.

        With several keywords, the first that matches wins in the order given. If an id matches
        several rows (IB order ids repeat across client sessions) the most recent one is returned.
        """
        for name, value in ids.items():
            if name not in BROKER_ID_FIELDS:
                raise TypeError(f"unknown broker id field {name!r}; use {BROKER_ID_FIELDS}")
            if value is None:
                continue
            rows = self._read(
                f"SELECT * FROM orders WHERE exchange=? AND account=? AND {name}=? ORDER BY created DESC LIMIT 1",
                (*self._scope, _id(value)),
            )
            if rows:
                return _order(rows[0])
        return None

    def accounts(self) -> list[str]:
        """The accounts of this exchange with orders in the store (one file may hold several)."""
        rows = self._read("SELECT DISTINCT account FROM orders WHERE exchange=? ORDER BY account", (self.exchange,))
        return [r[0] for r in rows]

    def unresolved(self) -> list[JournalOrder]:
        """Orders whose placement outcome is unknown: ``pending_send`` and ``sent_unknown``."""
        return self._by_states(UNRESOLVED_STATES)

    def open_orders(self) -> list[JournalOrder]:
        """Orders the journal believes live at the broker (``acknowledged`` / ``open``)."""
        return self._by_states(OPEN_STATES)

    def orders(self, states: frozenset[str] | None = None) -> list[JournalOrder]:
        """All orders of this exchange/account (optionally only ``states``), oldest first."""
        return self._by_states(STATES if states is None else states)

    def _by_states(self, states: frozenset[str]) -> list[JournalOrder]:
        marks = ",".join("?" * len(states))
        rows = self._read(
            f"SELECT * FROM orders WHERE exchange=? AND account=? AND state IN ({marks}) ORDER BY created",
            (*self._scope, *sorted(states)),
        )
        return [_order(r) for r in rows]

    def count_since(self, since_ms: int) -> int:
        """How many orders were journaled at or after ``since_ms`` (pre-trade limits count a day's orders)."""
        rows = self._read("SELECT COUNT(*) FROM orders WHERE exchange=? AND account=? AND created >= ?",
                          (*self._scope, int(since_ms)))
        return int(rows[0][0]) if rows else 0

    def scoped(self, account: str) -> OrderJournal:
        """A journal over the same store for another ``account`` scope (dry runs keep theirs apart, so a
        dry run's clientOrderId is never taken for a real order). Shares the store: never close it."""
        return OrderJournal(self.path or ":memory:", exchange=self.exchange, account=account, sync=self.sync,
                            now_ms=self.now_ms, store=self._store)

    def history(self, client_order_id: str) -> list[StatusChange]:
        """The append-only status history of one order, oldest first."""
        with self._store.reading() as conn:
            first = conn.execute(
                "SELECT initial_state, created FROM orders WHERE exchange=? AND account=? AND client_order_id=?",
                (*self._scope, client_order_id),
            ).fetchone()
            rows = conn.execute(
                "SELECT state, reason, timestamp, info FROM status_history"
                " WHERE exchange=? AND account=? AND client_order_id=? ORDER BY seq",
                (*self._scope, client_order_id),
            ).fetchall()
        start = [StatusChange(first[0], None, first[1])] if first is not None and first[0] is not None else []
        return start + [StatusChange(r["state"], r["reason"], r["timestamp"], _loads(r["info"])) for r in rows]

    # ------------------------------------------------------------------ fills

    def record_fill(
        self,
        exec_id: str,
        *,
        amount: float,
        price: float,
        client_order_id: str | None = None,
        order_id: Any = None,
        symbol: str | None = None,
        side: str | None = None,
        timestamp: int | None = None,
        fee_cost: float | None = None,
        fee_currency: str | None = None,
        info: Any = None,
        latency: Stamps | None = None,
    ) -> bool:
        """Record one execution; returns False (a no-op) if ``exec_id`` was already recorded.

        A fee recorded earlier by :meth:`record_fee` (commission before execution) is folded in.
        ``latency``: the order's stamps with this fill in them, merged into its row (if it has one yet)
        in the same transaction -- by the database, so two processes' writes merge, never overwrite.
        """
        with self._write() as conn:
            new = self._insert_fill(conn, exec_id, amount=amount, price=price, client_order_id=client_order_id,
                                    order_id=order_id, symbol=symbol, side=side, timestamp=timestamp,
                                    fee_cost=fee_cost, fee_currency=fee_currency, info=info)
            if new and latency is not None and client_order_id is not None:
                self._merge_latency(conn, client_order_id, latency)
            return new

    def record_latency(self, client_order_id: str, latency: Stamps) -> None:
        """Merge an order's stage stamps into its row (a stage seen without any other write to make)."""
        with self._write() as conn:
            self._merge_latency(conn, client_order_id, latency)

    def _merge_latency(self, conn: Connection, client_order_id: str, latency: Stamps) -> None:
        values = latency.values()
        conn.execute(
            # Only a row placed with stamps: a fill merged into an older row would read as its whole latency.
            f"UPDATE orders SET {_LATENCY_MERGE} WHERE exchange=? AND account=? AND client_order_id=?"
            " AND lat_intent IS NOT NULL",
            (*(v for value in values for v in (value, value)), *self._scope, client_order_id),
        )

    def _insert_fill(
        self, conn: Connection, exec_id: str, *, amount: float, price: float,
        client_order_id: str | None = None, order_id: Any = None, symbol: str | None = None,
        side: str | None = None, timestamp: int | None = None, fee_cost: float | None = None,
        fee_currency: str | None = None, info: Any = None,
    ) -> bool:
        early = None
        if fee_cost is None:  # a fee reported before its execution (IB) waits in early_fees
            early = conn.execute(
                "SELECT fee_cost, fee_currency FROM early_fees WHERE exchange=? AND account=? AND exec_id=?",
                (*self._scope, exec_id),
            ).fetchone()
            if early is not None:
                fee_cost, fee_currency = early["fee_cost"], early["fee_currency"]
        cur = conn.execute(
            "INSERT INTO fills (exchange, account, exec_id, client_order_id, order_id, symbol,"
            " side, amount, price, fee_cost, fee_currency, timestamp, info)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
            (*self._scope, exec_id, client_order_id, _id(order_id), symbol, side, float(amount), float(price),
             None if fee_cost is None else float(fee_cost), fee_currency, timestamp, _dumps(info)),
        )
        if cur.rowcount and early is not None:
            conn.execute(
                "DELETE FROM early_fees WHERE exchange=? AND account=? AND exec_id=?",
                (*self._scope, exec_id),
            )
        if not cur.rowcount and client_order_id is not None:
            # Recorded before its order was known (reconciliation read it while the placement was still
            # being resolved): the order's own write names the owner. An owned fill keeps its owner.
            conn.execute(
                "UPDATE fills SET client_order_id=? WHERE exchange=? AND account=? AND exec_id=?"
                " AND client_order_id IS NULL",
                (client_order_id, *self._scope, exec_id),
            )
        return bool(cur.rowcount)

    def record_fee(self, exec_id: str, cost: float, currency: str | None) -> bool:
        """Attach a fee that arrived after its fill (IB ``commissionReport``); idempotent.

        Returns True if the fill exists and now carries this fee. A fee for an execution not yet
        recorded is parked and applied when the fill arrives (returns False).
        """
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE fills SET fee_cost=?, fee_currency=? WHERE exchange=? AND account=? AND exec_id=?",
                (float(cost), currency, *self._scope, exec_id),
            )
            if cur.rowcount:
                return True
            conn.execute(
                "INSERT INTO early_fees (exchange, account, exec_id, fee_cost, fee_currency) VALUES (?,?,?,?,?)"
                " ON CONFLICT (exchange, account, exec_id) DO UPDATE"
                " SET fee_cost=excluded.fee_cost, fee_currency=excluded.fee_currency",
                (*self._scope, exec_id, float(cost), currency),
            )
            return False

    def link_fill(self, exec_id: str, client_order_id: str) -> bool:
        """Attach a fill recorded without a clientOrderId to its order once that is known."""
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE fills SET client_order_id=? WHERE exchange=? AND account=? AND exec_id=?"
                " AND client_order_id IS NULL",
                (client_order_id, *self._scope, exec_id),
            )
            return bool(cur.rowcount)

    def get_fill(self, exec_id: str) -> JournalFill | None:
        rows = self._read("SELECT * FROM fills WHERE exchange=? AND account=? AND exec_id=?", (*self._scope, exec_id))
        return _fill(rows[0]) if rows else None

    def fills(self, client_order_id: str | None = None) -> list[JournalFill]:
        """Fills of one order, or of the whole account; ordered by timestamp then exec id."""
        if client_order_id is None:
            rows = self._read(
                "SELECT * FROM fills WHERE exchange=? AND account=? ORDER BY timestamp, exec_id", self._scope
            )
        else:
            rows = self._read(
                "SELECT * FROM fills WHERE exchange=? AND account=? AND client_order_id=? ORDER BY timestamp, exec_id",
                (*self._scope, client_order_id),
            )
        return [_fill(r) for r in rows]

    # ------------------------------------------------------------------ lifecycle

    def wait_durable(self, timeout: float | None = None) -> bool:
        """Block until the pre-send commits made so far are on disk (``sync="behind"``); True at once
        in the other modes, where they are on disk before the send (``full``) or never waited for."""
        return self._store.wait_durable(timeout)

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> OrderJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._store.where}, exchange={self.exchange!r}, account={self.account!r})"


class NullJournal(OrderJournal):
    """The journal with ``options["journal"] = None``: same interface, nothing on disk.

    It still keeps this process's orders in an in-memory database, so a repeated clientOrderId
    returns the first order while the process lives; nothing survives a restart.
    """

    persistent = False

    def __init__(self, *, exchange: str = "", account: str = "default", now_ms: Callable[[], int] = _now_ms) -> None:
        super().__init__(":memory:", exchange=exchange, account=account, now_ms=now_ms)


def sync_option(exchange_id: str, options: Mapping[str, Any]) -> str:
    """``options['journalSync']`` of an adapter, checked: a bad value is a ``ccxt.BadRequest`` raised at
    construction, before anything is recorded or sent. Each adapter states its default in ``describe()``
    (and why); absent there too, ``"full"`` -- the safe side."""
    from ccxt.base.errors import BadRequest

    sync = options.get("journalSync", "full")
    if sync not in SYNC_MODES:
        raise BadRequest(f"{exchange_id} options['journalSync'] must be one of {SYNC_MODES}, not {sync!r}")
    return str(sync)


#: URL schemes of the PostgreSQL store (``postgresql+psycopg`` is SQLAlchemy's spelling of the same URL).
POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def open_store(where: str | os.PathLike[str], *, sync: str, busy_timeout: float = 10.0) -> JournalStore:
    """The store behind ``where``: a ``postgresql://`` URL, else a SQLite file path (or ``":memory:"``).

    A value with any other URL scheme is refused (``ConfigError`` naming the scheme): taken as a path it
    would silently become a local folder named after the scheme, and the bots meant to share one journal
    would each keep their own."""
    text = os.fspath(where)
    match = _SCHEME.match(text) if isinstance(text, str) else None
    if match is not None:
        scheme = match.group(1).lower()
        if scheme in POSTGRES_SCHEMES:
            from normalization.runtime.journal_postgres import PostgresStore

            return PostgresStore(text, sync=sync)
        from normalization.runtime.factory import ConfigError

        raise ConfigError(
            f"options['journal']: unsupported URL scheme {scheme!r}; use a file path or one of "
            + ", ".join(f"{s}://" for s in POSTGRES_SCHEMES)
        )
    from normalization.runtime.journal_sqlite import SQLiteStore

    return SQLiteStore(where, sync=sync, busy_timeout=busy_timeout)


def open_journal(
    option: Any = USE_DEFAULT, *, exchange: str, account: str | None = None, sync: str = "full"
) -> OrderJournal:
    """Build the journal from ``options["journal"]`` (``sync``: ``options["journalSync"]``).

    * absent (``USE_DEFAULT``) or ``True`` -> ``$CCXT_BROKERS_JOURNAL`` if set (a path or URL, as
      below), else the per-user default file (:func:`default_journal_path`);
    * ``None`` or ``False`` -> :class:`NullJournal`;
    * a ``postgresql://user:pass@host:5432/db`` URL (also ``postgresql+psycopg://``) -> that database,
      shared by bots on several hosts; any other ``scheme://`` is a ``ConfigError``;
    * a path (``str`` / ``PathLike``) -> that file (``":memory:"`` -> an unshared in-memory journal);
    * an :class:`OrderJournal` -> used as is (tests, or two exchange objects sharing one).
    """
    acct = account or "default"
    if isinstance(option, OrderJournal):
        return option
    if option is None or option is False:
        return NullJournal(exchange=exchange, account=acct)
    if option is USE_DEFAULT or option is True:
        option = os.environ.get("CCXT_BROKERS_JOURNAL", "").strip() or None
        if option is None:
            return OrderJournal(default_journal_path(exchange, acct), exchange=exchange, account=acct, sync=sync)
    if isinstance(option, (str, os.PathLike)):
        text = os.fspath(option)
        where = text if text == ":memory:" or _SCHEME.match(str(text)) else Path(text).expanduser()
        return OrderJournal(where, exchange=exchange, account=acct, sync=sync)
    raise TypeError(
        f"options['journal'] must be a path, a postgresql:// URL, None or True, not {type(option).__name__}"
    )


def _broker_ids(ids: Mapping[str, Any]) -> dict[str, str]:
    """Broker ids as stored (text), ``None`` dropped so a partial update never erases an id."""
    unknown = set(ids) - set(BROKER_ID_FIELDS)
    if unknown:
        raise TypeError(f"unknown broker id field(s): {sorted(unknown)}; use {BROKER_ID_FIELDS}")
    return {k: str(v) for k, v in ids.items() if v is not None}


#: The latency columns, as an INSERT lists them, as an UPDATE sets them, and as a merge keeps the earliest
#: intent / submit / ack / first fill and the latest last fill (portable SQL: SQLite has no GREATEST).
_LATENCY_LIST = ", ".join(LATENCY_COLUMNS)
_LATENCY_SET = "".join(f", {c}=?" for c in LATENCY_COLUMNS)
_LATENCY_MERGE = ", ".join(
    f"{c} = CASE WHEN {c} IS NULL OR {c} {'<' if c == 'lat_last_fill' else '>'} ? THEN ? ELSE {c} END"
    for c in LATENCY_COLUMNS
)


def _stamp_values(latency: Stamps | None) -> tuple[int | None, ...]:
    return (None,) * len(LATENCY_COLUMNS) if latency is None else latency.values()


def _order(row: Any) -> JournalOrder:
    fields = dict(zip(row.keys(), row, strict=True))
    del fields["initial_state"]
    fields["latency"] = from_row(tuple(fields.pop(c) for c in LATENCY_COLUMNS))
    fields["params"] = _loads(fields["params"]) or {}
    fields["info"] = _loads(fields["info"])
    return _journal_order(fields)


def _journal_order(fields: dict[str, Any]) -> JournalOrder:
    """A JournalOrder from all its fields, without the frozen dataclass's ``__init__``: that one sets
    each of its 21 fields through ``object.__setattr__`` (~6 us), and a row is built on every send."""
    order = object.__new__(JournalOrder)
    order.__dict__.update(fields)
    return order


def _fill(row: Any) -> JournalFill:
    return JournalFill(
        exec_id=row["exec_id"],
        client_order_id=row["client_order_id"],
        order_id=row["order_id"],
        symbol=row["symbol"],
        side=row["side"],
        amount=row["amount"],
        price=row["price"],
        fee_cost=row["fee_cost"],
        fee_currency=row["fee_currency"],
        timestamp=row["timestamp"],
        info=_loads(row["info"]),
    )
