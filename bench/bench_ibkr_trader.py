"""What IBTrader costs on top of raw ib_async, measured against the same simulator in one run.

* ``create_order``: a resting limit order through ``IBTrader.create_order`` (validation, journal,
  placeOrder, wait for the acknowledgement, parsing) against raw ``ib.placeOrder`` -> Submitted.
  Measured for the async face with the on-disk journal (the shipped default: intent fsynced before
  every send), the async face without a journal, and the sync face (a thread hop per call).
* ``fetch_ohlcv``: one request of 1-minute bars through ``IBTrader.fetch_ohlcv`` against
  ib_async's own ``reqHistoricalDataAsync`` + decoding of the same request.

Ratios are medians of interleaved runs (goal <= 1.10). The client's 45 msg/s throttle and the
simulator's pacing are switched off so both sides measure the same work.

Run: ``.venv/bin/python bench/bench_ibkr_trader.py [--orders 200] [--bars-runs 30]``. Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import ccxt_ibkr
from ccxt_ibkr._ib import IB_LIBRARY_NAME, ib_lib
from ccxt_ibkr.async_support import IBTrader
from ccxt_ibkr.sim import IBSimulator
from normalization.runtime.pacing import Pacer, Window


def unbound_pacer() -> Pacer:
    """The pacer's bookkeeping without its waits: the bench repeats identical requests on purpose."""
    return Pacer([Window(10**9, 0.001, scope="contract"), Window(10**9, 0.001, scope="identical")])


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


async def bench(orders: int, bar_runs: int, journal_dir: Path) -> dict[str, Any]:
    with IBSimulator(port=0, seed=1) as sim:
        sim.pacer.enabled = False
        quote = sim.quote("AAPL", "STK", "USD")
        prices = [round(quote.bid - 10 - (i % 50) * 0.01, 2) for i in range(orders)]

        ib = ib_lib.IB()
        await ib.connectAsync(sim.host, sim.port, clientId=1, timeout=10)
        ib.client.MaxRequests = 0
        (aapl,) = await ib.qualifyContractsAsync(ib_lib.Stock("AAPL", "SMART", "USD"))

        def options(client_id: int, journal: Any) -> dict[str, Any]:
            return {"options": {"host": sim.host, "port": sim.port, "clientId": client_id, "symbols": ["AAPL/USD"],
                                "journal": journal, "pacer": unbound_pacer()}}

        with_journal = IBTrader(options(2, str(journal_dir / "bench.sqlite")))
        no_journal = IBTrader(options(3, None))
        for ex in (with_journal, no_journal):
            await ex.load_markets()
            ex.transport.ib.client.MaxRequests = 0

        async def raw_order(price: float) -> float:
            started = time.perf_counter()
            trade = ib.placeOrder(aapl, ib_lib.LimitOrder("BUY", 1, price))
            while trade.orderStatus.status != "Submitted":
                await asyncio.wait_for(trade.statusEvent, 10)
            return time.perf_counter() - started

        async def trader_order(ex: IBTrader, price: float) -> float:
            started = time.perf_counter()
            order = await ex.create_order("AAPL/USD", "limit", "buy", 1, price)
            elapsed = time.perf_counter() - started
            assert order["status"] == "open"
            await asyncio.sleep(0)  # let the post-send journal bookkeeping run outside the next timing
            return elapsed

        raw, journaled, bare = [], [], []
        for price in prices[:10]:  # warm-up
            await raw_order(price)
            await trader_order(no_journal, price)
        for price in prices:
            raw.append(await raw_order(price))
            journaled.append(await trader_order(with_journal, price))
            bare.append(await trader_order(no_journal, price))

        # OHLCV: the same single request, decoded by ib_async alone vs through fetch_ohlcv.
        raw_bars, trader_bars = [], []
        count = 0
        for i in range(bar_runs + 3):
            started = time.perf_counter()
            bars = await ib.reqHistoricalDataAsync(aapl, "", "60000 S", "1 min", "TRADES", False, 2)
            raw_time = time.perf_counter() - started
            no_journal.transport._recent_bars.clear()  # measure the request, not the 15 s identical-request memo
            started = time.perf_counter()
            rows = await no_journal.fetch_ohlcv("AAPL/USD", "1m", limit=500)
            trader_time = time.perf_counter() - started
            assert len(rows) == 500 and len(bars) >= 500
            count = len(bars)
            if i >= 3:
                raw_bars.append(raw_time)
                trader_bars.append(trader_time)
        ib.disconnect()
        await with_journal.close()
        await no_journal.close()

        # The sync face, measured separately (it owns its loop thread; this loop only waits).
        sync = ccxt_ibkr.IBTrader(options(4, None))
        sync.load_markets()
        sync_times: list[float] = []

        def sync_orders() -> None:
            for price in prices[:10]:
                sync.create_order("AAPL/USD", "limit", "buy", 1, price)
            for price in prices:
                started = time.perf_counter()
                sync.create_order("AAPL/USD", "limit", "buy", 1, price)
                sync_times.append(time.perf_counter() - started)

        await asyncio.to_thread(sync_orders)
        sync.close()
    return {
        "raw": raw, "journaled": journaled, "bare": bare, "sync": sync_times,
        "raw_bars": raw_bars, "trader_bars": trader_bars, "bars": count,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--bars-runs", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        r = asyncio.run(bench(args.orders, args.bars_runs, Path(tmp)))
    raw = median_ms(r["raw"])
    print(f"client library                         : {IB_LIBRARY_NAME}")
    print(f"raw placeOrder -> Submitted            : {raw:7.3f} ms (median of {len(r['raw'])})")
    for label, key in (("IBTrader async, journal off", "bare"), ("IBTrader async, journal on (default)", "journaled"),
                       ("IBTrader sync,  journal off", "sync")):
        value = median_ms(r[key])
        print(f"{label:39}: {value:7.3f} ms   ratio {value / raw:5.2f}")
    raw_bars, trader_bars = median_ms(r["raw_bars"]), median_ms(r["trader_bars"])
    print(f"raw reqHistoricalData ({r['bars']} x 1m bars)  : {raw_bars:7.3f} ms")
    print(f"IBTrader.fetch_ohlcv (limit 500)       : {trader_bars:7.3f} ms   ratio {trader_bars / raw_bars:5.2f}")


if __name__ == "__main__":
    main()
