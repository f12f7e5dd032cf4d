"""CapitalTrader argument handling, one test per defect found with generated bad input (issue #17), plus
ccxt's rounding of off-grid prices and amounts (issue #16). Sync and async faces, against the simulator."""

from __future__ import annotations

import ccxt
import pytest

from .trader_fixtures import Face, booked, face_fixture, face_kind_fixture, make_face_fixture  # noqa: F401

pytestmark = pytest.mark.capital_sim(rate_limits="sim")


async def test_edit_order_refuses_another_symbols_order(face: Face, capital_sim) -> None:
    # edit_order(id, "EUR/USD", ...) on a resting AAPL sell re-priced the AAPL order to 1.1, and it filled.
    ask = capital_sim.quote("AAPL").offer
    order = await face.call("create_order", "AAPL/USD", "limit", "sell", 1, round(ask + 20, 2))
    with pytest.raises(ccxt.InvalidOrder, match="symbol 'EUR/USD'"):
        await face.call("edit_order", order["id"], "EUR/USD", "limit", "buy", 1, 1.1)
    with pytest.raises(ccxt.InvalidOrder, match="side 'buy'"):
        await face.call("edit_order", order["id"], "AAPL/USD", "limit", "buy", 1, round(ask + 10, 2))
    with pytest.raises(ccxt.InvalidOrder, match="type 'stop'"):
        await face.call("edit_order", order["id"], "AAPL/USD", "stop", "sell", 1, None, {"triggerPrice": ask + 10})
    [working] = capital_sim.working_orders()
    assert working.level == round(ask + 20, 2) and capital_sim.positions() == []
    edited = await face.call("edit_order", order["id"], "AAPL/USD", "limit", "sell", 1, round(ask + 15, 2))
    assert edited["price"] == round(ask + 15, 2)


async def test_standalone_stop_loss_price_rests_as_at_ib(face: Face, capital_sim) -> None:
    # create_order(sym, "market", "sell", 2, None, {"stopLossPrice": p}) closed the position at market at once;
    # at IB the same call rests a stop order. Now it rests at Capital too (a STOP working order).
    await face.call("create_order", "AAPL/USD", "market", "buy", 2)
    bid = capital_sim.quote("AAPL").bid
    stop = await face.call("create_order", "AAPL/USD", "market", "sell", 2, None, {"stopLossPrice": round(bid - 20, 2)})
    assert stop["status"] == "open" and stop["type"] == "stop" and stop["triggerPrice"] == round(bid - 20, 2)
    [working] = capital_sim.working_orders()
    assert working.order_type == "STOP" and working.direction == "SELL" and working.level == round(bid - 20, 2)
    [position] = capital_sim.positions()
    assert position.size == 2  # still open: nothing closed at market
    ask = capital_sim.quote("AAPL").offer
    take = await face.call("create_order", "AAPL/USD", "market", "sell", 2, None,
                           {"takeProfitPrice": round(ask + 20, 2)})
    assert take["type"] == "limit" and take["price"] == round(ask + 20, 2) and take["status"] == "open"
    assert {w.order_type for w in capital_sim.working_orders()} == {"STOP", "LIMIT"}


async def test_protective_orders_are_checked_not_dropped(face: Face, capital_sim) -> None:
    before = booked(capital_sim)
    for bad in ({}, 90.0, "90"):  # an empty dict was dropped and the entry went out unprotected
        with pytest.raises(ccxt.InvalidOrder, match="stopLoss"):
            await face.call("create_order", "AAPL/USD", "market", "buy", 2, None, {"stopLoss": bad})
    ask = capital_sim.quote("AAPL").offer
    with pytest.raises(ccxt.NotSupported, match="stopLoss amount 1 differs"):  # was ignored
        await face.call("create_order", "AAPL/USD", "market", "buy", 2, None,
                        {"stopLoss": {"triggerPrice": round(ask - 10, 2), "amount": 1}})
    with pytest.raises(ccxt.InvalidOrder, match="larger than the order's amount"):
        await face.call("create_order", "AAPL/USD", "market", "buy", 2, None,
                        {"stopLoss": {"triggerPrice": round(ask - 10, 2), "amount": 3}})
    assert booked(capital_sim) == before


