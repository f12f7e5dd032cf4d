"""fetch_ohlcv_via_cache against a fake broker: ccxt windows, gap-only fetching, partial bars, resampling,
DST and holidays. The broker here is a function, so every request it gets can be counted."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from normalization.runtime.ohlcv_cache import OhlcvCache
from normalization.runtime.ohlcv_service import (
    DEFAULT_LIMIT,
    OHLCV_CACHE_ENV,
    CachedOhlcvMixin,
    cache_for,
    default_chunk_ms,
    fetch_ohlcv_via_cache,
    ohlcv_window,
    with_runner_mixins,
)
from normalization.runtime.resample import timeframe_to_ms

H = 3_600_000
D = 24 * H
NY = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")


def ms(*args: int, tz: dt.tzinfo = dt.timezone.utc) -> int:
    return int(dt.datetime(*args, tzinfo=tz).timestamp() * 1000)


class FakeExchange:
    """Just what the service reads from an exchange: id, options, milliseconds()."""

    def __init__(self, options: dict | None = None, now: int = 0, exchange_id: str = "ibkr") -> None:
        self.id = exchange_id
        self.options = options or {}
        self.now = now

    def milliseconds(self) -> int:
        return self.now


class Broker:
    """Bars at the start times ``times(a, b)`` yields; records every request."""

    def __init__(self, times, now: int) -> None:
        self.times = times
        self.now = now
        self.calls: list[tuple[int, int]] = []

    async def fetch(self, a: int, b: int) -> list[list]:
        self.calls.append((a, b))
        out = []
        for t in self.times(a, min(b, self.now + 1)):
            price = 100.0 + (t // H) % 37
            out.append([t, price, price + 1, price - 1, price + 0.5, 10.0])
        return out


def crypto_hours(a: int, b: int):
    return range(-(-a // H) * H, b, H)


def ny_stock_hours(holidays: frozenset[dt.date] = frozenset()):
    """Hourly bars 09:30-15:30 New York time on weekdays, none on ``holidays``: UTC times move with DST."""

    def times(a: int, b: int):
        day = dt.datetime.fromtimestamp(a / 1000, NY).date() - dt.timedelta(days=1)
        last = dt.datetime.fromtimestamp(b / 1000, NY).date() + dt.timedelta(days=1)
        while day <= last:
            if day.isoweekday() <= 5 and day not in holidays:
                for hour in range(9, 16):
                    t = int(dt.datetime(day.year, day.month, day.day, hour, 30, tzinfo=NY).timestamp() * 1000)
                    if a <= t < b:
                        yield t
            day += dt.timedelta(days=1)

    return times


def daily_at(zone: ZoneInfo):
    """Daily bars opening at midnight of ``zone`` (IB daily bars open at the exchange's midnight)."""

    def times(a: int, b: int):
        day = dt.datetime.fromtimestamp(a / 1000, zone).date() - dt.timedelta(days=1)
        last = dt.datetime.fromtimestamp(b / 1000, zone).date() + dt.timedelta(days=1)
        while day <= last:
            t = int(dt.datetime(day.year, day.month, day.day, tzinfo=zone).timestamp() * 1000)
            if a <= t < b and day.isoweekday() <= 5:
                yield t
            day += dt.timedelta(days=1)

    return times


@pytest.fixture
def cached(tmp_path) -> FakeExchange:
    return FakeExchange({"ohlcvCache": str(tmp_path / "cache"), "ohlcvProgress": False})


# -- windows ----------------------------------------------------------------------------------------


def test_window_follows_ccxt_since_limit_until() -> None:
    now = ms(2025, 6, 10, 14)
    since = ms(2025, 6, 1)
    assert ohlcv_window("1h", since, 10, None, now) == (since, since + 10 * H, "forward")
    assert ohlcv_window("1h", since, None, None, now) == (since, now + 1, "fixed")
    # until is inclusive (ccxt), so the bar starting exactly at until is in.
    assert ohlcv_window("1h", since, 5, since + 3 * H, now) == (since, since + 3 * H + 1, "fixed")
    assert ohlcv_window("1h", None, 24, None, now) == (now + 1 - 24 * H, now + 1, "backward")
    assert ohlcv_window("1h", None, None, since, now) == (since + 1 - DEFAULT_LIMIT * H, since + 1, "backward")
    # nothing can start after now, whatever until says
    assert ohlcv_window("1h", since, None, now + 10 * D, now)[1] == now + 1


def test_default_chunks_are_one_broker_request() -> None:
    # one bar short of the broker's maximum: chunk + one bar of overlap is still one request
    assert default_chunk_ms("ibkr", "1h") == 30 * D - H  # IB: "1 M" per 1-hour request
    assert default_chunk_ms("ibkr", "1m") == D - 60_000  # "1 D" per 1-minute request
    assert default_chunk_ms("capitalcom", "1h") == 999 * H  # Capital: 1000 bars
    assert default_chunk_ms("gemini", "5m") == 999 * 5 * 60_000


# -- cache switch -----------------------------------------------------------------------------------


def test_cache_is_off_by_default_and_switched_by_option_or_env(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(OHLCV_CACHE_ENV, raising=False)
    assert cache_for(FakeExchange()) is None
    assert cache_for(FakeExchange({"ohlcvCache": False})) is None
    ex = FakeExchange({"ohlcvCache": str(tmp_path)})
    cache = cache_for(ex)
    assert isinstance(cache, OhlcvCache) and cache.root == tmp_path
    assert cache_for(ex) is cache  # one instance per exchange: its locks and counters persist
    ex.options["ohlcvCache"] = str(tmp_path / "other")
    assert cache_for(ex).root == tmp_path / "other"
    own = OhlcvCache(tmp_path / "mine")
    assert cache_for(FakeExchange({"ohlcvCache": own})) is own
    monkeypatch.setenv("CCXT_BROKERS_CACHE_DIR", str(tmp_path / "default"))
    assert cache_for(FakeExchange({"ohlcvCache": True})).root == tmp_path / "default"
    monkeypatch.setenv(OHLCV_CACHE_ENV, "1")
    assert cache_for(FakeExchange()).root == tmp_path / "default"
    monkeypatch.setenv(OHLCV_CACHE_ENV, str(tmp_path / "env"))
    assert cache_for(FakeExchange()).root == tmp_path / "env"
    assert cache_for(FakeExchange({"ohlcvCache": False})) is None  # the option beats the environment
    monkeypatch.setenv(OHLCV_CACHE_ENV, "off")
    assert cache_for(FakeExchange()) is None
    with pytest.raises(TypeError):
        cache_for(FakeExchange({"ohlcvCache": 3}))


# -- fetching ---------------------------------------------------------------------------------------


async def test_uncached_calls_the_broker_for_the_window_only(monkeypatch) -> None:
    monkeypatch.delenv(OHLCV_CACHE_ENV, raising=False)
    now = ms(2025, 6, 10, 14)
    broker = Broker(crypto_hours, now)
    ex = FakeExchange(now=now)
    since = ms(2025, 6, 1)
    rows = await fetch_ohlcv_via_cache(ex, "BTC/USD", "1h", since, 5, fetch_range=broker.fetch)
    assert [r[0] for r in rows] == [since + i * H for i in range(5)]
    assert broker.calls == [(since, since + 5 * H)]
    last = await fetch_ohlcv_via_cache(ex, "BTC/USD", "1h", None, 3, fetch_range=broker.fetch)
    assert [r[0] for r in last] == [now - 2 * H, now - H, now]  # the forming bar is returned
    assert await fetch_ohlcv_via_cache(ex, "BTC/USD", "1h", since, 0, fetch_range=broker.fetch) == []


async def test_second_run_asks_the_broker_nothing(cached: FakeExchange) -> None:
    now = ms(2025, 6, 10, 14, 20)
    cached.now = now
    broker = Broker(crypto_hours, now)
    since, until = ms(2025, 1, 1), ms(2025, 6, 1) - 1
    first = await fetch_ohlcv_via_cache(
        cached, "BTC/USD", "1h", since, None, {"until": until}, fetch_range=broker.fetch
    )
    assert len(first) == (ms(2025, 6, 1) - since) // H
    assert len(broker.calls) == 6  # 151 days in 30-day IB requests
    assert all(b - a <= 30 * D for a, b in broker.calls)
    broker.calls.clear()
    again = await fetch_ohlcv_via_cache(
        cached, "BTC/USD", "1h", since, None, {"until": until}, fetch_range=broker.fetch
    )
    assert again == first and broker.calls == []
    # a longer window asks only for the part it does not have
    more = await fetch_ohlcv_via_cache(
        cached, "BTC/USD", "1h", since, None, {"until": ms(2025, 6, 5) - 1}, fetch_range=broker.fetch
    )
    assert more[: len(first)] == first and broker.calls == [(ms(2025, 6, 1), ms(2025, 6, 5) + H)]


async def test_a_bar_cut_short_by_a_request_end_is_never_stored(cached: FakeExchange) -> None:
    """IB builds the last bar of a request only up to the request's end (a month asked up to the 6th
    holds six days); each chunk is therefore asked one bar further and the cut bar dropped."""
    now = ms(2025, 6, 10, 14, 20)
    full = Broker(crypto_hours, now)

    async def cutting(a: int, b: int) -> list[list]:
        rows = await full.fetch(a, b)
        return [[t, o, h, lo, c, v * min(1.0, (b - t) / H)] for t, o, h, lo, c, v in rows]

    since = ms(2025, 5, 1, 0, 0)
    rows = await fetch_ohlcv_via_cache(
        cached,
        "BTC/USD",
        "1h",
        since,
        None,
        {"until": ms(2025, 5, 3, 7, 30)},
        fetch_range=cutting,
        chunk_ms=7 * H + 1_800_000,
    )
    assert all(r[5] == 10.0 for r in rows)  # every stored bar is whole, including those at chunk ends


async def test_partial_bar_is_returned_but_never_cached(cached: FakeExchange) -> None:
    now = ms(2025, 6, 10, 14, 20)
    broker = Broker(crypto_hours, now)
    rows = await fetch_ohlcv_via_cache(cached, "BTC/USD", "1h", None, 24, fetch_range=broker.fetch, now_ms=now)
    assert rows[-1][0] == ms(2025, 6, 10, 14)  # forming bar included
    frame = pd.read_parquet(cache_for(cached).path_for(_key("BTC/USD", "1h")))
    assert int(frame["timestamp"].max()) == ms(2025, 6, 10, 13)  # ...but only complete bars on disk
    broker.calls.clear()
    await fetch_ohlcv_via_cache(cached, "BTC/USD", "1h", None, 24, fetch_range=broker.fetch, now_ms=now)
    # one request, for the hour that may still change (bars starting after now - 1h): the forming bar
    assert broker.calls == [(now - H + 1, now + 1)]


async def test_now_may_come_from_the_broker_clock(cached: FakeExchange) -> None:
    broker_now = ms(2025, 6, 10, 14)
    broker = Broker(crypto_hours, broker_now)
    cached.now = ms(2026, 11, 23)  # the local clock is far ahead of a simulator's

    async def fetch_time() -> int:
        return broker_now

    rows = await fetch_ohlcv_via_cache(cached, "BTC/USD", "1h", None, 2, fetch_range=broker.fetch, now_ms=fetch_time)
    assert [r[0] for r in rows] == [broker_now - H, broker_now]
    rows = await fetch_ohlcv_via_cache(
        cached, "BTC/USD", "1h", None, 2, fetch_range=broker.fetch, now_ms=lambda: broker_now
    )
    assert [r[0] for r in rows] == [broker_now - H, broker_now]


async def test_limit_with_nights_weekends_widens_until_enough_bars(cached: FakeExchange) -> None:
    now = ms(2025, 6, 10, 20)
    broker = Broker(ny_stock_hours(), now)
    since = ms(2025, 5, 30, 20)  # Friday after the close: nothing until Monday 09:30 New York
    rows = await fetch_ohlcv_via_cache(cached, "AAPL/USD", "1h", since, 10, fetch_range=broker.fetch, now_ms=now)
    assert len(rows) == 10
    assert rows[0][0] == ms(2025, 6, 2, 9, 30, tz=NY)
    calls = len(broker.calls)
    assert calls >= 2  # 10 hours of wall time after Friday's close held no bar
    broker.calls.clear()
    assert (
        await fetch_ohlcv_via_cache(cached, "AAPL/USD", "1h", since, 10, fetch_range=broker.fetch, now_ms=now) == rows
    )
    assert broker.calls == []
    tail = await fetch_ohlcv_via_cache(cached, "AAPL/USD", "1h", None, 30, fetch_range=broker.fetch, now_ms=now)
    assert len(tail) == 30 and tail[-1][0] == ms(2025, 6, 10, 15, 30, tz=NY)


async def test_dst_change_and_holidays_are_never_asked_twice(cached: FakeExchange) -> None:
    # US DST began 2025-03-09: the 09:30 New York bar moves from 14:30 to 13:30 UTC. 2025-02-17 and
    # 2025-04-18 were exchange holidays (Presidents' Day, Good Friday): no bars, and that is not a gap.
    holidays = frozenset({dt.date(2025, 2, 17), dt.date(2025, 4, 18)})
    now = ms(2025, 6, 10, 20)
    broker = Broker(ny_stock_hours(holidays), now)
    since, until = ms(2025, 2, 1), ms(2025, 5, 1) - 1
    rows = await fetch_ohlcv_via_cache(
        cached, "AAPL/USD", "1h", since, None, {"until": until}, fetch_range=broker.fetch, now_ms=now
    )
    direct = [r for r in await Broker(ny_stock_hours(holidays), now).fetch(since, until + 1)]
    assert rows == direct
    opens = {
        dt.datetime.fromtimestamp(r[0] / 1000, dt.timezone.utc).strftime("%H:%M")
        for r in rows
        if dt.datetime.fromtimestamp(r[0] / 1000, NY).hour == 9
    }
    assert opens == {"14:30", "13:30"}  # both sides of the DST change
    days = {dt.datetime.fromtimestamp(r[0] / 1000, NY).date() for r in rows}
    assert not days & holidays
    broker.calls.clear()
    again = await fetch_ohlcv_via_cache(
        cached, "AAPL/USD", "1h", since, None, {"until": until}, fetch_range=broker.fetch, now_ms=now
    )
    assert again == rows and broker.calls == []


async def test_month_is_resampled_from_daily_bars_at_exchange_midnight(cached: FakeExchange) -> None:
    # Tokyo's daily bars open at 15:00 UTC the day before: 2025-04-01 (JST) opens 2025-03-31T15:00Z
    # and belongs to April, not March.
    now = ms(2025, 6, 10, 3)
    broker = Broker(daily_at(TOKYO), now)
    since = ms(2025, 1, 1)
    months = await fetch_ohlcv_via_cache(
        cached, "7203/JPY", "1M", since, None, fetch_range=broker.fetch, source_timeframe="1d", now_ms=now
    )
    assert [r[0] for r in months] == [ms(2025, m, 1) for m in range(1, 7)]  # June is forming, and returned
    daily = await Broker(daily_at(TOKYO), now).fetch(ms(2024, 12, 30), now + 1)
    april = [
        r
        for r in daily
        if dt.datetime.fromtimestamp(r[0] / 1000, TOKYO).month == 4
        and dt.datetime.fromtimestamp(r[0] / 1000, TOKYO).year == 2025
    ]
    got = months[3]
    assert got[1] == april[0][1] and got[4] == april[-1][4]
    assert got[2] == max(r[2] for r in april) and got[3] == min(r[3] for r in april)
    assert got[5] == sum(r[5] for r in april)
    # only the source (1d) series is stored, so a half-built month can never be frozen on disk
    files = sorted(p.name for p in cache_for(cached).root.rglob("*.parquet"))
    assert files == ["1d_TRADES.parquet"]
    broker.calls.clear()
    assert (
        await fetch_ohlcv_via_cache(
            cached, "7203/JPY", "1M", since, 3, fetch_range=broker.fetch, source_timeframe="1d", now_ms=now
        )
        == months[:3]
    )
    assert broker.calls == []


async def test_backward_search_gives_up_on_an_instrument_without_history(cached: FakeExchange) -> None:
    now = ms(2025, 6, 10)
    broker = Broker(lambda a, b: range(0), now)
    assert await fetch_ohlcv_via_cache(cached, "NEW/USD", "1d", None, 5, fetch_range=broker.fetch, now_ms=now) == []
    calls = len(broker.calls)
    assert 0 < calls <= 9 * 30
    broker.calls.clear()
    await fetch_ohlcv_via_cache(cached, "NEW/USD", "1d", None, 5, fetch_range=broker.fetch, now_ms=now)
    assert broker.calls == [(now - D + 1, now + 1)]  # only the day whose bar may still be forming


def _key(instrument: str, tf: str):
    from normalization.runtime.ohlcv_cache import CacheKey

    return CacheKey("ibkr", instrument, tf, "TRADES")


# -- the mixin adapters put first in their bases ------------------------------------------------------


class FakeAdapter:
    """An adapter's own fetch_ohlcv (forward pagination from ``since`` to ``until``), counted."""

    id = "capitalcom"
    has = {"fetchTime": True}

    def __init__(self, options: dict, now: int) -> None:
        self.options = options
        self.now = now
        self.calls: list[tuple] = []
        self.markets = {"EUR/USD": {"id": "EURUSD", "symbol": "EUR/USD"}}

    async def load_markets(self) -> dict:
        return self.markets

    def market(self, symbol: str) -> dict:
        return self.markets[symbol]

    def milliseconds(self) -> int:
        return self.now

    async def fetch_time(self) -> int:
        return self.now

    async def fetch_ohlcv(self, symbol, timeframe="1m", since=None, limit=None, params={}):
        self.calls.append((timeframe, since, limit, dict(params)))
        step = timeframe_to_ms(timeframe)
        start = since if since is not None else self.now - (limit or 10) * step
        end = params.get("until", self.now + 1)
        return [[t, 1.0, 2.0, 0.5, 1.5, 1.0] for t in range(-(-start // step) * step, min(end, self.now + 1), step)]


async def test_mixin_passes_through_when_the_cache_is_off_and_resamples_when_on(tmp_path) -> None:
    now = ms(2024, 3, 5, 15)
    composed = with_runner_mixins(FakeAdapter)
    assert issubclass(composed, CachedOhlcvMixin) and with_runner_mixins(composed) is composed
    off = composed({}, now)
    assert len(await off.fetch_ohlcv("EUR/USD", "1h", None, 3)) == 4  # the fake's own answer, as is
    assert off.calls == [("1h", None, 3, {})]  # the adapter's own method, untouched
    on = composed({"ohlcvCache": str(tmp_path), "ohlcvProgress": False}, now)
    months = await on.fetch_ohlcv("EUR/USD", "1M", ms(2023, 11, 1), None, {"until": ms(2024, 2, 1) - 1})
    assert [r[0] for r in months] == [ms(2023, 11, 1), ms(2023, 12, 1), ms(2024, 1, 1)]
    assert {c[0] for c in on.calls} == {"1d"}  # Capital has no monthly bars: fetched as days
    assert all("until" in c[3] for c in on.calls)
    on.calls.clear()
    assert await on.fetch_ohlcv("EUR/USD", "1M", ms(2023, 11, 1), None, {"until": ms(2024, 2, 1) - 1}) == months
    assert on.calls == []
    assert sorted(p.name for p in tmp_path.rglob("*.parquet")) == ["1d_DEFAULT.parquet"]
