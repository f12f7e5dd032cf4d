"""What IBTrader costs on top of raw ib_async, measured against the same simulator in one run.

* ``create_order``: a resting limit order through ``IBTrader.create_order`` (validation, journal,
  placeOrder, wait for the acknowledgement, parsing into a ccxt order) against raw ``ib.placeOrder``
  -> Submitted. Rows: the journal off (in memory), on disk with ``journalSync="normal"`` (the IB
  default: survives the process dying, no fsync), on disk with ``"full"`` (one fsync before every
  send), and the sync face with the default journal, called from a worker thread while this bench's
  loop waits (a bot's own thread, and the raw client beside it: ``bench_sync_face.py``). Each row has its own
  phase in which it and the raw client take turns (a seeded random order each round).
* ``fetch_ohlcv``: one request of 1-minute bars through ``IBTrader.fetch_ohlcv`` against ib_async's
  own ``reqHistoricalDataAsync`` + decoding of the same request.

By default the simulator runs as its own process (``python -m ccxt_ibkr.sim``), as TWS does: client
and server then do not share one GIL, so neither side's CPU time is billed to the other's waits.
``--in-process`` runs it on a thread of this process instead (the test harness). Ratios are medians
of interleaved runs (goal <= 1.10). The client's 45 msg/s throttle and the simulator's pacing are
switched off so both sides measure the same work.

Run: ``.venv/bin/python bench/bench_ibkr_trader.py [--orders 300] [--bars-runs 30] [--in-process]``.
Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench_ib_sim import simulator
from ratios import chunk_ratios

import ccxt_ibkr
from ccxt_ibkr._ib import IB_LIBRARY_NAME, ib_lib
from ccxt_ibkr.async_support import IBTrader
from normalization.runtime.pacing import Pacer, Window

ROWS = (  # label, journal, journalSync
    ("IBTrader async, journal off (memory)", None, "normal"),
    ("IBTrader async, journal normal (default)", "normal.sqlite", "normal"),
    ("IBTrader async, journal full (fsync)", "full.sqlite", "full"),
)


def unbound_pacer() -> Pacer:
    """The pacer's bookkeeping without its waits: the bench repeats identical requests on purpose."""
    return Pacer([Window(10**9, 0.001, scope="contract"), Window(10**9, 0.001, scope="identical")])


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


