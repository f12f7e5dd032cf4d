"""Fault injection: dropped connections (after N messages, around an order), slow replies,
IB outages (1100/1101/1102), pacing violations, lost commission reports and a gateway
restart whose reconnect sync replays open orders and today's executions."""

from __future__ import annotations

import asyncio

from ccxt_ibkr._ib import LimitOrder, MarketOrder, Stock
from ccxt_ibkr.sim import ACKED, BEFORE, BOOKED, IBSimulator
from ccxt_ibkr.sim.testing import connect, eventually, wait_until

AAPL = Stock("AAPL", "SMART", "USD", conId=265598)


async def disconnected(ib, timeout: float = 5.0) -> None:
    await wait_until(ib, lambda: not ib.isConnected(), timeout)


async def test_drop_after_n_messages(ib_sim: IBSimulator, ib_client) -> None:
    ib_sim.drop_after_messages(2, client_id=1)
    ib_client.reqCurrentTime  # noqa: B018 - the API exists in both libraries
    ib_client.client.reqCurrentTime()
    ib_client.client.reqCurrentTime()
    ib_client.client.reqCurrentTime()
    await disconnected(ib_client)
    await eventually(lambda: ib_sim.connected_client_ids() == [])


async def test_drop_on_incoming_message(ib_sim: IBSimulator, ib_client) -> None:
    ib_sim.drop_after_messages(1, client_id=1, direction="in")
    ib_client.client.reqCurrentTime()
    await disconnected(ib_client)


async def test_drop_before_the_order_is_booked(ib_sim: IBSimulator) -> None:
    ib = await connect(ib_sim, client_id=21)
    ib_sim.drop_on_order(BEFORE, order_ref="lost")
    ib.placeOrder(AAPL, MarketOrder("BUY", 1, orderRef="lost"))
    await disconnected(ib)
    assert [o for o in ib_sim.orders() if o.req.order_ref == "lost"] == []
    ib = await connect(ib_sim, client_id=21)
    try:
        assert ib.openTrades() == [] and ib.fills() == []
    finally:
        ib.disconnect()


async def test_drop_after_booking_without_ack(ib_sim: IBSimulator) -> None:
    quote = ib_sim.quote("AAPL", "STK", "USD")
    ib = await connect(ib_sim, client_id=22)
    ib_sim.drop_on_order(BOOKED, order_ref="silent")
    trade = ib.placeOrder(AAPL, LimitOrder("BUY", 3, round(quote.bid - 5, 2), orderRef="silent"))
    await disconnected(ib)
    assert trade.orderStatus.status == "PendingSubmit"  # the client never heard back
    (booked,) = [o for o in ib_sim.orders() if o.req.order_ref == "silent"]
    assert booked.status == "Submitted"
    ib = await connect(ib_sim, client_id=22)
    try:
        (replayed,) = ib.openTrades()
        assert replayed.order.orderRef == "silent" and replayed.order.permId == booked.perm_id
        assert replayed.orderStatus.status == "Submitted"
    finally:
        ib.disconnect()


async def test_drop_after_ack(ib_sim: IBSimulator) -> None:
    ib = await connect(ib_sim, client_id=23)
    ib_sim.drop_on_order(ACKED)
    trade = ib.placeOrder(AAPL, MarketOrder("BUY", 2, orderRef="acked"))
    await wait_until(ib, lambda: trade.orderStatus.status == "Filled")
    await disconnected(ib)
    ib = await connect(ib_sim, client_id=23)
    try:
        assert [f.execution.orderRef for f in ib.fills()] == ["acked"]
    finally:
        ib.disconnect()


async def test_delayed_replies(ib_sim: IBSimulator, ib_client) -> None:
    loop = asyncio.get_running_loop()
    ib_sim.delay_replies(0.3, client_id=1)
    started = loop.time()
    await ib_client.reqCurrentTimeAsync()
    assert loop.time() - started >= 0.3
    ib_sim.delay_replies(0.0)
    started = loop.time()
    await ib_client.reqCurrentTimeAsync()
    assert loop.time() - started < 0.3


