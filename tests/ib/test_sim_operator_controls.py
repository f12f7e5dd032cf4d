"""The fake TWS models what operator controls rely on: staged (untransmitted) orders, trailing stops
(TRAIL / TRAIL LIMIT, by amount and by percent) and IB algos (algoStrategy + algoParams echoed)."""

from __future__ import annotations

import math

from ccxt_ibkr._ib import MarketOrder, Order, Stock, TagValue
from ccxt_ibkr.sim import IBSimulator
from ccxt_ibkr.sim.testing import wait_until

AAPL = Stock("AAPL", "SMART", "USD")


def lasts(sim: IBSimulator, minutes: int) -> list[tuple[float, float]]:
    inst = sim.instrument("AAPL", "STK", "USD")
    now = sim.now()
    return [(t, sim.market.quote(inst, t).last) for t in ((now // 60 + i) * 60 for i in range(1, minutes + 1))]


def expected_trail(start_last: float, path: list[tuple[float, float]], side: str, distance: float, tick: float,
                   percent: bool = False) -> tuple[float | None, float, float]:
    """(trigger time, first stop, stop at trigger) of a trailing stop, as IB documents it."""
    def level(last: float) -> float:
        d = last * distance / 100 if percent else distance
        if side == "SELL":
            return math.floor((last - d) / tick + 1e-9) * tick
        return math.ceil((last + d) / tick - 1e-9) * tick

    first = stop = level(start_last)
    for t, last in path:
        stop = max(stop, level(last)) if side == "SELL" else min(stop, level(last))
        if (side == "SELL" and last <= stop) or (side == "BUY" and last >= stop):
            return t, first, stop
    return None, first, stop


async def test_trailing_stop_by_amount_follows_the_price_and_triggers(ib_sim: IBSimulator, ib_client) -> None:
    path = lasts(ib_sim, 600)
    now_last = ib_sim.quote("AAPL", "STK", "USD").last
    for distance in (0.25, 0.5, 1.0, 2.0):
        when, first, stop = expected_trail(now_last, path, "SELL", distance, 0.01)
        if when is not None and stop > first:
            break
    assert when is not None and stop > first, "the seeded path should raise and then hit a sell trail"
    order = Order(action="SELL", totalQuantity=5, orderType="TRAIL", auxPrice=distance, tif="GTC")
    trade = ib_client.placeOrder(AAPL, order)
    await wait_until(ib_client, lambda: trade.orderStatus.status == "PreSubmitted")
    ib_sim.advance(600 * 60)
    await wait_until(ib_client, lambda: trade.orderStatus.status == "Filled")
    fill = trade.fills[0].execution
    assert fill.time.timestamp() == when and fill.side == "SLD"
    (sim_order,) = [o for o in ib_sim.orders() if o.order_id == trade.order.orderId]
    assert math.isclose(sim_order.trail_stop, stop) and sim_order.trail_stop > first  # it moved up first


async def test_trailing_stop_by_percent_buy(ib_sim: IBSimulator, ib_client) -> None:
    path = lasts(ib_sim, 600)
    now_last = ib_sim.quote("AAPL", "STK", "USD").last
    for pct in (0.1, 0.2, 0.5, 1.0):
        when, first, stop = expected_trail(now_last, path, "BUY", pct, 0.01, percent=True)
        if when is not None:
            break
    assert when is not None
    trade = ib_client.placeOrder(AAPL, Order(action="BUY", totalQuantity=2, orderType="TRAIL",
                                             trailingPercent=pct, tif="GTC"))
    await wait_until(ib_client, lambda: trade.orderStatus.status == "PreSubmitted")
    ib_sim.advance(600 * 60)
    await wait_until(ib_client, lambda: trade.orderStatus.status == "Filled")
    assert trade.fills[0].execution.time.timestamp() == when


async def test_trail_limit_rests_at_the_offset_from_the_stop(ib_sim: IBSimulator, ib_client) -> None:
    now_last = ib_sim.quote("AAPL", "STK", "USD").last
    order = Order(action="SELL", totalQuantity=1, orderType="TRAIL LIMIT", auxPrice=0.5, lmtPriceOffset=0.1,
                  tif="GTC")
    trade = ib_client.placeOrder(AAPL, order)
    await wait_until(ib_client, lambda: trade.orderStatus.status == "PreSubmitted")
    (sim_order,) = [o for o in ib_sim.orders() if o.order_id == trade.order.orderId]
    assert sim_order.req.lmt_price_offset == 0.1
    assert math.isclose(sim_order.trail_stop, math.floor((now_last - 0.5) / 0.01 + 1e-9) * 0.01)
    assert math.isclose(ib_sim.engine.trail_limit(sim_order), sim_order.trail_stop - 0.1)
    # The echo carries the stop where it stands now and the offset.
    await wait_until(ib_client, lambda: trade.order.lmtPriceOffset == 0.1)


async def test_a_trailing_stop_needs_amount_or_percent(ib_sim: IBSimulator, ib_client) -> None:
    trade = ib_client.placeOrder(AAPL, Order(action="SELL", totalQuantity=1, orderType="TRAIL", tif="GTC"))
    await wait_until(ib_client, lambda: trade.orderStatus.status == "Cancelled")
    assert any("trailing amount" in entry.message for entry in trade.log)


async def test_an_untransmitted_order_sits_unannounced_until_transmitted(ib_sim: IBSimulator, ib_client) -> None:
    order = MarketOrder("BUY", 3, orderRef="staged-1", transmit=False)
    trade = ib_client.placeOrder(AAPL, order)
    await wait_until(ib_client, lambda: any(o.req.order_ref == "staged-1" for o in ib_sim.orders()))
    (sim_order,) = [o for o in ib_sim.orders() if o.req.order_ref == "staged-1"]
    ib_sim.advance(3600)
    assert not sim_order.transmitted and sim_order.filled == 0 and not ib_sim.executions()
    # TWS announces nothing for it, and the open-orders list leaves it out.
    assert trade.orderStatus.status == "PendingSubmit" and trade.order.permId == 0
    opened = await ib_client.reqAllOpenOrdersAsync()
    assert all(t.order.orderRef != "staged-1" for t in opened)
    order.transmit = True
    ib_client.placeOrder(AAPL, order)
    await wait_until(ib_client, lambda: trade.orderStatus.status == "Filled")
    assert sim_order.transmitted and sim_order.filled == 3


async def test_cancelling_an_untransmitted_order_discards_it(ib_sim: IBSimulator, ib_client) -> None:
    order = MarketOrder("BUY", 3, orderRef="staged-2", transmit=False)
    trade = ib_client.placeOrder(AAPL, order)
    await wait_until(ib_client, lambda: any(o.req.order_ref == "staged-2" for o in ib_sim.orders()))
    ib_client.cancelOrder(order)  # ib_async marks an untransmitted order Cancelled at once
    assert trade.orderStatus.status == "Cancelled"
    (sim_order,) = [o for o in ib_sim.orders() if o.req.order_ref == "staged-2"]
    await wait_until(ib_client, lambda: sim_order.status == "Cancelled")  # and TWS discards it
    ib_sim.advance(3600)
    assert not ib_sim.executions()


async def test_algo_strategy_and_params_are_kept_and_echoed(ib_sim: IBSimulator, ib_client) -> None:
    order = MarketOrder("BUY", 4, algoStrategy="Adaptive", algoParams=[TagValue("adaptivePriority", "Patient")])
    trade = ib_client.placeOrder(AAPL, order)
    await wait_until(ib_client, lambda: trade.orderStatus.status == "Filled")
    (sim_order,) = [o for o in ib_sim.orders() if o.order_id == trade.order.orderId]
    assert sim_order.req.algo_strategy == "Adaptive"
    assert sim_order.req.algo_params == [("adaptivePriority", "Patient")]
    opened = await ib_client.reqCompletedOrdersAsync(apiOnly=True)
    assert opened is not None
