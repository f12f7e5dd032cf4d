"""On-disk OHLCV cache that fetches only the gaps, so a backtest re-run asks the broker nothing.

Why it is shaped this way:

- **One Parquet file per (exchange, instrument, timeframe, price kind)** -- ``TRADES`` and
  ``MIDPOINT`` bars of one contract are different data. Columns ``timestamp`` (int64 ms) and
  ``open high low close volume`` (float64), so ``pandas.read_parquet`` opens it directly.
- **Coverage, not just bars.** Stocks have nights, weekends and holidays; a gap in the bars is not
  missing data. The cache records the intervals it has *asked* the broker for and never asks them
  again, even when they came back empty. The coverage lives in the Parquet file's own schema
  metadata (key ``ccxt_brokers.coverage``) rather than in a sidecar, so bars and coverage are
  replaced together by one atomic ``os.replace``: a crash or a concurrent writer can never leave
  coverage that claims bars the file does not hold.
- **Only complete bars are stored** (``bar start + timeframe <= now``) and coverage stops where
  bars may still change, so the partial current candle is fetched fresh every time and returned,
  but never frozen into the cache.
- **Writes after every chunk** (``chunk_ms``): interrupting a long download keeps what arrived.
- Blocking file I/O runs in a worker thread so an event loop shared with a broker connection keeps
  serving it.

Intervals are half-open ``[since_ms, until_ms)`` on bar *start* times, and ``fetch_range(a, b)`` must
return the broker's bars whose start lies in ``[a, b)`` (extra complete bars are kept, harmlessly).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .progress import progress_bar
from .resample import COLUMNS, bar_end_ms, is_calendar_timeframe, timeframe_to_ms

__all__ = [
    "CacheKey",
    "OhlcvCache",
    "FetchRange",
    "ExpectedTimes",
    "CACHE_DIR_ENV",
    "default_cache_root",
    "merge_intervals",
    "subtract_intervals",
]

logger = logging.getLogger(__name__)

CACHE_DIR_ENV = "CCXT_BROKERS_CACHE_DIR"
_COVERAGE_META = b"ccxt_brokers.coverage"
_VERSION_META = b"ccxt_brokers.version"
_FORMAT_VERSION = b"1"

Row = list  # [timestamp_ms, open, high, low, close, volume]
FetchRange = Callable[[int, int], Awaitable[Sequence[Sequence[Any]]]]
#: either a callable (since_ms, until_ms) -> bar start times the market calendar expects, or those times.
ExpectedTimes = Callable[[int, int], Iterable[int]] | Iterable[int]
Interval = tuple[int, int]


@dataclass(frozen=True)
class CacheKey:
    """What makes two bar series different: venue, instrument (symbol or conId/epic), timeframe,
    and price kind (IB ``whatToShow`` such as TRADES/MIDPOINT/BID/ASK, Capital bid/ask/mid)."""

    exchange: str
    instrument: str
    timeframe: str
    price: str = "TRADES"


def default_cache_root() -> Path:
    """``$CCXT_BROKERS_CACHE_DIR``, else the per-user cache dir + ``ccxt-brokers/ohlcv``
    (``$XDG_CACHE_HOME`` or ``~/.cache`` on Linux, ``~/Library/Caches`` on macOS,
    ``%LOCALAPPDATA%`` on Windows)."""
    override = os.environ.get(CACHE_DIR_ENV)
    if override:
        return Path(override).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "ccxt-brokers" / "ohlcv"


def merge_intervals(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, non-overlapping union; touching intervals ([a,b) + [b,c)) become one."""
    out: list[list[int]] = []
    for a, b in sorted((int(a), int(b)) for a, b in intervals if b > a):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def subtract_intervals(start: int, end: int, covered: Sequence[Interval]) -> list[Interval]:
    """Parts of ``[start, end)`` not inside any (merged, sorted) ``covered`` interval."""
    gaps: list[Interval] = []
    cursor = start
    for a, b in covered:
        if b <= cursor:
            continue
        if a >= end:
            break
        if a > cursor:
            gaps.append((cursor, min(a, end)))
        cursor = max(cursor, b)
        if cursor >= end:
            break
    if cursor < end:
        gaps.append((cursor, end))
    return gaps


def _slug(text: str) -> str:
    # Percent-encoding keeps '/', ':' and spaces out of file names and is reversible.
    return quote(text, safe="-_.") or "_"


def _tf_slug(timeframe: str) -> str:
    # '1m' (minute) and '1M' (month) collide on case-insensitive file systems (macOS, Windows).
    return timeframe[:-1] + "mo" if timeframe.endswith("M") else timeframe


