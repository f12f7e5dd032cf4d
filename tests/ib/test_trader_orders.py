"""IBTrader orders end to end: place, acknowledge, fill, cancel, edit, brackets, idempotency, rejections.

Each test runs for the sync and the async face; every order goes through ccxt's validators. The
simulator's clock is frozen inside US regular trading hours, so market orders fill on placement
and limit orders away from the touch rest.
"""

# ruff: noqa: F811 - the fixtures imported from trader_fixtures are re-bound as test parameters
from __future__ import annotations

import asyncio
import math
import sqlite3
import uuid

import ccxt
import pytest

from ccxt_ibkr._ib import Order
from ccxt_ibkr.sim.server import IBSimulator
from tests.conformance import check_order, check_orders, check_trade
from tests.ib.trader_fixtures import (  # noqa: F401 - fixtures
    ex,
    face,
    make_trader,
    order_messages,
    run,
    sim,
    sim_orders,
    trader_sim,
)

ACKNOWLEDGED = ("PreSubmitted", "Submitted", "Filled")


def below_touch(sim: IBSimulator, symbol: str = "AAPL", ticks: int = 500) -> float:
    """A buy limit far enough below the bid to rest, on the tick."""
    quote = sim.quote(symbol)
    return round(quote.bid - ticks * 0.01, 2)


# ---------------------------------------------------------------------------------------- placement


async def test_market_buy_fills_with_fee(ex) -> None:
    order = await run(ex.create_order("AAPL/USD", "market", "buy", 3))
    check_order(ex, order, "AAPL/USD")
    assert order["status"] == "closed" and order["filled"] == 3 and order["remaining"] == 0
    assert order["average"] > 0 and order["clientOrderId"].startswith("ccxt-")
    assert order["fee"]["currency"] == "USD" and order["fee"]["cost"] > 0
    assert order["info"]["permId"] and order["trades"]


async def test_limit_order_rests_open_with_gtc_default(ex, sim: IBSimulator) -> None:
    price = below_touch(sim)
    order = await run(ex.create_order("AAPL/USD", "limit", "buy", 2, price, {"clientOrderId": "bot-limit-1"}))
    check_order(ex, order, "AAPL/USD")
    assert order["status"] == "open" and order["price"] == price and order["timeInForce"] == "GTC"
    assert order["clientOrderId"] == "bot-limit-1" and order["filled"] == 0 and order["remaining"] == 2
    fetched = await run(ex.fetch_order(order["id"], "AAPL/USD"))
    check_order(ex, fetched, "AAPL/USD", method="fetchOrder")
    assert fetched["id"] == order["id"] and fetched["status"] == "open"
    canceled = await run(ex.cancel_order(order["id"], "AAPL/USD"))
    check_order(ex, canceled, "AAPL/USD", method="cancelOrder")
    assert canceled["status"] == "canceled"
    again = await run(ex.cancel_order(order["id"], "AAPL/USD"))
    assert again["status"] == "canceled"  # cancelling twice is harmless


async def test_time_in_force_day_ioc_fok(ex, sim: IBSimulator) -> None:
    price = below_touch(sim)
    day = await run(ex.create_order("AAPL/USD", "limit", "buy", 1, price, {"timeInForce": "DAY"}))
    check_order(ex, day, "AAPL/USD")
    assert day["timeInForce"] == "DAY" and day["status"] == "open"
    await run(ex.cancel_order(day["id"]))
    ioc = await run(ex.create_order("AAPL/USD", "limit", "buy", 1, price, {"timeInForce": "IOC"}))
    check_order(ex, ioc, "AAPL/USD")
    assert ioc["timeInForce"] == "IOC" and ioc["status"] in ("canceled", "expired") and ioc["filled"] == 0
    ask = sim.quote("AAPL").ask
    fok = await run(ex.create_order("AAPL/USD", "limit", "buy", 1, round(ask + 0.05, 2), {"timeInForce": "FOK"}))
    check_order(ex, fok, "AAPL/USD")
    assert fok["timeInForce"] == "FOK" and fok["status"] == "closed"


