"""Throughput of the fake TWS through the unmodified ib_async (or ib_insync) client.

Prints order round trips per second (placeOrder -> Submitted), historical bars served per
second, and, as the baseline measured in the same run, plain request round trips per second
(reqCurrentTime), so the ratios say how much the order engine and bar generation cost on top
of the protocol. The client's own 45 msg/s throttle is switched off to measure the server.

By default the simulator runs as a separate process (``python -m ccxt_ibkr.sim``) so client
and server do not share one GIL; ``--in-process`` uses the thread-based test harness instead.

Run: ``.venv/bin/python bench/bench_ib_sim.py [--orders 500] [--requests 40]``. Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from sim_process import sim_process

from ccxt_ibkr._ib import IB_LIBRARY_NAME, ib_lib
from ccxt_ibkr.sim import IBSimulator

START = "2025-06-10T14:00:00"  # a Tuesday, US market open


@contextlib.asynccontextmanager
async def simulator(in_process: bool) -> AsyncIterator[tuple[str, int]]:
    if in_process:
        with IBSimulator(port=0, seed=1) as sim:
            sim.pacer.enabled = False
            yield sim.host, sim.port
        return
    async with sim_process("ccxt_ibkr.sim", "--seed", "1", "--no-pacing", "--start", START) as address:
        yield address


async def run(orders: int, requests: int, in_process: bool) -> None:
    async with simulator(in_process) as (host, port):
        ib = ib_lib.IB()
        await ib.connectAsync(host, port, clientId=1, timeout=10)
        ib.client.MaxRequests = 0  # measure the simulator, not the client's throttle
        (aapl,) = await ib.qualifyContractsAsync(ib_lib.Stock("AAPL", "SMART", "USD"))
        (ticker,) = await ib.reqTickersAsync(aapl)
        far_bid = ticker.bid - 10

        started = time.perf_counter()
        for _ in range(orders):
            await ib.reqCurrentTimeAsync()
        baseline = orders / (time.perf_counter() - started)

        started = time.perf_counter()
        for i in range(orders):
            trade = ib.placeOrder(aapl, ib_lib.LimitOrder("BUY", 1, round(far_bid - (i % 50) * 0.01, 2), tif="GTC"))
            while trade.orderStatus.status != "Submitted":
                await asyncio.wait_for(trade.statusEvent, 10)
        order_rate = orders / (time.perf_counter() - started)

        now = (await ib.reqCurrentTimeAsync()).timestamp()
        weekdays = [d for d in range(40) if time.gmtime(now - 86400 * d).tm_wday < 5][:20]
        started = time.perf_counter()
        bars = 0
        for i in range(requests):
            end = now - 86400 * weekdays[i % len(weekdays)]
            result = await ib.reqHistoricalDataAsync(aapl, end_time(end), "1 D", "1 min", "TRADES", False, 2)
            bars += len(result)
        bar_rate = bars / (time.perf_counter() - started)

        started = time.perf_counter()
        for _ in range(requests):
            await ib.reqHistoricalDataAsync(aapl, "", "1 Y", "1 day", "MIDPOINT", False, 1)
        daily_rate = requests / (time.perf_counter() - started)
        ib.disconnect()

    where = "in this process (thread)" if in_process else "in a separate process"
    print(f"client library            : {IB_LIBRARY_NAME}; simulator {where}")
    print(f"baseline reqCurrentTime   : {baseline:10.0f} round trips/s")
    print(f"placeOrder -> Submitted   : {order_rate:10.0f} orders/s   (ratio to baseline {order_rate / baseline:.2f})")
    print(f"historical 1-min bars     : {bar_rate:10.0f} bars/s     ({bars} bars in {requests} requests)")
    print(f"historical 1 Y daily reqs : {daily_rate:10.1f} requests/s (ratio to baseline {daily_rate / baseline:.3f})")


def end_time(ts: float) -> str:
    return time.strftime("%Y%m%d %H:%M:%S UTC", time.gmtime(ts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=500)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--in-process", action="store_true")
    args = parser.parse_args()
    asyncio.run(run(args.orders, args.requests, args.in_process))


if __name__ == "__main__":
    main()
