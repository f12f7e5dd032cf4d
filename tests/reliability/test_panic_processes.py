"""The kill switch the way an operator uses it: ``panic`` from the command line, in separate processes,
two at once, SIGKILLed at seeded moments and run again, against bots that left positions and orders.

Shaped like the real client (the kill loop's harness, ``test_kill_loop.py``):

* the simulator is its own process on the wall clock (``python -m ccxt_ibkr.sim`` /
  ``python -m ccxt_capital.sim``), inside a US session;
* the bots are ordinary sync ccxt bots (``kill_bot.py``), several processes (at IB each with its own
  clientId), sharing one order journal file with the operator's ``panic``: they open positions long and
  short in several symbols and leave limit orders resting far from the touch;
* ``panic`` is the real CLI (``python -m ccxt_ibkr panic --all-clients`` / ``python -m ccxt_capital
  panic``), started twice at the same moment; in the later rounds one or both are SIGKILLed at seeded
  random moments inside their run, and ``panic`` is run again (twice at once) until a run completes;
* the broker's truth is read over the broker's own protocol by a separate client, never from the
  simulator's memory.

Asserted after every round: no working order left; every position flat; never flipped -- the closing
orders the broker booked for each symbol are exactly one per position held, for exactly its size, on
the closing side; every closing order a completed ``panic`` reported is one the broker booked, and no
closing order is reported twice (by two runs, or twice by one). Printed: rounds, kills and where they
landed (from the journal: before any close was recorded, between closes, after every close), the
closing orders booked, the runs that found nothing left to close.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ccxt_ibkr._ib import IB
from tests.reliability.test_kill_loop import BOT, LINE_TIMEOUT, ROOT, US_SESSION, _env, capital_session, sim_process

pytestmark = [pytest.mark.long, pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")]

ROUNDS = 6  # round 0: two panics at once, unkilled; then kills at seeded moments
KILL_WAVES = 3  # per round: two panics at once, both killed (unless done first); then run again
PREFIX = "panic-"
TRUTH_CLIENT_IDS = itertools.count(1000)  # a fresh clientId per look: never one the simulator still holds
WHERE = ("before any close", "between closes", "after every close")


@dataclass
class Tally:
    rounds: int = 0
    kills: Counter[str] = field(default_factory=Counter)
    runs: int = 0  # panic processes started
    completed: int = 0
    found_nothing: int = 0  # completed runs that closed nothing (another had done it)
    closes_booked: int = 0
    positions_flattened: int = 0
    canceled_reported: int = 0
    windows: list[tuple[float, float]] = field(default_factory=list)  # (first, last) close, s after spawn

    def settle_round(self, reports: list[dict[str, Any]], booked: set[str], closes: int, flattened: int) -> None:
        """Every close the runs reported is one the broker booked, none reported twice; then count the round."""
        reported = [cid for r in reports for cid in reported_closes(r)]
        assert len(reported) == len(set(reported)), reported  # nothing reported twice
        for r in reports:
            for order in r["closed"]:
                assert {str(order.get("id")), str(order.get("clientOrderId"))} & booked, (order, booked)
        self.rounds += 1
        self.closes_booked += closes
        self.positions_flattened += flattened
        self.found_nothing += sum(1 for r in reports if not r["closed"])
        self.canceled_reported += sum(len(r["canceled"]) for r in reports)

    def line(self, broker: str) -> str:
        spread = ", ".join(f"{where}: {self.kills[where]}" for where in WHERE)
        return (f"{broker} panic across processes: rounds {self.rounds}; panic runs {self.runs} (completed "
                f"{self.completed}, of which found nothing left {self.found_nothing}); kills "
                f"{sum(self.kills.values())} ({spread}); positions flattened {self.positions_flattened}; "
                f"closing orders booked {self.closes_booked}; flips 0; closes reported twice 0")


async def run_bots(common: list[str], plans: list[tuple[list[str], list[dict[str, Any]]]]) -> None:
    """Each plan by its own bot process, all at once; every order must be placed."""
    procs = [await asyncio.create_subprocess_exec(
        sys.executable, "-u", str(BOT), *common, *extra, "--plan", json.dumps(plan), cwd=str(ROOT), env=_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE) for extra, plan in plans]
    for proc in procs:
        out, err = await asyncio.wait_for(proc.communicate(), LINE_TIMEOUT)
        lines = [json.loads(raw) for raw in out.decode().splitlines() if raw.strip()]
        failed = [line for line in lines if line["event"] == "failed"]
        assert proc.returncode == 0 and not failed, (failed, err.decode()[-2000:])


#: The real CLI, with the kill switch's own log lines (``closing AAPL/USD long``, ...) on stderr: the
#: events the kills are timed on.
PANIC = ("import logging, sys; log = logging.getLogger('normalization.controls'); log.setLevel(logging.INFO); "
         "log.addHandler(logging.StreamHandler(sys.stderr)); from {module}.__main__ import main; sys.exit(main())")


class Panic:
    """One ``panic`` process; its stderr is read as it comes (the kill switch's steps)."""

    def __init__(self, proc: asyncio.subprocess.Process, seen: asyncio.Event) -> None:
        self.proc = proc
        self.spawned = time.monotonic()
        self.closing: list[float] = []  # when each "closing ..." line came, seconds after the spawn
        self.lines: list[str] = []
        self.seen = seen  # set on every line, by either run of the wave
        self.reader = asyncio.ensure_future(self._read())

    @classmethod
    async def start(cls, module: str, argv: list[str], seen: asyncio.Event) -> Panic:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-u", "-c", PANIC.format(module=module), *argv, cwd=str(ROOT), env=_env(),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        return cls(proc, seen)

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        try:
            async for raw in self.proc.stderr:
                line = raw.decode(errors="replace")
                self.lines.append(line)
                if line.startswith("kill switch ") and ": closing " in line:
                    self.closing.append(time.monotonic() - self.spawned)
                self.seen.set()
        finally:
            self.seen.set()

    async def result(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        out = await asyncio.wait_for(self.proc.stdout.read(), 2 * LINE_TIMEOUT)
        await asyncio.wait_for(self.proc.wait(), LINE_TIMEOUT)
        await self.reader
        assert self.proc.returncode == 0, f"panic exited {self.proc.returncode}: {''.join(self.lines)[-3000:]}"
        return json.loads(out)

    async def kill(self) -> bool:
        """SIGKILL; False if it had already finished (its output is then read as a completed run)."""
        if self.proc.returncode is not None:
            return False
        self.proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(self.proc.wait(), LINE_TIMEOUT)
        await self.reader
        return self.proc.returncode == -signal.SIGKILL


async def until_closing(runs: list[Panic], k: int) -> bool:
    """Wait until the wave's runs have logged k "closing" lines between them (a run killed mid-way leaves
    the rest to the other, which goes on from there); False if they all ended first."""
    while sum(len(run.closing) for run in runs) < k:
        if all(run.reader.done() for run in runs):
            return False
        runs[0].seen.clear()
        await runs[0].seen.wait()
    return True


def reported_closes(report: dict[str, Any]) -> list[str]:
    return [str(order["id"]) for order in report["closed"]]


async def panic_round(rng: random.Random, tally: Tally, panic_argv: Any, kill: bool, positions: int,
                      closed: Callable[[], Awaitable[int]]) -> list[dict[str, Any]]:
    """Two panics at once; with ``kill``, each SIGKILLed at a seeded point (a run that ends first is a
    completed one), then both run again until a wave completes. Returns the completed runs' reports. The
    points: a seeded moment before a typical run's first close (connecting, cancelling, waiting for the
    lock), or a seeded moment after the wave's k-th "closing" line (k seeded: in the middle of the closes,
    or after the last one while the fills are awaited and the positions read again)."""
    reports: list[dict[str, Any]] = []
    firsts = sorted(w[0] for w in tally.windows) or [2.0]
    first = firsts[len(firsts) // 2]
    gaps = sorted((w[1] - w[0]) / max(1, positions - 1) for w in tally.windows) or [0.2]
    gap = gaps[len(gaps) // 2]
    attempt = 0
    while True:
        killing = kill and attempt < KILL_WAVES  # then they are let finish
        module, argv = panic_argv()
        seen = asyncio.Event()
        runs = [await Panic.start(module, argv() if callable(argv) else argv, seen) for _ in range(2)]
        tally.runs += 2
        if killing:
            before = await closed()

            async def killer(run: Panic, plan: tuple[str, float, int], before: int = before,
                             runs: list[Panic] = runs) -> None:
                mode, extra, k = plan
                if mode == "closing" and not await until_closing(runs, k):
                    return
                await asyncio.sleep(extra)  # the kill's moment, seeded
                if await run.kill():
                    done = await closed() - before  # where it landed: closes the broker booked meanwhile
                    tally.kills[WHERE[0] if done == 0 else WHERE[2] if done >= positions else WHERE[1]] += 1

            plans = []
            for _ in runs:  # the k-th close of the wave, whichever run sends it: the holder, or the one after it
                if rng.random() < 0.2:
                    plans.append(("time", rng.uniform(0.05, first), 0))
                else:
                    plans.append(("closing", rng.uniform(0.0, gap), rng.randint(1, positions)))
            await asyncio.gather(*(killer(run, plan) for run, plan in zip(runs, plans, strict=True)))
        finished = [run for run in runs if run.proc.returncode in (None, 0)]
        for run in finished:
            reports.append(await run.result())
            tally.completed += 1
            if run.closing:
                tally.windows.append((run.closing[0], run.closing[-1]))
        if finished and not killing:
            return reports
        if finished and all(r["ok"] for r in reports[-len(finished):]):
            return reports
        attempt += 1


# ------------------------------------------------------------------------------------------- IB


async def ib_state(port: int) -> tuple[dict[str, float], int, list[dict[str, Any]]]:
    """Positions by symbol, working orders, and every execution (execId, orderRef, symbol, side, shares,
    orderId), read over the TWS protocol by a client of its own."""
    ib = IB()
    await ib.connectAsync("127.0.0.1", port, clientId=next(TRUTH_CLIENT_IDS), timeout=10)
    try:
        positions = {p.contract.symbol: float(p.position) for p in await ib.reqPositionsAsync() if p.position}
        working = [t for t in await ib.reqAllOpenOrdersAsync()
                   if t.orderStatus.status in ("Submitted", "PreSubmitted", "PendingSubmit", "ApiPending")]
        fills = [{"execId": f.execution.execId, "ref": f.execution.orderRef, "symbol": f.contract.symbol,
                  "side": f.execution.side, "shares": float(f.execution.shares), "permId": f.execution.permId}
                 for f in await ib.reqExecutionsAsync()]
        return positions, len(working), fills
    finally:
        ib.disconnect()


async def ib_closes(port: int) -> int:
    """Closing orders the broker has executed so far (by the panic's clientOrderId prefix)."""
    return len({f["ref"] for f in (await ib_state(port))[2] if f["ref"].startswith(PREFIX)})


def bot_orders(rng: random.Random, tag: str, bid: dict[str, float], books: tuple[tuple[str, ...], ...],
               resting_sells: bool) -> list[list[dict[str, Any]]]:
    """Each bot's orders: a market order per symbol that opens a long or short position (AAPL bought by two
    bots, so one position is two bots' doing), and limit orders resting far from the touch."""
    plans: list[list[dict[str, Any]]] = []
    for b, symbols in enumerate(books):
        plan: list[dict[str, Any]] = []
        for symbol in symbols:
            side = "buy" if (symbol == "AAPL" or rng.random() < 0.5) else "sell"
            plan.append({"cid": f"{tag}-{b}-{symbol}-m", "symbol": f"{symbol}/USD", "type": "market",
                         "side": side, "amount": rng.randint(1, 20)})
            plan.append({"cid": f"{tag}-{b}-{symbol}-l", "symbol": f"{symbol}/USD", "type": "limit",
                         "side": "buy", "amount": rng.randint(1, 5), "price": round(bid[symbol] * 0.7, 2)})
            if resting_sells:
                plan.append({"cid": f"{tag}-{b}-{symbol}-s", "symbol": f"{symbol}/USD", "type": "limit",
                             "side": "sell", "amount": rng.randint(1, 5), "price": round(bid[symbol] * 1.3, 2)})
        plans.append(plan)
    return plans


def ib_bot_plans(rng: random.Random, round_no: int, bid: dict[str, float],
                 base: dict[str, Any]) -> list[tuple[list[str], list[dict]]]:
    """Three bots in AAPL, MSFT, KO and IBM, each on a clientId of its own."""
    books = (("AAPL", "MSFT", "IBM"), ("AAPL", "KO"), ("KO", "MSFT", "IBM"))
    return [(["--options", json.dumps({**base, "clientId": 11 + b})], plan)
            for b, plan in enumerate(bot_orders(rng, f"pb-{round_no}", bid, books, resting_sells=True))]


async def ib_panic_rounds(tmp_path: Path, rounds: int, seed: int) -> str:
    journal = tmp_path / "shared-journal.sqlite"
    rng = random.Random(seed)
    tally = Tally()
    async with sim_process("-m", "ccxt_ibkr.sim", "--port", "0", "--seed", str(seed), "--start", US_SESSION,
                           ready=r"listening on 127\.0\.0\.1:(\d+)") as found:
        port = int(found.group(1))
        base = {"host": "127.0.0.1", "port": port, "symbols": ["AAPL/USD", "MSFT/USD", "KO/USD", "IBM/USD"],
                "reconcileGraceMs": 300, "orderTimeout": 10.0, "commissionWait": 0.5}
        config = tmp_path / "panic-config.json"
        config.write_text(json.dumps({"options": {**base, "journal": str(journal), "clientOrderPrefix": PREFIX}}))
        client_ids = iter(range(40, 10_000))

        def panic_argv() -> tuple[str, Any]:
            return "ccxt_ibkr", lambda: ["panic", "--all-clients", "--config", str(config), "--port", str(port),
                                         "--client-id", str(next(client_ids))]

        bid = {"AAPL": 190.0, "MSFT": 420.0, "KO": 65.0, "IBM": 200.0}  # the catalogue's: the limits rest 30% away
        for round_no in range(rounds):
            await run_bots(["--broker", "ib", "--journal", str(journal)], ib_bot_plans(rng, round_no, bid, base))
            held, working, fills_before = await ib_state(port)
            assert held and working, (held, working)
            seen = {f["execId"] for f in fills_before}
            reports = await panic_round(rng, tally, panic_argv, kill=round_no > 0, positions=len(held),
                                        closed=lambda: ib_closes(port))
            after, working_after, fills = await ib_state(port)
            assert after == {} and working_after == 0, (after, working_after)
            closing = [f for f in fills if f["execId"] not in seen and f["ref"].startswith(PREFIX)]
            by_order: dict[str, list[dict[str, Any]]] = {}
            for f in closing:
                by_order.setdefault(f["ref"], []).append(f)
            per_symbol = Counter(orders[0]["symbol"] for orders in by_order.values())
            assert per_symbol == Counter({s: 1 for s in held}), (per_symbol, held)  # one close per position
            for ref, orders in by_order.items():  # ... for exactly its size, on the closing side: no flip
                symbol = orders[0]["symbol"]
                signed = sum(f["shares"] * (1 if f["side"] == "BOT" else -1) for f in orders)
                assert signed == -held[symbol], (ref, orders, held)
            booked = set(by_order) | {str(f["permId"]) for f in closing}
            tally.settle_round(reports, booked, len(by_order), len(held))
    line = tally.line("ibkr")
    print(line)
    return line


# -------------------------------------------------------------------------------------- Capital


async def capital_state(http: Any) -> tuple[dict[str, dict[str, Any]], int, list[dict[str, Any]]]:
    """Open positions by dealId, working orders, and the accepted closes in the activity history."""
    positions = {p["position"]["dealId"]: {"epic": p["market"]["epic"], "direction": p["position"]["direction"],
                                           "size": float(p["position"]["size"])}
                 for p in (await http.get("/positions")).json().get("positions", [])}
    working = (await http.get("/workingorders")).json().get("workingOrders", [])
    activity = (await http.get("/history/activity", params={"lastPeriod": 86_400, "detailed": "true"})).json()
    closes = []
    for entry in activity.get("activities", []):
        details = entry.get("details") or {}
        actions = {a.get("actionType"): a for a in details.get("actions") or []}
        if entry.get("type") == "POSITION" and entry.get("status") == "ACCEPTED" and (
                "POSITION_CLOSED" in actions or "POSITION_PARTIALLY_CLOSED" in actions):
            closes.append({"dealId": entry.get("dealId"), "reference": details.get("dealReference"),
                           "epic": entry.get("epic"), "size": float(details.get("size") or 0),
                           "direction": details.get("direction"), "date": entry.get("dateUTC") or entry.get("date")})
    return positions, len(working), closes


async def capital_closes(http: Any) -> int:
    """Positions closed so far at the broker."""
    return len((await capital_state(http))[2])


def capital_bot_plans(rng: random.Random, round_no: int, bid: dict[str, float]) -> list[tuple[list[str], list[dict]]]:
    books = (("AAPL", "MSFT"), ("AAPL", "KO"), ("KO", "MSFT"))
    return [([], plan) for plan in bot_orders(rng, f"pc-{round_no}", bid, books, resting_sells=False)]


async def capital_panic_rounds(tmp_path: Path, rounds: int, seed: int) -> str:
    from ccxt_capital.sim.server import DEFAULT_API_KEY, DEFAULT_IDENTIFIER, DEFAULT_PASSWORD

    journal = tmp_path / "shared-journal.sqlite"
    rng = random.Random(seed)
    tally = Tally()
    async with sim_process("-m", "ccxt_capital.sim", "--port", "0", "--seed", str(seed), "--start", US_SESSION,
                           "--rate-limits", "off", "--balance", "1000000",
                           ready=r"base URL (\S+)\)") as found:
        api_url = found.group(1)
        base_url = api_url.removesuffix("/api/v1")
        base = {"baseUrl": base_url, "symbols": ["AAPL/USD", "MSFT/USD", "KO/USD"], "reconcileGraceMs": 1500,
                "confirmTimeout": 5.0}
        credentials = {"apiKey": DEFAULT_API_KEY, "login": DEFAULT_IDENTIFIER, "password": DEFAULT_PASSWORD,
                       "timeout": 20_000}
        config = tmp_path / "panic-config.json"
        config.write_text(json.dumps({"options": {**base, "journal": str(journal), "clientOrderPrefix": PREFIX}}))

        def panic_argv() -> tuple[str, Any]:
            return "ccxt_capital", ["panic", "--config", str(config), "--base-url", base_url, "--api-key",
                                    DEFAULT_API_KEY, "--login", DEFAULT_IDENTIFIER, "--password", DEFAULT_PASSWORD]

        async with capital_session(api_url, DEFAULT_API_KEY, DEFAULT_IDENTIFIER, DEFAULT_PASSWORD) as http:
            bid = {s: float((await http.get(f"/markets/{s}")).json()["snapshot"]["bid"])
                   for s in ("AAPL", "MSFT", "KO")}
            common = ["--broker", "capital", "--journal", str(journal), "--options", json.dumps(base),
                      "--credentials", json.dumps(credentials)]
            for round_no in range(rounds):
                await run_bots(common, capital_bot_plans(rng, round_no, bid))
                held, working, closes_before = await capital_state(http)
                assert held and working, (held, working)
                seen = {(c["dealId"], c["reference"]) for c in closes_before}
                reports = await panic_round(rng, tally, panic_argv, kill=round_no > 0, positions=len(held),
                                            closed=lambda: capital_closes(http))
                after, working_after, closes = await capital_state(http)
                assert after == {} and working_after == 0, (after, working_after)
                new = [c for c in closes if (c["dealId"], c["reference"]) not in seen]
                per_deal = Counter(c["dealId"] for c in new)
                # One close per position held, for its whole size, on the closing side: nothing closed twice.
                assert per_deal == Counter({deal: 1 for deal in held}), (per_deal, held)
                for c in new:
                    position = held[c["dealId"]]
                    assert c["size"] == position["size"], (c, position)
                    assert c["direction"] != position["direction"], (c, position)
                booked = {str(c["reference"]) for c in new} | {str(c["dealId"]) for c in new}
                tally.settle_round(reports, booked, len(new), len(held))
    line = tally.line("capitalcom")
    print(line)
    return line


# ------------------------------------------------------------------------------------------ tests


@pytest.mark.timeout(600)
async def test_panic_across_processes_ib(tmp_path: Path) -> None:
    await ib_panic_rounds(tmp_path, ROUNDS, seed=21)


@pytest.mark.timeout(600)
async def test_panic_across_processes_capital(tmp_path: Path) -> None:
    await capital_panic_rounds(tmp_path, ROUNDS, seed=21)
