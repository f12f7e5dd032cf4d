"""Process death: a bot is SIGKILLed with an order in flight; a new process reports the truth.

The simulator runs here, in the test process, so it outlives the bot. The bot (``bot_child.py``,
the sync ccxt API, as an unmodified bot uses it) runs in a subprocess that talks to us over its
stdout/stdin, one JSON line per step. The test:

1. lets the bot place a filled order and a working order, then arms a fault that keeps the next
   order's answer from coming back (IB: replies delayed; Capital: the POST is slow);
2. tells the bot to go, waits until the broker has *received* the in-flight order, and SIGKILLs it;
3. starts a new bot process on the same journal file, which reconciles on connect and reports every
   order through ``fetch_order`` / ``fetch_my_trades``;
4. compares that report with the broker's truth and checks the journal invariants.

Waiting is on the child's lines (bounded reads) and on simulator state (bounded polls), never on
fixed sleeps.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from ccxt_capital.sim import CapitalSimulator
from ccxt_ibkr.sim import IBSimulator
from normalization.runtime.journal import OrderJournal

from .brokers import (
    IB_ACCOUNT,
    assert_invariants,
    capital_placements,
    capital_truth,
    capital_unowned,
    eventually,
    ib_options,
    ib_orders_with_ref,
    ib_truth,
)

CHILD = Path(__file__).with_name("bot_child.py")
ROOT = Path(__file__).resolve().parents[2]
LINE_TIMEOUT = 30.0
CLIENT_ID = 9

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.long)])
def journal_path(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """The journal the bot, the dead bot's successor (its own process, its own connection) and the test
    share: a SQLite file (one host), or a PostgreSQL database (a standby on another host), in the long
    group (each bot process imports ccxt and connects: seconds)."""
    if request.param == "sqlite":
        return tmp_path / "journal.sqlite"
    return request.getfixturevalue("pg_server").fresh_url()


class Child:
    """A bot subprocess speaking JSON lines."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, *args: str) -> Child:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-u", str(CHILD), *args, cwd=str(ROOT), env=env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    async def line(self, event: str) -> dict[str, Any]:
        """The next JSON line; it must be ``event`` (an ``error`` line fails the test with its message)."""
        assert self.proc.stdout is not None
        raw = await asyncio.wait_for(self.proc.stdout.readline(), LINE_TIMEOUT)
        if not raw:
            err = await self.stderr()
            raise AssertionError(f"bot exited (rc={self.proc.returncode}) waiting for {event!r}:\n{err}")
        message = json.loads(raw)
        assert message.get("event") == event, message
        return message

    async def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode() + b"\n")
        await self.proc.stdin.drain()

    async def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(self.proc.wait(), LINE_TIMEOUT)
        assert self.proc.returncode == -signal.SIGKILL

    async def finish(self) -> None:
        rc = await asyncio.wait_for(self.proc.wait(), LINE_TIMEOUT)
        assert rc == 0, await self.stderr()

    async def stderr(self) -> str:
        if self.proc.stderr is None:
            return ""
        try:
            data = await asyncio.wait_for(self.proc.stderr.read(), 5)
        except asyncio.TimeoutError:
            return "(stderr not available)"
        return data.decode(errors="replace")[-4000:]

    def cleanup(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()


# ------------------------------------------------------------------------------------------ IB


async def test_ib_bot_killed_mid_flight_then_new_process_reports_truth(
    ib_sim: IBSimulator, journal_path: Path, tally: Any
) -> None:
    quote = ib_sim.quote("AAPL", "STK", "USD")
    orders = [
        {"cid": "pd-ib-filled", "symbol": "AAPL/USD", "type": "market", "side": "buy", "amount": 10},
        {"cid": "pd-ib-working", "symbol": "AAPL/USD", "type": "limit", "side": "buy", "amount": 5,
         "price": round(quote.bid * 0.8, 2)},
        {"cid": "pd-ib-inflight", "symbol": "AAPL/USD", "type": "market", "side": "buy", "amount": 7,
         "stage": "after"},
    ]
    options = ib_options(ib_sim, journal_path, CLIENT_ID, orderTimeout=60.0)
    common = ["--broker", "ib", "--journal", str(journal_path), "--options", json.dumps(options),
              "--orders", json.dumps(orders)]
    bot = await Child.start("place", *common)
    try:
        placed = await bot.line("placed")
        assert [o["status"] for o in placed["orders"]] == ["closed", "open"]
        ib_sim.delay_replies(3.0, client_id=CLIENT_ID)  # the next order's answers come back too late
        await bot.send("go")
        assert (await bot.line("sending"))["cid"] == "pd-ib-inflight"
        await eventually(lambda: bool(ib_orders_with_ref(ib_sim, "pd-ib-inflight")), timeout=LINE_TIMEOUT)
        await bot.kill()
    finally:
        bot.cleanup()
    ib_sim.delay_replies(0.0)
    await eventually(lambda: CLIENT_ID not in ib_sim.connected_client_ids(), timeout=LINE_TIMEOUT)
    with OrderJournal(journal_path, exchange="ibkr", account=IB_ACCOUNT) as journal:
        inflight = journal.get("pd-ib-inflight")
        assert inflight is not None and inflight.unresolved, "the kill must have caught the order in flight"

    reporter = await Child.start("report", *common)
    try:
        report = await reporter.line("report")
        await reporter.finish()
    finally:
        reporter.cleanup()

    truth = {o.client_order_id: o for o in ib_truth(ib_sim)[0]}
    for cid, seen in report["orders"].items():
        assert "error" not in seen, (cid, seen)
        assert seen["status"] == truth[cid].status and seen["filled"] == truth[cid].filled, (cid, seen)
    assert report["orders"]["pd-ib-inflight"]["status"] == "closed"
    executions = ib_truth(ib_sim)[1]
    assert sorted(t["id"] for t in report["trades"]) == sorted(e.exec_id for e in executions)
    commissions = {e.exec_id: e.fee_cost for e in executions}
    assert all(t["fee"] == {"cost": commissions[t["id"]], "currency": "USD"} for t in report["trades"])
    with OrderJournal(journal_path, exchange="ibkr", account=IB_ACCOUNT) as journal:
        orders_, fills = ib_truth(ib_sim)
        assert_invariants(tally, "ibkr", "process death (SIGKILL mid-flight)", journal, orders_, fills,
                          client_order_ids=[o["cid"] for o in orders])


# ------------------------------------------------------------------------------------- Capital


@pytest.mark.capital_sim(rate_limits="off")
async def test_capital_bot_killed_mid_flight_then_new_process_reports_truth(
    capital_sim: CapitalSimulator, journal_path: Path, tally: Any
) -> None:
    quote = capital_sim.quote("AAPL")
    orders = [
        {"cid": "pd-cap-filled", "symbol": "AAPL/USD", "type": "market", "side": "buy", "amount": 2},
        {"cid": "pd-cap-working", "symbol": "AAPL/USD", "type": "limit", "side": "buy", "amount": 1,
         "price": round(quote.bid * 0.8, 2)},
        {"cid": "pd-cap-inflight", "symbol": "AAPL/USD", "type": "market", "side": "buy", "amount": 3,
         "stage": "after"},
    ]
    options = {"baseUrl": capital_sim.base_url, "symbols": ["AAPL/USD"], "confirmTimeout": 2.0,
               "reconcileGraceMs": 0}
    credentials = {"apiKey": capital_sim.api_key, "login": capital_sim.identifier,
                   "password": capital_sim.password, "timeout": 30_000}
    common = ["--broker", "capital", "--journal", str(journal_path), "--options", json.dumps(options),
              "--credentials", json.dumps(credentials), "--orders", json.dumps(orders)]
    bot = await Child.start("place", *common)
    try:
        placed = await bot.line("placed")
        assert [o["status"] for o in placed["orders"]] == ["closed", "open"]
        # The next deal request is held 1 s before the broker books it: the bot dies waiting.
        capital_sim.faults.slow(1.0, method="POST", path="/positions")
        await bot.send("go")
        assert (await bot.line("sending"))["cid"] == "pd-cap-inflight"
        await eventually(lambda: not capital_sim.faults.armed, timeout=LINE_TIMEOUT)  # the POST arrived
        await bot.kill()
    finally:
        bot.cleanup()
    await eventually(lambda: len(capital_placements(capital_sim)) == 3, timeout=LINE_TIMEOUT)  # and was booked
    account = capital_sim.accounts[0]
    with OrderJournal(journal_path, exchange="capitalcom", account=account) as journal:
        inflight = journal.get("pd-cap-inflight")
        assert inflight is not None and inflight.unresolved and inflight.deal_reference is None

    reporter = await Child.start("report", *common)
    try:
        report = await reporter.line("report")
        await reporter.finish()
    finally:
        reporter.cleanup()

    with OrderJournal(journal_path, exchange="capitalcom", account=account) as journal:
        broker_orders, fills = capital_truth(capital_sim, journal)
        truth = {o.client_order_id: o for o in broker_orders}
        for cid, seen in report["orders"].items():
            assert "error" not in seen, (cid, seen)
            assert cid in truth, f"{cid} was not tied to its deal at the broker"
            assert seen["status"] == truth[cid].status and seen["filled"] == truth[cid].filled, (cid, seen)
        assert report["orders"]["pd-cap-inflight"]["status"] == "closed"
        assert sorted(t["id"] for t in report["trades"]) == sorted(f.exec_id for f in fills)
        assert_invariants(tally, "capitalcom", "process death (SIGKILL mid-flight)", journal, broker_orders,
                          fills, client_order_ids=[o["cid"] for o in orders],
                          extra_duplicates=len(capital_unowned(capital_sim, journal)))
