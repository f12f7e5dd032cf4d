"""OHLCV rows <-> pandas, and resampling to timeframes a broker does not serve (1M, 3M, 2h, ...).

Why here and not in each adapter: both brokers lack some ccxt timeframes (IB has no 2h/12h bars for
every asset class, Capital.com has no monthly resolution), and a backtest wants the same month
boundaries whichever broker the bars came from. Buckets are anchored the way ccxt exchanges anchor
them, in UTC: minute/hour/day multiples at the Unix epoch, weeks on Monday 00:00, months and years
on calendar boundaries (``3M`` = Jan/Apr/Jul/Oct).

Rows are ccxt OHLCV rows ``[timestamp_ms, open, high, low, close, volume]``; ``None`` volume is
carried as NaN in frames and turned back into ``None`` in rows.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from normalization.timeframes import UNIT_SECONDS, split_timeframe

__all__ = [
    "COLUMNS",
    "parse_timeframe",
    "timeframe_to_ms",
    "is_calendar_timeframe",
    "bucket_start_ms",
    "bar_end_ms",
    "resample_window",
    "ohlcv_to_dataframe",
    "dataframe_to_ohlcv",
    "resample_ohlcv",
]

COLUMNS = ("open", "high", "low", "close", "volume")

_UNIT_MS = {unit: seconds * 1000 for unit, seconds in UNIT_SECONDS.items() if unit in "smhdw"}
# 1970-01-01 was a Thursday; ccxt weekly candles open on Monday, four days later.
_WEEK_ORIGIN_MS = 4 * 86_400_000


#: ``'15m'`` -> ``(15, 'm')``; raises ccxt's BadRequest for anything else (one parser for the project).
parse_timeframe = split_timeframe


def is_calendar_timeframe(timeframe: str) -> bool:
    """True for month/year timeframes, whose length in ms depends on the calendar."""
    return parse_timeframe(timeframe)[1] in ("M", "y")


def timeframe_to_ms(timeframe: str) -> int:
    """Nominal length in ms; months count as 31 days and years as 366 so a bound is never too short."""
    amount, unit = parse_timeframe(timeframe)
    if unit == "M":
        return amount * 31 * 86_400_000
    if unit == "y":
        return amount * 366 * 86_400_000
    return amount * _UNIT_MS[unit]


def _month_index(ts_ms: int) -> int:
    ts = pd.Timestamp(ts_ms, unit="ms", tz="UTC")
    return (ts.year - 1970) * 12 + ts.month - 1


def _month_start_ms(index: int) -> int:
    year, month0 = divmod(index, 12)
    return calendar.timegm((1970 + year, month0 + 1, 1, 0, 0, 0)) * 1000


def bucket_start_ms(ts_ms: int, timeframe: str) -> int:
    """Start of the ``timeframe`` bucket that contains ``ts_ms`` (UTC, ccxt anchoring)."""
    amount, unit = parse_timeframe(timeframe)
    if unit in ("M", "y"):
        months = amount * (12 if unit == "y" else 1)
        return _month_start_ms(_month_index(ts_ms) // months * months)
    size = amount * _UNIT_MS[unit]
    origin = _WEEK_ORIGIN_MS if unit == "w" else 0
    return (ts_ms - origin) // size * size + origin


def bar_end_ms(start_ms: int, timeframe: str) -> int:
    """Exclusive end of the bar opening at ``start_ms``: calendar arithmetic for M/y, else a fixed span.

    Used to decide whether a bar is complete (``bar_end_ms(start) <= now``) without assuming the bar
    is aligned to any grid: IB daily bars open at the exchange's midnight, not UTC midnight.
    """
    amount, unit = parse_timeframe(timeframe)
    if unit in ("M", "y"):
        months = amount * (12 if unit == "y" else 1)
        return _month_start_ms(_month_index(start_ms) + months) + (start_ms - bucket_start_ms(start_ms, "1M"))
    return start_ms + amount * _UNIT_MS[unit]


def resample_window(since_ms: int, until_ms: int, timeframe: str) -> tuple[int, int]:
    """The source-bar window ``[a, b)`` needed to build every ``timeframe`` bucket that starts in
    ``[since_ms, until_ms)`` completely: ``a`` = start of the first such bucket, ``b`` = end of the
    last. Adapters fetch (through the cache) ``a..b`` of the finer timeframe, resample, and keep the
    buckets with ``since_ms <= start < until_ms``."""
    first = bucket_start_ms(since_ms, timeframe)
    if first < since_ms:
        first = bar_end_ms(first, timeframe)
    last = bucket_start_ms(max(until_ms - 1, first), timeframe)
    return first, bar_end_ms(last, timeframe)


def ohlcv_to_dataframe(rows: Iterable[Sequence[float | int | None]]) -> pd.DataFrame:
    """ccxt OHLCV rows -> DataFrame indexed by a UTC ``DatetimeIndex`` named ``timestamp``.

    Columns are ``open high low close volume`` as float64 (``None`` becomes NaN), sorted by time with
    duplicate timestamps collapsed to the last row, which is what a backtest expects to index into.
    """
    data = [list(r)[:6] for r in rows]
    if not data:
        index = pd.DatetimeIndex([], tz="UTC", name="timestamp").as_unit("ms")
        return pd.DataFrame({c: pd.Series([], dtype="float64") for c in COLUMNS}, index=index)
    ts = np.fromiter((int(r[0]) for r in data), dtype="int64", count=len(data))
    values = np.array(
        [[np.nan if v is None else float(v) for v in (r[1:6] + [None] * (5 - len(r[1:6])))] for r in data],
        dtype="float64",
    )
    index = pd.DatetimeIndex(pd.to_datetime(ts, unit="ms", utc=True), name="timestamp").as_unit("ms")
    frame = pd.DataFrame(values, index=index, columns=list(COLUMNS))
    frame = frame[~frame.index.duplicated(keep="last")]
    return frame.sort_index(kind="stable")


def dataframe_to_ohlcv(frame: pd.DataFrame) -> list[list[float | int | None]]:
    """Inverse of :func:`ohlcv_to_dataframe`: rows with int ms timestamps and ``None`` for NaN."""
    if frame.empty:
        return []
    index = pd.DatetimeIndex(frame.index)
    if index.tz is None:
        index = index.tz_localize("UTC")
    ts = index.as_unit("ms").asi8.tolist()
    out: list[list[float | int | None]] = []
    for t, vals in zip(ts, frame[list(COLUMNS)].to_numpy(dtype="float64").tolist(), strict=True):
        out.append([t, *(None if math.isnan(v) else v for v in vals)])
    return out


def resample_ohlcv(
    rows: Iterable[Sequence[float | int | None]],
    timeframe: str,
    *,
    now_ms: int | None = None,
) -> list[list[float | int | None]]:
    """Aggregate finer OHLCV rows into ``timeframe`` buckets (open=first, high=max, low=min,
    close=last, volume=sum; volume stays ``None`` when every source bar lacked it).

    Empty buckets are dropped, as exchanges do for closed markets. With ``now_ms`` the bucket still
    forming at ``now_ms`` is dropped too, so a resampled month is never cached half-built.
    """
    frame = ohlcv_to_dataframe(rows)
    if frame.empty:
        return []
    amount, unit = parse_timeframe(timeframe)
    ts = frame.index.as_unit("ms").asi8
    if unit in ("M", "y"):
        months = amount * (12 if unit == "y" else 1)
        idx = frame.index
        month_idx = (idx.year.to_numpy() - 1970) * 12 + idx.month.to_numpy() - 1
        bucket_idx = month_idx // months * months
        uniq = np.unique(bucket_idx)
        starts = {int(b): _month_start_ms(int(b)) for b in uniq}
        buckets = np.array([starts[int(b)] for b in bucket_idx], dtype="int64")
    else:
        size = amount * _UNIT_MS[unit]
        origin = _WEEK_ORIGIN_MS if unit == "w" else 0
        buckets = (ts - origin) // size * size + origin
    grouped = frame.groupby(buckets, sort=True)
    agg = pd.DataFrame(
        {
            "open": grouped["open"].first(),
            "high": grouped["high"].max(),
            "low": grouped["low"].min(),
            "close": grouped["close"].last(),
            "volume": grouped["volume"].sum(min_count=1),
        }
    )
    agg.index = pd.DatetimeIndex(pd.to_datetime(agg.index.to_numpy(), unit="ms", utc=True), name="timestamp")
    if now_ms is not None:
        keep = [bar_end_ms(int(s), timeframe) <= now_ms for s in agg.index.as_unit("ms").asi8]
        agg = agg[np.array(keep, dtype=bool)]
    return dataframe_to_ohlcv(agg)
