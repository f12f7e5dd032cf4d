"""The order journal's SQLite store: one file per user and broker account, shared by the bots of one host.

What is SQLite's own lives here: the file's pragmas (WAL, 1 KiB pages, no automatic checkpoint), the
schema and its in-place upgrades (``PRAGMA user_version``), the ``BEGIN IMMEDIATE`` transactions that
let several processes write one file without deadlocking, and the disk work behind a commit
(:mod:`normalization.runtime.journal_disk`). What each ``sync`` mode means is stated once, in
:mod:`normalization.runtime.journal`.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from normalization.runtime.journal_disk import JournalDisk

__all__ = ["CHECKPOINT_EVERY", "SCHEMA_VERSION", "SQLiteStore"]

#: Commits between two background checkpoints (an order writes 2-10 pages; SQLite's own default
#: threshold is 1000 pages).
CHECKPOINT_EVERY = 200

SCHEMA_VERSION = 3  # 2: the status history is written by triggers; partial broker-id indexes; 3: latency stamps

#: Version 3's columns: each order's stage stamps (normalization.runtime.latency), epoch ns or NULL.
LATENCY_DDL = ("lat_intent", "lat_submit", "lat_ack", "lat_first_fill", "lat_last_fill")

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
    lat_intent      INTEGER,  -- the order's latency stamps (normalization.runtime.latency): epoch ns
    lat_submit      INTEGER,
    lat_ack         INTEGER,
    lat_first_fill  INTEGER,
    lat_last_fill   INTEGER,
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


class SQLiteStore:
    """The journal's rows in a SQLite file (or ``":memory:"``), one connection guarded by a lock.

    ``sync`` decides what a durable write costs: ``full`` fsyncs its commit, ``behind`` has the disk
    thread fsync the WAL right after it, ``normal`` leaves the disk to the kernel. ``busy_timeout``
    (seconds) is how long a write waits for another process holding the write lock.
    """

    remote = False
    row_lock = ""  # BEGIN IMMEDIATE: one writer at a time already

    def __init__(self, path: str | os.PathLike[str], *, sync: str, busy_timeout: float = 10.0) -> None:
        memory = str(path) == ":memory:"
        self.path: Path | None = None if memory else Path(path)
        self.persistent = not memory
        self.where = "memory" if memory else str(self.path)
        self._lock = threading.RLock()
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
        # that must also survive an OS crash or power loss (see write(durable=True)).
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.execute("PRAGMA foreign_keys = OFF")
        with self.write():
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
            if 0 < version < 3:
                for column in LATENCY_DDL:  # NULL in the rows written before: no stage is known for them
                    self._conn.execute(f"ALTER TABLE orders ADD COLUMN {column} INTEGER")
            self._conn.execute("DROP TRIGGER IF EXISTS history_on_insert")  # an earlier draft of version 2
            for statement in _statements(_SCHEMA):
                self._conn.execute(statement)
            if version < SCHEMA_VERSION:
                self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

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
    def write(self, durable: bool = False, single: bool = False) -> Iterator[sqlite3.Connection]:
        """One short write transaction; ``durable`` fsyncs the commit when opened with ``sync="full"``
        (and asks the disk thread for a flush with ``"behind"``). ``single``: one statement, which SQLite
        already runs as its own transaction (taking the write lock up front), so no BEGIN/COMMIT."""
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

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._conn

    def read(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    def wait_durable(self, timeout: float | None = None) -> bool:
        return self._disk.wait(timeout) if self._behind and self._disk is not None else True

    def close(self) -> None:
        if self._disk is not None:
            self._disk.close()
        with self._lock:
            self._conn.close()


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
