"""Where the order journal keeps its rows: the small interface between its logic and a database.

The journal (:mod:`normalization.runtime.journal`) owns every state rule and every statement; it
writes portable SQL (``?`` placeholders, ``INSERT ... ON CONFLICT``) that SQLite runs as is and that
the PostgreSQL store translates to its own placeholders. A store owns only what differs between
databases: connecting, the schema and its migrations, how one write transaction is opened and made
durable, and what runs behind a commit (background fsyncs, checkpoints).

Why a store and not two journals: idempotency, the terminal-state rules, the history and the fills
must behave the same whatever the database, so they are written once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

__all__ = ["Connection", "Cursor", "JournalStore", "Row"]


class Row(Protocol):
    """A result row readable by position and by column name (``sqlite3.Row`` is one)."""

    def keys(self) -> list[str]: ...
    def __getitem__(self, key: int | str) -> Any: ...
    def __iter__(self) -> Iterator[Any]: ...
    def __len__(self) -> int: ...


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...
    def fetchall(self) -> Sequence[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """What the journal's statements run on inside a store's ``write`` / ``reading`` block."""

    def execute(self, sql: str, args: Sequence[Any] = ..., /) -> Cursor: ...
    def executemany(self, sql: str, args: Sequence[Sequence[Any]], /) -> Any: ...


class JournalStore(Protocol):
    """A database the journal writes to; built by :func:`normalization.runtime.journal.open_store`.

    * ``persistent``: rows outlive the process (False for ``:memory:``);
    * ``remote``: a network hop away, where a write can fail for reasons a local file cannot (the server
      is down): the journal then commits every intent before its send, never after it;
    * ``path``: the SQLite file, ``None`` otherwise;
    * ``where``: where the rows live, for ``repr`` and messages -- never a password;
    * ``row_lock``: appended to a ``SELECT`` whose row the same transaction then updates (a status
      change reads the current state first): ``""`` where write transactions are serialized anyway
      (SQLite's ``BEGIN IMMEDIATE``), ``" FOR UPDATE"`` where they run side by side (PostgreSQL), so a
      terminal state stays sticky against a concurrent writer in another process.
    """

    persistent: bool
    remote: bool
    path: Path | None
    where: str
    row_lock: str

    def write(self, durable: bool = False, single: bool = False) -> AbstractContextManager[Connection]:
        """One write transaction, committed when the block ends and rolled back if it raises.

        ``durable``: the write an order's send relies on (the intent, broker ids), made as durable as
        the journal's ``sync`` mode promises; ``single``: the block runs one statement, which the database
        runs as its own transaction (no BEGIN/COMMIT around it)."""
        ...

    def reading(self) -> AbstractContextManager[Connection]:
        """A connection for a few reads in a row (no write)."""
        ...

    def read(self, sql: str, args: Sequence[Any] = ()) -> list[Any]: ...

    def wait_durable(self, timeout: float | None = None) -> bool:
        """Block until the durable writes made so far are as durable as ``full`` would have made them."""
        ...

    def close(self) -> None: ...
