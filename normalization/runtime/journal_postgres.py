"""The order journal's PostgreSQL store: one journal for bots on several hosts.

SQLite is shared only by the processes of one host; a team running one strategy per machine against
one broker account, or a standby host that takes over a crashed primary, needs the journal's promises
(a clientOrderId reaches the broker once, an order in flight is resolved rather than resent) across
machines. A database server gives them without a home-made sync: the journal's ``INSERT ... ON
CONFLICT DO NOTHING`` on the primary key ``(exchange, account, client_order_id)`` answers "seen
before?" atomically for every connection, whichever host it comes from.

Through psycopg 3 with a small connection pool (psycopg_pool). What is PostgreSQL's own lives here:

* **The schema**, created and migrated by the library in its own PostgreSQL schema (``ccxt_brokers``,
  or ``?schema=name`` in the URL), versioned in ``journal_schema``; the first process to connect
  creates it under an advisory lock, so bots starting together do not race.
* **``journalSync`` as commit settings**: ``full`` commits with ``synchronous_commit = on`` (the intent
  is in the server's WAL on disk, and on its synchronous standbys if it has any, before the order is
  sent); ``behind`` commits with ``synchronous_commit = off`` and a background thread forces the WAL to
  disk right after each pre-send commit (a tiny synchronous commit, coalesced at most every 10 ms);
  ``normal`` commits with ``synchronous_commit = off`` and leaves the flush to the server's WAL writer
  (``wal_writer_delay``, 200 ms by default; at most three times that). In every mode the bot process
  dying loses nothing: the server has the row.
* **Failures are fast and explicit**: an unreachable server is a ``ccxt.ExchangeNotAvailable`` for
  the journal call (so for ``create_order``, before anything is sent), after at most ``pool_timeout``
  seconds; a connection the server closed while idle (a restart) is dropped before use, not failed on.
* **The password never leaves this module**: ``where`` and every message show the URL without it.
"""

from __future__ import annotations

import re
import select
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from normalization.runtime.journal_disk import JournalDisk

__all__ = ["DEFAULT_SCHEMA", "SCHEMA_VERSION", "PostgresStore", "redact_url"]

DEFAULT_SCHEMA = "ccxt_brokers"
SCHEMA_VERSION = 2
POOL_SIZE = 4  # the adapter's loop thread, the caller's thread, reconciliation, the flush thread
POOL_TIMEOUT = 3.0  # seconds a journal call waits for a busy pool before ExchangeNotAvailable
_POLL = 0.05  # while waiting, how often to look whether the server refused meanwhile

