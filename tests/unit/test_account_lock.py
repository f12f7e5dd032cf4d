"""The kill switch's lock across processes (normalization.runtime.account_lock), on both journal stores.

A real second process holds the SQLite lock (and dies by SIGKILL holding it); a real PostgreSQL server
holds the advisory lock. No sleeps: the child says when it holds the lock, and the waiter is released by
the holder's own exit from its block, awaited as an event.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import ccxt
import psycopg
import pytest

from normalization.runtime.account_lock import _pg_key, account_lock, lock_path
from normalization.runtime.journal import NullJournal, OrderJournal

ROOT = Path(__file__).resolve().parents[2]

HOLDER = """
import asyncio, sys
from normalization.runtime.account_lock import account_lock
from normalization.runtime.journal import OrderJournal

async def main():
    journal = OrderJournal(sys.argv[1], exchange="ibkr", account="DU1", sync="normal")
    async with account_lock(journal, "kill-switch", wait=0):
        print("held", flush=True)
        sys.stdin.readline()  # held until the parent writes a line, or kills us

asyncio.run(main())
"""


def _holder(journal: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(journal)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env, cwd=str(ROOT))
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_sqlite_lock_excludes_another_process_names_it_and_frees_when_it_is_killed(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    proc = _holder(path)
    journal = OrderJournal(path, exchange="ibkr", account="DU1", sync="normal")

    async def attempt(account: OrderJournal) -> str:
        async with account_lock(account, "kill-switch", wait=0):
            return "took it"

    try:
        with pytest.raises(ccxt.OperationRejected, match=rf"already running \(pid {proc.pid} on "):
            asyncio.run(attempt(journal))
        other = OrderJournal(path, exchange="ibkr", account="DU2", sync="normal")  # another account: its own lock
        assert asyncio.run(attempt(other)) == "took it"
        other.close()
        proc.send_signal(signal.SIGKILL)  # dies holding it: the kernel releases it, no lease to wait out
        proc.wait(10)
        assert asyncio.run(attempt(journal)) == "took it"
        assert lock_path(path, "ibkr-DU1-kill-switch").exists()
    finally:
        proc.kill()
        proc.wait(10)
        journal.close()


def test_a_waiter_takes_the_lock_when_the_holder_leaves(tmp_path: Path) -> None:
    """Two journal objects on one file (two exchange objects): the second waits, then runs."""
    path = tmp_path / "journal.sqlite"
    first = OrderJournal(path, exchange="capitalcom", account="A", sync="normal")
    second = OrderJournal(path, exchange="capitalcom", account="A", sync="normal")
    order: list[str] = []

    async def main() -> None:
        holding, release = asyncio.Event(), asyncio.Event()

        async def one() -> None:
            async with account_lock(first, "kill-switch", wait=0):
                order.append("first in")
                holding.set()
                await release.wait()
                order.append("first out")

        async def two() -> None:
            await holding.wait()
            waiting = asyncio.ensure_future(_enter(second))
            await asyncio.sleep(0)  # lets it try once and start polling
            assert not waiting.done()
            release.set()
            await waiting

        async def _enter(journal: OrderJournal) -> None:
            async with account_lock(journal, "kill-switch", wait=30):
                order.append("second in")

        await asyncio.gather(one(), two())

    asyncio.run(main())
    assert order == ["first in", "first out", "second in"]
    first.close()
    second.close()


def test_a_journal_in_memory_shares_nothing_and_locks_nothing() -> None:
    async def main() -> None:
        journal = NullJournal(exchange="ibkr")
        async with account_lock(journal, "kill-switch", wait=0), account_lock(journal, "kill-switch", wait=0):
            pass  # nested: nothing to exclude in memory (in-process runs are serialized by the kill switch)

    asyncio.run(main())


def test_postgres_lock_excludes_another_session_and_frees_when_it_ends(pg_server: Any) -> None:
    url = pg_server.fresh_url()
    first = OrderJournal(url, exchange="ibkr", account="DU1", sync="normal")
    second = OrderJournal(url, exchange="ibkr", account="DU1", sync="normal")

    async def attempt(journal: OrderJournal, wait: float = 0) -> str:
        async with account_lock(journal, "kill-switch", wait=wait):
            return "took it"

    async def contend() -> None:
        async with account_lock(first, "kill-switch", wait=0):
            with pytest.raises(ccxt.OperationRejected, match="already running"):
                await attempt(second)

    try:
        asyncio.run(contend())
        assert asyncio.run(attempt(second)) == "took it"  # unlocked when the block ended
        # A holder whose connection dies (its process killed) frees it with its session.
        conninfo = url.split("?")[0]
        key = _pg_key(first.store.schema, "ibkr-DU1-kill-switch")  # type: ignore[attr-defined]
        raw = psycopg.connect(conninfo, autocommit=True)
        assert raw.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]
        with pytest.raises(ccxt.OperationRejected):
            asyncio.run(attempt(second))
        raw.close()
        assert asyncio.run(attempt(second, wait=10)) == "took it"
    finally:
        first.close()
        second.close()
