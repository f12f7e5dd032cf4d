"""CapitalTrader orders end to end against the simulator, sync and async: market / limit / stop,
stop-loss and take-profit, GTD, reduceOnly, idempotent clientOrderIds (also after a restart),
rejections, cancel / edit / fetch, and bad input that must book nothing."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import ccxt
import pytest

from tests import conformance

from .trader_fixtures import Face, booked, face_fixture, face_kind_fixture, make_face_fixture  # noqa: F401

pytestmark = pytest.mark.capital_sim(rate_limits="sim")


async def test_market_buy_then_sell_like_a_spot_bot(face: Face, capital_sim) -> None:
    ask = capital_sim.quote("AAPL").offer
    order = await face.call("create_order", "AAPL/USD", "market", "buy", 10, None, {"clientOrderId": "bot-1"})
    conformance.check_order(face.exchange, order, "AAPL/USD")
    assert order["id"].startswith("o_") and order["clientOrderId"] == "bot-1"
    assert (order["status"], order["type"], order["side"]) == ("closed", "market", "buy")
    assert order["filled"] == 10 and order["remaining"] == 0 and order["average"] == ask
    assert order["fee"] == {"cost": 0.0, "currency": "USD", "rate": 0.0}
    [position] = capital_sim.positions()
    assert position.epic == "AAPL" and position.size == 10 and position.direction == "BUY"

    balance = await face.call("fetch_balance")
    conformance.check_balance(face.exchange, balance)
    assert balance["AAPL"]["total"] == 10 and balance["AAPL"]["free"] == 10
    values = capital_sim.balances()
    assert balance["USD"]["total"] == values["balance"] and balance["USD"]["free"] == values["available"]

    [ccxt_position] = await face.call("fetch_positions")
    conformance.check_position(face.exchange, ccxt_position, "AAPL/USD")
    assert ccxt_position["side"] == "long" and ccxt_position["contracts"] == 10
    assert ccxt_position["entryPrice"] == ask and ccxt_position["marginMode"] == "cross"
    assert ccxt_position["leverage"] == 5 and ccxt_position["markPrice"] == capital_sim.quote("AAPL").bid

    fetched = await face.call("fetch_order", order["id"])
    conformance.check_order(face.exchange, fetched, "AAPL/USD", method="fetchOrder")
    assert fetched["id"] == order["id"] and fetched["status"] == "closed" and fetched["clientOrderId"] == "bot-1"
    assert (await face.call("fetch_order", "bot-1"))["id"] == order["id"]  # by clientOrderId too

    sell = await face.call("create_order", "AAPL/USD", "market", "sell", 10)
    conformance.check_order(face.exchange, sell, "AAPL/USD")
    assert sell["status"] == "closed" and capital_sim.positions() == []
    assert (await face.call("fetch_balance"))["AAPL"]["total"] == 0  # sold: a zero row, as for every market
    capital_sim.check_books()

    trades = await face.call("fetch_my_trades", "AAPL/USD")
    assert [(t["side"], t["amount"], t["order"]) for t in trades] == [
        ("buy", 10, order["id"]), ("sell", 10, sell["id"])]
    for trade in trades:
        conformance.check_trade(face.exchange, trade, "AAPL/USD")
        assert trade["fee"]["cost"] == 0.0 and trade["fee"]["currency"] == "USD"
    journal = await face.journal()  # every fill journaled once, under the trade's id
    assert sorted(f.exec_id for f in journal.fills()) == sorted(t["id"] for t in trades)
    assert [f.client_order_id for f in journal.fills("bot-1")] == ["bot-1"]
    closed = await face.call("fetch_closed_orders", "AAPL/USD")
    conformance.check_orders(face.exchange, closed, "AAPL/USD", method="fetchClosedOrders")
    assert {o["id"] for o in closed} == {order["id"], sell["id"]}


async def test_limit_order_lifecycle(face: Face, capital_sim) -> None:
    order = await face.call("create_order", "AAPL/USD", "limit", "buy", 2, 150.004, {"clientOrderId": "lim-1"})
    conformance.check_order(face.exchange, order, "AAPL/USD")
    assert (order["status"], order["type"], order["price"], order["amount"]) == ("open", "limit", 150.0, 2)
    [working] = capital_sim.working_orders()
    assert working.order_type == "LIMIT" and working.level == 150.0 and working.size == 2

    [listed] = await face.call("fetch_open_orders", "AAPL/USD")
    conformance.check_order(face.exchange, listed, "AAPL/USD", method="fetchOpenOrders")
    assert listed["id"] == order["id"] and listed["clientOrderId"] == "lim-1" and listed["timeInForce"] == "GTC"

    edited = await face.call("edit_order", order["id"], "AAPL/USD", "limit", "buy", 2, 151.0)
    conformance.check_order(face.exchange, edited, "AAPL/USD", method="editOrder")
    assert edited["id"] == order["id"] and edited["price"] == 151.0
    assert capital_sim.working_orders()[0].level == 151.0
    with pytest.raises(ccxt.NotSupported):
        await face.call("edit_order", order["id"], "AAPL/USD", "limit", "buy", 3, 151.0)

    canceled = await face.call("cancel_order", order["id"], "AAPL/USD")
    conformance.check_order(face.exchange, canceled, "AAPL/USD", method="cancelOrder")
    assert canceled["id"] == order["id"] and canceled["status"] == "canceled" and canceled["clientOrderId"] == "lim-1"
    assert capital_sim.working_orders() == []
    assert (await face.call("fetch_order", order["id"]))["status"] == "canceled"
    with pytest.raises(ccxt.OrderNotFound):
        await face.call("cancel_order", order["id"], "AAPL/USD")
    closed = await face.call("fetch_closed_orders")
    assert [(o["id"], o["status"], o["type"]) for o in closed] == [(order["id"], "canceled", "limit")]
    conformance.check_orders(face.exchange, closed, method="fetchClosedOrders")
    assert await face.call("fetch_open_orders") == []


async def test_limit_order_fills_when_the_price_comes(face: Face, capital_sim) -> None:
    mid = capital_sim.quote("AAPL").mid
    order = await face.call("create_order", "AAPL/USD", "limit", "buy", 3, round(mid - 5, 2))
    capital_sim.pin_price("AAPL", mid - 10)
    capital_sim.advance(120)
    fetched = await face.call("fetch_order", order["id"], "AAPL/USD")
    conformance.check_order(face.exchange, fetched, "AAPL/USD", method="fetchOrder")
    assert fetched["status"] == "closed" and fetched["filled"] == 3 and fetched["type"] == "limit"
    assert fetched["average"] <= order["price"]
    [position] = capital_sim.positions()
    assert position.size == 3
    all_orders = await face.call("fetch_orders", "AAPL/USD")
    assert [(o["id"], o["status"]) for o in all_orders] == [(order["id"], "closed")]
    [trade] = await face.call("fetch_my_trades")
    assert trade["order"] == order["id"] and trade["amount"] == 3
    conformance.check_trade(face.exchange, trade, "AAPL/USD")


async def test_a_working_order_filled_later_has_one_id_in_every_view(make_face, capital_sim) -> None:
    """The broker lists the position a working order's fill opened under the position's own reference
    (``p_`` + its dealId), not the order's ``o_`` one: the adapter still shows one order, one id, in
    fetch_order, fetch_closed_orders, fetch_my_trades and reconciliation after a restart."""
    face = make_face("async")
    ex = face.impl
    await ex.load_markets()
    mid = capital_sim.quote("AAPL").mid
    order = await ex.create_order("AAPL/USD", "limit", "buy", 3, round(mid - 5, 2), {"clientOrderId": "wo-1"})
    assert order["id"].startswith("o_") and order["status"] == "open"
    capital_sim.pin_price("AAPL", mid - 10)
    capital_sim.advance(120)
    [position] = capital_sim.positions()
    raw = {(a.type, a.details["dealReference"]) for a in capital_sim.broker.dealer.activities}
    assert ("POSITION", "p_" + position.deal_id) in raw and ("WORKING_ORDER", order["id"]) in raw

    fetched = await ex.fetch_order(order["id"])
    assert (fetched["id"], fetched["status"], fetched["filled"]) == (order["id"], "closed", 3)
    closed = await ex.fetch_closed_orders("AAPL/USD")
    assert [(o["id"], o["clientOrderId"], o["filled"]) for o in closed] == [(order["id"], "wo-1", 3)]
    [trade] = await ex.fetch_my_trades("AAPL/USD")
    assert trade["order"] == order["id"] and trade["amount"] == 3
    assert trade["info"]["details"]["positionReference"] == "p_" + position.deal_id

    await face.close()
    restarted = make_face("async")  # same journal file: reconciliation ties the fill to wo-1
    await restarted.impl.load_markets()
    report = await restarted.impl.reconcile_journal()
    assert not [d for d in report.discrepancies if d.client_order_id in (None, "wo-1")]
    journal = await restarted.impl._journal_ready()
    assert journal.get("wo-1").state == "closed"
    assert [(f.exec_id, f.amount) for f in journal.fills("wo-1")] == [(trade["id"], 3)]
    assert journal.fills() == journal.fills("wo-1")  # no fill left without its order
    await restarted.close()


async def test_stop_orders_take_a_trigger(face: Face, capital_sim) -> None:
    bid = capital_sim.quote("AAPL").bid
    stop = await face.call("create_order", "AAPL/USD", "stop", "sell", 1, None, {"triggerPrice": round(bid - 10, 2)})
    legacy = await face.call("create_order", "AAPL/USD", "market", "sell", 1, None, {"stopPrice": round(bid - 12, 2)})
    for order in (stop, legacy):
        conformance.check_order(face.exchange, order, "AAPL/USD")
        assert order["type"] == "stop" and order["status"] == "open" and order["triggerPrice"] == order["price"]
    assert sorted(o.level for o in capital_sim.working_orders()) == [round(bid - 12, 2), round(bid - 10, 2)]
    assert {o.order_type for o in capital_sim.working_orders()} == {"STOP"}
    listed = await face.call("fetch_open_orders")
    assert {o["id"] for o in listed} == {stop["id"], legacy["id"]} and {o["type"] for o in listed} == {"stop"}
    conformance.check_orders(face.exchange, listed, method="fetchOpenOrders")


async def test_stop_loss_and_take_profit_attach_to_the_position(face: Face, capital_sim) -> None:
    ask = capital_sim.quote("AAPL").offer
    order = await face.call("create_order", "AAPL/USD", "market", "buy", 1, None, {
        "stopLoss": {"triggerPrice": round(ask - 10, 2)}, "takeProfit": {"triggerPrice": round(ask + 10, 2)}})
    conformance.check_order(face.exchange, order, "AAPL/USD")
    assert order["stopLossPrice"] == round(ask - 10, 2) and order["takeProfitPrice"] == round(ask + 10, 2)
    [position] = capital_sim.positions()
    assert (position.stop_level, position.profit_level) == (round(ask - 10, 2), round(ask + 10, 2))
    [ccxt_position] = await face.call("fetch_positions", ["AAPL/USD"])
    assert ccxt_position["stopLossPrice"] == round(ask - 10, 2)
    assert ccxt_position["takeProfitPrice"] == round(ask + 10, 2)
    # move the stop on the position (the filled order's id)
    await face.call("edit_order", order["id"], "AAPL/USD", "market", "buy", None, None,
                    {"stopLossPrice": round(ask - 5, 2)})
    [position] = capital_sim.positions()
    assert (position.stop_level, position.profit_level) == (round(ask - 5, 2), round(ask + 10, 2))
    # stopLoss / takeProfit on a working order become its stop / profit distances
    limit = await face.call("create_order", "GOLD/USD", "limit", "buy", 0.5, 2000.0,
                            {"stopLoss": {"triggerPrice": 1990.0}, "takeProfit": {"triggerPrice": 2100.0}})
    [working] = capital_sim.working_orders()
    assert (working.stop_distance, working.profit_distance) == (10.0, 100.0)
    [listed] = await face.call("fetch_open_orders", "GOLD/USD")
    assert listed["stopLossPrice"] == 1990.0 and listed["takeProfitPrice"] == 2100.0 and listed["id"] == limit["id"]


async def test_good_till_date(face: Face, capital_sim) -> None:
    now = capital_sim.clock.now()
    until = int((now + 3600) * 1000)
    order = await face.call("create_order", "AAPL/USD", "limit", "buy", 1, 100.0,
                            {"timeInForce": "GTD", "goodTillDate": until})
    [working] = capital_sim.working_orders()
    assert working.good_till == pytest.approx(until / 1000)
    [listed] = await face.call("fetch_open_orders")
    assert listed["timeInForce"] == "GTD" and listed["id"] == order["id"]
    conformance.check_order(face.exchange, listed, skips={"timeInForce": "GTD is not in ccxt's validator list"})
    iso = datetime.fromtimestamp(now + 7200, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    await face.call("create_order", "AAPL/USD", "limit", "buy", 1, 101.0, {"goodTillDate": iso})
    assert sorted(o.good_till for o in capital_sim.working_orders()) == [pytest.approx(now + 3600), now + 7200]
    capital_sim.advance(3700)
    expired = await face.call("fetch_order", order["id"])
    assert expired["status"] == "expired"  # the broker deleted it at its good-till date
    conformance.check_order(face.exchange, expired, "AAPL/USD", method="fetchOrder")
    with pytest.raises(ccxt.InvalidOrder, match="goodTillDate"):
        await face.call("create_order", "AAPL/USD", "limit", "buy", 1, 100.0, {"timeInForce": "GTD"})


async def test_reduce_only_never_flips(face: Face, capital_sim) -> None:
    with pytest.raises(ccxt.InvalidOrder, match="reduceOnly"):
        await face.call("create_order", "AAPL/USD", "market", "sell", 1, None, {"reduceOnly": True})
    assert booked(capital_sim)["positions"] == 0
    await face.call("create_order", "AAPL/USD", "market", "buy", 5)
    order = await face.call("create_order", "AAPL/USD", "market", "sell", 8, None, {"reduceOnly": True})
    conformance.check_order(face.exchange, order, "AAPL/USD")
    assert order["amount"] == 5 and order["reduceOnly"] is True and order["status"] == "closed"
    assert capital_sim.positions() == []  # closed, not flipped short


async def test_reduce_only_on_a_hedging_account_is_refused_before_anything_is_sent(face: Face, capital_sim,
                                                                                   capital_client) -> None:
    await face.call("create_order", "AAPL/USD", "market", "buy", 5)
    # Switched from the broker's platform (another session) after the bot started: read fresh, not cached.
    capital_sim.advance(1.0)  # one login per API key per second (simulated clock): step past the bot's
    assert capital_client.login().status_code == 200
    assert capital_client.put("/accounts/preferences", {"hedgingMode": True}).json() == {"status": "SUCCESS"}
    before = booked(capital_sim)
    with pytest.raises(ccxt.NotSupported, match="hedging"):
        await face.call("create_order", "AAPL/USD", "market", "sell", 2, None,
                        {"reduceOnly": True, "clientOrderId": "hedge-1"})
    assert booked(capital_sim) == before  # no second (short) position beside the long one
    assert [(p.direction, p.size) for p in capital_sim.positions()] == [("BUY", 5)]
    assert (await face.journal()).get("hedge-1") is None
    closed = await face.call("close_position", "AAPL/USD")
    assert closed["status"] == "closed" and capital_sim.positions() == []


async def test_close_position_side_names_the_position_as_in_ccxt(face: Face, capital_sim) -> None:
    """ccxt's close_position side is the position's (bitget/okx: 'buy' = long): the same call as at IB."""
    await face.call("create_order", "AAPL/USD", "market", "buy", 3)
    before = booked(capital_sim)
    for wrong in ("sell", "short"):
        with pytest.raises(ccxt.InvalidOrder):
            await face.call("close_position", "AAPL/USD", wrong)
    assert booked(capital_sim) == before
    assert [(p.direction, p.size) for p in capital_sim.positions()] == [("BUY", 3)]
    closed = await face.call("close_position", "AAPL/USD", "buy")
    assert closed["side"] == "sell" and closed["status"] == "closed" and capital_sim.positions() == []


async def test_same_client_order_id_returns_the_first_order_also_after_restart(face: Face, capital_sim,
                                                                               make_face) -> None:
    first = await face.call("create_order", "EUR/USD", "market", "buy", 1000, None, {"clientOrderId": "idem-1"})
    again = await face.call("create_order", "EUR/USD", "market", "buy", 1000, None, {"clientOrderId": "idem-1"})
    assert again["id"] == first["id"] and again["clientOrderId"] == "idem-1"
    assert len(capital_sim.positions()) == 1
    await face.close()
    restarted = make_face(face.kind)  # same journal file, new process state
    try:
        await restarted.call("load_markets")
        third = await restarted.call("create_order", "EUR/USD", "market", "buy", 1000, None,
                                     {"clientOrderId": "idem-1"})
        assert third["id"] == first["id"] and third["status"] == "closed"
        assert len(capital_sim.positions()) == 1 and capital_sim.positions()[0].size == 1000
    finally:
        await restarted.close()


async def test_rejected_deals_raise_the_mapped_exception(face: Face, capital_sim) -> None:
    before = booked(capital_sim)
    with pytest.raises(ccxt.InsufficientFunds, match="INSUFFICIENT_FUNDS"):
        await face.call("create_order", "AAPL/USD", "market", "buy", 5000, None, {"clientOrderId": "big-1"})
    assert capital_sim.positions() == [] and booked(capital_sim)["confirms"] == before["confirms"] + 1
    # the same clientOrderId again: the first outcome again, nothing new sent
    with pytest.raises(ccxt.InsufficientFunds):
        await face.call("create_order", "AAPL/USD", "market", "buy", 5000, None, {"clientOrderId": "big-1"})
    assert booked(capital_sim)["confirms"] == before["confirms"] + 1
    closed = await face.call("fetch_closed_orders")
    assert [(o["clientOrderId"], o["status"]) for o in closed] == [("big-1", "rejected")]
    conformance.check_orders(face.exchange, closed, method="fetchClosedOrders")
    # a closed market: Saturday
    capital_sim.set_time(datetime(2024, 3, 9, 12, 0, tzinfo=timezone.utc))
    with pytest.raises(ccxt.MarketClosed):
        await face.call("create_order", "AAPL/USD", "market", "buy", 1)
    assert capital_sim.positions() == []


async def test_close_position(face: Face, capital_sim) -> None:
    await face.call("create_order", "GOLD/USD", "market", "sell", 0.25)
    order = await face.call("close_position", "GOLD/USD")
    conformance.check_order(face.exchange, order, "GOLD/USD")
    assert order["side"] == "buy" and order["amount"] == 0.25 and order["status"] == "closed"
    assert capital_sim.positions() == []
    with pytest.raises(ccxt.InvalidOrder):
        await face.call("close_position", "GOLD/USD")


BAD_INPUT = [
    ("unknown symbol", ("NOPE/USD", "market", "buy", 1, None, {}), ccxt.BadSymbol),
    ("zero amount", ("AAPL/USD", "market", "buy", 0, None, {}), ccxt.InvalidOrder),
    ("negative amount", ("AAPL/USD", "market", "buy", -1, None, {}), ccxt.InvalidOrder),
    ("NaN amount", ("AAPL/USD", "market", "buy", math.nan, None, {}), ccxt.InvalidOrder),
    ("infinite amount", ("AAPL/USD", "market", "buy", math.inf, None, {}), ccxt.InvalidOrder),
    ("text amount", ("AAPL/USD", "market", "buy", "ten", None, {}), ccxt.InvalidOrder),
    ("less than one size increment", ("AAPL/USD", "market", "buy", 0.5, None, {}), ccxt.InvalidOrder),
    ("below the minimum deal", ("EUR/USD", "market", "buy", 999, None, {}), ccxt.InvalidOrder),
    ("limit without price", ("AAPL/USD", "limit", "buy", 1, None, {}), ccxt.ArgumentsRequired),
    ("limit with NaN price", ("AAPL/USD", "limit", "buy", 1, math.nan, {}), ccxt.InvalidOrder),
    ("unsupported type", ("AAPL/USD", "trailing", "buy", 1, None, {}), ccxt.InvalidOrder),
    ("stop-limit", ("AAPL/USD", "limit", "buy", 1, 150.0, {"triggerPrice": 149.0}), ccxt.NotSupported),
    ("unsupported timeInForce", ("AAPL/USD", "limit", "buy", 1, 150.0, {"timeInForce": "IOC"}), ccxt.InvalidOrder),
    ("post only", ("AAPL/USD", "limit", "buy", 1, 150.0, {"postOnly": True}), ccxt.InvalidOrder),
    ("DAY orders", ("AAPL/USD", "limit", "buy", 1, 150.0, {"timeInForce": "DAY"}), ccxt.InvalidOrder),
    ("stop without trigger", ("AAPL/USD", "stop", "sell", 1, None, {}), ccxt.InvalidOrder),
    ("bad side", ("AAPL/USD", "market", "hold", 1, None, {}), ccxt.InvalidOrder),
    ("bad clientOrderId", ("AAPL/USD", "market", "buy", 1, None, {"clientOrderId": "has space"}), ccxt.InvalidOrder),
    ("stop loss with a limit price", ("AAPL/USD", "market", "buy", 1, None,
                                      {"stopLoss": {"triggerPrice": 150.0, "price": 149.0}}), ccxt.InvalidOrder),
]


@pytest.mark.parametrize("case, args, error", BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
async def test_bad_input_books_nothing(face: Face, capital_sim, case: str, args: tuple, error: type) -> None:
    before = booked(capital_sim)
    with pytest.raises(error):
        await face.call("create_order", *args)
    assert booked(capital_sim) == before == {"positions": 0, "orders": 0, "activities": 0, "confirms": 0}
    journal = await face.journal()
    assert journal.orders() == []  # refused before the intent was recorded


async def test_broker_side_validation_is_mapped_and_journaled(face: Face, capital_sim) -> None:
    # A stop loss on the wrong side passes our checks; the broker refuses it with 400 and books nothing.
    ask = capital_sim.quote("AAPL").offer
    with pytest.raises(ccxt.InvalidOrder, match="stoploss"):
        await face.call("create_order", "AAPL/USD", "market", "buy", 1, None,
                        {"stopLoss": {"triggerPrice": round(ask + 5, 2)}, "clientOrderId": "wrong-side"})
    assert booked(capital_sim)["positions"] == 0
    journal = await face.journal()
    assert journal.get("wrong-side").state == "rejected"


async def test_ccxt_convenience_creators_reach_the_same_orders(face: Face, capital_sim) -> None:
    bid, ask = capital_sim.quote("AAPL").bid, capital_sim.quote("AAPL").offer
    limit = await face.call("create_limit_order", "AAPL/USD", "buy", 1, 150.0)
    stop = await face.call("create_stop_order", "AAPL/USD", "market", "sell", 1, None, round(bid - 10, 2))
    trigger = await face.call("create_trigger_order", "AAPL/USD", "market", "sell", 1, None, round(bid - 11, 2))
    assert (limit["type"], stop["type"], trigger["type"]) == ("limit", "stop", "stop")
    assert sorted(o.order_type for o in capital_sim.working_orders()) == ["LIMIT", "STOP", "STOP"]
    bracket = await face.call("create_order_with_take_profit_and_stop_loss", "AAPL/USD", "market", "buy", 2, None,
                              round(ask + 10, 2), round(ask - 10, 2))
    assert bracket["status"] == "closed"
    [position] = capital_sim.positions()
    assert (position.stop_level, position.profit_level) == (round(ask - 10, 2), round(ask + 10, 2))
    reduce = await face.call("create_reduce_only_order", "AAPL/USD", "market", "sell", 5)
    assert reduce["amount"] == 2 and capital_sim.positions() == []
    market = await face.call("create_market_buy_order", "AAPL/USD", 1)
    assert market["status"] == "closed"
    for order in (limit, stop, trigger, bracket, reduce, market):
        conformance.check_order(face.exchange, order, "AAPL/USD")
