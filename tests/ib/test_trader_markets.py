"""IBTrader markets and market data, end to end: simulator socket <- ib_async/ib_insync <- IBTrader.

Every test runs for the sync and the async face; every structure goes through ccxt's validators.
"""

# ruff: noqa: F811 - the fixtures imported from trader_fixtures are re-bound as test parameters
from __future__ import annotations

import dataclasses
import datetime as dt

import ccxt
import pytest

import ccxt_ibkr
from ccxt_ibkr.async_support import IBTrader as AsyncIBTrader
from ccxt_ibkr.sim.server import IBSimulator
from ccxt_ibkr.sim.testing import eventually
from tests.conformance import check_market, check_markets, check_ohlcv, check_ticker
from tests.ib.trader_fixtures import (  # noqa: F401 - fixtures
    ex,
    face,
    make_trader,
    run,
    sim,
    trader_options,
    trader_sim,
)

HOUR = 3_600_000
DAY = 86_400_000


async def test_load_markets_precision_and_limits(ex) -> None:
    markets = await run(ex.load_markets())
    check_markets(ex, markets.values())
    aapl, eur, btc = markets["AAPL/USD"], markets["EUR/USD"], markets["BTC/USD"]
    assert aapl["id"] == "265598" and aapl["type"] == "spot" and aapl["spot"] is True
    assert aapl["precision"]["amount"] == 1.0 and aapl["precision"]["price"] == 0.01
    assert aapl["limits"]["amount"]["min"] == 1.0
    assert aapl["info"]["conId"] == 265598 and aapl["info"]["timeZoneId"]
    assert aapl["info"]["tradingHours"] and aapl["info"]["liquidHours"]
    assert eur["base"] == "EUR" and eur["quote"] == "USD" and eur["precision"]["price"] == 0.00005
    assert btc["precision"]["amount"] == 0.0001 and btc["limits"]["amount"]["min"] == 0.0001
    assert ex.market("AAPL/USD") is not None  # sync face mirrors the tables; async has them natively


async def test_future_market_is_a_linear_dated_contract(ex, sim: IBSimulator) -> None:
    future = next(i for i in sim.catalogue if i.sec_type == "FUT" and i.expiry_ts() > sim.now())
    symbol = f"ES/USD:USD-{future.last_trade_date[2:]}"
    ticker = await run(ex.fetch_ticker(symbol))  # resolved on demand: not in options['symbols']
    check_ticker(ex, ticker, symbol)
    market = ex.market(symbol)
    check_market(ex, market)
    assert market["type"] == "future" and market["future"] and market["contract"] and market["linear"]
    assert market["contractSize"] == 50.0 and market["settle"] == "USD" and market["precision"]["price"] == 0.25
    expiry = dt.datetime.strptime(future.last_trade_date, "%Y%m%d").replace(tzinfo=dt.timezone.utc)
    assert market["expiry"] == int(expiry.timestamp() * 1000)
    assert market["expiryDatetime"] == ex.iso8601(market["expiry"])


async def test_unknown_symbol_raises_bad_symbol(ex) -> None:
    with pytest.raises(ccxt.BadSymbol):
        await run(ex.fetch_ticker("NOPE/USD"))
    with pytest.raises(ccxt.BadSymbol):
        await run(ex.fetch_ticker("not a symbol"))


async def test_unknown_symbol_in_the_universe_fails_load_markets(make_trader) -> None:
    trader = make_trader(symbols=["AAPL/USD", "ZZZZ/USD"])
    with pytest.raises(ccxt.BadSymbol, match="ZZZZ"):
        await run(trader.load_markets())


async def test_symbol_resolved_on_demand_joins_the_markets(ex) -> None:
    await run(ex.load_markets())
    assert "IBM/USD" not in ex.markets
    ticker = await run(ex.fetch_ticker("IBM/USD"))
    check_ticker(ex, ticker, "IBM/USD")
    assert "IBM/USD" in ex.markets and ex.market("IBM/USD")["id"] == "8314"
    assert "IBM" in ex.currencies