async def test_stop_and_stop_limit_orders(ex, sim: IBSimulator) -> None:
    ask = sim.quote("AAPL").ask
    trigger = round(ask + 5, 2)
    stop = await run(ex.create_order("AAPL/USD", "market", "buy", 1, None, {"triggerPrice": trigger}))
    check_order(ex, stop, "AAPL/USD")
    assert stop["status"] == "open" and stop["triggerPrice"] == trigger and stop["type"] == "market"
    assert stop["info"]["orderType"] == "STP" and stop["timeInForce"] == "DAY"
    legacy = await run(ex.create_order("AAPL/USD", "stop_limit", "buy", 1, round(trigger + 1, 2),
                                       {"stopPrice": trigger}))
    check_order(ex, legacy, "AAPL/USD")
    assert legacy["info"]["orderType"] == "STP LMT" and legacy["price"] == round(trigger + 1, 2)
    assert legacy["timeInForce"] == "GTC"
    for order in (stop, legacy):
        assert (await run(ex.cancel_order(order["id"])))["status"] == "canceled"


async def test_bracket_from_stop_loss_and_take_profit(ex, sim: IBSimulator) -> None:
    quote = sim.quote("AAPL")
    params = {
        "stopLoss": {"triggerPrice": round(quote.bid - 10, 2)},
        "takeProfit": {"price": round(quote.ask + 10, 2)},
    }
    parent = await run(ex.create_order("AAPL/USD", "market", "buy", 4, None, params))
    check_order(ex, parent, "AAPL/USD")
    assert parent["status"] == "closed" and parent["filled"] == 4
    open_orders = await run(ex.fetch_open_orders("AAPL/USD"))
    check_orders(ex, open_orders, "AAPL/USD", method="fetchOpenOrders")
    children = [o for o in open_orders if o["clientOrderId"] in (parent["clientOrderId"] + "-tp",
                                                                   parent["clientOrderId"] + "-sl")]
    assert len(children) == 2
    assert {o["side"] for o in children} == {"sell"} and all(o["amount"] == 4 for o in children)
    assert all(o["info"]["parentId"] == parent["info"]["orderId"] for o in children)
    assert children[0]["info"]["ocaGroup"] and children[0]["info"]["ocaGroup"] == children[1]["info"]["ocaGroup"]
    tp = next(o for o in children if o["clientOrderId"].endswith("-tp"))
    await run(ex.cancel_order(tp["id"]))  # OCA: the stop-loss goes with it
    remaining = [o for o in await run(ex.fetch_open_orders("AAPL/USD")) if o["id"] in {c["id"] for c in children}]
    assert remaining == [] or all(o["status"] == "open" for o in remaining)
    for order in remaining:
        await run(ex.cancel_order(order["id"]))
    await run(ex.create_order("AAPL/USD", "market", "sell", 4))


async def test_standalone_stop_loss_price_is_a_closing_stop(ex, sim: IBSimulator) -> None:
    await run(ex.create_order("AAPL/USD", "market", "buy", 2))
    trigger = round(sim.quote("AAPL").bid - 20, 2)
    order = await run(ex.create_order("AAPL/USD", "market", "sell", 2, None, {"stopLossPrice": trigger}))
    check_order(ex, order, "AAPL/USD")
    assert order["info"]["orderType"] == "STP" and order["triggerPrice"] == trigger and order["status"] == "open"
    await run(ex.cancel_order(order["id"]))
    await run(ex.create_order("AAPL/USD", "market", "sell", 2))


# ---------------------------------------------------------------------------------------- lifecycle


async def test_edit_order_modifies_in_place(ex, sim: IBSimulator) -> None:
    price = below_touch(sim)
    order = await run(ex.create_order("AAPL/USD", "limit", "buy", 2, price))
    edited = await run(ex.edit_order(order["id"], "AAPL/USD", "limit", "buy", 3, round(price + 0.5, 2)))
    check_order(ex, edited, "AAPL/USD", method="editOrder")
    assert edited["id"] == order["id"] and edited["amount"] == 3 and edited["price"] == round(price + 0.5, 2)
    booked = next(o for o in sim.orders() if o.perm_id == order["info"]["permId"])
    assert booked.req.total_qty == 3 and booked.req.lmt_price == round(price + 0.5, 2)
    with pytest.raises(ccxt.InvalidOrder):  # the strict option refuses an off-tick price instead of rounding it
        ex.options["strictPrecision"] = True
        await run(ex.edit_order(order["id"], "AAPL/USD", "limit", "buy", 3, price + 0.001))
    ex.options["strictPrecision"] = False
    await run(ex.cancel_order(order["id"]))
    with pytest.raises(ccxt.InvalidOrder):
        await run(ex.edit_order(order["id"], "AAPL/USD", "limit", "buy", 3, price))


