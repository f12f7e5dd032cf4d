"""The conformance helper must pass good structures and fail bad ones (a check that cannot fail is worthless)."""

from __future__ import annotations

from typing import Any

import ccxt
import pytest

from tests import conformance

NOW = 1_763_899_980_000  # on a minute boundary


class Plain(ccxt.Exchange):
    def describe(self) -> Any:
        return self.deep_extend(super().describe(), {"id": "plain", "rateLimit": 10})


@pytest.fixture
def exchange() -> ccxt.Exchange:
    ex = Plain()
    ex.set_markets([
        {"id": "265598", "symbol": "AAPL/USD", "base": "AAPL", "quote": "USD", "baseId": "AAPL",
         "quoteId": "USD", "type": "spot", "spot": True, "margin": False, "swap": False, "future": False,
         "option": False, "contract": False, "active": True, "taker": 0.0, "maker": 0.0,
         "precision": {"amount": 1.0, "price": 0.01},
         "limits": {"amount": {"min": 1.0, "max": None}, "price": {"min": None, "max": None},
                    "cost": {"min": None, "max": None}, "leverage": {"min": None, "max": None}},
         "info": {}}
    ])
    return ex


def good_order(ex: ccxt.Exchange, **changes: Any) -> dict[str, Any]:
    order = ex.safe_order({
        "info": {}, "id": "1", "clientOrderId": "ccxt-1", "timestamp": NOW, "datetime": ex.iso8601(NOW),
        "lastTradeTimestamp": None, "symbol": "AAPL/USD", "type": "limit", "side": "buy",
        "timeInForce": "GTC", "postOnly": False, "price": "187.5", "amount": "10", "filled": "0",
        "remaining": "10", "status": "open", "fee": None, "trades": [],
    })
    order.update(changes)
    return order


def test_good_structures_pass(exchange: ccxt.Exchange) -> None:
    conformance.check_order(exchange, good_order(exchange), "AAPL/USD")
    conformance.check_order(exchange, good_order(exchange, status="rejected"), "AAPL/USD")
    conformance.check_order(exchange, good_order(exchange, timeInForce="DAY"), "AAPL/USD")
    conformance.check_balance(exchange, exchange.safe_balance({"info": {}, "USD": {"free": "10", "total": "12"}}))
    conformance.check_ohlcv(exchange, [[NOW - 60_000, 1.0, 2.0, 0.5, 1.5, 10.0]], "AAPL/USD")
    conformance.check_market(exchange, exchange.market("AAPL/USD"))


@pytest.mark.parametrize(
    "changes",
    [
        {"side": "long"},
        {"status": "pending"},
        {"amount": -1.0},
        {"price": 0.0},
        {"filled": 11.0},
        {"timestamp": "yesterday"},
        {"fee": {"cost": 1.0, "currency": "XYZ"}},
    ],
)
def test_malformed_order_fails(exchange: ccxt.Exchange, changes: dict[str, Any]) -> None:
    with pytest.raises((AssertionError, Exception)) as info:
        conformance.check_order(exchange, good_order(exchange, **changes), "AAPL/USD")
    assert info.type is not None


def test_malformed_balance_fails(exchange: ccxt.Exchange) -> None:
    balance = exchange.safe_balance({"info": {}, "USD": {"free": "10", "total": "12"}})
    balance["USD"]["free"] = 20.0  # free above total
    with pytest.raises(AssertionError):
        conformance.check_balance(exchange, balance)
    broken = exchange.safe_balance({"info": {}, "USD": {"free": "10", "total": "12"}})
    broken["USD"]["total"] = "12"  # a string where ccxt promises a number
    with pytest.raises(AssertionError):
        conformance.check_balance(exchange, broken)


@pytest.mark.parametrize(
    "row",
    [
        [NOW - 60_000, 1.0, 2.0, 0.5, 3.0, 10.0],  # close above high
        [NOW - 60_001, 1.0, 2.0, 0.5, 1.5, 10.0],  # not on a minute
        [float(NOW - 60_000), 1.0, 2.0, 0.5, 1.5, 10.0],  # float timestamp
        [NOW - 60_000, 1.0, 2.0, 0.5, 1.5],  # five elements
        "future",
    ],
)
def test_malformed_ohlcv_row_fails(exchange: ccxt.Exchange, row: Any) -> None:
    if row == "future":
        ahead = (exchange.milliseconds() // 60_000 + 60) * 60_000
        row = [ahead, 1.0, 2.0, 0.5, 1.5, 10.0]
    with pytest.raises(AssertionError):
        conformance.check_ohlcv(exchange, [row], "AAPL/USD")


def test_empty_ohlcv_fails_unless_allowed(exchange: ccxt.Exchange) -> None:
    with pytest.raises(AssertionError):
        conformance.check_ohlcv(exchange, [], "AAPL/USD")
    conformance.check_ohlcv(exchange, [], "AAPL/USD", nonempty=False)
