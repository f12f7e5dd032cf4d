"""Snapshots, streaming ticks, depth, historical bars and the HMDS rules, on the sim clock."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from ccxt_ibkr._ib import Crypto, Forex, Stock
from ccxt_ibkr.sim import IBSimulator
from ccxt_ibkr.sim.testing import wait_until

AAPL = Stock("AAPL", "SMART", "USD", conId=265598)


async def q(ib, contract):
    """ib_async keys tickers by conId, so tickers need qualified contracts."""
    (qualified,) = await ib.qualifyContractsAsync(contract)
    return qualified


async def test_snapshot_matches_the_simulator_quote(ib_sim: IBSimulator, ib_client) -> None:
    (ticker,) = await ib_client.reqTickersAsync(AAPL)
    quote = ib_sim.quote("AAPL", "STK", "USD")
    assert (ticker.bid, ticker.ask, ticker.last) == (quote.bid, quote.ask, quote.last)
    assert ticker.bid < ticker.last < ticker.ask
    assert ticker.high >= ticker.low and ticker.close > 0 and ticker.bidSize > 0


async def test_fx_snapshot_has_no_last(ib_client) -> None:
    (ticker,) = await ib_client.reqTickersAsync(await q(ib_client, Forex("EURUSD")))
    assert ticker.bid < ticker.ask
    assert ticker.last != ticker.last or ticker.last in (None, -1)  # NaN / unset for IDEALPRO


async def test_streaming_ticks_follow_the_clock(ib_sim: IBSimulator, ib_client) -> None:
    ticker = ib_client.reqMktData(AAPL)
    await wait_until(ib_client, lambda: ticker.bid == ticker.bid and ticker.bid > 0)
    seen = [ticker.last]
    for _ in range(5):
        ib_sim.advance(60)
        quote = ib_sim.quote("AAPL", "STK", "USD")
        await wait_until(ib_client, lambda q=quote: ticker.last == q.last and ticker.bid == q.bid)
        seen.append(ticker.last)
    assert len(set(seen)) > 1
    ib_client.cancelMktData(AAPL)


async def test_delayed_market_data(ib_sim: IBSimulator, ib_client) -> None:
    ib_client.reqMarketDataType(3)
    (ticker,) = await ib_client.reqTickersAsync(await q(ib_client, Stock("MSFT", "SMART", "USD")))
    inst = ib_sim.instrument("MSFT", "STK", "USD")
    delayed = ib_sim.market.quote(inst, ib_sim.now() - 900)
    assert ticker.bid == delayed.bid and ticker.ask == delayed.ask


async def test_market_depth(ib_sim: IBSimulator, ib_client) -> None:
    ticker = ib_client.reqMktDepth(AAPL, numRows=5)
    await wait_until(ib_client, lambda: len(ticker.domBids) == 5 and len(ticker.domAsks) == 5)
    quote = ib_sim.quote("AAPL", "STK", "USD")
    assert ticker.domBids[0].price == quote.bid and ticker.domAsks[0].price == quote.ask
    ib_sim.advance(120)
    quote = ib_sim.quote("AAPL", "STK", "USD")
    await wait_until(ib_client, lambda: ticker.domBids[0].price == quote.bid)
    ib_client.cancelMktDepth(AAPL)


BAR_SIZES = [
    ("60 S", "1 secs"), ("3600 S", "5 secs"), ("14400 S", "30 secs"), ("1 D", "1 min"), ("2 D", "2 mins"),
    ("1 W", "5 mins"), ("1 W", "15 mins"), ("1 M", "30 mins"), ("1 M", "1 hour"), ("1 M", "4 hours"),
    ("1 Y", "1 day"), ("2 Y", "1 week"), ("2 Y", "1 month"),
]


@pytest.mark.parametrize("duration,bar_size", BAR_SIZES)
async def test_historical_bar_sizes(ib_sim: IBSimulator, ib_client, duration: str, bar_size: str) -> None:
    ib_sim.pacer.enabled = False
    bars = await ib_client.reqHistoricalDataAsync(AAPL, "", duration, bar_size, "TRADES", False, 2)
    assert bars, bar_size
    assert all(b.low <= min(b.open, b.close) and b.high >= max(b.open, b.close) for b in bars)
    assert all(b.volume >= 0 for b in bars)
    dates = [b.date for b in bars]
    assert dates == sorted(dates)


@pytest.mark.parametrize("what", ["MIDPOINT", "BID", "ASK", "BID_ASK"])
async def test_what_to_show(ib_sim: IBSimulator, ib_client, what: str) -> None:
    bars = await ib_client.reqHistoricalDataAsync(Forex("EURUSD"), "", "1 D", "1 hour", what, False, 1)
    assert bars and all(b.volume == -1 for b in bars)


async def test_bid_below_ask_bars(ib_sim: IBSimulator, ib_client) -> None:
    bid = await ib_client.reqHistoricalDataAsync(AAPL, "", "1 D", "1 hour", "BID", True, 1)
    ask = await ib_client.reqHistoricalDataAsync(AAPL, "", "1 D", "1 hour", "ASK", True, 1)
    assert [b.date for b in bid] == [a.date for a in ask]
    assert all(b.close < a.close for b, a in zip(bid, ask, strict=True))


async def test_fx_has_no_trades(ib_client) -> None:
    errors = []
    ib_client.errorEvent += lambda req, code, text, *rest: errors.append((code, text))
    assert list(await ib_client.reqHistoricalDataAsync(Forex("EURUSD"), "", "1 D", "1 hour", "TRADES", False, 1)) == []
    assert errors[0][0] == 162 and "TRADES" in errors[0][1]


async def test_format_dates(ib_client) -> None:
    intraday = await ib_client.reqHistoricalDataAsync(AAPL, "", "1 D", "1 hour", "TRADES", True, 1)
    assert intraday[0].date.tzinfo is not None and str(intraday[0].date.tzinfo) == "US/Eastern"
    assert {b.date.hour for b in intraday} <= set(range(9, 16))  # regular trading hours only
    assert any(b.date.hour == 9 for b in intraday)
    epoch = await ib_client.reqHistoricalDataAsync(AAPL, "", "1 D", "1 hour", "TRADES", True, 2)
    assert [b.date.timestamp() for b in epoch] == [b.date.timestamp() for b in intraday]
    daily = await ib_client.reqHistoricalDataAsync(AAPL, "", "10 D", "1 day", "TRADES", True, 2)
    assert isinstance(daily[0].date, dt.date) and not isinstance(daily[0].date, dt.datetime)
    assert all(d.date.weekday() < 5 for d in daily)


async def test_end_date_time_and_determinism(ib_sim: IBSimulator, ib_client) -> None:
    end = dt.datetime(2025, 6, 6, 20, 0, tzinfo=dt.timezone.utc)
    a = await ib_client.reqHistoricalDataAsync(AAPL, end, "1 D", "5 mins", "TRADES", True, 2)
    assert a[-1].date < end and a[-1].date >= end - dt.timedelta(hours=5)
    ib_sim.advance(20)
    b = await ib_client.reqHistoricalDataAsync(AAPL, end, "1 D", "5 mins", "TRADES", True, 2)
    assert [(x.date, x.close) for x in a] == [(x.date, x.close) for x in b]
    with IBSimulator(port=0, seed=7) as other:
        inst = other.instrument("AAPL", "STK", "USD")
        assert other.market.mid(inst, end.timestamp()) == ib_sim.market.mid(inst, end.timestamp())


async def test_duration_limits(ib_client) -> None:
    errors = []
    ib_client.errorEvent += lambda req, code, text, *rest: errors.append((code, text))
    assert list(await ib_client.reqHistoricalDataAsync(AAPL, "", "2 D", "1 min", "TRADES", False, 1)) == []
    assert errors[-1][0] == 162
    assert list(await ib_client.reqHistoricalDataAsync(AAPL, "", "7200 S", "1 secs", "TRADES", False, 1)) == []
    assert errors[-1][0] == 162


async def test_pacing_identical_request(ib_sim: IBSimulator, ib_client) -> None:
    errors = []
    ib_client.errorEvent += lambda req, code, text, *rest: errors.append((code, text))
    args = (AAPL, "", "1 D", "1 hour", "TRADES", False, 1)
    assert await ib_client.reqHistoricalDataAsync(*args)
    assert list(await ib_client.reqHistoricalDataAsync(*args)) == []
    assert errors[-1][0] == 162 and "pacing violation" in errors[-1][1]
    ib_sim.advance(15)
    assert await ib_client.reqHistoricalDataAsync(*args)


async def test_pacing_six_per_contract_in_two_seconds(ib_sim: IBSimulator, ib_client) -> None:
    errors = []
    ib_client.errorEvent += lambda req, code, text, *rest: errors.append(code)
    durations = ["1 D", "2 D", "3 D", "4 D", "5 D", "6 D"]
    results = [await ib_client.reqHistoricalDataAsync(AAPL, "", d, "1 hour", "TRADES", False, 1) for d in durations]
    assert all(results[:5]) and list(results[5]) == [] and errors == [162]
    ib_sim.advance(2)
    assert await ib_client.reqHistoricalDataAsync(AAPL, "", "7 D", "1 hour", "TRADES", False, 1)


async def test_pacing_sixty_per_ten_minutes(ib_sim: IBSimulator, ib_client) -> None:
    errors = []
    ib_client.errorEvent += lambda req, code, text, *rest: errors.append(code)
    symbols = ["AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "GOOGL", "META", "IBM", "JPM", "KO"]
    count = 0
    for round_ in range(6):
        for sym in symbols:
            bars = await ib_client.reqHistoricalDataAsync(
                Stock(sym, "SMART", "USD"), "", f"{round_ + 1} D", "1 hour", "MIDPOINT", False, 1)
            count += bool(bars)
        ib_sim.advance(3)
    assert count == 60 and errors == []
    assert list(await ib_client.reqHistoricalDataAsync(Stock("SPY", "SMART", "USD"), "", "1 D", "1 hour",
                                                       "MIDPOINT", False, 1)) == []
    assert errors == [162]
    ib_sim.advance(600)
    assert await ib_client.reqHistoricalDataAsync(Stock("SPY", "SMART", "USD"), "", "1 D", "1 hour",
                                                  "MIDPOINT", False, 1)


async def test_keep_up_to_date(ib_sim: IBSimulator, ib_client) -> None:
    bars = await ib_client.reqHistoricalDataAsync(Crypto("BTC", "PAXOS", "USD"), "", "3600 S", "5 mins",
                                                  "MIDPOINT", False, 2, keepUpToDate=True)
    n = len(bars)
    last = bars[-1].date
    updates = []
    bars.updateEvent += lambda b, has_new: updates.append(has_new)
    ib_sim.advance(300)
    await wait_until(ib_client, lambda: len(bars) == n + 1)
    assert bars[-1].date > last and True in updates
    ib_client.cancelHistoricalData(bars)
    await asyncio.sleep(0)


async def test_csv_prices(tmp_path) -> None:
    path = tmp_path / "aapl.csv"
    start = 1_749_560_400  # 13:00 UTC
    rows = ["time,open,high,low,close,volume"]
    for i in range(120):
        price = 100 + i * 0.5
        rows.append(f"{start + i * 60},{price},{price + 0.25},{price - 0.25},{price},{1000 + i}")
    path.write_text("\n".join(rows))
    from ccxt_ibkr.sim.testing import connect

    with IBSimulator(port=0, csv_paths={"AAPL": path}) as sim:
        ib = await connect(sim, client_id=2)
        try:
            bars = await ib.reqHistoricalDataAsync(AAPL, "", "3600 S", "1 min", "TRADES", False, 2)
            assert bars[-1].close == 100 + 59 * 0.5
            (t,) = await ib.reqTickersAsync(AAPL)
            assert t.last == 100 + 60 * 0.5
        finally:
            ib.disconnect()


async def test_empty_window_is_162_no_data(ib_client) -> None:
    errors = []
    ib_client.errorEvent += lambda req, code, text, *rest: errors.append((code, text))
    saturday = dt.datetime(2025, 6, 7, 18, 0, tzinfo=dt.timezone.utc)
    assert list(await ib_client.reqHistoricalDataAsync(AAPL, saturday, "3600 S", "5 mins", "TRADES", False, 1)) == []
    assert errors[0][0] == 162 and "returned no data" in errors[0][1]


async def test_real_time_bars(ib_sim: IBSimulator, ib_client) -> None:
    (aapl,) = await ib_client.qualifyContractsAsync(AAPL)
    bars = ib_client.reqRealTimeBars(aapl, 5, "MIDPOINT", False)
    await ib_client.reqCurrentTimeAsync()  # the subscription is registered
    ib_sim.advance(30)
    await wait_until(ib_client, lambda: len(bars) >= 6)
    times = [b.time.timestamp() for b in bars]
    assert times == sorted(times) and times[1] - times[0] == 5
    inst = ib_sim.instrument("AAPL", "STK", "USD")
    assert bars[-1].close == ib_sim.market.mid(inst, times[-1])
    ib_client.cancelRealTimeBars(bars)
