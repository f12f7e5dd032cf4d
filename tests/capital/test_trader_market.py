"""CapitalTrader market data end to end against the simulator, sync and async: markets, tickers,
OHLCV (mid / bid / ask, pagination, 1M resampling), time and status."""

from __future__ import annotations

from datetime import datetime, timezone

import ccxt
import ccxt.async_support
import pytest

import ccxt_capital
from tests import conformance

from .trader_fixtures import UNIVERSE, Face, face_fixture, face_kind_fixture, make_face_fixture  # noqa: F401

# The broker's limits measured on the simulated clock, which the exchange's limiter also runs on.
pytestmark = pytest.mark.capital_sim(rate_limits="sim")


def test_import_registers_the_exchange_id() -> None:
    assert ccxt.capitalcom is ccxt_capital.CapitalTrader
    assert ccxt.async_support.capitalcom is ccxt_capital.AsyncCapitalTrader
    assert "capitalcom" in ccxt.exchanges and "capitalcom" in ccxt.async_support.exchanges
    ex = ccxt.capitalcom({"apiKey": "k", "login": "l", "password": "p"})  # as bots look it up
    try:
        assert ex.id == "capitalcom" and ex.has["fetchOHLCV"] is True and ex.has["createOrder"] is True
        assert set(ex.timeframes) == {"1m", "5m", "15m", "30m", "1h", "4h", "1d", "1w", "1M"}
        assert ex.features["spot"]["createOrder"]["timeInForce"]["GTD"] is True
        assert ex.urls["api"]["rest"].startswith("https://demo-api-capital")  # demo by default
        assert ex.fees["trading"]["taker"] == 0.0
    finally:
        ex.close()


async def test_load_markets_builds_unified_symbols_with_precision(face: Face) -> None:
    ex = face.exchange
    assert sorted(ex.symbols) == sorted(UNIVERSE)
    conformance.check_markets(ex, ex.markets.values())
    aapl, eur, gold, nas = (ex.market(s) for s in ("AAPL/USD", "EUR/USD", "GOLD/USD", "US100/USD"))
    assert aapl["id"] == "AAPL" and aapl["info"]["instrument"]["epic"] == "AAPL"
    assert aapl["spot"] is True and aapl["contract"] is False
    assert aapl["precision"]["amount"] == 1.0 and aapl["precision"]["price"] == 0.01
    assert aapl["limits"]["amount"]["min"] == 1.0 and aapl["limits"]["leverage"]["max"] == pytest.approx(5.0)
    assert eur["id"] == "EURUSD" and eur["base"] == "EUR" and eur["precision"]["price"] == 0.00001
    assert eur["limits"]["amount"]["min"] == 1000
    assert gold["id"] == "GOLD" and gold["precision"]["amount"] == 0.01
    assert nas["id"] == "US100" and nas["precision"]["price"] == 0.1
    assert ex.market("BTC/USD")["id"] == "BTCUSD"
    with pytest.raises(ccxt.BadSymbol):
        ex.market("NOPE/USD")
    with pytest.raises(ccxt.BadSymbol):
        await face.call("fetch_ticker", "NOPE/USD")


async def test_swap_mode_shows_linear_swaps(face_kind: str, make_face) -> None:
    ex = make_face(face_kind, defaultType="swap")
    try:
        await ex.call("load_markets")
        market = ex.exchange.market("AAPL/USD:USD")
        assert market["swap"] and market["contract"] and market["linear"] and not market["inverse"]
        assert market["settle"] == "USD" and market["contractSize"] == 1.0
        conformance.check_markets(ex.exchange, ex.exchange.markets.values())
        ticker = await ex.call("fetch_ticker", "AAPL/USD:USD")
        conformance.check_ticker(ex.exchange, ticker, "AAPL/USD:USD")
    finally:
        await ex.close()


async def test_universe_from_default_listing_and_search(make_face) -> None:
    everything = make_face("async", symbols=None)
    searched = make_face("async", symbols=None, searchTerms=["gold", "apple"])
    try:
        markets = await everything.call("load_markets")
        assert {"AAPL/USD", "EUR/USD", "GOLD/USD", "US100/USD", "SAP/EUR", "BTC/USD"} <= set(markets)
        conformance.check_markets(everything.exchange, markets.values())
        found = await searched.call("load_markets")
        assert set(found) == {"GOLD/USD", "AAPL/USD"}
    finally:
        await everything.close()
        await searched.close()


