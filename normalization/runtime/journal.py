"""The order journal: a local SQLite record of every order before it is sent and of everything after.

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
* **Shareable.** WAL mode plus a busy timeout lets several bot processes use one file; every write is
  a short ``BEGIN IMMEDIATE`` transaction so writers queue instead of deadlocking.

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
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from normalization.runtime.journal_disk import JournalDisk

__all__ = [
    "ACKNOWLEDGED",
    "BROKER_ID_FIELDS",
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

BROKER_ID_FIELDS = ("order_id", "perm_id", "deal_reference", "deal_id")
SYNC_MODES = ("full", "behind", "normal")

#: Commits between two background checkpoints (an order writes 2-10 pages; SQLite's own default
#: threshold is 1000 pages).
CHECKPOINT_EVERY = 200

SCHEMA_VERSION = 2  # 2: the status history is written by triggers; partial broker-id indexes

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    exchange        TEXT NOT NULL,
    account         TEXT NOT NULL,
    client_order_id TEXT NOT NULL,
    symbol          TEXT NOT NULL,
    side            TEXT NOT NULL,
    type            TEXT NOT NULL,
    amount          REAL NOT NULL,
    price           REAL,
    trigger_price   REAL,
    params          TEXT NOT NULL DEFAULT '{}',
    state           TEXT NOT NULL,
    reason          TEXT,
    filled          REAL,
    remaining       REAL,
    order_id        TEXT,
    perm_id         TEXT,
    deal_reference  TEXT,
    deal_id         TEXT,
    created         INTEGER NOT NULL,
    updated         INTEGER NOT NULL,
    info            TEXT,
    initial_state   TEXT,  -- the history's first entry (state at ``created``), kept on the row itself
    PRIMARY KEY (exchange, account, client_order_id)
) WITHOUT ROWID;
-- Every b-tree an insert touches is one more page in the WAL per commit, so the broker-id indexes are
-- partial: an intent (all ids NULL) writes none of them; ``id = ?`` look-ups still use them.
CREATE INDEX IF NOT EXISTS orders_state ON orders (exchange, account, state);
CREATE INDEX IF NOT EXISTS orders_order_id ON orders (exchange, account, order_id) WHERE order_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS orders_perm_id ON orders (exchange, account, perm_id) WHERE perm_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS orders_deal_reference ON orders (exchange, account, deal_reference)
    WHERE deal_reference IS NOT NULL;
CREATE INDEX IF NOT EXISTS orders_deal_id ON orders (exchange, account, deal_id) WHERE deal_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS status_history (
    seq             INTEGER PRIMARY KEY,  -- rowid order: increasing, without AUTOINCREMENT's extra page
    exchange        TEXT NOT NULL,
    account         TEXT NOT NULL,
    client_order_id TEXT NOT NULL,
    state           TEXT NOT NULL,
    reason          TEXT,
    timestamp       INTEGER NOT NULL,
    info            TEXT
);
CREATE INDEX IF NOT EXISTS history_order ON status_history (exchange, account, client_order_id);
CREATE TABLE IF NOT EXISTS fills (
    exchange        TEXT NOT NULL,
    account         TEXT NOT NULL,
    exec_id         TEXT NOT NULL,
    client_order_id TEXT,
    order_id        TEXT,
    symbol          TEXT,
    side            TEXT,
    amount          REAL NOT NULL,
    price           REAL NOT NULL,
    fee_cost        REAL,
    fee_currency    TEXT,
    timestamp       INTEGER,
    info            TEXT,
    PRIMARY KEY (exchange, account, exec_id)
);
CREATE INDEX IF NOT EXISTS fills_order ON fills (exchange, account, client_order_id);
CREATE TABLE IF NOT EXISTS early_fees (
    exchange        TEXT NOT NULL,
    account         TEXT NOT NULL,
    exec_id         TEXT NOT NULL,
    fee_cost        REAL NOT NULL,
    fee_currency    TEXT,
    PRIMARY KEY (exchange, account, exec_id)
);
-- The history is kept by the database itself: every change of state appends one entry, inside the
-- writer's own statement. Its first entry is the row's ``initial_state`` at ``created``, so recording an
-- intent (the write before every send) touches the orders table and one index, nothing else.
CREATE TRIGGER IF NOT EXISTS history_on_change AFTER UPDATE OF state ON orders
WHEN new.state IS NOT old.state BEGIN
    INSERT INTO status_history (exchange, account, client_order_id, state, reason, timestamp, info)
    VALUES (new.exchange, new.account, new.client_order_id, new.state, new.reason, new.updated, new.info);
END;
"""


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
    def ccxt_status(self) -> str:
        """The status to show a ccxt caller: local states all read as ``open``.

        A timeout after send must be reported as ``open`` with what is known, never as a
        rejection (DESIGN §4), so ``sent_unknown`` shows as open too.
        """
        return self.state if self.state in TERMINAL_STATES else "open"


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
    """SQLite-backed order journal bound to one exchange and account.

    ``path`` is a file path or ``":memory:"``. ``exchange`` and ``account`` scope every query, so one
    file may safely hold several accounts. ``busy_timeout`` (seconds) is how long a write waits for
    another process holding the write lock. ``sync`` is ``"full"`` (fsync before every send),
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
    ) -> None:
        if sync not in SYNC_MODES:
            raise ValueError(f"journal sync must be one of {SYNC_MODES}, not {sync!r}")
        self.exchange = exchange
        self.account = account or "default"
        self.now_ms = now_ms  # public: reconciliation and tests read the journal's clock
        self._lock = threading.RLock()
        memory = str(path) == ":memory:"
        self.path: Path | None = None if memory else Path(path)
        self.sync = sync
        self._fsync = sync == "full" and not memory  # only a file has anything to fsync
        # Checkpoints (and with "behind" the fsyncs) run on a background thread: see journal_disk.
        self._disk = JournalDisk(self.path, busy_timeout) if self.path is not None else None
        self._behind = sync == "behind" and self._disk is not None
        self._commits = 0
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN IMMEDIATE / COMMIT ourselves so that every write takes
        # the write lock up front (no lock upgrade => no SQLITE_BUSY deadlock between processes).
        self._conn = sqlite3.connect(
            ":memory:" if memory else str(self.path),
            timeout=busy_timeout,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            self._setup(memory, busy_timeout)
        except BaseException:
            self._conn.close()
            raise

    def _setup(self, memory: bool, busy_timeout: float) -> None:
        """Pragmas and schema; idempotent, so every process opening the file runs it."""
        self._conn.row_factory = sqlite3.Row
        self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        if not memory:
            # A new file gets 1 KiB pages (an existing one keeps its own): an order's commits write a few
            # small rows to ~10 b-tree pages, and WAL frames of 1 KiB instead of 4 KiB cut what every
            # commit copies and checksums (measured: intent 45 -> 26 us, a deal's outcome 125 -> 93 us).
            self._conn.execute("PRAGMA page_size = 1024")
            self._enable_wal(busy_timeout)
            # SQLite's automatic checkpoint would run on whichever commit crosses its threshold, fsyncs
            # included, on the thread that sends orders: journal_disk runs them in the background instead.
            self._conn.execute("PRAGMA wal_autocheckpoint = 0")
        # NORMAL in WAL mode survives a process crash (SIGKILL); FULL is switched on for the writes
        # that must also survive an OS crash or power loss (see _write(durable=True)).
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.execute("PRAGMA foreign_keys = OFF")
        with self._write():
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"order journal {self.path} has schema version {version}; this library "
                    f"understands up to {SCHEMA_VERSION}. Upgrade ccxt-brokers or use another file."
                )
            if 0 < version < 2:
                # Version 1 indexed NULL broker ids (rebuilt as partial indexes below) and wrote every
                # history entry itself (its rows keep initial_state NULL: their first entry is in the table).
                for name in ("order_id", "perm_id", "deal_reference", "deal_id"):
                    self._conn.execute(f"DROP INDEX IF EXISTS orders_{name}")
                self._conn.execute("ALTER TABLE orders ADD COLUMN initial_state TEXT")
            self._conn.execute("DROP TRIGGER IF EXISTS history_on_insert")  # an earlier draft of version 2
            for statement in _statements(_SCHEMA):
                self._conn.execute(statement)
            if version < SCHEMA_VERSION:
                self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # ------------------------------------------------------------------ plumbing

    def _enable_wal(self, busy_timeout: float) -> None:
        """Switch the file to WAL once; tolerate another process doing the same at the same moment.

        Changing the journal mode needs an exclusive lock and SQLite does not always run the busy
        handler for it, so two processes creating the file together can see "database is locked".
        Once the file is in WAL mode (persistent), later opens only read the mode and never contend.
        """
        deadline = time.monotonic() + busy_timeout
        delay = 0.005
        while True:
            try:
                mode = self._conn.execute("PRAGMA journal_mode").fetchone()[0]
                if str(mode).lower() != "wal":
                    self._conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(delay)  # only on first-open contention; bounded by busy_timeout
                delay = min(delay * 2, 0.1)

    @contextmanager
    def _write(self, durable: bool = False, single: bool = False) -> Iterator[sqlite3.Connection]:
        """One short write transaction; ``durable`` fsyncs the commit (intent before send) when the
        journal was opened with ``sync="full"``. ``single``: the block writes with one statement, which
        SQLite already runs as its own transaction (taking the write lock up front), so no BEGIN/COMMIT."""
        flush = durable and self._behind
        durable = durable and self._fsync
        with self._lock:
            conn = self._conn
            if durable:
                conn.execute("PRAGMA synchronous = FULL")
            try:
                if single:
                    yield conn
                else:
                    conn.execute("BEGIN IMMEDIATE")
                    try:
                        yield conn
                    except BaseException:
                        conn.execute("ROLLBACK")
                        raise
                    conn.execute("COMMIT")
            finally:
                if durable:
                    conn.execute("PRAGMA synchronous = NORMAL")
        self._committed(flush)

    def _committed(self, flush: bool) -> None:
        """After a commit: the background fsync it asks for ("behind"), and a checkpoint every so often."""
        disk = self._disk
        if disk is None:
            return
        if flush:
            disk.flush()
        self._commits += 1
        if self._commits % CHECKPOINT_EVERY == 0:
            disk.checkpoint()

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    @property
    def _scope(self) -> tuple[str, str]:
        return (self.exchange, self.account)

    def _get(self, conn: sqlite3.Connection, client_order_id: str) -> JournalOrder | None:
        row = conn.execute(
            "SELECT * FROM orders WHERE exchange=? AND account=? AND client_order_id=?",
            (*self._scope, client_order_id),
        ).fetchone()
        return None if row is None else _order(row)

    def _require(self, conn: sqlite3.Connection, client_order_id: str) -> JournalOrder:
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
    ) -> tuple[JournalOrder, bool]:
        """Record an order before it is sent (fsynced with ``sync="full"``). Returns ``(order, created)``.

        Idempotent: if ``client_order_id`` is already journaled, nothing is written and the *first*
        order comes back with ``created=False`` -- that is how "the same clientOrderId placed twice
        returns the first order" works, across restarts and processes. The caller sends only when
        ``created`` is True. ``state=SENT_UNKNOWN`` records intent and send mark in one commit, for a
        caller that sends right after; reconciliation passes the state of an order it adopts.
        """
        if state not in STATES:
            raise ValueError(f"unknown journal state {state!r}")
        order = self._intent(client_order_id, symbol, side, type, amount, price, trigger_price, params, state)
        if self._fsync:
            with self._write(durable=True, single=True) as conn:
                return self._insert(conn, order)
        with self._lock:  # the usual path, before every send: one autocommit statement, nothing around it
            inserted = self._insert(self._conn, order)
        self._committed(self._behind)
        return inserted

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
                             SENT_UNKNOWN)
        if self._fsync or not broker_keeps_id:
            with self._write(durable=True, single=True) as conn:
                inserted = self._insert(conn, order)
            yield inserted
            return
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                inserted = self._insert(conn, order)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            try:
                yield inserted
            finally:
                conn.execute("COMMIT")
        self._committed(flush=self._behind)

    @property
    def defers_new_intents(self) -> bool:
        """Whether a freshly generated clientOrderId, at a broker that keeps it, may be journaled after
        the order's acknowledgement (:meth:`record_after_send`) instead of around its send.

        Nobody can know such an id before the placing call returns, so no repeat can race it; a crash
        before the write leaves an order the broker lists under our id, adopted on the next connect --
        the recovery ``sync="normal"`` already relies on for a journal tail lost to a power cut. Not with
        ``sync="full"``, whose promise is that every order is on disk before it leaves."""
        return self.sync != "full" or self.path is None  # in memory nothing outlives the process anyway

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
    ) -> None:
        """Journal an order sent before it was recorded (see :attr:`defers_new_intents`): its intent as
        ``sent_unknown`` at ``sent`` (ms) and the state the broker answered with, in one transaction --
        the history reads as if the intent had been written before the send."""
        if state not in STATES:
            raise ValueError(f"unknown journal state {state!r}")
        order = self._intent(client_order_id, symbol, side, type, amount, price, trigger_price, params,
                             SENT_UNKNOWN)
        new_ids = _broker_ids(ids or {})
        now = self.now_ms()
        with self._write(durable=True) as conn:
            columns = "".join(f", {k}" for k in new_ids)
            cur = conn.execute(
                "INSERT OR IGNORE INTO orders (exchange, account, client_order_id, symbol, side, type, amount,"
                f" price, trigger_price, params, state, initial_state, created, updated, filled, remaining{columns})"
                f" VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?{',?' * len(new_ids)})",
                (order.exchange, order.account, client_order_id, order.symbol, order.side, order.type,
                 order.amount, order.price, order.trigger_price, _dumps(order.params), state, SENT_UNKNOWN,
                 sent, now, None if filled is None else float(filled),
                 None if remaining is None else float(remaining), *new_ids.values()),
            )
            if cur.rowcount and state != SENT_UNKNOWN:
                conn.execute(
                    "INSERT INTO status_history (exchange, account, client_order_id, state, reason, timestamp, info)"
                    " VALUES (?,?,?,?,NULL,?,NULL)",
                    (*self._scope, client_order_id, state, now),
                )
        if not cur.rowcount:  # reconciliation adopted it meanwhile (a reconnect in between): bring it up to date
            self.update_status(client_order_id, state, filled=filled, remaining=remaining, ids=ids)

    def _intent(
        self, client_order_id: str, symbol: str, side: str, type: str, amount: float, price: float | None,
        trigger_price: float | None, params: Mapping[str, Any] | None, state: str,
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
            "created": now, "updated": now, "info": None,
        })

    def _insert(self, conn: sqlite3.Connection, order: JournalOrder) -> tuple[JournalOrder, bool]:
        """The intent's one statement: INSERT OR IGNORE answers "seen before?" and writes at once."""
        cur = conn.execute(
            "INSERT OR IGNORE INTO orders (exchange, account, client_order_id, symbol, side, type, amount,"
            " price, trigger_price, params, state, initial_state, created, updated)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (order.exchange, order.account, order.client_order_id, order.symbol, order.side, order.type,
             order.amount, order.price, order.trigger_price, _dumps(order.params), order.state, order.state,
             order.created, order.updated),
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
        with self._lock:
            return self._require(self._conn, client_order_id)

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
    ) -> bool:
        """Record a status the broker reported (or reconciliation decided); returns True if it changed.

        Terminal states are sticky: a late ``open`` after ``closed`` (events out of order) is ignored
        unless ``force`` (reconciliation uses it when the broker's full snapshot says otherwise).
        ``filled`` / ``remaining`` / ``info`` are kept even when the state does not change. Every
        state change is appended to the status history. ``ids``: broker ids learned with this status
        (as :meth:`attach_ids`, durable like it) and ``fills``: executions learned with it (each the
        keyword arguments of :meth:`record_fill`), written in the same transaction -- "settled, with its
        ids and fills" is then one write, and a crash leaves either all of it or none.
        """
        if status not in STATES:
            raise ValueError(f"unknown journal state {status!r}; expected one of {sorted(STATES)}")
        new_ids = _broker_ids(ids or {})
        now = self.now_ms()
        with self._write(durable=bool(new_ids)) as conn:
            for fill in fills:
                self._insert_fill(conn, **fill)
            current = conn.execute(
                "SELECT state, reason, filled, remaining, info, order_id, perm_id, deal_reference, deal_id"
                " FROM orders WHERE exchange=? AND account=? AND client_order_id=?",
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
            if row == tuple(current)[:5] and not new_ids:
                return False  # nothing new: leave ``updated`` alone
            assignments = "".join(f", {k}=?" for k in new_ids)
            conn.execute(
                f"UPDATE orders SET state=?, reason=?, filled=?, remaining=?, info=?, updated=?{assignments}"
                " WHERE exchange=? AND account=? AND client_order_id=?",
                (*row, now, *new_ids.values(), *self._scope, client_order_id),
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
        with self._lock:
            return self._get(self._conn, client_order_id)

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

    def history(self, client_order_id: str) -> list[StatusChange]:
        """The append-only status history of one order, oldest first."""
        with self._lock:
            first = self._conn.execute(
                "SELECT initial_state, created FROM orders WHERE exchange=? AND account=? AND client_order_id=?",
                (*self._scope, client_order_id),
            ).fetchone()
            rows = self._conn.execute(
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
    ) -> bool:
        """Record one execution; returns False (a no-op) if ``exec_id`` was already recorded.

        A fee recorded earlier by :meth:`record_fee` (commission before execution) is folded in.
        """
        with self._write() as conn:
            return self._insert_fill(conn, exec_id, amount=amount, price=price, client_order_id=client_order_id,
                                     order_id=order_id, symbol=symbol, side=side, timestamp=timestamp,
                                     fee_cost=fee_cost, fee_currency=fee_currency, info=info)

    def _insert_fill(
        self, conn: sqlite3.Connection, exec_id: str, *, amount: float, price: float,
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
            "INSERT OR IGNORE INTO fills (exchange, account, exec_id, client_order_id, order_id, symbol,"
            " side, amount, price, fee_cost, fee_currency, timestamp, info)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (*self._scope, exec_id, client_order_id, _id(order_id), symbol, side, float(amount), float(price),
             None if fee_cost is None else float(fee_cost), fee_currency, timestamp, _dumps(info)),
        )
        if cur.rowcount and early is not None:
            conn.execute(
                "DELETE FROM early_fees WHERE exchange=? AND account=? AND exec_id=?",
                (*self._scope, exec_id),
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
                "INSERT OR REPLACE INTO early_fees (exchange, account, exec_id, fee_cost, fee_currency)"
                " VALUES (?,?,?,?,?)",
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
        return self._disk.wait(timeout) if self._behind and self._disk is not None else True

    def close(self) -> None:
        if self._disk is not None:
            self._disk.close()
        with self._lock:
            self._conn.close()

    def __enter__(self) -> OrderJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self.path if self.path is not None else "memory"
        return f"{type(self).__name__}({where}, exchange={self.exchange!r}, account={self.account!r})"


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


def open_journal(
    option: Any = USE_DEFAULT, *, exchange: str, account: str | None = None, sync: str = "full"
) -> OrderJournal:
    """Build the journal from ``options["journal"]`` (``sync``: ``options["journalSync"]``).

    * absent (``USE_DEFAULT``) or ``True`` -> the per-user default file (:func:`default_journal_path`);
    * ``None`` or ``False`` -> :class:`NullJournal`;
    * a path (``str`` / ``PathLike``) -> that file (``":memory:"`` -> an unshared in-memory journal);
    * an :class:`OrderJournal` -> used as is (tests, or two exchange objects sharing one).
    """
    acct = account or "default"
    if isinstance(option, OrderJournal):
        return option
    if option is None or option is False:
        return NullJournal(exchange=exchange, account=acct)
    if option is USE_DEFAULT or option is True:
        return OrderJournal(default_journal_path(exchange, acct), exchange=exchange, account=acct, sync=sync)
    if isinstance(option, (str, os.PathLike)):
        where = option if option == ":memory:" else Path(option).expanduser()
        return OrderJournal(where, exchange=exchange, account=acct, sync=sync)
    raise TypeError(f"options['journal'] must be a path, None or True, not {type(option).__name__}")


def _broker_ids(ids: Mapping[str, Any]) -> dict[str, str]:
    """Broker ids as stored (text), ``None`` dropped so a partial update never erases an id."""
    unknown = set(ids) - set(BROKER_ID_FIELDS)
    if unknown:
        raise TypeError(f"unknown broker id field(s): {sorted(unknown)}; use {BROKER_ID_FIELDS}")
    return {k: str(v) for k, v in ids.items() if v is not None}


def _statements(script: str) -> list[str]:
    """The schema's statements one by one (``executescript`` would commit the caller's transaction);
    SQLite itself says where each ends, so a trigger keeps the ``;`` inside its body."""
    statements: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                statements.append(pending.strip())
            pending = ""
    return statements


def _order(row: sqlite3.Row) -> JournalOrder:
    fields = dict(zip(row.keys(), row, strict=True))
    del fields["initial_state"]
    fields["params"] = _loads(fields["params"]) or {}
    fields["info"] = _loads(fields["info"])
    return _journal_order(fields)


def _journal_order(fields: dict[str, Any]) -> JournalOrder:
    """A JournalOrder from all its fields, without the frozen dataclass's ``__init__``: that one sets
    each of its 21 fields through ``object.__setattr__`` (~6 us), and a row is built on every send."""
    order = object.__new__(JournalOrder)
    order.__dict__.update(fields)
    return order


def _fill(row: sqlite3.Row) -> JournalFill:
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