async def bench(orders: int, bar_runs: int, journal_dir: Path, in_process: bool) -> dict[str, Any]:
    async with simulator(in_process) as (host, port):
        ib = ib_lib.IB()
        await ib.connectAsync(host, port, clientId=1, timeout=10)
        ib.client.MaxRequests = 0
        (aapl,) = await ib.qualifyContractsAsync(ib_lib.Stock("AAPL", "SMART", "USD"))
        (ticker,) = await ib.reqTickersAsync(aapl)
        prices = [round(ticker.bid - 10 - (i % 50) * 0.01, 2) for i in range(orders)]

        def options(client_id: int, journal: str | None, sync: str) -> dict[str, Any]:
            return {"options": {"host": host, "port": port, "clientId": client_id, "symbols": ["AAPL/USD"],
                                "journal": None if journal is None else str(journal_dir / journal),
                                "journalSync": sync, "pacer": unbound_pacer()}}

        traders = [IBTrader(options(2 + i, journal, sync)) for i, (_, journal, sync) in enumerate(ROWS)]
        for ex in traders:
            await ex.load_markets()
            ex.transport.ib.client.MaxRequests = 0

        # OHLCV first, on fresh connections: the same single request, decoded by ib_async alone vs through
        # fetch_ohlcv, which goes first in a seeded random order. (After the order phases the heap holds
        # thousands of trades, and the garbage collector's passes over them land on whoever allocates.)
        bare = traders[0]
        raw_bars: list[float] = []
        trader_bars: list[float] = []
        count = 0

        async def raw_request() -> float:
            nonlocal count
            started = time.perf_counter()
            bars = await ib.reqHistoricalDataAsync(aapl, "", "60000 S", "1 min", "TRADES", False, 2)
            elapsed = time.perf_counter() - started
            assert len(bars) >= 500
            count = len(bars)
            return elapsed

        async def trader_request() -> float:
            bare.transport._recent_bars.clear()  # measure the request, not the 15 s identical-request memo
            started = time.perf_counter()
            candles = await bare.fetch_ohlcv("AAPL/USD", "1m", limit=500)
            elapsed = time.perf_counter() - started
            assert len(candles) == 500
            return elapsed

        coin = random.Random(11).random
        for i in range(bar_runs + 3):
            first_raw = coin() < 0.5
            a = await (raw_request() if first_raw else trader_request())
            b = await (trader_request() if first_raw else raw_request())
            if i >= 3:
                raw_bars.append(a if first_raw else b)
                trader_bars.append(b if first_raw else a)
        async def raw_order(price: float) -> float:
            started = time.perf_counter()
            trade = ib.placeOrder(aapl, ib_lib.LimitOrder("BUY", 1, price))
            while trade.orderStatus.status != "Submitted":
                await asyncio.wait_for(trade.statusEvent, 10)
            elapsed = time.perf_counter() - started
            await asyncio.sleep(0)  # the same loop turn the contestant gets after its timing
            return elapsed

        def trader_order(ex: IBTrader) -> Callable[[float], Awaitable[float]]:
            async def place(price: float) -> float:
                started = time.perf_counter()
                order = await ex.create_order("AAPL/USD", "limit", "buy", 1, price)
                elapsed = time.perf_counter() - started
                assert order["status"] == "open"
                await asyncio.sleep(0)  # let the post-ack journal bookkeeping run outside the next timing
                return elapsed
            return place

        # The sync face: its calls run on a worker thread (timed there), which runs the face's private loop
        # for the length of each call; this loop only waits.
        loop = asyncio.get_running_loop()
        worker = ThreadPoolExecutor(1)
        sync = ccxt_ibkr.IBTrader(options(2 + len(ROWS), "sync.sqlite", "normal"))
        await loop.run_in_executor(worker, sync.load_markets)

        def sync_timed(price: float) -> float:
            started = time.perf_counter()
            order = sync.create_order("AAPL/USD", "limit", "buy", 1, price)
            elapsed = time.perf_counter() - started
            assert order["status"] == "open"
            sync._loop_thread.run(asyncio.sleep(0), 10)  # its post-ack journal writes, outside the next timing
            return elapsed

        async def sync_order(price: float) -> float:
            return await loop.run_in_executor(worker, sync_timed, price)

        # One phase per contestant: it and the raw client take turns, in a seeded random order each round,
        # so the ratio compares two sides that ran under the same conditions (and one contestant's
        # leftovers -- the sync face's second loop thread, the full journal's fsyncs -- never land on
        # another contestant's timings).
        contestants = [trader_order(ex) for ex in traders] + [sync_order]
        shuffle = random.Random(7).shuffle
        pairs: list[tuple[list[float], list[float]]] = []
        for contestant in contestants:
            for price in prices[:10]:  # warm-up
                await raw_order(price)
                await contestant(price)
            raw_samples: list[float] = []
            samples: list[float] = []
            sides: list[Any] = [None, contestant]
            for price in prices:
                shuffle(sides)
                for side in sides:
                    if side is None:
                        raw_samples.append(await raw_order(price))
                    else:
                        samples.append(await side(price))
            pairs.append((raw_samples, samples))
        await loop.run_in_executor(worker, sync.close)
        worker.shutdown()

        ib.disconnect()
        for ex in traders:
            await ex.close()
    return {"pairs": pairs, "raw_bars": raw_bars, "trader_bars": trader_bars, "bars": count}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=500)
    parser.add_argument("--bars-runs", type=int, default=30)
    parser.add_argument("--in-process", action="store_true", help="run the simulator on a thread of this process")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        r = asyncio.run(bench(args.orders, args.bars_runs, Path(tmp), args.in_process))
    where = "in this process (thread)" if args.in_process else "in its own process"
    print(f"client library {IB_LIBRARY_NAME}; simulator {where}")
    print("create_order (resting limit) vs raw placeOrder -> Submitted, each in its own interleaved phase:")
    labels = [label for label, _, _ in ROWS] + ["IBTrader sync,  journal normal (default)"]
    for label, (raw_samples, samples) in zip(labels, r["pairs"], strict=True):
        raw, value = median_ms(raw_samples), median_ms(samples)
        spread = chunk_ratios(samples, raw_samples)
        print(f"  {label:42}: {value:6.3f} ms vs raw {raw:6.3f} ms   ratio {value / raw:5.2f}   "
              f"(5 slices of the run: {min(spread):.2f}-{max(spread):.2f})")
    raw_bars, trader_bars = median_ms(r["raw_bars"]), median_ms(r["trader_bars"])
    print(f"raw reqHistoricalData ({r['bars']} x 1m bars)       : {raw_bars:7.3f} ms")
    print(f"IBTrader.fetch_ohlcv (limit 500)            : {trader_bars:7.3f} ms   ratio {trader_bars / raw_bars:5.2f}")


if __name__ == "__main__":
    main()