async def test_ambiguous_symbol_names_candidates_unless_configured(face, tmp_path) -> None:
    # A second USD listing of the same ticker (as TWS has for many dual-listed names): ambiguous.
    from ccxt_ibkr.sim.catalogue import default_instruments
    from ccxt_ibkr.sim.testing import running_simulator

    with running_simulator() as own:
        instruments = default_instruments(own.now())
        aapl = next(i for i in instruments if i.symbol == "AAPL")
        twin = dataclasses.replace(aapl, con_id=999001, primary_exchange="IEX", valid_exchanges=("SMART", "IEX"))
    with running_simulator(instruments=[*instruments, twin]) as other:
        config = trader_options(other, tmp_path / "j.sqlite", symbols=[])
        trader = (ccxt_ibkr.IBTrader if face == "sync" else AsyncIBTrader)({"options": config})
        try:
            with pytest.raises(ccxt.BadSymbol, match="ambiguous") as raised:
                await run(trader.fetch_ticker("AAPL/USD"))
            assert "NASDAQ" in str(raised.value) and "IEX" in str(raised.value)
            trader.options["contracts"] = {"AAPL/USD": {"primaryExchange": "IEX"}}
            ticker = await run(trader.fetch_ticker("AAPL/USD"))
            check_ticker(trader, ticker, "AAPL/USD")
            assert trader.market("AAPL/USD")["id"] == "999001"
        finally:
            await run(trader.close())


async def test_fetch_ticker_stock_and_fx_mid(ex) -> None:
    ticker = await run(ex.fetch_ticker("AAPL/USD"))
    check_ticker(ex, ticker, "AAPL/USD")
    assert ticker["bid"] < ticker["ask"] and ticker["last"] == ticker["close"]
    fx = await run(ex.fetch_ticker("EUR/USD"))
    check_ticker(ex, fx, "EUR/USD")
    assert fx["last"] == pytest.approx((fx["bid"] + fx["ask"]) / 2)


async def test_fetch_tickers(ex) -> None:
    tickers = await run(ex.fetch_tickers(["AAPL/USD", "MSFT/USD"]))
    assert set(tickers) == {"AAPL/USD", "MSFT/USD"}
    for symbol, ticker in tickers.items():
        check_ticker(ex, ticker, symbol, method="fetchTickers")


async def test_fetch_order_book(ex) -> None:
    book = await run(ex.fetch_order_book("AAPL/USD", 3))
    assert book["symbol"] == "AAPL/USD"
    assert 0 < len(book["bids"]) <= 3 and 0 < len(book["asks"]) <= 3
    assert book["bids"][0][0] < book["asks"][0][0]
    assert [b[0] for b in book["bids"]] == sorted((b[0] for b in book["bids"]), reverse=True)


async def test_fetch_time_and_status(ex, sim: IBSimulator) -> None:
    assert await run(ex.fetch_time()) == int(sim.now() * 1000)
    status = await run(ex.fetch_status())
    assert status["status"] == "ok"


async def test_fetch_status_reports_an_ib_outage_as_maintenance(ex, sim: IBSimulator) -> None:
    await run(ex.fetch_time())  # connected
    supervisor = (ex.impl if hasattr(ex, "impl") else ex).supervisor
    sim.start_outage()
    try:
        await eventually(lambda: supervisor.state == "outage")
        assert (await run(ex.fetch_status()))["status"] == "maintenance"
        with pytest.raises(ccxt.ExchangeNotAvailable):  # fails fast: nothing is sent during an outage
            await run(ex.fetch_ticker("AAPL/USD"))
    finally:
        sim.end_outage(data_lost=False)
    await eventually(lambda: supervisor.state == "connected" and not supervisor.healing)
    assert (await run(ex.fetch_status()))["status"] == "ok"


async def test_fetch_ohlcv_latest_bars(ex, sim: IBSimulator) -> None:
    bars = await run(ex.fetch_ohlcv("AAPL/USD", "1h", limit=5))
    check_ohlcv(ex, bars, "AAPL/USD")
    assert len(bars) == 5
    assert all(b[0] % HOUR == 0 for b in bars) and bars[-1][0] <= sim.now() * 1000
    assert all(isinstance(b[0], int) for b in bars)


async def test_fetch_ohlcv_daily_bars_are_utc_midnights(ex) -> None:
    bars = await run(ex.fetch_ohlcv("AAPL/USD", "1d", limit=5))
    check_ohlcv(ex, bars, "AAPL/USD")
    assert len(bars) == 5
    for bar in bars:
        day = dt.datetime.fromtimestamp(bar[0] / 1000, dt.timezone.utc)
        assert (day.hour, day.minute) == (0, 0) and day.weekday() < 5


