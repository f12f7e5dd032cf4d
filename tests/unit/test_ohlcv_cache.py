"""OhlcvCache: gaps only, complete bars only, coverage remembered (also for empty market closures)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from normalization.runtime.ohlcv_cache import (
    CacheKey,
    OhlcvCache,
    default_cache_root,
    merge_intervals,
    subtract_intervals,
)
from normalization.runtime.progress import progress_bar, progress_enabled

H = 3_600_000
D = 24 * H
NY = ZoneInfo("America/New_York")


def ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=timezone.utc).timestamp() * 1000)


class FakeBroker:
    """Serves bars at the given start times; counts and records every request."""

    def __init__(self, times: list[int], *, volume: float | None = 1.0) -> None:
        self.times = sorted(times)
        self.calls: list[tuple[int, int]] = []
        self.volume = volume
        self.fail_on_call: int | None = None

    def bar(self, t: int) -> list:
        price = 100.0 + (t // H) % 50
        return [t, price, price + 1, price - 1, price + 0.5, self.volume]

    async def fetch(self, since: int, until: int) -> list[list]:
        self.calls.append((since, until))
        if self.fail_on_call is not None and len(self.calls) == self.fail_on_call:
            raise ConnectionError("dropped")
        return [self.bar(t) for t in self.times if since <= t < until]


def hourly(start: int, end: int) -> list[int]:
    return list(range(start, end, H))


def crypto_key(tf: str = "1h") -> CacheKey:
    return CacheKey("ibkr", "BTC/USD", tf, "TRADES")


@pytest.fixture
def cache(tmp_path) -> OhlcvCache:
    return OhlcvCache(tmp_path / "ohlcv", progress=False)


async def test_second_call_same_range_makes_zero_fetches(cache: OhlcvCache) -> None:
    t0, t1 = ms(2024, 1, 1), ms(2024, 1, 11)
    broker = FakeBroker(hourly(t0, t1 + 10 * D))
    now = ms(2024, 2, 1)
    first = await cache.get(crypto_key(), t0, t1, broker.fetch, H, now)
    assert len(first) == 240 and broker.calls == [(t0, t1)]
    second = await cache.get(crypto_key(), t0, t1, broker.fetch, H, now)
    assert len(broker.calls) == 1
    assert second == first
    # A fresh instance (a new backtest process) reads from disk, still no fetch.
    again = await OhlcvCache(cache.root, progress=False).get(crypto_key(), t0, t1, broker.fetch, H, now)
    assert again == first and len(broker.calls) == 1
    # Sub-range: served entirely from disk.
    sub = await cache.get(crypto_key(), t0 + 5 * H, t0 + 8 * H, broker.fetch, H, now)
    assert [r[0] for r in sub] == [t0 + 5 * H, t0 + 6 * H, t0 + 7 * H]
    assert len(broker.calls) == 1


async def test_only_gaps_are_fetched(cache: OhlcvCache) -> None:
    t0 = ms(2024, 3, 1)
    broker = FakeBroker(hourly(t0 - 10 * D, t0 + 30 * D))
    now = ms(2024, 6, 1)
    await cache.get(crypto_key(), t0, t0 + 2 * D, broker.fetch, H, now)
    await cache.get(crypto_key(), t0 + 4 * D, t0 + 5 * D, broker.fetch, H, now)
    broker.calls.clear()
    rows = await cache.get(crypto_key(), t0 - D, t0 + 6 * D, broker.fetch, H, now)
    assert broker.calls == [(t0 - D, t0), (t0 + 2 * D, t0 + 4 * D), (t0 + 5 * D, t0 + 6 * D)]
    ts = [r[0] for r in rows]
    assert ts == hourly(t0 - D, t0 + 6 * D)
    assert cache.coverage(crypto_key()) == [(t0 - D, t0 + 6 * D)]
    assert cache.fetch_calls == 5


async def test_partial_bar_returned_but_never_cached(cache: OhlcvCache) -> None:
    t0 = ms(2024, 5, 1)
    now = t0 + 10 * H + 20 * 60_000  # 20 minutes into the 10:00 bar
    broker = FakeBroker(hourly(t0, t0 + 11 * H))
    rows = await cache.get(crypto_key(), t0, t0 + D, broker.fetch, H, now)
    assert [r[0] for r in rows][-1] == t0 + 10 * H  # the live candle is returned...
    on_disk = pd.read_parquet(cache.path_for(crypto_key()))
    assert on_disk["timestamp"].max() == t0 + 9 * H  # ...but not stored
    assert cache.coverage(crypto_key()) == [(t0, now - H + 1)]
    # Later: only the tail from the first non-final bar is asked again, nothing before it.
    broker.calls.clear()
    later = now + 2 * H
    broker.times = hourly(t0, t0 + 13 * H)
    rows = await cache.get(crypto_key(), t0, t0 + D, broker.fetch, H, later)
    assert broker.calls == [(now - H + 1, later + 1)]
    assert [r[0] for r in rows] == hourly(t0, t0 + 13 * H)
    assert pd.read_parquet(cache.path_for(crypto_key()))["timestamp"].max() == t0 + 11 * H


async def test_empty_weekend_is_not_refetched(cache: OhlcvCache) -> None:
    # Stock bars Mon-Fri only; 2024-06-08/09 is a weekend.
    key = CacheKey("ibkr", "AAPL/USD", "1h", "TRADES")
    weekdays = [
        t
        for t in hourly(ms(2024, 6, 3), ms(2024, 6, 15))
        if datetime.fromtimestamp(t / 1000, timezone.utc).weekday() < 5
    ]
    broker = FakeBroker(weekdays)
    now = ms(2024, 7, 1)
    sat, mon = ms(2024, 6, 8), ms(2024, 6, 10)
    assert await cache.get(key, sat, mon, broker.fetch, H, now) == []
    assert await cache.get(key, sat, mon, broker.fetch, H, now) == []
    assert len(broker.calls) == 1  # the empty answer was remembered
    # A week around the weekend: only the weekdays are asked, the weekend is already known.
    rows = await cache.get(key, ms(2024, 6, 7), ms(2024, 6, 11), broker.fetch, H, now)
    assert broker.calls[1:] == [(ms(2024, 6, 7), sat), (mon, ms(2024, 6, 11))]
    assert len(rows) == 48
    await cache.get(key, ms(2024, 6, 7), ms(2024, 6, 11), broker.fetch, H, now)
    assert len(broker.calls) == 3


async def test_dst_crossing_range(cache: OhlcvCache) -> None:
    """NYSE 09:30-16:00 New York across the 2026-03-08 DST switch: UTC bar times shift by an hour."""
    times: list[int] = []
    daily: list[int] = []
    day = datetime(2026, 3, 2, tzinfo=NY)
    while day < datetime(2026, 3, 14, tzinfo=NY):
        if day.weekday() < 5:
            opening = day.replace(hour=9, minute=30)
            times += [int((opening + timedelta(hours=i)).timestamp() * 1000) for i in range(7)]
            daily.append(int(day.timestamp() * 1000))  # IB daily bars open at exchange midnight
        day = (day + timedelta(days=1)).replace(hour=0)
    first_open_utc = datetime.fromtimestamp(times[0] / 1000, timezone.utc)
    last_open_utc = datetime.fromtimestamp(times[-7] / 1000, timezone.utc)
    assert (first_open_utc.hour, last_open_utc.hour) == (14, 13)  # EST then EDT
    now = ms(2026, 4, 1)
    since, until = ms(2026, 3, 2), ms(2026, 3, 14)
    hourly_key = CacheKey("ibkr", "AAPL/USD", "1h", "TRADES")
    broker = FakeBroker(times)
    rows = await cache.get(hourly_key, since, until, broker.fetch, H, now)
    assert [r[0] for r in rows] == times
    assert await cache.get(hourly_key, since, until, broker.fetch, H, now) == rows
    assert len(broker.calls) == 1
    daily_key = CacheKey("ibkr", "AAPL/USD", "1d", "TRADES")
    daily_broker = FakeBroker(daily)
    d_rows = await cache.get(daily_key, since, until, daily_broker.fetch, D, now)
    assert [r[0] for r in d_rows] == daily and len(daily) == 10
    assert {datetime.fromtimestamp(t / 1000, timezone.utc).hour for t in daily} == {4, 5}
    await cache.get(daily_key, since, until, daily_broker.fetch, D, now)
    assert len(daily_broker.calls) == 1


async def test_expected_times_skip_closed_market_without_asking(cache: OhlcvCache) -> None:
    key = CacheKey("capitalcom", "US100/USD", "1h", "MID")
    broker = FakeBroker([])
    sat, mon = ms(2024, 6, 8), ms(2024, 6, 10)
    rows = await cache.get(key, sat, mon, broker.fetch, H, ms(2024, 7, 1), expected_times=lambda a, b: [])
    assert rows == [] and broker.calls == []
    # Iterable form: the gap is trimmed to the span where bars are expected.
    expected = [ms(2024, 6, 10, 13), ms(2024, 6, 10, 14)]
    broker.times = expected
    rows = await cache.get(key, sat, ms(2024, 6, 11), broker.fetch, H, ms(2024, 7, 1), expected_times=expected)
    assert broker.calls == [(expected[0], expected[1] + 1)]
    assert [r[0] for r in rows] == expected


async def test_chunks_persist_progress_when_download_is_interrupted(cache: OhlcvCache) -> None:
    t0 = ms(2024, 1, 1)
    broker = FakeBroker(hourly(t0, t0 + 10 * D))
    broker.fail_on_call = 3
    with pytest.raises(ConnectionError):
        await cache.get(crypto_key(), t0, t0 + 10 * D, broker.fetch, H, ms(2025, 1, 1), chunk_ms=2 * D)
    assert cache.coverage(crypto_key()) == [(t0, t0 + 4 * D)]
    broker.fail_on_call = None
    broker.calls.clear()
    rows = await cache.get(crypto_key(), t0, t0 + 10 * D, broker.fetch, H, ms(2025, 1, 1), chunk_ms=4 * D)
    assert broker.calls == [(t0 + 4 * D, t0 + 8 * D), (t0 + 8 * D, t0 + 10 * D)]
    assert len(rows) == 240


async def test_duplicates_newest_wins_and_none_volume_round_trips(cache: OhlcvCache) -> None:
    t0 = ms(2024, 1, 1)
    now = ms(2024, 2, 1)

    async def fetch(a: int, b: int) -> list[list]:
        return [[t0 + H, 2, 3, 1, 2, None], [t0, 1, 2, 0.5, 1.5, None], [t0 + H, 9, 9, 9, 9, None]]

    rows = await cache.get(crypto_key(), t0, t0 + 3 * H, fetch, H, now)
    assert rows == [[t0, 1.0, 2.0, 0.5, 1.5, None], [t0 + H, 9.0, 9.0, 9.0, 9.0, None]]
    assert all(isinstance(r[0], int) for r in rows)
    df = await cache.get_dataframe(crypto_key(), t0, t0 + 3 * H, fetch, H, now)
    assert list(df.columns) == ["open", "high", "low", "close", "volume"]
    assert str(df.index.tz) == "UTC" and df["volume"].isna().all()


async def test_two_writers_on_one_root_keep_each_others_bars(tmp_path) -> None:
    t0 = ms(2024, 1, 1)
    broker = FakeBroker(hourly(t0, t0 + 4 * D))
    now = ms(2024, 2, 1)
    a, b = OhlcvCache(tmp_path, progress=False), OhlcvCache(tmp_path, progress=False)
    # a reads (empty) and holds its in-memory view while b writes a different range.
    await b.get(crypto_key(), t0 + 2 * D, t0 + 4 * D, broker.fetch, H, now)
    await a.get(crypto_key(), t0, t0 + 2 * D, broker.fetch, H, now)
    assert a.coverage(crypto_key()) == [(t0, t0 + 4 * D)]
    broker.calls.clear()
    rows = await a.get(crypto_key(), t0, t0 + 4 * D, broker.fetch, H, now)
    assert len(rows) == 96 and broker.calls == []


async def test_month_timeframe_completeness_uses_calendar(cache: OhlcvCache) -> None:
    key = crypto_key("1M")
    months = [ms(2024, m, 1) for m in range(1, 8)]
    broker = FakeBroker(months)
    now = ms(2024, 7, 15)
    rows = await cache.get(key, ms(2024, 1, 1), ms(2024, 8, 1), broker.fetch, 31 * D, now)
    assert [r[0] for r in rows] == months  # July is returned (live) ...
    stored = pd.read_parquet(cache.path_for(key))["timestamp"].tolist()
    assert stored == months[:-1]  # ... but only Jan-Jun are complete


def test_paths_interval_helpers_and_default_root(tmp_path, monkeypatch) -> None:
    cache = OhlcvCache(tmp_path)
    minute = cache.path_for(CacheKey("ibkr", "ES/USD:USD-251219", "1m", "TRADES"))
    month = cache.path_for(CacheKey("ibkr", "ES/USD:USD-251219", "1M", "TRADES"))
    assert minute.name.lower() != month.name.lower()
    assert "/" not in minute.parent.name and ":" not in minute.parent.name
    assert merge_intervals([(5, 7), (1, 3), (3, 4), (6, 9)]) == [(1, 4), (5, 9)]
    assert subtract_intervals(0, 10, [(2, 4), (6, 12)]) == [(0, 2), (4, 6)]
    assert subtract_intervals(0, 10, []) == [(0, 10)]
    monkeypatch.delenv("CCXT_BROKERS_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if default_cache_root().is_relative_to(tmp_path):
        assert default_cache_root() == tmp_path / "xdg" / "ccxt-brokers" / "ohlcv"
    monkeypatch.setenv("CCXT_BROKERS_CACHE_DIR", str(tmp_path / "mine"))
    assert default_cache_root() == tmp_path / "mine"


async def test_sync_fetcher_is_a_clear_error(cache: OhlcvCache) -> None:
    with pytest.raises(TypeError, match="async"):
        await cache.get(crypto_key(), 0, H, lambda a, b: [], H, 10 * H)  # type: ignore[arg-type,return-value]


def test_progress_is_off_without_a_terminal_and_env_forces_it(monkeypatch) -> None:
    import io

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("CCXT_BROKERS_PROGRESS", raising=False)
    assert progress_enabled(io.StringIO()) is False
    assert progress_enabled(Tty()) is True
    with progress_bar(total=10, stream=io.StringIO()) as bar:
        assert bar.disable
    monkeypatch.setenv("CCXT_BROKERS_PROGRESS", "1")
    assert progress_enabled(io.StringIO()) is True
    monkeypatch.setenv("CCXT_BROKERS_PROGRESS", "0")
    assert progress_enabled(Tty()) is False
    out = Tty()
    with progress_bar(total=4, desc="AAPL 1h", stream=out, enabled=True, delay=0) as bar:
        bar.update(4)
    assert "AAPL 1h" in out.getvalue()


async def test_damaged_cache_file_is_refetched_and_replaced(cache: OhlcvCache) -> None:
    t0 = ms(2024, 1, 1)
    broker = FakeBroker(hourly(t0, t0 + D))
    path = cache.path_for(crypto_key())
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not parquet")
    rows = await cache.get(crypto_key(), t0, t0 + D, broker.fetch, H, ms(2024, 2, 1))
    assert len(rows) == 24 and len(broker.calls) == 1
    await cache.get(crypto_key(), t0, t0 + D, broker.fetch, H, ms(2024, 2, 1))
    assert len(broker.calls) == 1
