"""Kill loop: a bot SIGKILLed at seeded random moments, restarted on its journal, never phantoms or doubles.

Shaped like the real client (issue #15), not like the code:

* the simulator is a separate process on the wall clock (``python -m ccxt_ibkr.sim`` /
  ``python -m ccxt_capital.sim``, started inside a US session);
* the bot (``kill_bot.py``) is an ordinary sync ccxt bot placing limit orders with its own clientOrderIds in
  a loop; the parent SIGKILLs it at a seeded random moment -- right at the ``attempt`` line (before the
  send), a random fraction of the measured order latency after it (during the send, after it), or at the
  ``placed`` line (after the acknowledgement) -- and restarts it on the same journal, where it places
  again every clientOrderId the killed run attempted; the last run places again *every* id ever attempted;
* the broker's truth is read over the broker's own protocol by a separate client (IB: a raw ib_async
  connection with another clientId; Capital: its own REST session), never from the simulator's memory.

Asserted: exactly one broker order per attempted clientOrderId; every order ``create_order`` returned
exists at the broker under the id and with a status it returned; every fill at the broker appears once in
``fetch_my_trades``, none twice, none invented. Printed: kills run (and where they landed), phantoms,
duplicates. The whole module is in the ``long`` group (``.ci/run``'s further step): ``KILLS_PER_BROKER``
kills per broker, plus a three-kill smoke run per broker that is quick to run alone while developing.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import sqlite3
import statistics
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from ccxt_ibkr._ib import IB, Stock

pytestmark = [pytest.mark.long, pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")]

ROOT = Path(__file__).resolve().parents[2]
BOT = Path(__file__).with_name("kill_bot.py")
KILLS_PER_BROKER = 50
LINE_TIMEOUT = 60.0
US_SESSION = "2026-12-02T15:30:00+00:00"  # 10:30 New York, a Wednesday
IB_CLIENT_ID = 5
PHASES = ("before send", "in flight", "after ack")


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))


# ----------------------------------------------------------------------------------- the processes


@asynccontextmanager
async def sim_process(*argv: str, ready: str) -> AsyncIterator[re.Match[str]]:
    """A simulator as its own process; yields the match of ``ready`` on its stdout (its address)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-u", *argv, cwd=str(ROOT), env=_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        while True:
            line = (await asyncio.wait_for(proc.stdout.readline(), LINE_TIMEOUT)).decode()
            assert line, "the simulator exited before it listened"
            found = re.search(ready, line)
            if found:
                break
        yield found
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()