async def test_fetch_ohlcv_since_paginates_with_the_fewest_requests(ex, sim: IBSimulator) -> None:
    # 1h bars: IB allows at most "1 M" (30 days) per request, so 75 days take exactly 3 requests.
    before = sim.pacer_requests() if hasattr(sim, "pacer_requests") else None
    start = int(sim.now() * 1000) - 75 * DAY
    start -= start % HOUR
    served = sim.stats_bars_served
    bars = await run(ex.fetch_ohlcv("MSFT/USD", "1h", since=start))
    check_ohlcv(ex, bars, "MSFT/USD")
    assert bars[0][0] >= start and bars[-1][0] <= sim.now() * 1000
    assert len({b[0] for b in bars}) == len(bars)
    assert sim.stats_bars_served - served >= len(bars)
    assert before is None or sim.pacer_requests() - before == 3


async def test_fetch_ohlcv_since_and_limit(ex, sim: IBSimulator) -> None:
    start = int(sim.now() * 1000) - 3 * DAY
    start -= start % HOUR
    bars = await run(ex.fetch_ohlcv("AAPL/USD", "5m", since=start, limit=20))
    check_ohlcv(ex, bars, "AAPL/USD")
    assert 0 < len(bars) <= 20 and bars[0][0] >= start


async def test_fetch_ohlcv_fx_uses_midpoint_and_price_param(ex) -> None:
    mid = await run(ex.fetch_ohlcv("EUR/USD", "1h", limit=3))
    check_ohlcv(ex, mid, "EUR/USD")
    assert all(b[5] is None for b in mid)  # MIDPOINT bars carry no volume
    bid = await run(ex.fetch_ohlcv("EUR/USD", "1h", limit=3, params={"price": "bid"}))
    ask = await run(ex.fetch_ohlcv("EUR/USD", "1h", limit=3, params={"price": "ask"}))
    assert [b[0] for b in bid] == [b[0] for b in mid] == [b[0] for b in ask]
    assert all(b[4] < m[4] < a[4] for b, m, a in zip(bid, mid, ask, strict=True))
    with pytest.raises(ccxt.BadRequest):
        await run(ex.fetch_ohlcv("EUR/USD", "1h", limit=3, params={"price": "last"}))


async def test_fetch_ohlcv_unknown_timeframe(ex) -> None:
    with pytest.raises(ccxt.BadRequest):
        await run(ex.fetch_ohlcv("AAPL/USD", "7m", limit=3))


async def test_long_download_is_paced_without_a_pacing_violation(ex, sim: IBSimulator) -> None:
    # 1-minute bars: one request covers "1 D", so 9 days need 9 requests for one contract. IB (and the
    # simulator) refuse 6 per contract within 2 s; the pacer spaces them on the simulator's clock.
    start = int(sim.now() * 1000) - 9 * DAY
    start -= start % 60_000
    t0 = sim.now()
    bars = await run(ex.fetch_ohlcv("AAPL/USD", "1m", since=start))
    check_ohlcv(ex, bars, "AAPL/USD")
    assert bars[0][0] >= start and len(bars) > 1000
    assert sim.now() - t0 >= 2.0  # the pacer waited (on the simulated clock) instead of tripping 162


async def test_ohlcv_cache_serves_a_repeated_backtest_range_from_disk(make_trader, sim: IBSimulator, tmp_path) -> None:
    ex = make_trader(ohlcvCache=str(tmp_path / "cache"))
    until = int(sim.now() * 1000) - 2 * DAY
    until -= until % HOUR
    since = until - 20 * DAY
    first = await run(ex.fetch_ohlcv("AAPL/USD", "1h", since=since, params={"until": until}))
    check_ohlcv(ex, first, "AAPL/USD")
    assert first[0][0] >= since and first[-1][0] < until
    served = sim.stats_bars_served
    again = await run(ex.fetch_ohlcv("AAPL/USD", "1h", since=since, params={"until": until}))
    assert again == first and sim.stats_bars_served == served  # nothing asked of the broker


async def test_polling_the_latest_candles_never_stalls_on_the_identical_request_rule(ex, sim: IBSimulator) -> None:
    # IB forbids an identical historical request within 15 s; a bot polling every few seconds gets the
    # bars IB just sent instead of a 15 s wait (or a 162).
    first = await run(ex.fetch_ohlcv("MSFT/USD", "5m", limit=4))
    t0, served = sim.now(), sim.stats_bars_served
    again = await run(ex.fetch_ohlcv("MSFT/USD", "5m", limit=4))
    assert again == first and sim.now() == t0 and sim.stats_bars_served == served