# Each entry migrates the schema from version ``n - 1`` to ``n`` (index ``n - 1``); new versions append.
# The same tables as the SQLite store (journal_sqlite), in PostgreSQL's types: the journal's statements
# run unchanged on both.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE orders (
            exchange        TEXT NOT NULL,
            account         TEXT NOT NULL,
            client_order_id TEXT NOT NULL,
            symbol          TEXT NOT NULL,
            side            TEXT NOT NULL,
            type            TEXT NOT NULL,
            amount          DOUBLE PRECISION NOT NULL,
            price           DOUBLE PRECISION,
            trigger_price   DOUBLE PRECISION,
            params          TEXT NOT NULL DEFAULT '{}',
            state           TEXT NOT NULL,
            reason          TEXT,
            filled          DOUBLE PRECISION,
            remaining       DOUBLE PRECISION,
            order_id        TEXT,
            perm_id         TEXT,
            deal_reference  TEXT,
            deal_id         TEXT,
            created         BIGINT NOT NULL,
            updated         BIGINT NOT NULL,
            info            TEXT,
            initial_state   TEXT,
            PRIMARY KEY (exchange, account, client_order_id)
        )""",
        "CREATE INDEX orders_state ON orders (exchange, account, state)",
        "CREATE INDEX orders_order_id ON orders (exchange, account, order_id) WHERE order_id IS NOT NULL",
        "CREATE INDEX orders_perm_id ON orders (exchange, account, perm_id) WHERE perm_id IS NOT NULL",
        "CREATE INDEX orders_deal_reference ON orders (exchange, account, deal_reference)"
        " WHERE deal_reference IS NOT NULL",
        "CREATE INDEX orders_deal_id ON orders (exchange, account, deal_id) WHERE deal_id IS NOT NULL",
        """CREATE TABLE status_history (
            seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            exchange        TEXT NOT NULL,
            account         TEXT NOT NULL,
            client_order_id TEXT NOT NULL,
            state           TEXT NOT NULL,
            reason          TEXT,
            timestamp       BIGINT NOT NULL,
            info            TEXT
        )""",
        "CREATE INDEX history_order ON status_history (exchange, account, client_order_id)",
        """CREATE TABLE fills (
            exchange        TEXT NOT NULL,
            account         TEXT NOT NULL,
            exec_id         TEXT NOT NULL,
            client_order_id TEXT,
            order_id        TEXT,
            symbol          TEXT,
            side            TEXT,
            amount          DOUBLE PRECISION NOT NULL,
            price           DOUBLE PRECISION NOT NULL,
            fee_cost        DOUBLE PRECISION,
            fee_currency    TEXT,
            timestamp       BIGINT,
            info            TEXT,
            PRIMARY KEY (exchange, account, exec_id)
        )""",
        "CREATE INDEX fills_order ON fills (exchange, account, client_order_id)",
        """CREATE TABLE early_fees (
            exchange        TEXT NOT NULL,
            account         TEXT NOT NULL,
            exec_id         TEXT NOT NULL,
            fee_cost        DOUBLE PRECISION NOT NULL,
            fee_currency    TEXT,
            PRIMARY KEY (exchange, account, exec_id)
        )""",
        # The history is kept by the database, as in SQLite: each change of state appends one entry.
        """CREATE FUNCTION history_on_change() RETURNS trigger LANGUAGE plpgsql
        SET search_path FROM CURRENT AS $$
        BEGIN
            INSERT INTO status_history (exchange, account, client_order_id, state, reason, timestamp, info)
            VALUES (NEW.exchange, NEW.account, NEW.client_order_id, NEW.state, NEW.reason, NEW.updated, NEW.info);
            RETURN NULL;
        END $$""",
        """CREATE TRIGGER history_on_change AFTER UPDATE OF state ON orders FOR EACH ROW
        WHEN (NEW.state IS DISTINCT FROM OLD.state) EXECUTE FUNCTION history_on_change()""",
    ),
    # 2: each order's latency stamps (normalization.runtime.latency), epoch ns; NULL in older rows.
    tuple(f"ALTER TABLE orders ADD COLUMN {column} BIGINT"
          for column in ("lat_intent", "lat_submit", "lat_ack", "lat_first_fill", "lat_last_fill")),
)
assert len(_MIGRATIONS) == SCHEMA_VERSION


def redact_url(url: str) -> str:
    """``url`` with its password (in the authority or a ``password=`` parameter) shown as ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            netloc = f"{userinfo.split(':', 1)[0]}:***@{host}"
    query = re.sub(r"(?i)(^|&)(password=)[^&]*", r"\1\2***", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _secrets(url: str) -> list[str]:
    parts = urlsplit(url)
    found = [parts.password or ""] + [v for k, v in parse_qsl(parts.query) if k.lower() == "password"]
    return sorted({s for f in found if f for s in (f, unquote(f))}, key=len, reverse=True)


class _Row:
    """A result row readable by position and by column name, like ``sqlite3.Row``."""

    __slots__ = ("_index", "_values")

    def __init__(self, index: dict[str, int], values: Sequence[Any]) -> None:
        self._index = index
        self._values = values

    def keys(self) -> list[str]:
        return list(self._index)

    def __getitem__(self, key: int | str) -> Any:
        return self._values[self._index[key]] if isinstance(key, str) else self._values[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def _row_factory(cursor: Any) -> Any:
    index = {column.name: i for i, column in enumerate(cursor.description or ())}
    return lambda values: _Row(index, values)


_PLACEHOLDERS: dict[str, str] = {}


def _sql(sql: str) -> str:
    """The journal's ``?`` placeholders as psycopg's ``%s`` (its statements hold no other ``?`` or ``%``)."""
    translated = _PLACEHOLDERS.get(sql)
    if translated is None:
        translated = _PLACEHOLDERS[sql] = sql.replace("?", "%s")
    return translated


class _Connection:
    """A pooled psycopg connection running the journal's statements."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Any:
        return self._conn.execute(_sql(sql), args)

    def executemany(self, sql: str, args: Sequence[Sequence[Any]]) -> Any:
        cursor = self._conn.cursor()
        cursor.executemany(_sql(sql), args)
        return cursor


class _WalFlusher(JournalDisk):
    """``journalSync="behind"``: the background thread of the SQLite store, flushing the server's WAL
    instead of a file. A transaction that takes a transaction id and commits with
    ``synchronous_commit = on`` returns once the WAL is on disk up to its commit record, which covers
    every asynchronous commit before it."""

    def __init__(self, store: PostgresStore) -> None:
        super().__init__(Path("postgresql-journal"))
        self._store = store

    def _sync(self) -> None:
        try:
            with self._store._connection() as conn, conn.transaction():
                conn.execute("SET LOCAL synchronous_commit = on")
                conn.execute("SELECT txid_current()")
        except Exception as error:  # the server is away: the next request tries again
            self._store.log_error("WAL flush", error)


class PostgresStore:
    """The journal's rows in a PostgreSQL database given by a ``postgresql://`` URL."""

    persistent = True
    remote = True
    path = None
    row_lock = " FOR UPDATE"  # writers run side by side (READ COMMITTED): a status change locks its row

    def __init__(self, url: str, *, sync: str, pool_size: int = POOL_SIZE, pool_timeout: float = POOL_TIMEOUT) -> None:
        try:
            import psycopg
            from psycopg_pool import ConnectionPool
        except ImportError as missing:
            from normalization.runtime.factory import ConfigError

            raise ConfigError(
                f"options['journal'] is a PostgreSQL URL but {missing.name} is not installed: "
                "pip install 'ccxt-brokers[postgres]'"
            ) from None

        self._psycopg = psycopg
        self.where = redact_url(url)
        self._secrets = _secrets(url)
        conninfo, self.schema = self._conninfo(url)
        self.sync = sync
        self._pool_timeout = pool_timeout
        self._failed_at = -1.0  # time.monotonic() of the last failed attempt to connect
        commit = "on" if sync == "full" else "off"
        schema = self.schema

        def configure(conn: Any) -> None:
            conn.execute(f"SET synchronous_commit = {commit}")
            conn.execute(f"SET search_path = {_ident(schema)}")

        self._pool = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=pool_size,
            timeout=pool_timeout,
            open=False,
            name="ccxt-brokers-journal",
            kwargs={"autocommit": True, "row_factory": _row_factory},
            configure=configure,
            # A failed connection attempt is given up at once, not retried on a backoff of seconds: the
            # next journal call tries again itself, so the journal works again as soon as the server does.
            reconnect_timeout=0.0,
            reconnect_failed=self._unreachable,
        )
        self._flusher = _WalFlusher(self) if sync == "behind" else None
        self._closed = threading.Event()
        try:
            with self._errors("connect"):
                self._pool.open(wait=False)
                self._migrate()
        except BaseException:
            self._pool.close()
            raise

    @staticmethod
    def _conninfo(url: str) -> tuple[str, str]:
        """The URL psycopg understands (``postgresql+psycopg`` spelled ``postgresql``, our ``schema``
        parameter taken out, a connect timeout unless the URL sets one) and the schema name."""
        parts = urlsplit(url)
        scheme = "postgresql" if parts.scheme.lower().startswith("postgres") else parts.scheme
        params = parse_qsl(parts.query, keep_blank_values=True)
        schema = next((v for k, v in params if k == "schema"), DEFAULT_SCHEMA) or DEFAULT_SCHEMA
        params = [(k, v) for k, v in params if k != "schema"]
        if not any(k == "connect_timeout" for k, _ in params):
            params.append(("connect_timeout", "5"))
        return urlunsplit((scheme, parts.netloc, parts.path, urlencode(params), parts.fragment)), schema

    def _migrate(self) -> None:
        """Create or upgrade the schema, once per database, whoever connects first."""
        with self._connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('ccxt_brokers.journal.schema'))")
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(self.schema)}")
            conn.execute("CREATE TABLE IF NOT EXISTS journal_schema (version INTEGER NOT NULL)")
            row = conn.execute("SELECT version FROM journal_schema").fetchone()
            version = 0 if row is None else int(row[0])
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"order journal {self.where} (schema {self.schema}) has version {version}; this library "
                    f"understands up to {SCHEMA_VERSION}. Upgrade ccxt-brokers or use another schema."
                )
            for statements in _MIGRATIONS[version:]:
                for statement in statements:
                    conn.execute(statement)
            if row is None:
                conn.execute("INSERT INTO journal_schema (version) VALUES (%s)", (SCHEMA_VERSION,))
            elif version < SCHEMA_VERSION:
                conn.execute("UPDATE journal_schema SET version = %s", (SCHEMA_VERSION,))

    def _unreachable(self, pool: Any) -> None:
        self._failed_at = time.monotonic()

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        """A pooled connection; ``PoolTimeout`` after ``pool_timeout``, or as soon as an attempt to
        connect made meanwhile failed (the server refuses or is gone: waiting longer helps nobody)."""
        from psycopg_pool import PoolTimeout

        started = time.monotonic()
        deadline = started + self._pool_timeout
        while True:
            try:
                conn = self._pool.getconn(timeout=_POLL)
            except PoolTimeout:
                if self._failed_at >= started or time.monotonic() >= deadline:
                    raise
                continue
            if _usable(conn):
                break
            self._pool.putconn(conn)  # closed: the pool replaces it
        try:
            yield conn
        finally:
            self._pool.putconn(conn)

    # ------------------------------------------------------------------ the store interface

    @contextmanager
    def write(self, durable: bool = False, single: bool = False) -> Iterator[_Connection]:
        with self._errors("write"), self._connection() as conn:
            if single:
                yield _Connection(conn)
            else:
                with conn.transaction():
                    yield _Connection(conn)
        if durable and self._flusher is not None:
            self._flusher.flush()

    @contextmanager
    def reading(self) -> Iterator[_Connection]:
        with self._errors("read"), self._connection() as conn:
            yield _Connection(conn)

    def read(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        with self.reading() as conn:
            return list(conn.execute(sql, args).fetchall())

    @contextmanager
    def session(self) -> Iterator[_Connection]:
        """One pooled connection kept for a while (autocommit): a session advisory lock lives on it
        (:mod:`normalization.runtime.account_lock`) and ends with it if the process dies."""
        with self._errors("session"), self._connection() as conn:
            yield _Connection(conn)

    def wait_durable(self, timeout: float | None = None) -> bool:
        return self._flusher.wait(timeout) if self._flusher is not None else True

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        if self._flusher is not None:
            self._flusher.close()
        self._pool.close()

    # ------------------------------------------------------------------ errors

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def log_error(self, what: str, error: BaseException) -> None:
        import logging

        logging.getLogger(__name__).warning("order journal %s: %s failed: %s", self.where, what,
                                            self._scrub(str(error)))

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """The server unreachable or gone mid-call -> ``ccxt.ExchangeNotAvailable`` (password-free): the
        caller must not act as if the row were written, and never sends an order it could not journal."""
        from psycopg_pool import PoolTimeout

        try:
            yield
        except (self._psycopg.OperationalError, self._psycopg.InterfaceError, PoolTimeout) as error:
            from ccxt.base.errors import ExchangeNotAvailable

            raise ExchangeNotAvailable(
                f"order journal {self.where} unavailable ({what}): {self._scrub(str(error)) or type(error).__name__}"
            ) from None

    def __repr__(self) -> str:
        return f"PostgresStore({self.where}, schema={self.schema!r}, sync={self.sync!r})"


def _ident(name: str) -> str:
    """A schema name as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _usable(conn: Any) -> bool:
    """False (and the connection closed) if the server closed it while it sat idle in the pool (a
    restart, an admin's kill): found without a round trip, since an idle connection has nothing to
    read unless the server said goodbye. (psycopg_pool's own ``check`` would put an unused connection
    back as good and sleep a backoff of a second before trying the next.)"""
    if conn.closed or conn.broken:
        return False
    readable, _, _ = select.select([conn.fileno()], [], [], 0)
    if readable:
        conn.close()
        return False
    return True
