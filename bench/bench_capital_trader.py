"""CapitalTrader overhead against bare httpx on the same simulator, as ratios from one run.

1. ``create_order`` (market, through the confirm) vs a bare ``httpx.AsyncClient`` loop of
   ``POST /positions`` + ``GET /confirms/{ref}``: the same two requests per deal. CapitalTrader also
   records the order in its journal before sending (SQLite, fsynced); both journal settings are shown.
2. ``fetch_ohlcv`` of 10,000 one-minute bars vs bare httpx paging through the same ``from``/``to``
   windows of 1000 bars (JSON decoded, nothing else).

The simulator's rate limits are **off** and the adapter's own limiter is switched off
(``options['pacing'] = False``) for the measurement: with them on, both sides would spend most of the
time waiting out the same 10 req/s and 1 deal / 0.1 s windows, and the ratio would say nothing about
the adapter. Rounds alternate between the two sides to share any drift of the machine; the figure is
the ratio of the medians. Goal: <= 1.15 for both. The adapter decodes JSON with orjson when it is
installed (``--stdlib-json`` to compare like with like: the baseline uses ``response.json()``).

    .venv/bin/python bench/bench_capital_trader.py [--deals 200] [--rounds 5] [--bars 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ccxt_capital.async_support import CapitalTrader  # noqa: E402
from ccxt_capital.sim import CapitalSimulator  # noqa: E402


def _fmt(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


async def bare_login(http: httpx.AsyncClient, sim: CapitalSimulator) -> dict[str, str]:
    answer = await http.post("/session", headers={"X-CAP-API-KEY": sim.api_key},
                             json={"identifier": sim.identifier, "password": sim.password})
    answer.raise_for_status()
    return {"CST": answer.headers["CST"], "X-SECURITY-TOKEN": answer.headers["X-SECURITY-TOKEN"]}


async def bare_deals(http: httpx.AsyncClient, headers: dict[str, str], count: int) -> float:
    start = time.perf_counter()
    for i in range(count):
        sent = await http.post("/positions", headers=headers,
                               json={"epic": "EURUSD", "direction": "BUY" if i % 2 == 0 else "SELL", "size": 1000})
        sent.raise_for_status()
        confirm = await http.get(f"/confirms/{sent.json()['dealReference']}", headers=headers)
        confirm.raise_for_status()
        assert confirm.json()["dealStatus"] == "ACCEPTED"
    return (time.perf_counter() - start) / count


async def trader_deals(exchange: CapitalTrader, count: int) -> float:
    start = time.perf_counter()
    for i in range(count):
        order = await exchange.create_order("EUR/USD", "market", "buy" if i % 2 == 0 else "sell", 1000)
        assert order["status"] == "closed"
    return (time.perf_counter() - start) / count


async def bare_bars(http: httpx.AsyncClient, headers: dict[str, str], since_s: int, bars: int) -> float:
    start = time.perf_counter()
    got = 0
    cursor = since_s
    while got < bars:
        count = min(1000, bars - got)
        end = cursor + (count - 1) * 60
        page = await http.get("/prices/BTCUSD", headers=headers, params={
            "resolution": "MINUTE", "max": count, "from": _fmt(cursor * 1000), "to": _fmt(end * 1000)})
        page.raise_for_status()
        got += len(page.json()["prices"])
        cursor = end + 60
    assert got == bars, got
    return time.perf_counter() - start


async def trader_bars(exchange: CapitalTrader, since_ms: int, bars: int) -> float:
    start = time.perf_counter()
    rows = await exchange.fetch_ohlcv("BTC/USD", "1m", since_ms, bars)
    assert len(rows) == bars, len(rows)
    return time.perf_counter() - start


def trader(sim: CapitalSimulator, journal: Any) -> CapitalTrader:
    return CapitalTrader({
        "apiKey": sim.api_key, "login": sim.identifier, "password": sim.password,
        "options": {"baseUrl": sim.base_url, "pacing": False, "journal": journal, "symbols": ["EUR/USD", "BTC/USD"],
                    "clock": sim.clock.now},
    })


async def main(deals: int, rounds: int, bars: int) -> None:
    with CapitalSimulator(port=0, rate_limits="off") as sim, tempfile.TemporaryDirectory() as tmp:
        async with httpx.AsyncClient(base_url=sim.api_url, timeout=30) as http:
            headers = await bare_login(http, sim)
            in_memory = trader(sim, None)
            on_disk = trader(sim, str(Path(tmp) / "journal.sqlite"))
            for exchange in (in_memory, on_disk):
                await exchange.load_markets()
                await trader_deals(exchange, 4)  # warm up: login, journal, connection
            await bare_deals(http, headers, 4)
            # Interleaved a few deals at a time, so that drift of the machine hits all sides alike.
            step = max(deals // (rounds * 10), 1)
            bare, memory, disk = [], [], []
            for _ in range(max(deals // step, 1)):
                bare.append(await bare_deals(http, headers, step))
                memory.append(await trader_deals(in_memory, step))
                disk.append(await trader_deals(on_disk, step))
            b, m, d = (statistics.median(x) * 1000 for x in (bare, memory, disk))
            bmin, mmin, dmin = (min(x) * 1000 for x in (bare, memory, disk))
            print(f"create_order (market, through the confirm), {len(bare) * step} deals per side, limits off")
            print("  (median of batches; in brackets: best batch, less sensitive to a busy machine)")
            print(f"  bare httpx POST /positions + GET /confirms   {b:8.3f} ms/deal")
            print(f"  CapitalTrader, journal in memory             {m:8.3f} ms/deal   "
                  f"ratio {m / b:5.2f} ({mmin / bmin:4.2f})")
            print(f"  CapitalTrader, journal on disk (fsync)       {d:8.3f} ms/deal   "
                  f"ratio {d / b:5.2f} ({dmin / bmin:4.2f})")

            since_ms = (int(sim.clock.now()) // 60 - bars - 5) * 60 * 1000
            bare_t, trader_t = [], []
            await bare_bars(http, headers, since_ms // 1000, bars)
            await trader_bars(in_memory, since_ms, bars)
            for _ in range(rounds):
                bare_t.append(await bare_bars(http, headers, since_ms // 1000, bars))
                trader_t.append(await trader_bars(in_memory, since_ms, bars))
            bb, tt = (statistics.median(x) * 1000 for x in (bare_t, trader_t))
            best = min(trader_t) / min(bare_t)
            print(f"fetch_ohlcv {bars} x 1m bars ({-(-bars // 1000)} pages), limits off, {rounds} runs each")
            print(f"  bare httpx paging (JSON decoded)             {bb:8.1f} ms")
            print(f"  CapitalTrader.fetch_ohlcv (mid rows)         {tt:8.1f} ms   ratio {tt / bb:5.2f} ({best:4.2f})")
            await in_memory.close()
            await on_disk.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--bars", type=int, default=10_000)
    parser.add_argument("--stdlib-json", action="store_true",
                        help="decode with the standard library even if orjson is installed")
    args = parser.parse_args()
    if args.stdlib_json:
        import json

        import ccxt_capital.transport as transport

        transport._loads = json.loads
    asyncio.run(main(args.deals, args.rounds, args.bars))
