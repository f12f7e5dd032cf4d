"""Resampling to calendar months (UTC) and multiples, and the rows <-> DataFrame helpers."""

from __future__ import annotations

from datetime import datetime, timezone

import ccxt
import pandas as pd
import pytest

from normalization.runtime.resample import (
    bar_end_ms,
    bucket_start_ms,
    dataframe_to_ohlcv,
    ohlcv_to_dataframe,
    parse_timeframe,
    resample_ohlcv,
    resample_window,
    timeframe_to_ms,
)

D = 86_400_000


def ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=timezone.utc).timestamp() * 1000)


def daily(start: int, days: int) -> list[list]:
    return [[start + i * D, 10.0 + i, 20.0 + i, 5.0 + i, 15.0 + i, 1.0] for i in range(days)]


def test_monthly_from_daily_calendar_boundaries() -> None:
    rows = daily(ms(2024, 1, 30), 33)  # Jan 30 .. Mar 2 (2024 is a leap year)
    out = resample_ohlcv(rows, "1M")
    assert [r[0] for r in out] == [ms(2024, 1, 1), ms(2024, 2, 1), ms(2024, 3, 1)]
    jan, feb, mar = out
    assert jan == [ms(2024, 1, 1), 10.0, 21.0, 5.0, 16.0, 2.0]  # Jan 30 + 31
    assert feb == [ms(2024, 2, 1), 12.0, 20.0 + 30, 7.0, 15.0 + 30, 29.0]  # 29 days of February
    assert mar[5] == 2.0


def test_multi_month_and_year_anchor_on_calendar() -> None:
    rows = daily(ms(2024, 2, 15), 200)
    quarters = resample_ohlcv(rows, "3M")
    assert [r[0] for r in quarters] == [ms(2024, 1, 1), ms(2024, 4, 1), ms(2024, 7, 1)]
    assert resample_ohlcv(rows, "1y")[0][0] == ms(2024, 1, 1)
    assert sum(r[5] for r in quarters) == 200.0


def test_fixed_multiples_weeks_on_monday_and_drop_incomplete() -> None:
    hourly = [[ms(2024, 6, 3) + i * 3_600_000, 1.0, 2.0, 0.5, 1.5, 2.0] for i in range(5)]
    two_hour = resample_ohlcv(hourly, "2h")
    assert [r[0] for r in two_hour] == [ms(2024, 6, 3), ms(2024, 6, 3, 2), ms(2024, 6, 3, 4)]
    assert two_hour[0][5] == 4.0
    assert len(resample_ohlcv(hourly, "2h", now_ms=ms(2024, 6, 3, 5))) == 2  # 04:00-06:00 still forming
    weeks = resample_ohlcv(daily(ms(2024, 6, 1), 10), "1w")  # Sat Jun 1 .. Mon Jun 10
    assert [datetime.fromtimestamp(r[0] / 1000, timezone.utc).weekday() for r in weeks] == [0, 0, 0]
    assert [r[0] for r in weeks] == [ms(2024, 5, 27), ms(2024, 6, 3), ms(2024, 6, 10)]
    assert resample_ohlcv(daily(ms(2024, 6, 1), 31), "1M", now_ms=ms(2024, 6, 30)) == []


def test_none_volume_and_gaps() -> None:
    rows = [[ms(2024, 1, 2), 1, 2, 0, 1, None], [ms(2024, 3, 5), 3, 4, 2, 3, None]]
    out = resample_ohlcv(rows, "1M")
    assert out == [[ms(2024, 1, 1), 1.0, 2.0, 0.0, 1.0, None], [ms(2024, 3, 1), 3.0, 4.0, 2.0, 3.0, None]]
    assert resample_ohlcv([], "1M") == []


def test_dataframe_helpers_round_trip() -> None:
    rows = [[ms(2024, 1, 2), 1, 2, 0, 1, 5], [ms(2024, 1, 1), 3, 4, 2, 3, None], [ms(2024, 1, 2), 9, 9, 9, 9, 9]]
    frame = ohlcv_to_dataframe(rows)
    assert isinstance(frame.index, pd.DatetimeIndex) and str(frame.index.tz) == "UTC"
    assert frame.index.name == "timestamp"
    assert list(frame.columns) == ["open", "high", "low", "close", "volume"]
    assert frame.index[0] == pd.Timestamp("2024-01-01", tz="UTC") and len(frame) == 2
    assert dataframe_to_ohlcv(frame) == [
        [ms(2024, 1, 1), 3.0, 4.0, 2.0, 3.0, None],
        [ms(2024, 1, 2), 9.0, 9.0, 9.0, 9.0, 9.0],
    ]
    empty = ohlcv_to_dataframe([])
    assert empty.empty and str(empty.index.tz) == "UTC" and dataframe_to_ohlcv(empty) == []


def test_timeframe_helpers() -> None:
    assert parse_timeframe("15m") == (15, "m") and parse_timeframe("1M") == (1, "M")
    with pytest.raises(ccxt.BadRequest):
        parse_timeframe("0h")
    assert timeframe_to_ms("4h") == 4 * 3_600_000 and timeframe_to_ms("1M") == 31 * D
    assert bucket_start_ms(ms(2024, 2, 29, 13), "1M") == ms(2024, 2, 1)
    assert bucket_start_ms(ms(2024, 5, 20), "6M") == ms(2024, 1, 1)
    assert bar_end_ms(ms(2024, 2, 1), "1M") == ms(2024, 3, 1)
    assert bar_end_ms(ms(2024, 12, 1), "1M") == ms(2025, 1, 1)
    assert bar_end_ms(ms(2024, 6, 1, 4), "1d") == ms(2024, 6, 2, 4)


def test_resample_window_covers_whole_buckets() -> None:
    assert resample_window(ms(2024, 1, 1), ms(2024, 3, 1), "1M") == (ms(2024, 1, 1), ms(2024, 3, 1))
    assert resample_window(ms(2024, 1, 15), ms(2024, 3, 2), "1M") == (ms(2024, 2, 1), ms(2024, 4, 1))
    assert resample_window(ms(2024, 1, 1, 1), ms(2024, 1, 1, 5), "2h") == (ms(2024, 1, 1, 2), ms(2024, 1, 1, 6))