async def test_fetch_order_by_perm_id_and_client_order_id(ex, sim: IBSimulator) -> None:
    order = await run(ex.create_order("AAPL/USD", "limit", "buy", 1, below_touch(sim), {"clientOrderId": "find-me"}))
    by_perm = await run(ex.fetch_order(str(order["info"]["permId"])))
    by_cid = await run(ex.fetch_order(None, None, {"clientOrderId": "find-me"}))
    assert by_perm["id"] == by_cid["id"] == order["id"]
    await run(ex.cancel_order(order["id"]))


async def test_unknown_order_ids(ex) -> None:
    with pytest.raises(ccxt.OrderNotFound):
        await run(ex.fetch_order("987654321"))
    with pytest.raises(ccxt.OrderNotFound):
        await run(ex.cancel_order("987654321"))


async def test_cancel_of_a_filled_order_raises_invalid_order(ex) -> None:
    order = await run(ex.create_order("AAPL/USD", "market", "buy", 1))
    assert order["status"] == "closed"
    with pytest.raises(ccxt.InvalidOrder, match="already filled"):
        await run(ex.cancel_order(order["id"]))
    await run(ex.create_order("AAPL/USD", "market", "sell", 1))


async def test_fetch_orders_open_closed_and_own_only(make_trader, sim: IBSimulator) -> None:
    ex = make_trader(clientOrderPrefix="mine-")
    filled = await run(ex.create_order("AAPL/USD", "market", "buy", 1))
    resting = await run(ex.create_order("AAPL/USD", "limit", "buy", 1, below_touch(sim)))
    foreign = await run(ex.create_order("AAPL/USD", "limit", "buy", 1, below_touch(sim),
                                        {"clientOrderId": "human-1"}))
    orders = await run(ex.fetch_orders("AAPL/USD"))
    check_orders(ex, orders, "AAPL/USD")
    assert {filled["id"], resting["id"], foreign["id"]} <= {o["id"] for o in orders}
    open_ids = {o["id"] for o in await run(ex.fetch_open_orders())}
    assert {resting["id"], foreign["id"]} <= open_ids and filled["id"] not in open_ids
    own = {o["id"] for o in await run(ex.fetch_open_orders(params={"ownOrdersOnly": True}))}
    assert resting["id"] in own and foreign["id"] not in own
    closed = await run(ex.fetch_closed_orders("AAPL/USD"))
    check_orders(ex, closed, "AAPL/USD", method="fetchClosedOrders")
    assert filled["id"] in {o["id"] for o in closed} and all(o["status"] == "closed" for o in closed)
    for order in (resting, foreign):
        await run(ex.cancel_order(order["id"]))
    await run(ex.create_order("AAPL/USD", "market", "sell", 1))


# ---------------------------------------------------------------------------------------- idempotency


async def test_same_client_order_id_returns_the_first_order(ex, sim: IBSimulator, order_messages) -> None:
    price = below_touch(sim)
    first = await run(ex.create_order("AAPL/USD", "limit", "buy", 1, price, {"clientOrderId": "once-1"}))
    second = await run(ex.create_order("AAPL/USD", "limit", "buy", 1, price, {"clientOrderId": "once-1"}))
    assert second["id"] == first["id"] and len(order_messages) == 1
    await run(ex.cancel_order(first["id"]))


