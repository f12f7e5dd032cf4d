"""IB objects -> ccxt structures, for the cases the simulator cannot stage (library quirks, odd payloads).

Objects are built with the shim's own classes (ib_async or ib_insync), exactly as the library's
decoder would fill them, and every result still goes through ccxt's validators.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccxt_ibkr._ib import BarData, Contract, ContractDetails, Order, OrderStatus, Ticker, Trade, ib_lib
from ccxt_ibkr.async_support import IBTrader
from tests.conformance import check_balance, check_market, check_order, check_ticker

UTC = dt.timezone.utc
T0 = dt.datetime(2025, 6, 10, 14, 0, tzinfo=UTC)
UNSET = 1.7976931348623157e308  # IB's "no price"


@pytest.fixture
def trader() -> Any:
    ex = IBTrader({"options": {"journal": None}})
    aapl = ContractDetails(
        contract=Contract(secType="STK", conId=265598, symbol="AAPL", exchange="SMART", primaryExchange="NASDAQ",
                          currency="USD", localSymbol="AAPL", tradingClass="NMS"),
        marketName="NMS", minTick=0.01, longName="APPLE INC", timeZoneId="US/Eastern",
    )
    aapl.minSize, aapl.sizeIncrement = 1.0, 1.0
    eur = ContractDetails(
        contract=Contract(secType="CASH", conId=12087792, symbol="EUR", exchange="IDEALPRO", currency="USD",
                          localSymbol="EUR.USD", tradingClass="EUR.USD"),
        minTick=0.00005,
    )
    eur.minSize, eur.sizeIncrement = 0.01, 0.01
    ex.set_markets([ex.parse_ib_market(aapl, "AAPL/USD"), ex.parse_ib_market(eur, "EUR/USD")])
    return ex


def trade(status: str, log: list[tuple[str, int]], order_type: str = "LMT", tif: str = "GTC") -> Trade:
    order = Order(orderId=12, clientId=1, permId=1_100_000_012, action="BUY", totalQuantity=10,
                  orderType=order_type, lmtPrice=150.0, tif=tif, orderRef="ccxt-abc")
    entries = [ib_lib.TradeLogEntry(T0, s, f"Error {c}" if c else "", c) for s, c in log]
    return Trade(Contract(conId=265598, secType="STK", symbol="AAPL", currency="USD"), order,
                 OrderStatus(orderId=12, status=status, remaining=10), [], entries)


def test_markets_from_contract_details(trader) -> None:
    for market in trader.markets.values():
        check_market(trader, market)
    assert trader.markets["EUR/USD"]["precision"]["amount"] == 0.01


def test_informational_10349_does_not_cancel_a_live_order(trader) -> None:
    # ib_async 2.x turns a live order Cancelled on the informational 10349 (ib-protocol.md §3).
    t = trade("Cancelled", [("PendingSubmit", 0), ("Submitted", 0), ("Cancelled", 10349)], tif="GTC")
    order = trader.parse_ib_order(t, trader.markets["AAPL/USD"])
    check_order(trader, order, "AAPL/USD")
    assert order["status"] == "open" and order["info"]["status"] == "Submitted"


def test_reject_then_cancelled_is_rejected(trader) -> None:
    t = trade("Cancelled", [("PendingSubmit", 0), ("Cancelled", 201)])
    assert trader.parse_ib_order(t, trader.markets["AAPL/USD"])["status"] == "rejected"
    lapsed = trade("Cancelled", [("PendingSubmit", 0), ("Submitted", 0), ("Cancelled", 0)], tif="DAY")
    assert trader.parse_ib_order(lapsed, trader.markets["AAPL/USD"])["status"] == "expired"
    asked = trade("Cancelled", [("PendingSubmit", 0), ("Submitted", 0), ("PendingCancel", 0), ("Cancelled", 202)])
    assert trader.parse_ib_order(asked, trader.markets["AAPL/USD"])["status"] == "canceled"


def test_inactive_is_rejected_unless_held_for_a_locate(trader) -> None:
    t = trade("Inactive", [("PendingSubmit", 0), ("Inactive", 0)])
    assert trader.parse_ib_order(t, trader.markets["AAPL/USD"])["status"] == "rejected"
    t.orderStatus.whyHeld = "locate"
    assert trader.parse_ib_order(t, trader.markets["AAPL/USD"])["status"] == "open"


def test_fx_ticker_without_last_uses_the_mid(trader) -> None:
    ticker = Ticker(contract=Contract(conId=12087792))  # ib_async's __post_init__ resets the quote fields
    ticker.time, ticker.bid, ticker.ask, ticker.bidSize, ticker.askSize = T0, 1.08, 1.0801, 1e6, 2e6
    parsed = trader.parse_ib_ticker(ticker, trader.markets["EUR/USD"])
    check_ticker(trader, parsed, "EUR/USD")
    assert parsed["last"] == pytest.approx(1.08005) and parsed["baseVolume"] is None


def test_bars_daily_dates_and_midpoint_volume(trader) -> None:
    daily = BarData(date=dt.date(2025, 6, 9), open=1, high=2, low=0.5, close=1.5, volume=-1)
    intraday = BarData(date=dt.datetime(2025, 6, 9, 13, 30, tzinfo=UTC), open=1, high=2, low=0.5, close=1.5, volume=7)
    assert trader.parse_ohlcv(daily) == [1749427200000, 1.0, 2.0, 0.5, 1.5, None]
    assert trader.parse_ohlcv(intraday)[0] == 1749475800000 and trader.parse_ohlcv(intraday)[5] == 7.0


def test_negative_cash_is_reported_as_debt(trader) -> None:
    values = [ib_lib.AccountValue("DU1", "CashBalance", "-500.0", "EUR", ""),
              ib_lib.AccountValue("DU1", "CashBalance", "1000.0", "USD", ""),
              ib_lib.AccountValue("DU1", "AvailableFunds", "800.0", "USD", "")]
    balance = trader.parse_ib_balance(values, {"AAPL": (5.0, 2.0)}, 1_749_564_000_000)
    check_balance(trader, balance)
    assert balance["EUR"]["total"] == 0 and balance["EUR"]["debt"] == 500
    assert balance["USD"] == {"free": 800.0, "used": 200.0, "total": 1000.0}
    assert balance["AAPL"] == {"free": 3.0, "used": 2.0, "total": 5.0}


@given(
    order_type=st.sampled_from(["LMT", "MKT", "STP", "STP LMT", "MIT", "LIT", "TRAIL"]),
    lmt=st.one_of(st.just(0.0), st.just(UNSET), st.floats(0.01, 1e5, allow_nan=False).map(lambda x: round(x, 2))),
    aux=st.one_of(st.just(0.0), st.just(UNSET), st.floats(0.01, 1e5, allow_nan=False).map(lambda x: round(x, 2))),
    quantity=st.one_of(st.integers(1, 10_000).map(float), st.floats(0.01, 1e6).map(lambda x: round(x, 2))),
    tif=st.sampled_from(["", "GTC", "DAY", "IOC", "FOK", "GTD"]),
    action=st.sampled_from(["BUY", "SELL", ""]),
    reduce_only=st.sampled_from([None, True, False]),
    logged=st.booleans(),
    symbol=st.sampled_from(["AAPL/USD", "EUR/USD"]),
)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_unfilled_orders_parse_as_safe_order_would(trader, order_type: str, lmt: float, aux: float, quantity: float,
                                                  tif: str, action: str, reduce_only: bool | None, logged: bool,
                                                  symbol: str) -> None:
    """Orders with nothing filled skip ccxt's safe_order (it runs after every send); the fields built
    directly must be exactly what safe_order derives."""
    order = Order(orderId=7, clientId=1, permId=0, action=action, totalQuantity=quantity, orderType=order_type,
                  lmtPrice=lmt, auxPrice=aux, tif=tif, orderRef="ccxt-x")
    log = [ib_lib.TradeLogEntry(T0, "PendingSubmit", "", 0)] if logged else []
    live = Trade(Contract(conId=265598, secType="STK", symbol="AAPL", currency="USD"), order,
                 OrderStatus(orderId=7, status="PendingSubmit", remaining=quantity), [], log)
    market = trader.market(symbol)
    parsed = trader.parse_ib_order(live, market, reduce_only=reduce_only)
    timestamp = parsed["timestamp"]
    price, trigger = parsed["price"], parsed["triggerPrice"]
    reference = trader._ib_order_state(
        trader._order_fields(live, market, timestamp, order_type, price, trigger, quantity, 0.0, quantity, None,
                             None, [], reduce_only),
        live, 0.0, quantity, False)
    assert parsed == reference
    check_order(trader, parsed, symbol)