async def test_unknown_configured_symbol_is_a_bad_symbol(make_face) -> None:
    ex = make_face("async", symbols=["AAPL/USD", "ZZZZ/USD"])
    try:
        with pytest.raises(ccxt.BadSymbol, match="ZZZZ/USD"):
            await ex.call("load_markets")
    finally:
        await ex.close()


async def test_tickers(face: Face, capital_sim) -> None:
    ticker = await face.call("fetch_ticker", "AAPL/USD")
    conformance.check_ticker(face.exchange, ticker, "AAPL/USD")
    quote = capital_sim.quote("AAPL")
    assert ticker["bid"] == quote.bid and ticker["ask"] == quote.offer
    assert ticker["last"] == pytest.approx((quote.bid + quote.offer) / 2)
    assert ticker["high"] >= ticker["low"] and ticker["info"]["epic"] == "AAPL"
    assert ticker["previousClose"] == pytest.approx(ticker["last"] - ticker["info"]["netChange"])
    assert ticker["timestamp"] == capital_sim.clock.now_ms()
    tickers = await face.call("fetch_tickers", ["AAPL/USD", "EUR/USD", "GOLD/USD"])
    assert set(tickers) == {"AAPL/USD", "EUR/USD", "GOLD/USD"}
    for symbol, item in tickers.items():
        conformance.check_ticker(face.exchange, item, symbol, method="fetchTickers")
    everything = await face.call("fetch_tickers")
    assert set(everything) == set(UNIVERSE)


async def test_ohlcv_mid_bid_ask(face: Face, capital_sim) -> None:
    mid = await face.call("fetch_ohlcv", "AAPL/USD", "1m", None, 5)
    bid = await face.call("fetch_ohlcv", "AAPL/USD", "1m", None, 5, {"price": "bid"})
    ask = await face.call("fetch_ohlcv", "AAPL/USD", "1m", None, 5, {"price": "ask"})
    for rows in (mid, bid, ask):
        conformance.check_ohlcv(face.exchange, rows, "AAPL/USD")
        assert len(rows) == 5
    now_minute = capital_sim.clock.now_ms() // 60_000 * 60_000
    assert mid[-1][0] == now_minute
    for m, b, a in zip(mid, bid, ask, strict=True):
        assert m[0] == b[0] == a[0]
        assert b[4] < a[4] and m[4] == pytest.approx((b[4] + a[4]) / 2)
    with pytest.raises(ccxt.BadRequest):
        await face.call("fetch_ohlcv", "AAPL/USD", "1m", None, 5, {"price": "last"})
    with pytest.raises(ccxt.BadRequest):
        await face.call("fetch_ohlcv", "AAPL/USD", "3m")


async def test_ohlcv_since_paginates_within_the_bar_maximum(face: Face, capital_sim) -> None:
    # BTC trades around the clock: 2500 one-minute bars need three requests of at most 1000.
    since = capital_sim.clock.now_ms() - 3000 * 60_000
    before = face.wire.stats["requests"]
    rows = await face.call("fetch_ohlcv", "BTC/USD", "1m", since, 2500)
    assert face.wire.stats["requests"] - before == 3
    assert len(rows) == 2500 and rows[0][0] == since
    conformance.check_ohlcv(face.exchange, rows, "BTC/USD")
    assert all(b[0] - a[0] == 60_000 for a, b in zip(rows, rows[1:], strict=False))
    # limit alone pages backwards from now
    tail = await face.call("fetch_ohlcv", "BTC/USD", "5m", None, 1500)
    assert len(tail) == 1500 and tail[-1][0] == capital_sim.clock.now_ms() // 300_000 * 300_000
    conformance.check_ohlcv(face.exchange, tail, "BTC/USD")


async def test_ohlcv_calendar_months_are_resampled_from_days(face: Face, capital_sim) -> None:
    since = int(datetime(2023, 9, 1, tzinfo=timezone.utc).timestamp() * 1000)
    months = await face.call("fetch_ohlcv", "BTC/USD", "1M", since, 4)
    assert [datetime.fromtimestamp(r[0] / 1000, tz=timezone.utc).month for r in months] == [9, 10, 11, 12]
    conformance.check_ohlcv(face.exchange, months, "BTC/USD")
    days = await face.call("fetch_ohlcv", "BTC/USD", "1d", since, 30)
    september = months[0]
    assert september[1] == days[0][1] and september[4] == days[-1][4]
    assert september[2] == max(d[2] for d in days) and september[3] == min(d[3] for d in days)


async def test_time_and_status(face: Face, capital_sim) -> None:
    assert await face.call("fetch_time") == capital_sim.clock.now_ms()
    status = await face.call("fetch_status")
    assert status["status"] == "ok" and status["info"] == {"status": "OK"}