async def test_flags_are_read_strictly(face: Face, capital_sim) -> None:
    before = booked(capital_sim)
    # guaranteedStop="no" booked a guaranteed stop; reduceOnly="false" was read as True
    with pytest.raises(ccxt.BadRequest, match="guaranteedStop"):
        await face.call("create_order", "AAPL/USD", "market", "buy", 1, None, {"guaranteedStop": "no"})
    with pytest.raises(ccxt.BadRequest, match="reduceOnly"):
        await face.call("create_order", "AAPL/USD", "market", "buy", 1, None, {"reduceOnly": "yes"})
    assert booked(capital_sim) == before
    order = await face.call("create_order", "AAPL/USD", "market", "buy", 1, None,
                            {"reduceOnly": "false", "guaranteedStop": "false"})
    assert order["status"] == "closed" and not order.get("reduceOnly")
    [position] = capital_sim.positions()
    assert position.size == 1 and not position.guaranteed


async def test_unknown_params_are_refused_and_deal_fields_pass_through(face: Face, capital_sim) -> None:
    before = booked(capital_sim)
    with pytest.raises(ccxt.BadRequest, match="zzFrobnicate"):
        await face.call("create_order", "AAPL/USD", "market", "buy", 1, None, {"zzFrobnicate": True})
    with pytest.raises(ccxt.BadRequest, match="epic"):
        await face.call("create_order", "AAPL/USD", "market", "buy", 1, None, {"epic": "TSLA"})
    with pytest.raises(ccxt.InvalidOrder, match="stopLoss.*stopDistance"):
        await face.call("create_order", "AAPL/USD", "market", "buy", 1, None,
                        {"stopLoss": {"triggerPrice": 100.0}, "stopDistance": 5.0})
    assert booked(capital_sim) == before
    await face.call("create_order", "AAPL/USD", "market", "buy", 1, None, {"stopDistance": 5.0})
    [position] = capital_sim.positions()
    assert position.stop_level is not None


async def test_reused_client_order_id_with_other_fields_is_a_duplicate(face: Face, capital_sim) -> None:
    first = await face.call("create_order", "AAPL/USD", "limit", "buy", 1, 100.0, {"clientOrderId": "dup-cap-1"})
    again = await face.call("create_order", "AAPL/USD", "limit", "buy", 1, 100.0, {"clientOrderId": "dup-cap-1"})
    assert again["id"] == first["id"]
    for args in (("AAPL/USD", "limit", "sell", 1, 100.0), ("AAPL/USD", "limit", "buy", 2, 100.0),
                 ("AAPL/USD", "limit", "buy", 1, 99.0), ("TSLA/USD", "limit", "buy", 1, 100.0),
                 ("AAPL/USD", "market", "buy", 1, None)):
        with pytest.raises(ccxt.DuplicateOrderId, match="dup-cap-1"):
            await face.call("create_order", *args, {"clientOrderId": "dup-cap-1"})
    assert len(capital_sim.working_orders()) == 1 and capital_sim.positions() == []


async def test_off_grid_amounts_are_truncated_and_prices_rounded(face: Face, make_face, capital_sim) -> None:
    order = await face.call("create_order", "AAPL/USD", "limit", "buy", 2.7, 100.004)
    assert order["amount"] == 2 and order["price"] == 100.0
    [working] = capital_sim.working_orders()
    assert working.size == 2 and working.level == 100.0
    strict = make_face(face.kind, strictPrecision=True)
    with pytest.raises(ccxt.InvalidOrder, match="not a multiple"):
        await strict.call("create_order", "AAPL/USD", "limit", "buy", 2.7, 100.0)
    with pytest.raises(ccxt.InvalidOrder, match="not a multiple"):
        await strict.call("create_order", "AAPL/USD", "limit", "buy", 2, 100.004)
    await strict.close()


async def test_ohlcv_from_1970_starts_at_the_first_bar_in_few_requests(face: Face, capital_sim) -> None:
    # since=0, limit=5 paged from 1970 (36,868 requests in 60 s).
    wire = face.wire
    before = wire.stats["requests"]
    bars = await face.call("fetch_ohlcv", "EUR/USD", "1m", 0, 5)
    assert len(bars) == 5 and bars[0][0] >= 946_684_800_000  # the simulator's history begins in 2000
    assert wire.stats["requests"] - before <= 25  # a bisection, then one window
    # a small limit over a closed market (a weekend) asks for whole windows, not 5 bars at a time
    before = wire.stats["requests"]
    saturday = 1_709_337_600_000  # 2024-03-02 00:00 UTC
    bars = await face.call("fetch_ohlcv", "EUR/USD", "1m", saturday, 5)
    assert len(bars) == 5 and wire.stats["requests"] - before <= 5  # 3 windows of 1000 minutes, one probe


async def test_ohlcv_huge_limit_is_capped(face: Face, capital_sim) -> None:
    bars = await face.call("fetch_ohlcv", "EUR/USD", "1h", None, 10**8)
    assert 0 < len(bars) <= 10_000
