"""IBTrader argument handling, one test per defect found with generated bad input (issue #17), plus ccxt's
rounding of off-grid prices and amounts (issue #16). Sync and async faces, against the simulator."""

# ruff: noqa: F811 - the fixtures imported from trader_fixtures are re-bound as test parameters
from __future__ import annotations

import asyncio
import datetime as dt

import ccxt
import pytest

from ccxt_ibkr.sim.server import IBSimulator
from tests.ib.trader_fixtures import (  # noqa: F401 - fixtures
    ex,
    face,
    make_trader,
    order_messages,
    run,
    sim,
    trader_sim,
)


def far_below(sim: IBSimulator) -> float:
    return round(sim.quote("AAPL").bid - 5.0, 2)


async def test_flags_are_read_strictly(ex, order_messages) -> None:
    # reduceOnly="true" was read as absent and opened a position: now it is reduceOnly, and refused (no position).
    with pytest.raises(ccxt.InvalidOrder, match="reduceOnly"):
        await run(ex.create_order("AAPL/USD", "market", "buy", 1, None, {"reduceOnly": "true"}))
    for bad in ("yes", "no", 2, 0.5, "TRUE!"):
        with pytest.raises(ccxt.BadRequest, match="reduceOnly"):
            await run(ex.create_order("AAPL/USD", "market", "buy", 1, None, {"reduceOnly": bad}))
    assert order_messages == []


async def test_protective_orders_are_checked_not_dropped(ex, sim: IBSimulator, order_messages) -> None:
    price = far_below(sim)
    for bad in (90.0, "90", [90.0], {}):  # not a dict, or a dict without a trigger: was dropped silently
        with pytest.raises(ccxt.InvalidOrder, match="stopLoss"):
            await run(ex.create_order("AAPL/USD", "limit", "buy", 2, price, {"stopLoss": bad}))
    with pytest.raises(ccxt.InvalidOrder, match="stopLoss amount 3 is larger"):
        await run(ex.create_order("AAPL/USD", "limit", "buy", 2, price,
                                  {"stopLoss": {"triggerPrice": price - 5, "amount": 3}}))
    with pytest.raises(ccxt.InvalidOrder, match="takeProfit triggerPrice"):
        await run(ex.create_order("AAPL/USD", "limit", "buy", 2, price, {"takeProfit": {"triggerPrice": -1}}))
    assert order_messages == []


async def test_contradictions_are_refused_naming_both(ex, sim: IBSimulator, order_messages) -> None:
    price = far_below(sim)
    # takeProfitPrice used to override type and price: type "foo" became a marketable buy that filled
    with pytest.raises(ccxt.InvalidOrder, match="type 'foo'"):
        await run(ex.create_order("AAPL/USD", "foo", "buy", 1, price, {"takeProfitPrice": price + 100}))
    with pytest.raises(ccxt.InvalidOrder, match="price .* and params\\['takeProfitPrice'\\]"):
        await run(ex.create_order("AAPL/USD", "limit", "buy", 1, price, {"takeProfitPrice": price + 100}))
    # a stopLoss dict plus stopLossPrice turned a limit entry into a stop-limit
    with pytest.raises(ccxt.InvalidOrder, match="stopLossPrice.*stopLoss"):
        await run(ex.create_order("AAPL/USD", "limit", "buy", 1, price,
                                  {"stopLoss": {"triggerPrice": price - 5}, "stopLossPrice": price - 5}))
    with pytest.raises(ccxt.InvalidOrder, match="triggerPrice.*stopPrice"):
        await run(ex.create_order("AAPL/USD", "market", "sell", 1, None, {"triggerPrice": 100, "stopPrice": 101}))
    assert order_messages == []


async def test_unknown_params_are_refused_and_ib_order_fields_pass_through(ex, sim: IBSimulator) -> None:
    with pytest.raises(ccxt.BadRequest, match="zzFrobnicate"):
        await run(ex.create_order("AAPL/USD", "limit", "buy", 1, far_below(sim), {"zzFrobnicate": 1}))
    with pytest.raises(ccxt.BadRequest, match="lmtPrice"):  # set by the unified arguments, not a param
        await run(ex.create_order("AAPL/USD", "limit", "buy", 1, far_below(sim), {"lmtPrice": 1.0}))
    with pytest.raises(ccxt.BadRequest, match="hidden"):
        await run(ex.create_order("AAPL/USD", "limit", "buy", 1, far_below(sim), {"hidden": "x"}))
    order = await run(ex.create_order("AAPL/USD", "limit", "buy", 1, far_below(sim),
                                      {"hidden": True, "goodAfterTime": "", "allOrNone": True}))
    impl = ex.impl if hasattr(ex, "impl") else ex
    trade = impl._find_trade_local(order["id"])
    assert trade.order.hidden is True and trade.order.allOrNone is True
    await run(ex.cancel_order(order["id"]))


