"""Order lifecycle against the fake TWS: fills, resting orders, stops, partial fills with
commissions, brackets, OCA, modify, cancel, rejections, expiry; the ledger adds up after
every fill."""

from __future__ import annotations

import math

import pytest

from ccxt_ibkr._ib import (
    IB_LIBRARY_NAME,
    Crypto,
    Forex,
    Future,
    LimitOrder,
    MarketOrder,
    Order,
    Stock,
    StopLimitOrder,
    StopOrder,
)
from ccxt_ibkr.sim import IBSimulator
from ccxt_ibkr.sim.testing import wait_until

AAPL = Stock("AAPL", "SMART", "USD")


async def status(ib, trade, wanted: str, timeout: float = 5.0) -> None:
    await wait_until(ib, lambda: trade.orderStatus.status == wanted, timeout)


async def commissions(ib, trade, count: int) -> list[float]:
    def ready() -> bool:
        fills = trade.fills
        return len(fills) >= count and all(not math.isnan(f.commissionReport.commission)
                                           and f.commissionReport.execId for f in fills)

    await wait_until(ib, ready)
    return [f.commissionReport.commission for f in trade.fills]


def future_minutes(sim: IBSimulator, symbol: str, minutes: int, field: str) -> list[tuple[float, float]]:
    inst = sim.instrument(symbol, "STK", "USD")
    now = sim.now()
    out = []
    for i in range(1, minutes + 1):
        t = (now // 60 + i) * 60
        out.append((t, getattr(sim.market.quote(inst, t), field)))
    return out


async def test_market_order_fills_at_the_touch(ib_sim: IBSimulator, ib_client) -> None:
    quote = ib_sim.quote("AAPL", "STK", "USD")
    trade = ib_client.placeOrder(AAPL, MarketOrder("BUY", 10, orderRef="bot-1"))
    await status(ib_client, trade, "Filled")
    (fill,) = trade.fills
    assert fill.execution.price == quote.ask and fill.execution.side == "BOT"
    assert fill.execution.orderRef == "bot-1" and trade.order.permId > 0
    assert await commissions(ib_client, trade, 1) == [1.0]  # 10 * 0.005 < 1.00 minimum
    await wait_until(ib_client, lambda: any(p.position == 10 for p in ib_client.positions()))
    (pos,) = ib_client.positions()
    assert pos.avgCost == pytest.approx((10 * quote.ask + 1.0) / 10)
    ib_sim.check_ledger()
    cash = ib_sim.ledger.cash["USD"]
    assert cash == pytest.approx(1_000_000 - 10 * quote.ask - 1.0)


async def test_sell_closes_and_reports_realized_pnl(ib_sim: IBSimulator, ib_client) -> None:
    buy = ib_client.placeOrder(AAPL, MarketOrder("BUY", 100))
    await status(ib_client, buy, "Filled")
    ib_sim.advance(3600)
    sell = ib_client.placeOrder(AAPL, MarketOrder("SELL", 100))
    await status(ib_client, sell, "Filled")
    await commissions(ib_client, sell, 1)
    buy_px, sell_px = buy.fills[0].execution.price, sell.fills[0].execution.price
    expected = (sell_px - buy_px) * 100 - 1.0 - 1.0
    assert sell.fills[0].commissionReport.realizedPNL == pytest.approx(expected)
    assert ib_sim.ledger.realized["USD"] == pytest.approx(expected)
    ib_sim.check_ledger()
    await wait_until(ib_client, lambda: all(p.position == 0 for p in ib_client.positions()))


async def test_limit_order_rests_then_fills_when_the_path_crosses(ib_sim: IBSimulator, ib_client) -> None:
    asks = future_minutes(ib_sim, "AAPL", 180, "ask")
    current = ib_sim.quote("AAPL", "STK", "USD").ask
    limit = min(a for _, a in asks)
    assert limit < current
    crossing = next(t for t, a in asks if a <= limit)
    trade = ib_client.placeOrder(AAPL, LimitOrder("BUY", 5, limit, orderRef="lmt"))
    await status(ib_client, trade, "Submitted")
    ib_sim.advance(crossing - ib_sim.now() - 60)
    assert trade.orderStatus.status == "Submitted"
    ib_sim.advance(180 * 60)
    await status(ib_client, trade, "Filled")
    assert trade.fills[0].execution.price <= limit
    # Between whole minutes the quote walks towards the next minute's price (250 ms cadence),
    # so the fill comes within the minute before the path's crossing, at the latest on it.
    assert crossing - 60 < trade.fills[0].execution.time.timestamp() <= crossing
    ib_sim.check_ledger()


async def test_stop_order_triggers_on_last(ib_sim: IBSimulator, ib_client) -> None:
    lasts = future_minutes(ib_sim, "AAPL", 240, "last")
    now_last = ib_sim.quote("AAPL", "STK", "USD").last
    stop = round(min(x for _, x in lasts) + 0.05, 2)
    assert stop < now_last
    trigger = next(t for t, x in lasts if x <= stop)
    trade = ib_client.placeOrder(AAPL, StopOrder("SELL", 3, stop))
    await status(ib_client, trade, "PreSubmitted")
    ib_sim.advance(240 * 60)
    await status(ib_client, trade, "Filled")
    fill = trade.fills[0].execution
    assert fill.time.timestamp() == trigger and fill.side == "SLD"
    inst = ib_sim.instrument("AAPL", "STK", "USD")
    assert fill.price == ib_sim.market.quote(inst, trigger).bid


async def test_stop_limit_order(ib_sim: IBSimulator, ib_client) -> None:
    lasts = future_minutes(ib_sim, "AAPL", 240, "last")
    now_last = ib_sim.quote("AAPL", "STK", "USD").last
    high, low = max(x for _, x in lasts), min(x for _, x in lasts)
    if high - now_last > now_last - low:
        stop = round(high - 0.05, 2)
        order = StopLimitOrder("BUY", 2, round(stop + 1, 2), stop)
    else:
        stop = round(low + 0.05, 2)
        order = StopLimitOrder("SELL", 2, round(stop - 1, 2), stop)
    trade = ib_client.placeOrder(AAPL, order)
    await status(ib_client, trade, "PreSubmitted")
    ib_sim.advance(240 * 60)
    await status(ib_client, trade, "Filled")
    price = trade.fills[0].execution.price
    assert price <= stop + 1 if order.action == "BUY" else price >= stop - 1


async def test_partial_fills_with_commissions(ib_sim: IBSimulator, ib_client) -> None:
    ib_sim.set_liquidity(300)
    trade = ib_client.placeOrder(AAPL, MarketOrder("BUY", 1000, orderRef="big"))
    await wait_until(ib_client, lambda: trade.orderStatus.filled == 300)
    assert trade.orderStatus.status == "Submitted" and trade.orderStatus.remaining == 700
    ib_sim.check_ledger()
    ib_sim.advance(60)
    await wait_until(ib_client, lambda: trade.orderStatus.filled == 600)
    ib_sim.check_ledger()
    ib_sim.advance(120)  # two steps: 300 + the last 100
    await status(ib_client, trade, "Filled")
    ib_sim.check_ledger()
    assert [f.execution.shares for f in trade.fills] == [300, 300, 300, 100]
    assert await commissions(ib_client, trade, 4) == [1.5, 1.5, 1.5, 0.5]
    assert len({f.execution.execId for f in trade.fills}) == 4
    assert trade.fills[-1].execution.cumQty == 1000
    avg = sum(f.execution.shares * f.execution.price for f in trade.fills) / 1000
    assert trade.orderStatus.avgFillPrice == pytest.approx(avg)
    assert sum(ib_sim.ledger.commissions.values()) == pytest.approx(5.0)


async def test_commission_maximum_and_other_asset_classes(ib_sim: IBSimulator, ib_client) -> None:
    cheap = ib_client.placeOrder(Stock("KO", "SMART", "USD"), MarketOrder("BUY", 1))
    fx = ib_client.placeOrder(Forex("EURUSD"), MarketOrder("BUY", 20000))
    btc = ib_client.placeOrder(Crypto("BTC", "PAXOS", "USD"), MarketOrder("BUY", 0.5))
    (es,) = [cd.contract for cd in await ib_client.reqContractDetailsAsync(Future("ES", exchange="CME"))][:1]
    fut = ib_client.placeOrder(es, MarketOrder("SELL", 2))
    for trade in (cheap, fx, btc, fut):
        await status(ib_client, trade, "Filled")
        await commissions(ib_client, trade, 1)
    ib_sim.check_ledger()
    ko_px = cheap.fills[0].execution.price
    assert cheap.fills[0].commissionReport.commission == pytest.approx(min(1.0, 0.01 * ko_px))
    assert fx.fills[0].commissionReport.commission == pytest.approx(2.0)
    btc_fill = btc.fills[0].execution
    assert btc.fills[0].commissionReport.commission == pytest.approx(max(1.75, 0.0018 * 0.5 * btc_fill.price))
    assert fut.fills[0].commissionReport.commission == pytest.approx(1.70)
    assert ib_sim.ledger.cash["EUR"] == 20000
    positions = {p.contract.secType: p for p in ib_sim_positions(ib_sim)}
    assert positions["FUT"].qty == -2 and positions["CRYPTO"].qty == 0.5
    assert positions["FUT"].avg_cost == pytest.approx(es_price(fut) * 50 - 0.85)


def ib_sim_positions(sim: IBSimulator):
    class P:
        def __init__(self, pos):
            self.contract = type("C", (), {"secType": pos.instrument.sec_type})
            self.qty = pos.qty
            self.avg_cost = pos.avg_cost

    return [P(p) for p in sim.ledger.positions.values()]


def es_price(trade) -> float:
    return trade.fills[0].execution.price


async def test_bracket_order(ib_sim: IBSimulator, ib_client) -> None:
    quote = ib_sim.quote("AAPL", "STK", "USD")
    bids = future_minutes(ib_sim, "AAPL", 300, "bid")
    take = round(max(b for _, b in bids) - 0.02, 2)
    assert take > quote.ask
    parent, tp, sl = ib_client.bracketOrder("BUY", 10, round(quote.ask + 0.5, 2), take, round(quote.bid - 30, 2))
    for o in (parent, tp, sl):
        o.orderRef = "br"
    trades = [ib_client.placeOrder(AAPL, o) for o in (parent, tp, sl)]
    await status(ib_client, trades[0], "Filled")
    await status(ib_client, trades[1], "Submitted")
    await status(ib_client, trades[2], "PreSubmitted")  # stop not triggered yet
    ib_sim.advance(300 * 60)
    await status(ib_client, trades[1], "Filled")
    await status(ib_client, trades[2], "Cancelled")
    ib_sim.check_ledger()
    assert ib_sim.ledger.positions[265598].qty == 0


async def test_bracket_is_held_until_the_last_child(ib_sim: IBSimulator, ib_client) -> None:
    quote = ib_sim.quote("AAPL", "STK", "USD")
    parent, tp, sl = ib_client.bracketOrder("BUY", 10, round(quote.bid - 5, 2), round(quote.ask + 5, 2),
                                            round(quote.bid - 10, 2))
    first = ib_client.placeOrder(AAPL, parent)
    ib_client.placeOrder(AAPL, tp)
    assert not any(o.transmitted for o in ib_sim.orders())
    last = ib_client.placeOrder(AAPL, sl)
    await status(ib_client, first, "Submitted")
    await status(ib_client, last, "PreSubmitted")
    ib_client.cancelOrder(parent)
    await status(ib_client, last, "Cancelled")  # children go with the parent


async def test_oca_group(ib_sim: IBSimulator, ib_client) -> None:
    quote = ib_sim.quote("AAPL", "STK", "USD")
    a = LimitOrder("BUY", 5, round(quote.ask + 0.1, 2), ocaGroup="grp1", ocaType=1)
    b = LimitOrder("BUY", 5, round(quote.bid - 20, 2), ocaGroup="grp1", ocaType=1)
    tb = ib_client.placeOrder(AAPL, b)
    await status(ib_client, tb, "Submitted")
    ta = ib_client.placeOrder(AAPL, a)
    await status(ib_client, ta, "Filled")
    await status(ib_client, tb, "Cancelled")
    assert tb.order.ocaGroup == "grp1"


async def test_oca_reduce(ib_sim: IBSimulator, ib_client) -> None:
    quote = ib_sim.quote("AAPL", "STK", "USD")
    rest = ib_client.placeOrder(AAPL, LimitOrder("SELL", 10, round(quote.ask + 20, 2), ocaGroup="g2", ocaType=2))
    await status(ib_client, rest, "Submitted")
    hit = ib_client.placeOrder(AAPL, LimitOrder("SELL", 4, round(quote.bid - 0.1, 2), ocaGroup="g2", ocaType=2))
    await status(ib_client, hit, "Filled")
    await wait_until(ib_client, lambda: rest.order.totalQuantity == 6)
    assert rest.orderStatus.status == "Submitted"


async def test_modify_by_replacing(ib_sim: IBSimulator, ib_client) -> None:
    quote = ib_sim.quote("AAPL", "STK", "USD")
    order = LimitOrder("BUY", 5, round(quote.bid - 10, 2), orderRef="mod")
    trade = ib_client.placeOrder(AAPL, order)
    await status(ib_client, trade, "Submitted")
    perm = trade.order.permId
    order.totalQuantity = 7
    order.lmtPrice = round(quote.ask + 0.05, 2)
    ib_client.placeOrder(AAPL, order)
    await status(ib_client, trade, "Filled")
    assert trade.orderStatus.filled == 7 and trade.order.permId == perm
    assert len([o for o in ib_sim.orders() if o.req.order_ref == "mod"]) == 1


async def test_cancel_and_cancel_errors(ib_sim: IBSimulator, ib_client) -> None:
    errors: list[tuple[int, int]] = []
    ib_client.errorEvent += lambda req, code, *rest: errors.append((req, code))
    quote = ib_sim.quote("AAPL", "STK", "USD")
    trade = ib_client.placeOrder(AAPL, LimitOrder("BUY", 5, round(quote.bid - 10, 2)))
    await status(ib_client, trade, "Submitted")
    ib_client.cancelOrder(trade.order)
    await status(ib_client, trade, "Cancelled")
    await wait_until(ib_client, lambda: (trade.order.orderId, 202) in errors)
    ib_client.client.cancelOrder(999_999)
    await wait_until(ib_client, lambda: (999_999, 10147) in errors)
    filled = ib_client.placeOrder(AAPL, MarketOrder("BUY", 1))
    await status(ib_client, filled, "Filled")
    ib_client.client.cancelOrder(filled.order.orderId)
    await wait_until(ib_client, lambda: (filled.order.orderId, 10148) in errors)
    ib_client.client.cancelOrder(trade.order.orderId)
    await wait_until(ib_client, lambda: errors.count((trade.order.orderId, 10148)) == 1)


async def test_global_cancel(ib_sim: IBSimulator, ib_client) -> None:
    quote = ib_sim.quote("AAPL", "STK", "USD")
    trades = [ib_client.placeOrder(AAPL, LimitOrder("BUY", 1, round(quote.bid - 5 - i, 2))) for i in range(3)]
    for t in trades:
        await status(ib_client, t, "Submitted")
    ib_client.reqGlobalCancel()
    for t in trades:
        await status(ib_client, t, "Cancelled")


def error_codes(trade) -> list[int]:
    return [entry.errorCode for entry in trade.log if entry.errorCode]


@pytest.mark.parametrize(
    "contract,order,code",
    [
        (Stock("NVDA", "SMART", "USD"), MarketOrder("BUY", 100_000), 201),  # insufficient funds
        (AAPL, LimitOrder("BUY", 1, 100.001), 110),  # off the tick
        (AAPL, MarketOrder("BUY", 0), 434),
        (Crypto("BTC", "PAXOS", "USD"), MarketOrder("BUY", 0.00001), 388),
    ],
)
async def test_rejections(ib_sim: IBSimulator, ib_client, contract, order, code: int) -> None:
    seen: list[tuple[int, int]] = []
    ib_client.errorEvent += lambda req, err, *rest: seen.append((req, err))
    trade = ib_client.placeOrder(contract, order)
    await status(ib_client, trade, "Cancelled")
    assert (trade.order.orderId, code) in seen
    # ib_insync keeps warnings (110, 434) out of trade.log; ib_async records every code there.
    if IB_LIBRARY_NAME == "ib_async" or code not in (110, 434):
        assert code in error_codes(trade)
    assert not ib_sim.executions()


async def test_insufficient_funds_text(ib_client) -> None:
    texts = []
    ib_client.errorEvent += lambda req, code, text, *rest: texts.append(text)
    trade = ib_client.placeOrder(Stock("NVDA", "SMART", "USD"), MarketOrder("BUY", 100_000))
    await status(ib_client, trade, "Cancelled")
    assert texts[0].startswith("Order rejected - reason:") and "EQUITY WITH LOAN" in texts[0]


async def test_duplicate_order_id(ib_sim: IBSimulator, ib_client) -> None:
    errors = []
    ib_client.errorEvent += lambda req, code, *rest: errors.append((req, code))
    first = ib_client.placeOrder(AAPL, MarketOrder("BUY", 1))
    await status(ib_client, first, "Filled")
    stale = ib_client.placeOrder(AAPL, MarketOrder("BUY", 2))
    await status(ib_client, stale, "Filled")
    # Reusing a lower id that is not a live order is "duplicate order id" (103).
    ib_client.client.placeOrder(first.order.orderId - 1, AAPL, MarketOrder("BUY", 1))
    await wait_until(ib_client, lambda: (first.order.orderId - 1, 103) in errors)
    # Re-placing a filled order's id is an (illegal) modify of a filled order.
    ib_client.client.placeOrder(first.order.orderId, AAPL, MarketOrder("BUY", 1))
    await wait_until(ib_client, lambda: (first.order.orderId, 104) in errors)


async def test_reject_next_order_fault(ib_sim: IBSimulator, ib_client) -> None:
    ib_sim.reject_next_order("Risk check failed")
    bad = ib_client.placeOrder(AAPL, MarketOrder("BUY", 1))
    await status(ib_client, bad, "Cancelled")
    assert 201 in error_codes(bad)
    good = ib_client.placeOrder(AAPL, MarketOrder("BUY", 1))
    await status(ib_client, good, "Filled")


async def test_day_orders_expire_at_the_close_gtc_survive(ib_sim: IBSimulator, ib_client) -> None:
    quote = ib_sim.quote("AAPL", "STK", "USD")
    day = ib_client.placeOrder(AAPL, LimitOrder("BUY", 1, round(quote.bid - 40, 2), tif="DAY"))
    gtc = ib_client.placeOrder(AAPL, LimitOrder("BUY", 1, round(quote.bid - 40, 2), tif="GTC"))
    await status(ib_client, day, "Submitted")
    await status(ib_client, gtc, "Submitted")
    ib_sim.advance(5 * 3600 + 59 * 60)  # 15:59 New York
    assert day.orderStatus.status == "Submitted"
    ib_sim.advance(60)  # 16:00 close
    await status(ib_client, day, "Cancelled")
    ib_sim.advance(18 * 3600)  # next morning
    assert gtc.orderStatus.status == "Submitted" and not gtc.isDone()
    assert [o.status for o in ib_sim.orders() if o.req.tif == "GTC"] == ["Submitted"]


async def test_ioc_and_fok(ib_sim: IBSimulator, ib_client) -> None:
    quote = ib_sim.quote("AAPL", "STK", "USD")
    miss = ib_client.placeOrder(AAPL, LimitOrder("BUY", 5, round(quote.bid - 5, 2), tif="IOC"))
    await status(ib_client, miss, "Cancelled")
    ib_sim.set_liquidity(3)
    partial = ib_client.placeOrder(AAPL, MarketOrder("BUY", 5, tif="IOC"))
    await status(ib_client, partial, "Cancelled")
    assert partial.orderStatus.filled == 3
    fok = ib_client.placeOrder(AAPL, MarketOrder("BUY", 5, tif="FOK"))
    await status(ib_client, fok, "Cancelled")
    assert fok.orderStatus.filled == 0
    ib_sim.set_liquidity(None)
    ok = ib_client.placeOrder(AAPL, MarketOrder("BUY", 5, tif="FOK"))
    await status(ib_client, ok, "Filled")


async def test_order_ref_and_ids_everywhere(ib_sim: IBSimulator, ib_client) -> None:
    trades = [ib_client.placeOrder(AAPL, MarketOrder("BUY", 1, orderRef=f"r{i}")) for i in range(5)]
    for t in trades:
        await status(ib_client, t, "Filled")
    perms = {t.order.permId for t in trades}
    assert len(perms) == 5 and 0 not in perms
    execs = await ib_client.reqExecutionsAsync()
    assert sorted(f.execution.orderRef for f in execs) == [f"r{i}" for i in range(5)]
    assert len({f.execution.execId for f in execs}) == 5
    completed = await ib_client.reqCompletedOrdersAsync(False)
    assert {t.order.orderRef for t in completed} >= {f"r{i}" for i in range(5)}
    assert {t.order.permId for t in completed} >= perms
    assert all(t.orderStatus.status == "Filled" for t in completed)


async def test_open_orders_keep_order_fields(ib_sim: IBSimulator, ib_client) -> None:
    quote = ib_sim.quote("AAPL", "STK", "USD")
    order = Order(action="SELL", totalQuantity=3, orderType="STP LMT", lmtPrice=round(quote.bid - 6, 2),
                  auxPrice=round(quote.bid - 5, 2), tif="GTC", orderRef="keep", ocaGroup="x", ocaType=3,
                  outsideRth=True)
    trade = ib_client.placeOrder(AAPL, order)
    await status(ib_client, trade, "PreSubmitted")
    opened = await ib_client.reqAllOpenOrdersAsync()
    (o,) = [t.order for t in opened if t.order.orderRef == "keep"]
    assert (o.orderType, o.lmtPrice, o.auxPrice, o.tif, o.ocaGroup, o.ocaType, o.outsideRth) == (
        "STP LMT", order.lmtPrice, order.auxPrice, "GTC", "x", 3, True)


async def test_what_if_order_books_nothing(ib_sim: IBSimulator, ib_client) -> None:
    state = await ib_client.whatIfOrderAsync(AAPL, MarketOrder("BUY", 100))
    quote = ib_sim.quote("AAPL", "STK", "USD")
    assert float(state.initMarginChange) == pytest.approx(100 * quote.ask * 0.5)
    assert state.commission == 1.0 and state.commissionCurrency == "USD"
    assert ib_sim.orders() == [] and ib_client.openTrades() == []


async def test_modify_must_match_the_original(ib_sim: IBSimulator, ib_client) -> None:
    codes: list[tuple[int, int]] = []
    ib_client.errorEvent += lambda req, code, *rest: codes.append((req, code))
    quote = ib_sim.quote("AAPL", "STK", "USD")
    order = LimitOrder("BUY", 1, round(quote.bid - 5, 2))
    trade = ib_client.placeOrder(AAPL, order)
    await status(ib_client, trade, "Submitted")
    ib_client.client.placeOrder(order.orderId, AAPL, LimitOrder("SELL", 1, round(quote.bid - 5, 2)))
    await wait_until(ib_client, lambda: (order.orderId, 105) in codes)
    assert [o.status for o in ib_sim.orders()] == ["Submitted"]  # the original is still working


async def test_child_without_parent_is_rejected(ib_client) -> None:
    child = LimitOrder("SELL", 1, 500.0, parentId=987_654)
    trade = ib_client.placeOrder(AAPL, child)
    await status(ib_client, trade, "Cancelled")
    assert 10006 in error_codes(trade)


async def test_market_data_line_limit(ib_sim: IBSimulator, ib_client) -> None:
    codes: list[int] = []
    ib_client.errorEvent += lambda req, code, *rest: codes.append(code)
    ib_sim.max_market_data_lines = 1
    (msft, ko) = await ib_client.qualifyContractsAsync(Stock("MSFT", "SMART", "USD"), Stock("KO", "SMART", "USD"))
    first = ib_client.reqMktData(msft)
    await wait_until(ib_client, lambda: first.bid == first.bid and first.bid > 0)
    ib_client.reqMktData(ko)
    await wait_until(ib_client, lambda: 101 in codes)


async def test_client_visible_money_adds_up_after_every_fill(ib_sim: IBSimulator, ib_client) -> None:
    """From the client's own data: cash, positions at cost, realized PnL and commissions agree."""
    ib_sim.set_liquidity(40)
    (msft, btc) = await ib_client.qualifyContractsAsync(Stock("MSFT", "SMART", "USD"), Crypto("BTC", "PAXOS", "USD"))
    script = [(AAPL, "BUY", 100), (msft, "BUY", 50), (AAPL, "SELL", 130), (btc, "BUY", 0.25), (AAPL, "BUY", 30),
              (msft, "SELL", 50), (btc, "SELL", 0.25)]
    trades = []

    def all_fills():
        return [f for t in trades for f in t.fills]

    def cash_balance() -> float:
        rows = [v for v in ib_client.accountValues() if v.tag == "CashBalance" and v.currency == "USD"]
        return float(rows[0].value)

    async def check(expected_fills: int) -> None:
        await wait_until(ib_client, lambda: len(all_fills()) == expected_fills
                         and all(f.commissionReport.execId for f in all_fills()))
        fills = all_fills()
        flow = sum((-1 if f.execution.side == "BOT" else 1) * f.execution.shares * f.execution.price for f in fills)
        fees = sum(f.commissionReport.commission for f in fills)
        await wait_until(ib_client, lambda: abs(cash_balance() - (1_000_000 + flow - fees)) < 0.011)
        ib_sim.check_ledger()
        realized = sum(f.commissionReport.realizedPNL for f in fills)
        assert realized == pytest.approx(ib_sim.ledger.realized.get("USD", 0.0), abs=1e-6)
        held: dict[int, float] = {}
        for f in fills:
            held[f.contract.conId] = held.get(f.contract.conId, 0) + (1 if f.execution.side == "BOT" else -1) * (
                f.execution.shares)
        await wait_until(ib_client, lambda: {p.contract.conId: p.position for p in ib_client.positions()
                                             if p.position} == {k: v for k, v in held.items() if abs(v) > 1e-9})
        cost = sum(p.position * p.avgCost for p in ib_client.positions())
        # cash + positions at cost == initial + realized (everything here is in USD)
        assert cash_balance() + cost == pytest.approx(1_000_000 + realized, abs=0.02)

    count = 0
    for contract, side, qty in script:
        trade = ib_client.placeOrder(contract, MarketOrder(side, qty))
        trades.append(trade)
        while True:
            await wait_until(ib_client, lambda t=trade: len(t.fills) > 0)
            count = len(all_fills())
            await check(count)
            if trade.orderStatus.status == "Filled":
                break
            ib_sim.advance(60)
            await wait_until(
                ib_client, lambda c=count, t=trade: len(all_fills()) > c or t.orderStatus.status == "Filled"
            )
    assert sum(f.commissionReport.commission for f in all_fills()) == pytest.approx(
        sum(ib_sim.ledger.commissions.values()))


async def test_portfolio_values_refresh_as_the_clock_moves(ib_sim: IBSimulator, ib_client) -> None:
    trade = ib_client.placeOrder(AAPL, MarketOrder("BUY", 10))
    await status(ib_client, trade, "Filled")
    await wait_until(ib_client, lambda: bool(ib_client.portfolio()))
    ib_sim.advance(3 * 3600)
    mark = ib_sim.market.mid(ib_sim.instrument("AAPL", "STK", "USD"), ib_sim.now())
    await wait_until(ib_client, lambda: ib_client.portfolio()[0].marketPrice == mark)
    item = ib_client.portfolio()[0]
    assert item.marketValue == pytest.approx(10 * mark) and item.unrealizedPNL == pytest.approx(
        10 * mark - 10 * item.averageCost, abs=0.01)


async def test_crypto_cannot_be_shorted_and_gtd_expires(ib_sim: IBSimulator, ib_client) -> None:
    short = ib_client.placeOrder(Crypto("BTC", "PAXOS", "USD"), MarketOrder("SELL", 0.01))
    await status(ib_client, short, "Cancelled")
    assert 201 in error_codes(short)
    quote = ib_sim.quote("AAPL", "STK", "USD")
    gtd = LimitOrder("BUY", 1, round(quote.bid - 20, 2), tif="GTD", goodTillDate="20250610 11:00:00 US/Eastern")
    trade = ib_client.placeOrder(AAPL, gtd)
    await status(ib_client, trade, "Submitted")
    ib_sim.advance(59 * 60)
    assert trade.orderStatus.status == "Submitted"
    ib_sim.advance(60)
    await status(ib_client, trade, "Cancelled")