async def test_same_client_order_id_after_a_restart(make_trader, sim: IBSimulator, tmp_path, order_messages) -> None:
    journal = tmp_path / "shared-journal.sqlite"
    price = below_touch(sim)
    first_bot = make_trader(journal=journal, clientId=777)
    first = await run(first_bot.create_order("AAPL/USD", "limit", "buy", 1, price, {"clientOrderId": "restart-1"}))
    await run(first_bot.close())
    restarted = make_trader(journal=journal, clientId=777)
    again = await run(restarted.create_order("AAPL/USD", "limit", "buy", 1, price, {"clientOrderId": "restart-1"}))
    check_order(restarted, again, "AAPL/USD")
    assert len(order_messages) == 1
    assert again["clientOrderId"] == "restart-1" and again["status"] == "open"
    assert again["info"]["permId"] == first["info"]["permId"]
    await run(restarted.cancel_order(again["id"]))


async def test_timeout_after_send_is_no_status_and_never_resends(make_trader, sim: IBSimulator,
                                                                 order_messages) -> None:
    """No answer from IB: the bot gets RequestTimeout, not a status IB never confirmed; the same
    clientOrderId again settles it (reconnect, IB lists it) and returns the one order IB booked."""
    ex = make_trader(orderTimeout=0.3)
    await run(ex.load_markets())
    cid = f"slow-{uuid.uuid4().hex[:8]}"
    sim.drop_on_order("booked", order_ref=cid)  # IB books it; the client hears nothing more
    with pytest.raises(ccxt.RequestTimeout, match="outcome is unknown"):
        await run(ex.create_order("AAPL/USD", "limit", "buy", 1, below_touch(sim), {"clientOrderId": cid}))
    again = await run(ex.create_order("AAPL/USD", "limit", "buy", 1, below_touch(sim), {"clientOrderId": cid}))
    check_order(ex, again, "AAPL/USD")
    assert again["clientOrderId"] == cid and again["status"] == "open" and len(order_messages) == 1
    assert sum(1 for o in sim.orders() if o.req.order_ref == cid) == 1


async def test_crash_after_send_then_restart_adopts_the_order(make_trader, sim: IBSimulator, tmp_path,
                                                              order_messages) -> None:
    journal = tmp_path / "crash-journal.sqlite"
    cid = f"crash-{uuid.uuid4().hex[:8]}"
    first = make_trader(journal=journal, orderTimeout=0.3)
    await run(first.load_markets())
    sim.drop_on_order("booked", order_ref=cid)  # IB books the order, then the connection dies
    with pytest.raises(ccxt.RequestTimeout):
        await run(first.create_order("AAPL/USD", "limit", "buy", 1, below_touch(sim), {"clientOrderId": cid}))
    await run(first.close())
    restarted = make_trader(journal=journal)  # another process, another clientId, same journal
    again = await run(restarted.create_order("AAPL/USD", "limit", "buy", 1, below_touch(sim), {"clientOrderId": cid}))
    check_order(restarted, again, "AAPL/USD")
    booked = [o for o in sim.orders() if o.req.order_ref == cid]
    assert len(booked) == 1 and len(order_messages) == 1
    assert again["status"] == "open" and again["info"]["permId"] == booked[0].perm_id
    sim_order_id = str(booked[0].perm_id)
    assert (await run(restarted.fetch_order(sim_order_id)))["clientOrderId"] == cid


# ---------------------------------------------------------------------------------------- rejections


async def test_rejection_raises_the_mapped_exception_with_ib_code(ex, sim: IBSimulator) -> None:
    await run(ex.load_markets())
    sim.reject_next_order("Simulated rejection")
    with pytest.raises(ccxt.InvalidOrder, match="201"):
        await run(ex.create_order("AAPL/USD", "limit", "buy", 1, below_touch(sim)))


async def test_margin_rejection_is_insufficient_funds(ex) -> None:
    with pytest.raises(ccxt.InsufficientFunds, match="201"):
        await run(ex.create_order("MSFT/USD", "market", "buy", 100_000))


async def test_reduce_only_is_enforced(ex, sim: IBSimulator, order_messages) -> None:
    with pytest.raises(ccxt.InvalidOrder, match="reduceOnly"):
        await run(ex.create_order("MSFT/USD", "market", "buy", 1, None, {"reduceOnly": True}))
    await run(ex.create_order("MSFT/USD", "market", "buy", 2))
    with pytest.raises(ccxt.InvalidOrder, match="flip"):
        await run(ex.create_order("MSFT/USD", "market", "sell", 3, None, {"reduceOnly": True}))
    with pytest.raises(ccxt.InvalidOrder, match="increase"):
        await run(ex.create_order("MSFT/USD", "market", "buy", 1, None, {"reduceOnly": True}))
    assert len(order_messages) == 1
    closing = await run(ex.create_order("MSFT/USD", "market", "sell", 2, None, {"reduceOnly": True}))
    check_order(ex, closing, "MSFT/USD")
    assert closing["status"] == "closed" and closing["reduceOnly"] is True


