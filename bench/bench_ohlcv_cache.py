"""Cached re-read through OhlcvCache vs reading the same Parquet file with pandas directly.

Goal: ratio <= 1.5, i.e. the cache's bookkeeping (metadata/coverage lookup, gap computation) costs at
most half again a bare ``pandas.read_parquet``. Both sides are measured in the same run on the same
file, so the figure does not depend on the machine. Like is compared with like:

- RATIO (the goal): ``OhlcvCache.get_dataframe`` vs ``pandas.read_parquet`` -- frame vs frame, the
  backtest path;
- rows ratio: ``OhlcvCache.get`` (ccxt rows, a list of lists) vs ``pandas.read_parquet`` followed by
  the same conversion to ccxt rows. Materializing ~260k Python floats dominates both sides, so
  against a bare read_parquet it would measure list building, not the cache.

The fetcher is synthetic for now (5 years of 1-hour bars, 24/7). Adapter engineers: replace
``synthetic_fetch`` with the real broker download (``--real``) once the adapter exists; the first,
uncached run then also measures the download and pacing.

    python bench/bench_ohlcv_cache.py [--years 5] [--repeat 15]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from normalization.runtime.ohlcv_cache import CacheKey, OhlcvCache  # noqa: E402

H = 3_600_000
START = 1_577_836_800_000  # 2020-01-01T00:00:00Z


def synthetic_fetch_factory(calls: list[tuple[int, int]]):
    """Deterministic random-walk hourly bars; records each request so re-reads can assert zero."""

    async def fetch(since: int, until: int) -> list[list]:
        calls.append((since, until))
        first = -(-since // H) * H
        ts = np.arange(first, until, H, dtype="int64")
        rng = np.random.default_rng(first // H)
        close = 100 + np.cumsum(rng.normal(0, 0.5, len(ts)))
        openp = np.concatenate([[100.0], close[:-1]])
        high = np.maximum(openp, close) + 0.1
        low = np.minimum(openp, close) - 0.1
        vol = rng.integers(100, 10_000, len(ts)).astype("float64")
        return [[int(t), o, h, lo, c, v] for t, o, h, lo, c, v in zip(ts, openp, high, low, close, vol, strict=True)]

    return fetch


def timed(fn, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args(argv)
    until = START + int(args.years * 365 * 24) * H
    now = until + 30 * 24 * H
    key = CacheKey("bench", "SYN/USD", "1h", "TRADES")
    calls: list[tuple[int, int]] = []
    fetch = synthetic_fetch_factory(calls)

    with tempfile.TemporaryDirectory() as tmp:
        cache = OhlcvCache(tmp, progress=None)
        loop = asyncio.new_event_loop()
        try:
            t = time.perf_counter()
            rows = loop.run_until_complete(cache.get(key, START, until, fetch, H, now, chunk_ms=30 * 24 * H))
            first = time.perf_counter() - t
            calls.clear()
            path = cache.path_for(key)

            def via_cache() -> None:
                out = loop.run_until_complete(cache.get(key, START, until, fetch, H, now))
                assert len(out) == len(rows)

            def via_frame() -> None:
                loop.run_until_complete(cache.get_dataframe(key, START, until, fetch, H, now))

            def via_pandas() -> None:
                df = pd.read_parquet(path)
                assert len(df) == len(rows)

            def via_pandas_rows() -> None:
                df = pd.read_parquet(path)
                ts = df["timestamp"].tolist()
                vals = df[["open", "high", "low", "close", "volume"]].to_numpy().tolist()
                out = [[t, *v] for t, v in zip(ts, vals, strict=True)]
                assert len(out) == len(rows)

            via_cache(), via_pandas()  # warm the OS page cache and imports for both sides
            t_pandas = timed(via_pandas, args.repeat)
            t_pandas_rows = timed(via_pandas_rows, args.repeat)
            t_cache = timed(via_cache, args.repeat)
            t_frame = timed(via_frame, args.repeat)
            assert not calls, f"re-read asked the broker: {calls}"
        finally:
            loop.close()

    print(f"bars: {len(rows)} ({args.years:g} years of 1h), first (uncached) run: {first * 1000:.0f} ms")
    print(f"pandas.read_parquet:               {t_pandas * 1000:8.2f} ms")
    print(f"OhlcvCache.get_dataframe:          {t_frame * 1000:8.2f} ms  ratio {t_frame / t_pandas:.2f}")
    print(f"pandas.read_parquet -> ccxt rows:  {t_pandas_rows * 1000:8.2f} ms")
    print(f"OhlcvCache.get (ccxt rows):        {t_cache * 1000:8.2f} ms  ratio {t_cache / t_pandas_rows:.2f}")
    print("re-read fetch calls: 0")
    ratio = t_frame / t_pandas
    print(f"RATIO {ratio:.2f} (goal <= 1.5): {'OK' if ratio <= 1.5 else 'OVER'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