async def test_edit_order_refuses_another_symbol_side_or_type(ex, sim: IBSimulator) -> None:
    order = await run(ex.create_order("AAPL/USD", "limit", "buy", 1, far_below(sim)))
    with pytest.raises(ccxt.InvalidOrder, match="symbol 'EUR/USD'"):
        await run(ex.edit_order(order["id"], "EUR/USD", "limit", "buy", 1, 1.1))
    with pytest.raises(ccxt.InvalidOrder, match="side 'sell'"):
        await run(ex.edit_order(order["id"], "AAPL/USD", "limit", "sell", 1, far_below(sim)))
    with pytest.raises(ccxt.InvalidOrder, match="type 'stop'"):
        await run(ex.edit_order(order["id"], "AAPL/USD", "stop", "buy", 1, None, {"triggerPrice": 100}))
    await run(ex.cancel_order(order["id"]))


async def test_reused_client_order_id_with_other_fields_is_a_duplicate(ex, sim: IBSimulator, order_messages) -> None:
    price = far_below(sim)
    first = await run(ex.create_order("AAPL/USD", "limit", "buy", 1, price, {"clientOrderId": "dup-ib-1"}))
    again = await run(ex.create_order("AAPL/USD", "limit", "buy", 1, price, {"clientOrderId": "dup-ib-1"}))
    assert again["id"] == first["id"]  # the identical repeat is the first order
    for args in (("AAPL/USD", "limit", "sell", 1, price), ("AAPL/USD", "limit", "buy", 2, price),
                 ("AAPL/USD", "limit", "buy", 1, round(price - 1, 2)), ("MSFT/USD", "limit", "buy", 1, price),
                 ("AAPL/USD", "market", "buy", 1, None)):
        with pytest.raises(ccxt.DuplicateOrderId, match="dup-ib-1"):
            await run(ex.create_order(*args, {"clientOrderId": "dup-ib-1"}))
    assert len(order_messages) == 1
    await run(ex.cancel_order(first["id"]))


async def test_off_grid_prices_and_amounts_are_rounded_as_ccxt_does(make_trader, sim: IBSimulator) -> None:
    ex = make_trader()
    price = far_below(sim)
    order = await run(ex.create_order("AAPL/USD", "limit", "buy", 1, price + 0.004))  # ROUND to the tick
    assert order["price"] == price and order["amount"] == 1
    await run(ex.cancel_order(order["id"]))
    order = await run(ex.create_order("AAPL/USD", "limit", "buy", 1, price + 0.006))
    assert order["price"] == round(price + 0.01, 2)
    await run(ex.cancel_order(order["id"]))
    strict = make_trader(strictPrecision=True)
    with pytest.raises(ccxt.InvalidOrder, match="not a multiple of 0.01"):
        await run(strict.create_order("AAPL/USD", "limit", "buy", 1, price + 0.004))


async def test_ohlcv_since_before_the_first_bar_starts_there(ex, sim: IBSimulator) -> None:
    # since <= 0 made the simulator answer without the request id: the adapter waited its full 30 s.
    for since in (0, 1):
        bars = await run(ex.fetch_ohlcv("AAPL/USD", "1d", since, 5))
        assert len(bars) == 5 and bars[0][0] >= 946_857_600_000  # 2000-01-03, where IB's history begins here
    with pytest.raises(ccxt.BadRequest, match="since"):
        await run(ex.fetch_ohlcv("AAPL/USD", "1d", -1, 5))
    with pytest.raises(ccxt.BadRequest, match="limit"):
        await run(ex.fetch_ohlcv("AAPL/USD", "1d", None, 0))


async def test_ohlcv_huge_limit_is_capped(ex, sim: IBSimulator) -> None:
    before = sim.pacer_requests()
    bars = await run(ex.fetch_ohlcv("AAPL/USD", "1d", None, 10**8))
    assert 0 < len(bars) <= 10_000
    assert sim.pacer_requests() - before <= 60


async def test_simulator_answers_a_window_before_history_with_162_and_the_request_id(ib_client) -> None:
    # It answered with a server error and no request id, so the client waited out its timeout.
    from ccxt_ibkr._ib import Stock

    errors: list[tuple[int, int]] = []
    ib_client.errorEvent += lambda req, code, text, *rest: errors.append((req, code))
    long_ago = dt.datetime(1975, 6, 2, 18, 0, tzinfo=dt.timezone.utc)
    bars = await asyncio.wait_for(ib_client.reqHistoricalDataAsync(
        Stock("AAPL", "SMART", "USD"), long_ago, "1 D", "1 hour", "TRADES", False, 2), 5)
    assert list(bars) == []
    assert errors and errors[-1][1] == 162 and errors[-1][0] > 0