async def test_outage_with_data_lost(ib_sim: IBSimulator, ib_client) -> None:
    codes: list[int] = []
    ib_client.errorEvent += lambda req, code, *rest: codes.append(code)
    (contract,) = await ib_client.qualifyContractsAsync(Stock("MSFT", "SMART", "USD"))
    ticker = ib_client.reqMktData(contract)
    await wait_until(ib_client, lambda: ticker.bid == ticker.bid and ticker.bid > 0)
    ib_sim.start_outage()
    await wait_until(ib_client, lambda: 1100 in codes)
    rejected = ib_client.placeOrder(AAPL, MarketOrder("BUY", 1))
    await wait_until(ib_client, lambda: rejected.orderStatus.status == "Cancelled")
    ib_sim.end_outage(data_lost=True)
    await wait_until(ib_client, lambda: 1101 in codes)
    frozen = ticker.bid
    ib_sim.advance(600)
    await ib_client.reqCurrentTimeAsync()  # a round trip: any tick would have arrived first
    assert ticker.bid == frozen  # subscriptions are gone until the client resubscribes


async def test_outage_with_data_maintained(ib_sim: IBSimulator, ib_client) -> None:
    codes: list[int] = []
    ib_client.errorEvent += lambda req, code, *rest: codes.append(code)
    (contract,) = await ib_client.qualifyContractsAsync(Stock("MSFT", "SMART", "USD"))
    ticker = ib_client.reqMktData(contract)
    await wait_until(ib_client, lambda: ticker.bid == ticker.bid and ticker.bid > 0)
    ib_sim.start_outage()
    await wait_until(ib_client, lambda: 1100 in codes)
    ib_sim.end_outage(data_lost=False)
    await wait_until(ib_client, lambda: 1102 in codes)
    ib_sim.advance(600)
    quote = ib_sim.quote("MSFT", "STK", "USD")
    await wait_until(ib_client, lambda: ticker.bid == quote.bid)


async def test_pacing_violation_fault(ib_sim: IBSimulator, ib_client) -> None:
    codes: list[int] = []
    ib_client.errorEvent += lambda req, code, *rest: codes.append(code)
    ib_sim.pacing_violation()
    assert list(await ib_client.reqHistoricalDataAsync(AAPL, "", "1 D", "1 hour", "TRADES", False, 1)) == []
    assert codes == [162]
    assert await ib_client.reqHistoricalDataAsync(AAPL, "", "2 D", "1 hour", "TRADES", False, 1)


async def test_lost_commission_report_is_recovered_by_req_executions(ib_sim: IBSimulator, ib_client) -> None:
    ib_sim.drop_commission_reports(1)
    trade = ib_client.placeOrder(AAPL, MarketOrder("BUY", 1))
    await wait_until(ib_client, lambda: trade.orderStatus.status == "Filled")
    await ib_client.reqCurrentTimeAsync()
    assert not trade.fills[0].commissionReport.execId
    await ib_client.reqExecutionsAsync()
    # The replayed report updates the fill the client already holds (keyed by execId).
    assert trade.fills[0].commissionReport.commission == 1.0


async def test_gateway_restart_replays_open_orders_and_executions(ib_sim: IBSimulator) -> None:
    quote = ib_sim.quote("AAPL", "STK", "USD")
    ib = await connect(ib_sim, client_id=31)
    resting = ib.placeOrder(AAPL, LimitOrder("BUY", 4, round(quote.bid - 5, 2), orderRef="rest", tif="GTC"))
    filled = ib.placeOrder(AAPL, MarketOrder("BUY", 6, orderRef="done"))
    await wait_until(ib, lambda: filled.orderStatus.status == "Filled" and resting.orderStatus.status == "Submitted")
    await wait_until(ib, lambda: bool(filled.fills) and bool(filled.fills[0].commissionReport.execId))
    ib_sim.restart_gateway()
    await disconnected(ib)
    ib_sim.advance(60)
    ib = await connect(ib_sim, client_id=31)
    try:
        (open_trade,) = ib.openTrades()
        assert open_trade.order.orderRef == "rest" and open_trade.order.permId == resting.order.permId
        (fill,) = ib.fills()
        assert fill.execution.orderRef == "done" and fill.execution.shares == 6
        assert fill.commissionReport.commission == 1.0
        assert [p.position for p in ib.positions()] == [6]
        done = [t for t in ib.trades() if t.order.orderRef == "done"]
        assert done and done[0].orderStatus.status == "Filled"
        assert ib.client.getReqId() > resting.order.orderId
    finally:
        ib.disconnect()


