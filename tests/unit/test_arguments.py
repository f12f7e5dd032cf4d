"""The shared argument layer (normalization.arguments) and the precision grid (normalization.orders)."""

from __future__ import annotations

import math

import ccxt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from normalization.arguments import (
    OrderRules,
    check_create_order,
    check_edit_target,
    check_fetch,
    check_repeat,
    parse_flag,
)
from normalization.orders import amount_on_grid, price_on_grid, round_to_step

RULES = OrderRules("x", extra_params={"goodTillDate": (str,)}, broker_fields={"hidden": (bool,), "lmtPrice": (float,)},
                   reserved=frozenset({"lmtPrice"}))


def create(*args, **params):
    return check_create_order(*args, params, RULES)


def test_flags_parse_strictly() -> None:
    assert [parse_flag(v, "f", "x") for v in (True, "true", " TRUE ", 1, False, "false", 0)] == [True] * 4 + [False] * 3
    for bad in ("yes", "no", 2, 0.5, None, [], "1"):
        with pytest.raises(ccxt.BadRequest, match="params\\['f'\\]"):
            parse_flag(bad, "f", "x")


def test_one_meaning_per_order() -> None:
    assert create("A/B", "market", "sell", 2, None, stopLossPrice=90)[1:5] == ("stop", "sell", 2.0, None)
    _, kind, _, _, price, params = create("A/B", "market", "sell", 2, None, takeProfitPrice=110)
    assert (kind, price, params) == ("limit", 110.0, {})
    _, kind, _, _, price, params = create("A/B", "limit", "buy", 1, 100, stopPrice=99)
    assert (kind, price, params["triggerPrice"]) == ("stop_limit", 100.0, 99.0) and "stopPrice" not in params
    assert create("A/B", "limit", "buy", 1, 100, reduceOnly="false")[5]["reduceOnly"] is False


@pytest.mark.parametrize("params, words", [
    ({"triggerPrice": 1, "stopPrice": 2}, ("triggerPrice", "stopPrice")),
    ({"stopLossPrice": 1, "stopLoss": {"triggerPrice": 1}}, ("stopLossPrice", "stopLoss")),
    ({"stopLossPrice": 1, "takeProfitPrice": 2}, ("stopLossPrice", "takeProfitPrice")),
    ({"takeProfitPrice": 2}, ("price", "takeProfitPrice")),
])
def test_contradictions_name_both(params, words) -> None:
    with pytest.raises(ccxt.InvalidOrder) as caught:
        check_create_order("A/B", "limit", "buy", 1, 1.5, params, RULES)
    assert all(word in str(caught.value) for word in words)


def test_unknown_reserved_and_mistyped_params() -> None:
    with pytest.raises(ccxt.BadRequest, match="zz"):
        create("A/B", "market", "buy", 1, None, zz=1)
    with pytest.raises(ccxt.BadRequest, match="lmtPrice"):
        create("A/B", "market", "buy", 1, None, lmtPrice=1.0)
    with pytest.raises(ccxt.BadRequest, match="hidden"):
        create("A/B", "market", "buy", 1, None, hidden="x")
    assert create("A/B", "market", "buy", 1, None, hidden=True, goodTillDate="x")[5]["hidden"] is True


def test_protection_dicts() -> None:
    for bad in (1, "1", [], {}):
        with pytest.raises(ccxt.InvalidOrder, match="stopLoss"):
            create("A/B", "market", "buy", 1, None, stopLoss=bad)
    with pytest.raises(ccxt.InvalidOrder, match="larger than the order's amount"):
        create("A/B", "market", "buy", 1, None, stopLoss={"triggerPrice": 1, "amount": 2})
    assert create("A/B", "market", "buy", 1, None, takeProfit={"price": 5})[5]["takeProfit"]["triggerPrice"] == 5.0


def test_fetch_arguments() -> None:
    assert check_fetch("x", "m", "A/B", 0, 5, None) == ("A/B", 0, 5, {})
    for since in (-1, 1.5, math.nan, "1", True, 10**14):
        with pytest.raises(ccxt.BadRequest, match="since"):
            check_fetch("x", "m", None, since)
    for limit in (0, -1, 1.5, "5", False):
        with pytest.raises(ccxt.BadRequest, match="limit"):
            check_fetch("x", "m", None, None, limit)
    with pytest.raises(ccxt.BadRequest, match="timeframe"):
        check_fetch("x", "fetch_ohlcv", "A/B", timeframe=[], timeframes={"1m": 1})


def test_repeat_and_edit_target() -> None:
    class Row:
        symbol, side, type, amount, price, trigger_price = "A/B", "buy", "limit", 1.0, 10.0, None

    check_repeat(Row(), {"symbol": "A/B", "side": "buy", "type": "limit", "amount": 1, "price": 10.0}, "c", "x")
    with pytest.raises(ccxt.DuplicateOrderId, match="side 'buy' -> 'sell'"):
        check_repeat(Row(), {"symbol": "A/B", "side": "sell", "type": "limit", "amount": 1, "price": 10.0}, "c", "x")
    check_edit_target("x", "1", {"symbol": "A/B", "side": None, "type": "limit"}, {"symbol": "A/B", "side": "buy",
                                                                                   "type": "limit"})
    with pytest.raises(ccxt.InvalidOrder, match="symbol 'C/D'"):
        check_edit_target("x", "1", {"symbol": "C/D"}, {"symbol": "A/B"})


def test_grid_rounding_is_ccxts() -> None:
    assert round_to_step(150.005, 0.01) == 150.01 and round_to_step(150.004, 0.01) == 150.0
    assert price_on_grid(1.125, 0.25, "A/B", "x", False) == 1.25
    assert amount_on_grid(2.99, 1.0, "A/B", "x", False) == 2.0
    with pytest.raises(ccxt.InvalidOrder, match="less than one size increment"):
        amount_on_grid(0.5, 1.0, "A/B", "x", False)
    with pytest.raises(ccxt.InvalidOrder, match="not a multiple"):
        price_on_grid(1.1, 0.25, "A/B", "x", True)


@given(st.integers(1, 10**6), st.sampled_from([0.01, 0.25, 0.1, 1.0, 0.00001, 0.5]))
def test_on_grid_values_come_back_unchanged(n: int, step: float) -> None:
    value = float(f"{n * step:.10g}")
    assert price_on_grid(value, step, "A/B", "x", False) == value
    assert amount_on_grid(value, step, "A/B", "x", False) == value


def test_ccxts_own_bracket_helper_is_understood() -> None:
    exchange = ccxt.Exchange()
    params = exchange.set_take_profit_and_stop_loss_params("A/B", "limit", "buy", 1, 100, 110, 90, {})
    out = check_create_order("A/B", "limit", "buy", 1, 100, params, RULES)[5]
    assert out["takeProfit"]["triggerPrice"] == 110 and out["stopLoss"]["triggerPrice"] == 90
