"""One run at a time per broker account, across processes: a lock kept where the order journal lives.

Why: the kill switch (:mod:`normalization.runtime.controls`) reads a position and sends the order that
closes it. Two processes doing that at the same moment (two bots, or a bot and an operator's ``panic``)
would both read the same position open and both send the close: the position flips instead of going
flat. The processes of one account already share one thing, the order journal, so the lock lives there:

* **SQLite file**: an exclusive ``flock`` on a small file beside the journal
  (``<journal>.<exchange>-<account>-<name>.lock``, holding the holder's pid, host and start for the
  message a waiter reads). A lock row with an expiry was considered and not taken: the kernel releases a
  ``flock`` the moment its holder dies (a SIGKILL mid-run), so the rerun an operator makes right away
  proceeds instead of waiting out a lease, and a long run needs no heartbeat. A WAL journal is already
  confined to one host (SQLite's shared memory), which is what ``flock`` covers too.
* **PostgreSQL**: a session advisory lock (``pg_try_advisory_lock``) on a pooled connection held for
  the run; the server releases it when that connection ends, so a dead holder frees it too.
* **In memory** (``options['journal'] = None`` / ``":memory:"``): nothing is shared with another
  process; only the in-process serialization applies.

A waiter polls (20 ms growing to 200 ms) until the lock is free or ``wait`` seconds pass, then raises
``ccxt.OperationRejected`` naming the holder: a kill switch that could not run must say so, not return
as if the account were flat.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import socket
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

__all__ = ["account_lock", "lock_path"]

_FIRST_POLL, _LAST_POLL = 0.02, 0.2


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "default"


def lock_path(journal_path: Path, key: str) -> Path:
    """The lock file of ``key`` beside a SQLite journal."""
    return journal_path.with_name(f"{journal_path.name}.{_safe(key)}.lock")


def _pg_key(schema: str, key: str) -> int:
    """A signed 64-bit advisory-lock key for ``key`` in this journal schema."""
    digest = hashlib.blake2b(f"ccxt_brokers:{schema}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[Any]:
    """Yields a ``try_take()`` that returns True once this process holds ``path`` exclusively."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    held = False

    def try_take() -> bool:
        nonlocal held
        try:
            _lock_fd(fd)
        except OSError:
            return False
        held = True
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        return True

    try:
        yield try_take
    finally:
        if held:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
                _unlock_fd(fd)
        os.close(fd)  # closing the descriptor releases the lock in any case


if sys.platform == "win32":  # pragma: no cover - CI runs POSIX
    import msvcrt

    def _lock_fd(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)

    def _unlock_fd(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def _lock_fd(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # per open file: two opens in one process exclude too

    def _unlock_fd(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _file_holder(path: Path) -> str:
    try:
        holder = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return "another process"
    if not holder:
        return "another process"
    since = time.strftime("%H:%M:%S", time.gmtime(float(holder.get("since", 0))))
    return f"pid {holder.get('pid')} on {holder.get('host')} since {since} UTC"


@contextlib.contextmanager
def _pg_lock(store: Any, key: int) -> Iterator[Any]:
    """Yields a ``try_take()`` over one pooled connection, kept for the run; unlocked before it goes back."""
    held = False
    with store.session() as conn:

        def try_take() -> bool:
            nonlocal held
            held = bool(conn.execute("SELECT pg_try_advisory_lock(?)", (key,)).fetchone()[0])
            return held

        try:
            yield try_take
        finally:
            if held:
                with contextlib.suppress(Exception):  # a broken connection released it with the session
                    conn.execute("SELECT pg_advisory_unlock(?)", (key,))


@contextlib.asynccontextmanager
async def account_lock(journal: Any, name: str, *, wait: float) -> AsyncIterator[None]:
    """Hold the ``name`` lock of ``journal``'s exchange and account for the block, across processes.

    Waits up to ``wait`` seconds for another holder (0: do not wait), then raises
    ``ccxt.OperationRejected`` naming it. A journal with nothing shared (in memory) locks nothing."""
    from ccxt.base.errors import OperationRejected

    store = getattr(journal, "store", None)
    key = f"{getattr(journal, 'exchange', '')}-{getattr(journal, 'account', '')}-{name}"
    path = getattr(store, "path", None)
    if path is not None:
        where = lock_path(Path(path), key)
        lock: Any = _file_lock(where)

        def holder() -> str:
            return _file_holder(where)
    elif store is not None and getattr(store, "remote", False) and hasattr(store, "session"):
        lock = _pg_lock(store, _pg_key(getattr(store, "schema", ""), key))

        def holder() -> str:
            return "another session of the journal's database"
    else:
        yield
        return
    with lock as try_take:
        deadline = time.monotonic() + max(0.0, wait)
        poll = _FIRST_POLL
        while not try_take():  # one flock call, or one round trip to the journal's server
            if time.monotonic() >= deadline:
                raise OperationRejected(
                    f"{journal.exchange} {name} for account {journal.account} is already running ({holder()}); "
                    f"waited {wait:g} s. Run it again once that run ends: it re-reads the broker's positions")
            await asyncio.sleep(poll)
            poll = min(poll * 2, _LAST_POLL)
        yield