async def test_order_events_go_only_to_the_owner(ib_sim: IBSimulator) -> None:
    a = await connect(ib_sim, client_id=41)
    b = await connect(ib_sim, client_id=42)
    try:
        trade = a.placeOrder(AAPL, MarketOrder("BUY", 1, orderRef="mine"))
        await wait_until(a, lambda: trade.orderStatus.status == "Filled")
        await b.reqCurrentTimeAsync()
        assert b.trades() == [] and b.fills() == []
        await wait_until(b, lambda: [p.position for p in b.positions()] == [1])  # account-wide
        all_open = await b.reqAllOpenOrdersAsync()
        assert all_open == []
        fills = await b.reqExecutionsAsync()
        assert [f.execution.orderRef for f in fills] == ["mine"]
    finally:
        a.disconnect()
        b.disconnect()


async def test_pending_cancel_can_still_fill(ib_sim: IBSimulator, ib_client) -> None:
    ib_sim.set_liquidity(2)
    trade = ib_client.placeOrder(AAPL, MarketOrder("BUY", 6))
    await wait_until(ib_client, lambda: trade.orderStatus.filled == 2)
    ib_sim.hold_cancels()
    ib_client.cancelOrder(trade.order)  # the client marks PendingCancel locally at once
    await eventually(lambda: [o.status for o in ib_sim.orders()] == ["PendingCancel"])
    ib_sim.advance(60)  # the exchange fills more before the cancel lands
    await wait_until(ib_client, lambda: trade.orderStatus.filled == 4)
    assert trade.orderStatus.status == "PendingCancel"
    ib_sim.release_cancels()
    await wait_until(ib_client, lambda: trade.orderStatus.status == "Cancelled")
    assert trade.orderStatus.filled == 4 and len(trade.fills) == 2
    ib_sim.check_ledger()


async def test_client_zero_with_auto_bind_sees_every_order(ib_sim: IBSimulator) -> None:
    master = await connect(ib_sim, client_id=0)  # the library sends reqAutoOpenOrders(True) for clientId 0
    other = await connect(ib_sim, client_id=43)
    try:
        trade = other.placeOrder(AAPL, MarketOrder("BUY", 1, orderRef="seen-by-0"))
        await wait_until(other, lambda: trade.orderStatus.status == "Filled")
        await wait_until(master, lambda: any(t.order.orderRef == "seen-by-0" for t in master.trades()))
        codes: list[int] = []
        other.errorEvent += lambda req, code, *rest: codes.append(code)
        other.client.reqAutoOpenOrders(True)
        await wait_until(other, lambda: 327 in codes)
    finally:
        master.disconnect()
        other.disconnect()


async def test_control_api_is_thread_safe_while_serving(ib_sim: IBSimulator, ib_client) -> None:
    """A second thread moves the clock and arms faults while the client trades."""
    import threading

    errors: list[BaseException] = []

    def hammer() -> None:
        try:
            for i in range(100):
                ib_sim.advance(1)
                if i % 25 == 0:
                    ib_sim.set_liquidity(3 if i % 50 == 0 else None)
                    ib_sim.check_ledger()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    worker = threading.Thread(target=hammer)
    worker.start()
    trades = [ib_client.placeOrder(AAPL, MarketOrder("BUY" if i % 2 else "SELL", 5)) for i in range(20)]
    await asyncio.get_running_loop().run_in_executor(None, worker.join)
    ib_sim.set_liquidity(None)
    ib_sim.advance(60)
    for trade in trades:
        await wait_until(ib_client, lambda t=trade: t.orderStatus.status == "Filled")
    assert errors == []
    ib_sim.check_ledger()
    assert ib_sim.ledger.positions[265598].qty == 0


async def test_informational_10349_leaves_the_order_working(ib_sim: IBSimulator, ib_client) -> None:
    codes: list[tuple[int, int]] = []
    ib_client.errorEvent += lambda req, code, *rest: codes.append((req, code))
    ib_sim.warn_next_order()
    quote = ib_sim.quote("AAPL", "STK", "USD")
    trade = ib_client.placeOrder(AAPL, LimitOrder("BUY", 1, round(quote.bid - 5, 2)))
    await wait_until(ib_client, lambda: (trade.order.orderId, 10349) in codes)
    # The client library may now call the trade Cancelled; the broker still works the order.
    assert [o.status for o in ib_sim.orders()] == ["Submitted"]
    opened = await ib_client.reqAllOpenOrdersAsync()
    assert [t.order.permId for t in opened] == [trade.order.permId]
