"""Streaming latency: a quote pushed by the simulator -> ``watch_ticker`` returning, against the bare client.

* IB: the simulator's clock moves (``sim.advance``, which returns once the ticks are on the sockets);
  measured to the return of ``ccxt.pro.ibkr.watch_ticker`` and, as the baseline, to the call of a raw
  ib_async ``pendingTickersEvent`` handler on its own connection. Goal: <= 1.2x + 50 us.
* Capital: the same for ``ccxt.pro.capitalcom.watch_ticker`` against a bare aiohttp WebSocket client
  subscribed to the same epic on the same simulator. Goal: <= 1.2x.

Phases alternate in chunks (raw, watch, raw, watch, ...) with one subscription live at a time, so both
see the same machine; the ratio of medians is printed per chunk too (``chunk_ratios``) to show drift.
A short idle between rounds lets the rest of a round's ticks land before the next round starts.

Run: ``.venv/bin/python bench/bench_streams.py [--rounds 200] [--chunks 5]``. Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import ccxt.pro
from ratios import chunk_ratios

import ccxt_capital  # noqa: F401 - registers ccxt.pro.capitalcom
import ccxt_ibkr  # noqa: F401 - registers ccxt.pro.ibkr
from ccxt_capital.sim import CapitalSimulator
from ccxt_capital.sim.testing import SimClient
from ccxt_ibkr._ib import IB_LIBRARY_NAME, ib_lib
from ccxt_ibkr.sim import IBSimulator

IDLE = 0.003  # seconds between rounds: the rest of a round's messages land before the next one
WARMUP = 5  # untimed rounds at the start of each phase
t0s = [0.0]


def stamp_and(action: Any) -> None:
    t0s[0] = time.perf_counter()
    action()


async def timed_rounds(n: int, one: Callable[[], Awaitable[float | None]], into: list[float]) -> None:
    """``WARMUP`` untimed rounds then ``n`` timed ones, ``IDLE`` apart; ``one()`` runs a round and returns its
    latency (None: no message came in time, the round is skipped)."""
    for i in range(n + WARMUP):
        await asyncio.sleep(IDLE)
        elapsed = await one()
        if elapsed is not None and i >= WARMUP:
            into.append(elapsed)


async def watch_rounds(ex: Any, symbol: str, move: Callable[[], Any], n: int, into: list[float]) -> None:
    """``watch_ticker``'s rounds, subscribed for their length. The clock moves once the watch is waiting
    (call_soon runs after it suspends): the bot's own coroutine awaits watch_ticker, no task in between, as
    a bot's loop would."""
    await ex.watch_ticker(symbol)  # subscribed

    async def one() -> float | None:
        asyncio.get_running_loop().call_soon(stamp_and, move)
        try:
            async with asyncio.timeout(2):
                await ex.watch_ticker(symbol)
        except TimeoutError:
            return None
        return time.perf_counter() - t0s[0]

    await timed_rounds(n, one, into)
    await ex.un_watch_ticker(symbol)


def summary(name: str, raw: list[float], watch: list[float], chunks: int, goal: str) -> None:
    r, w = statistics.median(raw) * 1e6, statistics.median(watch) * 1e6
    per_chunk = ", ".join(f"{x:.2f}" for x in chunk_ratios(watch, raw, chunks))
    print(f"{name}: raw median {r:.0f} us, watch_ticker median {w:.0f} us, ratio {w / r:.2f}x "
          f"(+{w - r:.0f} us; chunks {per_chunk}); goal {goal}")


async def bench_ib(rounds: int, chunks: int) -> None:
    with IBSimulator(port=0, seed=1) as sim, tempfile.TemporaryDirectory() as tmp:
        ib = ib_lib.IB()
        await ib.connectAsync(sim.host, sim.port, clientId=901, timeout=10)
        (contract,) = await ib.qualifyContractsAsync(ib_lib.Stock("AAPL", "SMART", "USD"))
        ex = ccxt.pro.ibkr({"options": {"host": sim.host, "port": sim.port, "clientId": 902,
                                        "symbols": ["AAPL/USD"], "journal": str(Path(tmp) / "j.sqlite"),
                                        "maintenanceWindows": []}})
        await ex.load_markets()
        raw: list[float] = []
        watch: list[float] = []
        waiting: list[asyncio.Future[float]] = []

        def on_tickers(tickers: Any) -> None:
            if waiting and not waiting[0].done():
                waiting[0].set_result(time.perf_counter())

        ib.pendingTickersEvent += on_tickers
        per_chunk = rounds // chunks
        async def raw_round() -> float | None:
            waiting[:] = [asyncio.get_running_loop().create_future()]
            t0 = time.perf_counter()
            sim.advance(7)
            try:
                t1 = await asyncio.wait_for(waiting[0], 2)
            except asyncio.TimeoutError:
                return None
            return t1 - t0

        for _ in range(chunks):
            ib.reqMktData(contract)
            await timed_rounds(per_chunk, raw_round, raw)
            ib.cancelMktData(contract)
            await watch_rounds(ex, "AAPL/USD", lambda: sim.advance(7), per_chunk, watch)
        summary(f"IB ({IB_LIBRARY_NAME}) tick -> watch_ticker", raw, watch, chunks, "<= 1.2x + 50 us")
        ib.disconnect()
        await ex.close()


async def bench_capital(rounds: int, chunks: int) -> None:
    sim = CapitalSimulator(port=0, rate_limits="off")
    sim.start()
    try:
        client = SimClient(sim)
        host = client.get("/session").json()["streamEndpoint"]
        tokens = {"cst": client.http.headers["CST"], "securityToken": client.http.headers["X-SECURITY-TOKEN"]}
        with tempfile.TemporaryDirectory() as tmp:
            ex = ccxt.pro.capitalcom({"apiKey": sim.api_key, "login": sim.identifier, "password": sim.password,
                                      "options": {"baseUrl": sim.base_url, "journal": str(Path(tmp) / "j.sqlite"),
                                                  "symbols": ["AAPL/USD"]}})
            await ex.load_markets()
            raw: list[float] = []
            watch: list[float] = []
            mid = sim.quote("AAPL").bid
            flip = [0]

            def move() -> None:
                flip[0] += 1
                sim.pin_price("AAPL", mid + (0.5 if flip[0] % 2 else -0.5), at=sim.clock.now() + 1)
                sim.advance(1)

            per_chunk = rounds // chunks
            async with aiohttp.ClientSession() as session:
                for _ in range(chunks):
                    ws = await session.ws_connect(host + "connect")
                    await ws.send_str(json.dumps({"destination": "marketData.subscribe", "correlationId": "1",
                                                  **tokens, "payload": {"epics": ["AAPL"]}}))
                    await ws.receive(timeout=5)  # the answer
                    await ws.receive(timeout=5)  # the first quote

                    async def raw_round(ws: Any = ws) -> float | None:
                        t0 = time.perf_counter()
                        move()
                        try:
                            message = await ws.receive(timeout=2)
                        except asyncio.TimeoutError:
                            return None
                        json.loads(message.data)
                        return time.perf_counter() - t0

                    await timed_rounds(per_chunk, raw_round, raw)
                    await ws.close()
                    await watch_rounds(ex, "AAPL/USD", move, per_chunk, watch)
            summary("Capital WS quote -> watch_ticker", raw, watch, chunks, "<= 1.2x")
            await ex.close()
        client.close()
    finally:
        sim.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--chunks", type=int, default=5)
    args = parser.parse_args()
    await bench_ib(args.rounds, args.chunks)
    await bench_capital(args.rounds, args.chunks)


if __name__ == "__main__":
    asyncio.run(main())