async def test_close_position(ex) -> None:
    await run(ex.create_order("NVDA/USD", "market", "sell", 3))  # short
    closing = await run(ex.close_position("NVDA/USD"))
    check_order(ex, closing, "NVDA/USD")
    assert closing["side"] == "buy" and closing["amount"] == 3 and closing["status"] == "closed"
    assert not [p for p in await run(ex.fetch_positions(["NVDA/USD"]))]
    with pytest.raises(ccxt.InvalidOrder):
        await run(ex.close_position("NVDA/USD"))


async def test_close_position_side_names_the_position_as_in_ccxt(ex, sim: IBSimulator) -> None:
    """ccxt's close_position side is the position's (bitget/okx: 'buy' = long): the same call as at Capital."""
    await run(ex.create_order("TSLA/USD", "market", "buy", 2))  # long
    orders_before = len(sim.orders())
    for wrong in ("sell", "short"):
        with pytest.raises(ccxt.InvalidOrder, match="position is long"):
            await run(ex.close_position("TSLA/USD", wrong))
    assert len(sim.orders()) == orders_before  # nothing was sent
    closing = await run(ex.close_position("TSLA/USD", "buy"))
    assert closing["side"] == "sell" and closing["amount"] == 2 and closing["status"] == "closed"


# ---------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("NOPE/USD", "market", "buy", 1), ccxt.BadSymbol),
        (("AAPL/USD", "market", "buy", 0), ccxt.InvalidOrder),
        (("AAPL/USD", "market", "buy", -5), ccxt.InvalidOrder),
        (("AAPL/USD", "market", "buy", math.nan), ccxt.InvalidOrder),
        (("AAPL/USD", "market", "buy", "ten"), ccxt.InvalidOrder),
        (("AAPL/USD", "limit", "buy", 1, 0.003), ccxt.InvalidOrder),
        (("AAPL/USD", "limit", "buy", 1), (ccxt.InvalidOrder, ccxt.ArgumentsRequired)),
        (("AAPL/USD", "trailing", "buy", 1, 150.0), ccxt.InvalidOrder),
        (("AAPL/USD", "limit", "buy", 1, 150.0, {"timeInForce": "GTD"}), ccxt.InvalidOrder),
        (("AAPL/USD", "limit", "buy", 1, 150.0, {"postOnly": True}), ccxt.InvalidOrder),
        (("AAPL/USD", "stop", "buy", 1), ccxt.InvalidOrder),
        (("AAPL/USD", "limit", "hold", 1, 150.0), ccxt.InvalidOrder),
        (("AAPL/USD", "market", "buy", 1, None, {"triggerPrice": 200.0, "stopPrice": 201.0}), ccxt.InvalidOrder),
        (("AAPL/USD", "market", "buy", 1, None, {"stopLoss": {"price": 1.23}}), ccxt.InvalidOrder),
        (("AAPL/USD", "market", "buy", 1, None, {"clientOrderId": "bad id with spaces"}), ccxt.InvalidOrder),
        (("BTC/USD", "market", "buy", 0.00001), ccxt.InvalidOrder),
    ],
    ids=["unknown-symbol", "zero", "negative", "nan", "not-a-number", "rounds-to-zero", "limit-no-price",
         "bad-type", "bad-tif", "post-only", "stop-no-trigger", "bad-side", "two-triggers",
         "sl-no-trigger", "bad-client-id", "below-min-size"],
)
async def test_bad_input_never_reaches_the_broker(ex, order_messages, args, error) -> None:
    with pytest.raises(error):
        await run(ex.create_order(*args))
    assert order_messages == []


