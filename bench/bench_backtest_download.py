"""A backtest's download through an adapter: 5 years of 1-hour bars, cache on, requests counted at the simulator.

What is measured, all in one run against an in-process simulator:

1. **first run**: ``fetch_ohlcv(symbol, "1h", since=5 years ago, params={"until": ...})`` on a cache-enabled
   adapter; the simulator counts the historical requests it answers (IB: ``reqHistoricalData``,
   Capital.com: ``GET /prices``) -- the minimum is one per broker maximum span (IB: ``1 M`` of hourly
   bars per request, ~61 for five years; Capital.com: 1000 bars per request);
2. **re-run**: the same call again; the simulator must count **0** requests;
3. **RATIO**: the cached re-read through ``fetch_ohlcv`` against reading the same Parquet file with
   pandas and turning it into the same ccxt rows (like for like: both end in a list of lists).
   Goal <= 1.5. The bare ``pandas.read_parquet`` (a DataFrame, no rows) is printed for reference.

Pacing. IB allows 60 historical requests per 10 minutes, and five years of hourly bars need ~61, so
a real download waits ~10 minutes once. The adapter's pacer is given a *virtual* clock here (its
``sleep`` moves that clock instead of waiting) and the simulator's pacing is relaxed to IB's own rule
for bars of a minute and more (``pacer.strict = False``); the virtual time the pacer would have
waited is printed, so the figure a real account would see is not hidden.

    python bench/bench_backtest_download.py [--venue ib|capital] [--years 5] [--repeat 7]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from normalization.runtime.ohlcv_service import cache_for, with_runner_mixins  # noqa: E402
from normalization.runtime.pacing import ib_historical_pacer  # noqa: E402

YEAR_MS = 365 * 86_400_000


class VirtualClock:
    """Seconds that only move when the pacer sleeps: records the waiting a real account would do."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waited = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.now += seconds
            self.waited += seconds
        await asyncio.sleep(0)


@contextmanager
def ib_setup(cache_dir: str, virtual: VirtualClock) -> Iterator[tuple[Any, Any, list[int], str]]:
    from ccxt_ibkr.async_support import IBTrader
    from ccxt_ibkr.sim import IBSimulator

    with IBSimulator(port=0, seed=1) as sim:
        sim.pacer.strict = False
        calls = [0]
        original = sim.market.bars

        def bars(*args: Any, **kwargs: Any) -> Any:
            calls[0] += 1
            return original(*args, **kwargs)

        sim.market.bars = bars
        pacer = ib_historical_pacer(clock=virtual.clock, sleep=virtual.sleep)
        options = {
            "port": sim.port,
            "clientId": 3,
            "journal": None,
            "ohlcvCache": cache_dir,
            "pacer": pacer,
            "requestTimeout": 60.0,
        }
        yield sim, with_runner_mixins(IBTrader)({"options": options}), calls, "AAPL/USD"


@contextmanager
def capital_setup(cache_dir: str, virtual: VirtualClock) -> Iterator[tuple[Any, Any, list[int], str]]:
    from ccxt_capital.async_support import CapitalTrader
    from ccxt_capital.sim import CapitalSimulator

    with CapitalSimulator(port=0, seed=1, rate_limits="sim") as sim:
        calls = [0]
        faults = sim.broker.faults
        take = faults.take

        def counted(method: str, path: str) -> Any:
            calls[0] += method == "GET" and path.startswith("/prices/")
            return take(method, path)

        faults.take = counted

        async def sleep(seconds: float) -> None:  # the limiter waits on the simulator's clock
            if seconds > 0:
                sim.advance(seconds)
                virtual.waited += seconds

        options = {
            "baseUrl": sim.base_url,
            "journal": None,
            "ohlcvCache": cache_dir,
            "clock": sim.clock.now,
            "sleep": sleep,
            "symbols": ["EUR/USD"],
        }
        config = {"apiKey": sim.api_key, "login": sim.identifier, "password": sim.password, "options": options}
        exchange = with_runner_mixins(CapitalTrader, equity_holdings="none")(config)
        yield sim, exchange, calls, "EUR/USD"


async def timed(fn: Callable[[], Awaitable[Any]] | Callable[[], Any], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        if asyncio.iscoroutine(result):
            await result
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


async def bench(venue: str, years: float, repeat: int) -> int:
    virtual = VirtualClock()
    with tempfile.TemporaryDirectory() as tmp:
        setup = ib_setup if venue == "ib" else capital_setup
        with setup(tmp, virtual) as (sim, exchange, calls, symbol):
            try:
                now = await exchange.fetch_time()
                # ccxt's `until` is inclusive: the start of the last complete hour bar
                until = now - now % 3_600_000 - 3_600_000
                since = until + 1 - int(years * YEAR_MS)

                started = time.perf_counter()
                rows = await exchange.fetch_ohlcv(symbol, "1h", since, None, {"until": until})
                first_s = time.perf_counter() - started
                first_calls = calls[0]
                first_wait = virtual.waited

                calls[0] = 0
                again = await exchange.fetch_ohlcv(symbol, "1h", since, None, {"until": until})
                assert again == rows, "the re-run returned different bars"
                rerun_calls = calls[0]

                path = next(Path(tmp).rglob("1h_*.parquet"))

                async def via_adapter() -> None:
                    out = await exchange.fetch_ohlcv(symbol, "1h", since, None, {"until": until})
                    assert len(out) == len(rows)

                def via_pandas_rows() -> None:
                    df = pd.read_parquet(path)
                    df = df[(df["timestamp"] >= since) & (df["timestamp"] <= until)]
                    ts = df["timestamp"].tolist()
                    values = df[["open", "high", "low", "close", "volume"]].to_numpy().tolist()
                    out = [[t, *v] for t, v in zip(ts, values, strict=True)]
                    assert len(out) == len(rows)

                def via_pandas() -> None:
                    pd.read_parquet(path)

                await via_adapter()
                via_pandas_rows()  # warm both sides
                t_pandas = await timed(via_pandas, repeat)
                t_rows = await timed(via_pandas_rows, repeat)
                t_adapter = await timed(via_adapter, repeat)
                timing_calls = calls[0] - rerun_calls
                fetches = cache_for(exchange).fetch_calls if cache_for(exchange) else None
            finally:
                await exchange.close()

    ratio = t_adapter / t_rows
    print(f"venue {venue}: {len(rows)} bars of {symbol} 1h over {years:g} years")
    print(
        f"first run:  {first_calls} historical requests at the simulator, {first_s:.1f} s "
        f"(pacing wait a real account would add: {first_wait / 60:.1f} min); cache chunks fetched: {fetches}"
    )
    print(
        f"re-run:     {rerun_calls} historical requests at the simulator "
        f"({timing_calls} more during {2 * repeat + 1} timed re-reads)"
    )
    print(f"pandas.read_parquet (DataFrame only):        {t_pandas * 1000:8.2f} ms")
    print(f"pandas.read_parquet -> ccxt rows:            {t_rows * 1000:8.2f} ms")
    print(
        f"fetch_ohlcv re-read (cache -> ccxt rows):    {t_adapter * 1000:8.2f} ms   "
        f"vs bare read_parquet {t_adapter / t_pandas:.2f}"
    )
    print(f"RATIO {ratio:.2f} (goal <= 1.5): {'OK' if ratio <= 1.5 else 'OVER'}")
    return 0 if rerun_calls == 0 and timing_calls == 0 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--venue", choices=("ib", "capital"), default="ib")
    parser.add_argument("--years", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    return asyncio.run(bench(args.venue, args.years, args.repeat))


if __name__ == "__main__":
    raise SystemExit(main())