@dataclass
class _Series:
    """Bars held as sorted arrays (ts int64, values float64 n x 5) plus covered intervals."""

    ts: np.ndarray
    values: np.ndarray
    coverage: list[Interval]
    stamp: tuple[int, int] | None = None  # (mtime_ns, size) of the file it was read from

    @classmethod
    def empty(cls) -> _Series:
        return cls(np.empty(0, dtype="int64"), np.empty((0, 5), dtype="float64"), [])


def _rows_to_arrays(rows: Sequence[Sequence[Any]]) -> tuple[np.ndarray, np.ndarray]:
    if not rows:
        return np.empty(0, dtype="int64"), np.empty((0, 5), dtype="float64")
    ts = np.fromiter((int(r[0]) for r in rows), dtype="int64", count=len(rows))
    values = np.array([[r[1], r[2], r[3], r[4], r[5] if len(r) > 5 else None] for r in rows], dtype="float64")
    return ts, values


def _merge_bars(
    old_ts: np.ndarray, old_v: np.ndarray, new_ts: np.ndarray, new_v: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Union by timestamp, the newer bar winning (brokers correct bars after the fact)."""
    if not len(new_ts):
        return old_ts, old_v
    if not len(old_ts):
        order = np.unique(new_ts[::-1], return_index=True)[1]
        rev_v = new_v[::-1]
        return new_ts[::-1][order], rev_v[order]
    ts = np.concatenate([new_ts[::-1], old_ts])
    values = np.concatenate([new_v[::-1], old_v])
    _, first = np.unique(ts, return_index=True)  # first occurrence = newest
    return ts[first], values[first]


def _arrays_to_rows(ts: np.ndarray, values: np.ndarray) -> list[Row]:
    """Fast path to ccxt rows: one object array and a single ``tolist`` (python ints and floats)."""
    n = len(ts)
    if not n:
        return []
    out = np.empty((n, 6), dtype=object)
    out[:, 0] = ts.tolist()
    out[:, 1:] = values
    nan = np.isnan(values)
    if nan.any():
        block = out[:, 1:]
        block[nan] = None
        out[:, 1:] = block
    return out.tolist()


def _read(path: Path) -> _Series:
    try:
        st = path.stat()
    except FileNotFoundError:
        return _Series.empty()
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        # A damaged or foreign file must not stop a bot: refetch and overwrite it.
        logger.warning("ignoring unreadable OHLCV cache file %s: %s", path, exc)
        return _Series.empty()
    meta = table.schema.metadata or {}
    if meta.get(_VERSION_META) != _FORMAT_VERSION or "timestamp" not in table.column_names:
        logger.warning("ignoring OHLCV cache file %s written in an unknown format", path)
        return _Series.empty()
    coverage = [(int(a), int(b)) for a, b in json.loads(meta.get(_COVERAGE_META, b"[]"))]
    ts = table.column("timestamp").to_numpy().astype("int64", copy=False)
    values = (
        np.column_stack([table.column(c).to_numpy().astype("float64", copy=False) for c in COLUMNS])
        if len(ts)
        else np.empty((0, 5), dtype="float64")
    )
    return _Series(ts, values, coverage, (st.st_mtime_ns, st.st_size))


def _write(path: Path, series: _Series, key: CacheKey) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = [pa.array(series.ts, type=pa.int64())]
    arrays += [pa.array(series.values[:, i], type=pa.float64()) for i in range(5)]
    table = pa.Table.from_arrays(arrays, names=["timestamp", *COLUMNS])
    table = table.replace_schema_metadata(
        {
            _COVERAGE_META: json.dumps(series.coverage).encode(),
            _VERSION_META: _FORMAT_VERSION,
            b"ccxt_brokers.key": json.dumps([key.exchange, key.instrument, key.timeframe, key.price]).encode(),
        }
    )
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".parquet", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    st = path.stat()
    series.stamp = (st.st_mtime_ns, st.st_size)


class OhlcvCache:
    """Gap-filling bar cache under ``root`` (default :func:`default_cache_root`).

    ``progress``: ``None`` = bar when stderr is a TTY, ``True``/``False`` forces it.
    ``fetch_calls`` counts ``fetch_range`` invocations made through this instance.
    One instance should be used from one event loop (it holds per-file asyncio locks).
    """

    def __init__(self, root: str | os.PathLike[str] | None = None, *, progress: bool | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_root()
        self._progress = progress
        self._locks: dict[Path, asyncio.Lock] = {}
        self.fetch_calls = 0

    def path_for(self, key: CacheKey) -> Path:
        """The Parquet file holding ``key``; readable with ``pandas.read_parquet``."""
        return (
            self.root
            / _slug(key.exchange)
            / _slug(key.instrument)
            / f"{_tf_slug(key.timeframe)}_{_slug(key.price)}.parquet"
        )

    def coverage(self, key: CacheKey) -> list[Interval]:
        """Intervals ``[a, b)`` already asked of the broker for ``key``."""
        return list(_read(self.path_for(key)).coverage)

    def clear(self, key: CacheKey | None = None) -> None:
        """Delete one series, or everything under ``root``."""
        if key is not None:
            self.path_for(key).unlink(missing_ok=True)
            return
        for path in sorted(self.root.rglob("*.parquet"), reverse=True):
            path.unlink(missing_ok=True)

    async def get(
        self,
        key: CacheKey,
        since_ms: int,
        until_ms: int,
        fetch_range: FetchRange,
        timeframe_ms: int,
        now_ms: int | None = None,
        expected_times: ExpectedTimes | None = None,
        *,
        chunk_ms: int | None = None,
    ) -> list[Row]:
        """Bars with start in ``[since_ms, until_ms)``, sorted and unique by timestamp.

        Loads the file, asks ``fetch_range`` only for the uncovered parts of the window (split into
        ``chunk_ms`` pieces when given, with a progress bar), stores the complete bars and the new
        coverage, and returns cached bars plus whatever was fetched (including the still-forming
        bar, which is returned but not stored).

        ``expected_times`` (a market calendar) lets the cache skip gaps in which no bar can exist,
        e.g. the weekend part of a range that reaches up to now; such gaps are skipped but not
        recorded as covered, because a calendar can be wrong.
        """
        ts, values, fresh = await self._get_arrays(
            key, since_ms, until_ms, fetch_range, timeframe_ms, now_ms, expected_times, chunk_ms
        )
        rows = _arrays_to_rows(ts, values)
        if fresh:
            merged = {int(r[0]): list(r) for r in rows}
            for r in fresh:
                if since_ms <= int(r[0]) < until_ms:
                    merged[int(r[0])] = [int(r[0]), *r[1:6]]
            rows = [merged[t] for t in sorted(merged)]
        return rows

    async def get_dataframe(
        self,
        key: CacheKey,
        since_ms: int,
        until_ms: int,
        fetch_range: FetchRange,
        timeframe_ms: int,
        now_ms: int | None = None,
        expected_times: ExpectedTimes | None = None,
        *,
        chunk_ms: int | None = None,
    ) -> pd.DataFrame:
        """:meth:`get` as a DataFrame (same shape as ``ohlcv_to_dataframe``), built straight from the
        stored arrays: the backtest path never materializes millions of Python floats."""
        ts, values, fresh = await self._get_arrays(
            key, since_ms, until_ms, fetch_range, timeframe_ms, now_ms, expected_times, chunk_ms
        )
        if fresh:
            extra_ts, extra_v = _rows_to_arrays([r for r in fresh if since_ms <= int(r[0]) < until_ms])
            ts, values = _merge_bars(ts, values, extra_ts, extra_v)
        index = pd.DatetimeIndex(ts.astype("datetime64[ms]"), name="timestamp").tz_localize("UTC")
        return pd.DataFrame(values, index=index, columns=list(COLUMNS), copy=False)

    # -- internals --------------------------------------------------------------------------------

    def _lock(self, path: Path) -> asyncio.Lock:
        lock = self._locks.get(path)
        if lock is None:
            lock = self._locks[path] = asyncio.Lock()
        return lock

    async def _get_arrays(
        self,
        key: CacheKey,
        since_ms: int,
        until_ms: int,
        fetch_range: FetchRange,
        timeframe_ms: int,
        now_ms: int | None,
        expected_times: ExpectedTimes | None,
        chunk_ms: int | None,
    ) -> tuple[np.ndarray, np.ndarray, list[Sequence[Any]]]:
        since_ms, until_ms = int(since_ms), int(until_ms)
        if timeframe_ms <= 0:
            raise ValueError("timeframe_ms must be positive")
        now = int(time.time() * 1000) if now_ms is None else int(now_ms)
        calendar_tf = _is_calendar(key.timeframe)
        # Bars starting before `horizon` are final, so asking about them again can never help.
        span = max(timeframe_ms, timeframe_to_ms(key.timeframe)) if calendar_tf else timeframe_ms
        horizon = now - span + 1
        path = self.path_for(key)
        fresh: list[Sequence[Any]] = []
        if until_ms <= since_ms:
            return np.empty(0, dtype="int64"), np.empty((0, 5), dtype="float64"), fresh
        async with self._lock(path):
            series = await asyncio.to_thread(_read, path)
            # Nothing can start after now; a bar starting exactly at now may exist.
            gaps = subtract_intervals(since_ms, min(until_ms, now + 1), series.coverage)
            gaps = _apply_calendar(gaps, expected_times)
            chunks = _split(gaps, chunk_ms)
            if chunks:
                total = sum(b - a for a, b in chunks) / timeframe_ms
                with progress_bar(
                    total=round(total),
                    desc=f"{key.instrument} {key.timeframe}",
                    unit="bar",
                    enabled=self._progress,
                ) as bar:
                    for a, b in chunks:
                        self.fetch_calls += 1
                        rows = list(await _awaitable(fetch_range(a, b)))
                        fresh.extend(rows)
                        await self._absorb(path, key, series, rows, a, min(b, horizon), now, timeframe_ms, calendar_tf)
                        bar.update(round((b - a) / timeframe_ms))
            lo = int(np.searchsorted(series.ts, since_ms, side="left"))
            hi = int(np.searchsorted(series.ts, until_ms, side="left"))
            ts, values = series.ts[lo:hi], series.values[lo:hi]
        # Fetched rows that were stored are already in `ts`; only the partial ones need merging.
        stored = set(ts.tolist()) if fresh else set()
        partial = [r for r in fresh if int(r[0]) not in stored]
        return ts, values, partial

    async def _absorb(
        self,
        path: Path,
        key: CacheKey,
        series: _Series,
        rows: list[Sequence[Any]],
        cov_from: int,
        cov_to: int,
        now: int,
        timeframe_ms: int,
        calendar_tf: bool,
    ) -> None:
        """Fold one fetched chunk into ``series`` and persist it (complete bars + coverage)."""
        new_ts, new_v = _rows_to_arrays(rows)
        if len(new_ts):
            if calendar_tf:
                done = np.array([bar_end_ms(int(t), key.timeframe) <= now for t in new_ts], dtype=bool)
            else:
                done = new_ts + timeframe_ms <= now
            new_ts, new_v = new_ts[done], new_v[done]
        coverage_changed = cov_to > cov_from
        if not len(new_ts) and not coverage_changed:
            return
        # Another process may have written since we read: fold its work in rather than drop it.
        try:
            st = path.stat()
            stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp != series.stamp and stamp is not None:
            disk = await asyncio.to_thread(_read, path)
            series.ts, series.values = _merge_bars(disk.ts, disk.values, series.ts, series.values)
            series.coverage = merge_intervals([*series.coverage, *disk.coverage])
        series.ts, series.values = _merge_bars(series.ts, series.values, new_ts, new_v)
        if coverage_changed:
            series.coverage = merge_intervals([*series.coverage, (cov_from, cov_to)])
        await asyncio.to_thread(_write, path, series, key)


def _is_calendar(timeframe: str) -> bool:
    try:
        return is_calendar_timeframe(timeframe)
    except ValueError:  # a broker-native spelling; treat it as fixed-length
        return False


def _apply_calendar(gaps: list[Interval], expected: ExpectedTimes | None) -> list[Interval]:
    """Trim each gap to the span of bars the calendar expects in it; drop gaps expecting none."""
    if expected is None or not gaps:
        return gaps
    out: list[Interval] = []
    if callable(expected):
        for a, b in gaps:
            times = [int(t) for t in expected(a, b) if a <= int(t) < b]
            if times:
                out.append((min(times), max(times) + 1))
        return out
    all_times = sorted(int(t) for t in expected)  # type: ignore[union-attr]
    arr = np.asarray(all_times, dtype="int64")
    for a, b in gaps:
        lo, hi = np.searchsorted(arr, a, side="left"), np.searchsorted(arr, b, side="left")
        if hi > lo:
            out.append((int(arr[lo]), int(arr[hi - 1]) + 1))
    return out


def _split(gaps: list[Interval], chunk_ms: int | None) -> list[Interval]:
    if not chunk_ms or chunk_ms <= 0:
        return gaps
    out: list[Interval] = []
    for a, b in gaps:
        while a < b:
            out.append((a, min(a + chunk_ms, b)))
            a += chunk_ms
    return out


def _awaitable(value: Any) -> Any:
    """A sync fetcher passed by mistake gets a clear TypeError instead of a confusing one."""
    if not inspect.isawaitable(value):
        raise TypeError("fetch_range must be an async function returning a list of OHLCV rows")
    return value