class Bot:
    """One run of ``kill_bot.py``; its lines are read as they come."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, args: list[str]) -> Bot:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-u", str(BOT), *args, cwd=str(ROOT), env=_env(),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    async def line(self) -> dict[str, Any] | None:
        assert self.proc.stdout is not None
        raw = await asyncio.wait_for(self.proc.stdout.readline(), LINE_TIMEOUT)
        if not raw:
            return None
        return json.loads(raw)

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(self.proc.wait(), LINE_TIMEOUT)

    async def stderr(self) -> str:
        assert self.proc.stderr is not None
        return (await self.proc.stderr.read()).decode(errors="replace")[-3000:]


# ------------------------------------------------------------------------------------- the loop


@dataclass
class Ledger:
    """What the parent saw the bots do, across all runs."""

    attempted: dict[str, dict[str, Any]] = field(default_factory=dict)  # cid -> spec (first attempt)
    returned: list[dict[str, Any]] = field(default_factory=list)  # every 'placed' line
    kills: Counter[str] = field(default_factory=Counter)  # phase -> kills
    latencies: list[float] = field(default_factory=list)


def _phase(journal: Path, cid: str | None, acked: bool) -> str:
    """Where a kill landed, from what the journal held when the process died."""
    if cid is None or acked:
        return "after ack"
    if not journal.exists():
        return "before send"
    db = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT state FROM orders WHERE client_order_id=?", (cid,)).fetchone()
    except sqlite3.OperationalError:  # killed before the journal's first write: nothing was recorded
        row = None
    finally:
        db.close()
    if row is None or row[0] == "pending_send":
        return "before send"
    return "in flight" if row[0] == "sent_unknown" else "after ack"


async def run_kill_loop(common: list[str], plan: list[dict[str, Any]], kills: int, seed: int,
                        journal: Path) -> tuple[Ledger, dict[str, Any]]:
    """Run the bot over ``plan``, killing it ``kills`` times; returns the ledger and the final report."""
    rng = random.Random(seed)
    ledger = Ledger()
    todo = list(plan)
    redo: list[dict[str, Any]] = []
    for _ in range(kills):
        bot = await Bot.start([*common, "--plan", json.dumps(todo), "--redo", json.dumps(redo)])
        attempted_now: list[dict[str, Any]] = []
        in_flight: str | None = None
        acked = False
        started: dict[str, float] = {}
        # Seeded: how many of this run's fresh placements complete, and where in the next one the kill lands.
        redo_ids = {s["cid"] for s in redo}
        confirmed: set[str] = set()
        let_through = rng.randint(0, 2)
        mode = rng.choice(("before", "during", "during", "after"))
        typical = statistics.median(ledger.latencies[-20:]) if ledger.latencies else 0.01
        delay = rng.uniform(0, 1.5 * typical)
        seen = 0
        try:
            while True:
                line = await bot.line()
                if line is None:
                    raise AssertionError(f"the bot exited before its kill:\n{await bot.stderr()}")
                event = line["event"]
                if event == "attempt":
                    cid = line["cid"]
                    spec = next((s for s in todo + redo if s["cid"] == cid), None)
                    assert spec is not None, cid
                    attempted_now.append(spec)
                    ledger.attempted.setdefault(cid, spec)
                    started[cid] = time.monotonic()
                    in_flight, acked = cid, False
                    if cid not in redo_ids and seen >= let_through:
                        if mode == "before":
                            break
                        if mode == "during":
                            await asyncio.sleep(delay)  # the kill's moment: a seeded point inside the call
                            break
                elif event in ("placed", "failed"):
                    fresh = line["cid"] not in redo_ids
                    seen += fresh
                    if event == "placed":
                        confirmed.add(line["cid"])
                        ledger.returned.append(line)
                        if fresh:
                            ledger.latencies.append(time.monotonic() - started.get(line["cid"], time.monotonic()))
                    acked = event == "placed"
                    if fresh and seen > let_through and mode == "after":
                        break
        finally:
            await bot.kill()
        ledger.kills[_phase(journal, in_flight, acked)] += 1
        done = {s["cid"] for s in attempted_now}
        todo = [s for s in todo if s["cid"] not in done]
        # Placed again first by the next run: the killed run's fresh ids, and earlier ones it did not get
        # an answer for (the bot does not know what became of them).
        unique = {s["cid"]: s for s in attempted_now}
        redo = [s for cid, s in unique.items() if cid not in redo_ids or cid not in confirmed]
        if not todo:
            todo = []
    # The last run: not killed; places again every id ever attempted, finishes the plan, reports.
    everything = list(ledger.attempted.values())
    bot = await Bot.start([*common, "--plan", json.dumps(todo), "--redo", json.dumps(everything), "--report"])
    report: dict[str, Any] | None = None
    while True:
        line = await bot.line()
        if line is None:
            break
        if line["event"] == "attempt":
            ledger.attempted.setdefault(line["cid"], next(s for s in todo + everything if s["cid"] == line["cid"]))
        elif line["event"] == "placed":
            ledger.returned.append(line)
        elif line["event"] == "report":
            report = line
    await asyncio.wait_for(bot.proc.wait(), LINE_TIMEOUT)
    assert report is not None and bot.proc.returncode == 0, await bot.stderr()
    return ledger, report


def verdict(broker: str, ledger: Ledger, report: dict[str, Any], kills: int, *, phantoms: int, duplicates: int,
            missing: int, broker_fills: list[str]) -> str:
    """Check the fills (every one at the broker once in the last run's fetch_my_trades, none invented),
    print the run's line, and assert it is clean: the kills all ran, no phantom, duplicate or missing
    order, no fill missing or doubled, and every clientOrderId fetched without an error."""
    trade_ids = Counter(t["id"] for t in report["trades"])
    known = set(broker_fills)
    fill_errors = sum(1 for e in broker_fills if trade_ids[e] != 1) + sum(1 for t in trade_ids if t not in known)
    spread = ", ".join(f"{phase}: {ledger.kills[phase]}" for phase in PHASES)
    line = (f"{broker} kill loop: kills run {sum(ledger.kills.values())} ({spread}); clientOrderIds attempted "
            f"{len(ledger.attempted)}; orders returned {len(ledger.returned)}; phantoms {phantoms}; duplicates "
            f"{duplicates}; attempted ids missing at the broker {missing}; fills {len(broker_fills)}, missing or "
            f"doubled {fill_errors}")
    print(line)
    assert sum(ledger.kills.values()) == kills
    assert (phantoms, duplicates, missing, fill_errors) == (0, 0, 0, 0), line
    assert all("error" not in o for o in report["orders"].values()), report["orders"]
    return line


# ------------------------------------------------------------------------------------------- IB


async def ib_truth(port: int) -> tuple[dict[int, tuple[str, str]], list[tuple[str, str]]]:
    """permId -> (orderRef, IB status) and [(execId, orderRef)], read over the TWS protocol."""
    ib = IB()
    await ib.connectAsync("127.0.0.1", port, clientId=77, timeout=10)
    try:
        orders: dict[int, tuple[str, str]] = {}
        for trade in await ib.reqAllOpenOrdersAsync():
            orders[trade.order.permId or trade.orderStatus.permId] = (trade.order.orderRef, trade.orderStatus.status)
        for trade in await ib.reqCompletedOrdersAsync(False):
            orders[trade.order.permId or trade.orderStatus.permId] = (trade.order.orderRef, trade.orderStatus.status)
        fills = [(f.execution.execId, f.execution.orderRef) for f in await ib.reqExecutionsAsync()]
        return orders, fills
    finally:
        ib.disconnect()


async def ib_quote(port: int) -> tuple[float, float]:
    ib = IB()
    await ib.connectAsync("127.0.0.1", port, clientId=78, timeout=10)
    try:
        contract = (await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD")))[0]
        ticker = (await ib.reqTickersAsync(contract))[0]
        return float(ticker.bid), float(ticker.ask)
    finally:
        ib.disconnect()


def ib_plan(n: int, bid: float, ask: float, seed: int) -> list[dict[str, Any]]:
    """Limit buys of 1 AAPL: every third marketable (fills at once), the others resting below the bid."""
    rng = random.Random(seed)
    plan = []
    for i in range(n):
        marketable = i % 3 == 0
        price = round(ask * 1.02, 2) if marketable else round(bid * rng.uniform(0.80, 0.95), 2)
        plan.append({"cid": f"kb-{seed}-{i}", "symbol": "AAPL/USD", "type": "limit", "side": "buy", "amount": 1,
                     "price": price})
    return plan


async def ib_kill_loop(tmp_path: Path, kills: int, seed: int) -> str:
    journal = tmp_path / "ib-journal.sqlite"
    async with sim_process("-m", "ccxt_ibkr.sim", "--port", "0", "--seed", str(seed), "--start", US_SESSION,
                           ready=r"listening on 127\.0\.0\.1:(\d+)") as found:
        port = int(found.group(1))
        bid, ask = await ib_quote(port)
        options = {"host": "127.0.0.1", "port": port, "clientId": IB_CLIENT_ID, "symbols": ["AAPL/USD"],
                   "reconcileGraceMs": 300, "orderTimeout": 10.0, "commissionWait": 1.0}
        common = ["--broker", "ib", "--journal", str(journal), "--options", json.dumps(options)]
        ledger, report = await run_kill_loop(common, ib_plan(kills * 3 + 10, bid, ask, seed), kills, seed, journal)
        orders, fills = await ib_truth(port)
    by_ref = Counter(ref for ref, _ in orders.values() if ref)
    duplicates = sum(count - 1 for ref, count in by_ref.items() if ref in ledger.attempted and count > 1)
    missing = sum(1 for cid in ledger.attempted if by_ref[cid] == 0)
    phantoms = 0
    for line in ledger.returned:  # every order create_order returned: at IB, under its ids, with its status
        broker = orders.get(int(line["permId"])) if line.get("permId") else None
        if broker is None or broker[0] != line["cid"]:
            phantoms += 1
        elif line["status"] == "closed" and broker[1] != "Filled":
            phantoms += 1
        elif line["status"] == "open" and broker[1] in ("Cancelled", "ApiCancelled", "Inactive"):
            phantoms += 1
    broker_execs = sorted({exec_id for exec_id, ref in fills if ref in ledger.attempted})
    return verdict("ibkr", ledger, report, kills, phantoms=phantoms, duplicates=duplicates, missing=missing,
                   broker_fills=broker_execs)


# -------------------------------------------------------------------------------------- Capital


@asynccontextmanager
async def capital_session(api_url: str, api_key: str, identifier: str, password: str
                          ) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api_url, timeout=20) as http:
        login = await http.post("/session", headers={"X-CAP-API-KEY": api_key},
                                json={"identifier": identifier, "password": password})
        login.raise_for_status()
        http.headers.update({"CST": login.headers["CST"], "X-SECURITY-TOKEN": login.headers["X-SECURITY-TOKEN"]})
        yield http


FILL_ACTIONS = {"POSITION_OPENED", "POSITION_CLOSED", "POSITION_PARTIALLY_CLOSED"}


async def capital_truth(http: httpx.AsyncClient) -> tuple[dict[str, list[dict[str, Any]]], set[str], list[str]]:
    """dealReference -> activity entries of each placement, the working orders' dealIds, and the fills'
    exec ids (``<dealReference>:<dealId>``), read over the REST API."""
    activity = (await http.get("/history/activity", params={"lastPeriod": 86_400, "detailed": "true"})).json()
    placements: dict[str, list[dict[str, Any]]] = {}
    fills = []
    for entry in activity.get("activities", []):
        details = entry.get("details") or {}
        reference = str(details.get("dealReference") or "")
        if entry.get("source") != "USER" or entry.get("status") != "ACCEPTED" or not reference.startswith("o_"):
            continue
        placements.setdefault(reference, []).append(entry)
        actions = {a.get("actionType") for a in details.get("actions") or []}
        if entry.get("type") == "POSITION" and actions & FILL_ACTIONS:
            fills.append(f"{reference}:{entry.get('dealId')}")
    working = (await http.get("/workingorders")).json().get("workingOrders", [])
    working_ids = {(w.get("workingOrderData") or {}).get("dealId") for w in working}
    return placements, working_ids, fills


def capital_plan(n: int, bid: float, seed: int) -> list[dict[str, Any]]:
    """Resting limit buys of AAPL, each at its own level (the broker's only trace of which order it is); every
    tenth a market order of its own size, alternating sides, so fills happen and the position stays small."""
    plan = []
    base = round(bid * 0.5, 2)
    for i in range(n):
        if i % 10 == 5:
            k = i // 10
            plan.append({"cid": f"kc-{seed}-{i}", "symbol": "AAPL/USD", "type": "market",
                         "side": "buy" if k % 2 == 0 else "sell", "amount": 1 + k})
        else:
            plan.append({"cid": f"kc-{seed}-{i}", "symbol": "AAPL/USD", "type": "limit", "side": "buy",
                         "amount": 1, "price": round(base + i * 0.01, 2)})
    return plan


def _owner(entries: list[dict[str, Any]], plan: dict[str, dict[str, Any]]) -> str | None:
    """The clientOrderId a placement belongs to, from what the broker kept: a limit's level, a market
    order's direction and total size (netting may split it over the position it closes and a new one)."""
    working = [e for e in entries if e.get("type") == "WORKING_ORDER"]
    positions = [e for e in entries if e.get("type") == "POSITION"]
    for cid, spec in plan.items():
        if working and spec["type"] == "limit":
            level = float((working[0].get("details") or {}).get("level") or 0)
            if abs(level - spec["price"]) < 1e-6:
                return cid
        if positions and not working and spec["type"] == "market":
            direction = "BUY" if spec["side"] == "buy" else "SELL"
            size = sum(float((e.get("details") or {}).get("size") or 0) for e in positions)
            if (positions[0].get("details") or {}).get("direction") == direction and abs(size - spec["amount"]) < 1e-9:
                return cid
    return None


async def capital_kill_loop(tmp_path: Path, kills: int, seed: int) -> str:
    journal = tmp_path / "capital-journal.sqlite"
    async with sim_process("-m", "ccxt_capital.sim", "--port", "0", "--seed", str(seed), "--start", US_SESSION,
                           "--rate-limits", "off", "--balance", "1000000",
                           ready=r"base URL (\S+)\)") as found:
        api_url = found.group(1)
        from ccxt_capital.sim.server import DEFAULT_API_KEY, DEFAULT_IDENTIFIER, DEFAULT_PASSWORD

        async with capital_session(api_url, DEFAULT_API_KEY, DEFAULT_IDENTIFIER, DEFAULT_PASSWORD) as http:
            bid = float((await http.get("/markets/AAPL")).json()["snapshot"]["bid"])
        base_url = api_url.removesuffix("/api/v1")
        options = {"baseUrl": base_url, "symbols": ["AAPL/USD"], "reconcileGraceMs": 1500, "confirmTimeout": 5.0}
        credentials = {"apiKey": DEFAULT_API_KEY, "login": DEFAULT_IDENTIFIER, "password": DEFAULT_PASSWORD,
                       "timeout": 20_000}
        common = ["--broker", "capital", "--journal", str(journal), "--options", json.dumps(options),
                  "--credentials", json.dumps(credentials)]
        plan = capital_plan(kills * 3 + 10, bid, seed)
        ledger, report = await run_kill_loop(common, plan, kills, seed, journal)
        async with capital_session(api_url, DEFAULT_API_KEY, DEFAULT_IDENTIFIER, DEFAULT_PASSWORD) as http:
            placements, working_ids, fills = await capital_truth(http)
    by_cid: Counter[str] = Counter()
    unowned = 0
    for entries in placements.values():
        cid = _owner(entries, ledger.attempted)
        if cid is None:
            unowned += 1
            print("unowned placement:", json.dumps(entries)[:1500])
        else:
            by_cid[cid] += 1
    duplicates = sum(count - 1 for count in by_cid.values() if count > 1) + unowned
    missing = sum(1 for cid in ledger.attempted if by_cid[cid] == 0)
    for cid in ledger.attempted:
        if by_cid[cid] == 0:
            print("missing:", ledger.attempted[cid])
    phantoms = 0
    for line in ledger.returned:
        entries = placements.get(line["id"])
        if entries is None or _owner(entries, ledger.attempted) != line["cid"]:
            phantoms += 1
            continue
        kinds = {e.get("type") for e in entries}
        if line["status"] == "open":
            deal_ids = {e.get("dealId") for e in entries if e.get("type") == "WORKING_ORDER"}
            if not deal_ids & working_ids:
                phantoms += 1
        elif line["status"] == "closed" and "POSITION" not in kinds:
            phantoms += 1
    return verdict("capitalcom", ledger, report, kills, phantoms=phantoms, duplicates=duplicates, missing=missing,
                   broker_fills=fills)


# ------------------------------------------------------------------------------------------ tests


@pytest.mark.timeout(300)
async def test_kill_loop_smoke_ib(tmp_path: Path) -> None:
    await ib_kill_loop(tmp_path, kills=3, seed=1)


@pytest.mark.timeout(300)
async def test_kill_loop_smoke_capital(tmp_path: Path) -> None:
    await capital_kill_loop(tmp_path, kills=3, seed=1)


@pytest.mark.timeout(900)
async def test_kill_loop_ib(tmp_path: Path) -> None:
    await ib_kill_loop(tmp_path, kills=KILLS_PER_BROKER, seed=15)


@pytest.mark.timeout(900)
async def test_kill_loop_capital(tmp_path: Path) -> None:
    await capital_kill_loop(tmp_path, kills=KILLS_PER_BROKER, seed=15)