async def test_fills_are_reported_once_each(ex) -> None:
    order = await run(ex.create_order("AMZN/USD", "market", "buy", 2))
    trades = [t for t in await run(ex.fetch_my_trades("AMZN/USD")) if t["order"] == order["id"]]
    for trade in trades:
        check_trade(ex, trade, "AMZN/USD")
    assert sum(t["amount"] for t in trades) == 2 and len({t["id"] for t in trades}) == len(trades)
    await run(ex.create_order("AMZN/USD", "market", "sell", 2))


async def test_ccxt_convenience_creators_route_through_create_order(ex, sim: IBSimulator) -> None:
    quote = sim.quote("AAPL")
    limit = await run(ex.create_limit_order("AAPL/USD", "buy", 1, below_touch(sim)))
    assert limit["status"] == "open" and limit["type"] == "limit"
    stop = await run(ex.create_stop_order("AAPL/USD", "market", "buy", 1, None, round(quote.ask + 7, 2)))
    assert stop["info"]["orderType"] == "STP" and stop["triggerPrice"] == round(quote.ask + 7, 2)
    bracket = await run(ex.create_order_with_take_profit_and_stop_loss(
        "AAPL/USD", "limit", "buy", 1, below_touch(sim), round(quote.ask + 10, 2), round(quote.bid - 50, 2)))
    check_order(ex, bracket, "AAPL/USD")
    children = [o for o in await run(ex.fetch_open_orders("AAPL/USD"))
                if o["info"]["parentId"] == bracket["info"]["orderId"]]
    assert len(children) == 2  # take-profit and stop-loss held until the parent fills
    for order in (limit, stop, bracket):
        await run(ex.cancel_order(order["id"]))
    await run(ex.create_market_order("AAPL/USD", "buy", 1))
    closing = await run(ex.create_reduce_only_order("AAPL/USD", "market", "sell", 1))
    assert closing["reduceOnly"] is True and closing["status"] == "closed"


async def test_an_order_keeps_one_id_for_its_whole_life(ex, sim: IBSimulator) -> None:
    """Bots key their state by order id: create, fetch, list and a repeated clientOrderId agree."""
    cid = f"bot-{uuid.uuid4().hex[:12]}"
    placed = await run(ex.create_order("AAPL/USD", "limit", "buy", 1, below_touch(sim), {"clientOrderId": cid}))
    again = await run(ex.create_order("AAPL/USD", "limit", "buy", 1, below_touch(sim), {"clientOrderId": cid}))
    fetched = await run(ex.fetch_order(placed["id"], "AAPL/USD"))
    listed = [o for o in await run(ex.fetch_open_orders("AAPL/USD")) if o["clientOrderId"] == cid]
    assert placed["id"] == again["id"] == fetched["id"] == listed[0]["id"] == str(placed["info"]["permId"])
    canceled = await run(ex.cancel_order(placed["id"], "AAPL/USD"))
    assert canceled["id"] == placed["id"] and canceled["status"] == "canceled"


# ---------------------------------------------------------------------------------------- journal durability


async def test_power_cut_losing_the_journal_tail_still_never_places_twice(make_trader, sim: IBSimulator, tmp_path,
                                                                          order_messages) -> None:
    """journalSync "normal" (IB's default) may lose the last commits to a power cut; IB's orderRef
    keeps our clientOrderId, so the restarted bot adopts the order instead of placing it again."""
    cid = f"ccxt-{uuid.uuid4().hex}"  # this bot's prefix: reconciliation adopts it back
    first = make_trader(journal=tmp_path / "before-the-cut.sqlite")
    order = await run(first.create_order("AAPL/USD", "limit", "buy", 1, below_touch(sim), {"clientOrderId": cid}))
    assert order["status"] == "open"
    await run(first.close())
    # The restarted process finds a journal without that order (the cut ate the tail of the file).
    restarted = make_trader(journal=tmp_path / "after-the-cut.sqlite")
    again = await run(restarted.create_order("AAPL/USD", "limit", "buy", 1, below_touch(sim), {"clientOrderId": cid}))
    check_order(restarted, again, "AAPL/USD")
    assert again["id"] == order["id"] and again["status"] == "open"
    assert len(order_messages) == 1 and sum(1 for o in sim.orders() if o.req.order_ref == cid) == 1


@pytest.mark.parametrize("own_id", [True, False], ids=["callers-id", "generated-id"])
async def test_process_dying_between_send_and_intent_write_loses_nothing(
        make_trader, sim: IBSimulator, tmp_path, order_messages, own_id: bool) -> None:
    """With journalSync "normal" the intent's write follows the send (OrderJournal.sending). A process
    that dies in between leaves a journal without the order: IB's orderRef gives it back, fill and fee
    included, and the same clientOrderId is not placed again."""
    journal = tmp_path / "journal.sqlite"
    snapshot = tmp_path / "at-the-send.sqlite"
    first = make_trader(face_="async", journal=journal)
    await first.load_markets()
    ib = first.transport.ib
    place = ib.placeOrder

    def place_and_die_here(*args: object) -> object:
        # What another process (or the disk after a crash) sees at the instant the order leaves.
        reader = sqlite3.connect(str(journal))
        with sqlite3.connect(str(snapshot)) as target:
            reader.backup(target)
        reader.close()
        return place(*args)

    ib.placeOrder = place_and_die_here
    params = {"clientOrderId": f"ccxt-{uuid.uuid4().hex}"} if own_id else {}
    order = await first.create_order("AAPL/USD", "market", "buy", 2, None, params)
    cid = order["clientOrderId"]
    assert order["status"] == "closed" and order["filled"] == 2
    await first.close()
    with sqlite3.connect(str(snapshot)) as check:  # nothing of the order had been committed at the send
        assert check.execute("SELECT COUNT(*) FROM orders WHERE client_order_id=?", (cid,)).fetchone()[0] == 0
    restarted = make_trader(face_="async", journal=snapshot)
    if own_id:  # the bot repeats its own id: the first order comes back, nothing is placed
        again = await restarted.create_order("AAPL/USD", "market", "buy", 2, None, {"clientOrderId": cid})
    else:  # a generated id was never seen by anyone before the call returned: the bot asks by order id
        again = await restarted.fetch_order(order["id"], "AAPL/USD")
    check_order(restarted, again, "AAPL/USD")
    assert again["id"] == order["id"] and again["status"] == "closed" and again["filled"] == 2
    assert restarted.journal.get(cid) is not None  # adopted back from IB's orderRef
    trades = [t for t in await restarted.fetch_my_trades("AAPL/USD") if t["order"] == order["id"]]
    assert sum(t["amount"] for t in trades) == 2 and all(t["fee"]["cost"] > 0 for t in trades)
    assert len({t["id"] for t in trades}) == len(trades)
    assert len(order_messages) == 1 and sum(1 for o in sim.orders() if o.req.order_ref == cid) == 1


@pytest.mark.parametrize("sync", ["normal", "full"])
async def test_every_placed_order_is_journaled_with_its_ids_and_history(make_trader, sim: IBSimulator,
                                                                          sync: str) -> None:
    """A generated clientOrderId is journaled after IB answered (normal) or before the send (full); either
    way the journal ends with the order, its ids and the history sent_unknown -> open."""
    ex = make_trader(face_="async", journalSync=sync)
    order = await ex.create_order("AAPL/USD", "limit", "buy", 1, below_touch(sim))
    await asyncio.sleep(0)  # the post-ack journal write runs at the loop's next turn
    row = ex.journal.get(order["clientOrderId"])
    assert row is not None and row.state == "open" and row.perm_id == str(order["info"]["permId"])
    assert row.order_id == str(order["info"]["orderId"]) and (row.price, row.amount) == (order["price"], 1.0)
    assert [h.state for h in ex.journal.history(order["clientOrderId"])] == ["sent_unknown", "open"]
    # The same id again, now the caller's own: the first order comes back, nothing is placed.
    again = await ex.create_order("AAPL/USD", "limit", "buy", 1, below_touch(sim),
                                  {"clientOrderId": order["clientOrderId"]})
    assert again["id"] == order["id"] and sum(1 for o in sim.orders() if o.req.order_ref == row.client_order_id) == 1


async def test_a_generated_id_repeated_at_once_is_still_placed_only_once(make_trader, sim: IBSimulator) -> None:
    """The post-ack journal write of a generated id has not run when a bot repeats the id in the very
    next statement: the journal catches up before the repeat is looked up."""
    ex = make_trader(face_="async")
    order = await ex.create_order("AAPL/USD", "limit", "buy", 1, below_touch(sim))
    again = await ex.create_order("AAPL/USD", "limit", "buy", 1, below_touch(sim),
                                  {"clientOrderId": order["clientOrderId"]})
    assert again["id"] == order["id"]
    assert sum(1 for o in sim.orders() if o.req.order_ref == order["clientOrderId"]) == 1


async def test_journal_sync_option(make_trader) -> None:
    assert make_trader(face_="async").journal.sync == "normal"  # IB default: see IBTrader.description()
    assert make_trader(face_="async", journalSync="full").journal.sync == "full"
    with pytest.raises(ccxt.BadRequest, match="journalSync"):
        make_trader(face_="async", journalSync="sometimes").journal  # noqa: B018 - opening it is the test


async def test_acknowledgement_refresh_equals_a_fresh_parse(make_trader, sim: IBSimulator) -> None:
    """create_order parses the order while IB works and refreshes it on the acknowledgement: the result
    must be exactly what parsing the acknowledged trade from scratch gives."""
    ex = make_trader(face_="async")
    await ex.load_markets()
    market = ex.market("AAPL/USD")
    await ex._ready()
    ib = ex.transport.ib
    contract = ex._contract(market)
    orders = [
        Order(action="BUY", totalQuantity=1, orderType="LMT", lmtPrice=below_touch(sim), tif="GTC",
              orderRef=f"ccxt-{uuid.uuid4().hex}"),
        Order(action="BUY", totalQuantity=2, orderType="MKT", tif="DAY", orderRef=f"ccxt-{uuid.uuid4().hex}"),
        Order(action="SELL", totalQuantity=1, orderType="STP", auxPrice=below_touch(sim), tif="GTC",
              orderRef=f"ccxt-{uuid.uuid4().hex}"),
    ]
    for order in orders:
        trade = ib.placeOrder(contract, order)
        early = ex.parse_ib_order(trade, market)
        assert early["status"] == "open" and early["filled"] == 0
        acked = await ex.transport.wait_trade(trade, lambda t: t.orderStatus.status in ACKNOWLEDGED, 5)
        assert acked, (order.orderType, trade.orderStatus.status, trade.log)
        if order.orderType == "MKT":
            await ex.transport.wait_trade(trade, lambda t: bool(t.fills and t.fills[-1].commissionReport.currency), 5)
        refreshed = ex.refresh_ib_order(early, trade, market)
        assert refreshed == ex.parse_ib_order(trade, market)
        check_order(ex, refreshed, "AAPL/USD")
    await ex.close()


async def test_an_order_held_for_the_open_is_open_not_a_timeout(face: str, tmp_path) -> None:
    """Warning 399 ("will not be placed at the exchange until 09:30"): the order is live and held.

    ib_async marks the trade ``ValidationError`` on any warning; a bot placing stock orders before the
    open must get them back ``open`` at once, not a RequestTimeout after orderTimeout.
    """
    import datetime as dt

    import ccxt_ibkr
    from ccxt_ibkr.async_support import IBTrader as AsyncIBTrader
    from ccxt_ibkr.sim.testing import running_simulator
    from tests.ib.trader_fixtures import trader_options

    saturday = dt.datetime(2025, 6, 14, 12, tzinfo=dt.timezone.utc).timestamp()
    with running_simulator(start=saturday) as weekend:
        cls = ccxt_ibkr.IBTrader if face == "sync" else AsyncIBTrader
        trader = cls({"options": trader_options(weekend, tmp_path / "j.sqlite", orderTimeout=30.0)})
        try:
            price = round(weekend.quote("AAPL").bid - 5, 2)
            order = await asyncio.wait_for(run(trader.create_order("AAPL/USD", "limit", "buy", 1, price)), 10)
            assert order["status"] == "open" and order["filled"] == 0
            listed = await run(trader.fetch_open_orders("AAPL/USD"))
            assert [o["id"] for o in listed] == [order["id"]]
        finally:
            await run(trader.close())
