"""IB's official client (ibapi 10.50) against the simulator: every request it can send at
server version 178 gets TWS's answer, and the answers agree with the simulator's ledger and
prices. No IB library of the adapter is involved, so this runs the same under ib_insync's venv.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest

ibapi = pytest.importorskip("ibapi")

from ibapi.execution import ExecutionFilter  # noqa: E402
from ibapi.message import OUT  # noqa: E402
from ibapi.order import Order  # noqa: E402
from ibapi.order_cancel import OrderCancel  # noqa: E402
from ibapi.scanner import ScannerSubscription  # noqa: E402

from ccxt_ibkr.sim import IBSimulator  # noqa: E402
from ccxt_ibkr.sim.catalogue import MARKET_RULES  # noqa: E402
from ccxt_ibkr.sim.session import Session  # noqa: E402

from .ibapi_driver import IbapiApp, forex, stock  # noqa: E402

#: ibapi 10.50 request ids that need a server version above 178 (current time in millis,
#: cancel contract data / historical ticks, config): a v178 client cannot send them.
ABOVE_178 = {OUT.REQ_CURRENT_TIME_IN_MILLIS, OUT.CANCEL_CONTRACT_DATA, OUT.CANCEL_HISTORICAL_TICKS,
             OUT.REQ_CONFIG, OUT.UPDATE_CONFIG}
SENDABLE_AT_178 = {m for m in OUT if m not in ABOVE_178 and m != OUT.START_API}


class Spy(IbapiApp):
    """Records the message id of every request ibapi puts on the wire."""

    def __init__(self) -> None:
        super().__init__()
        self.sent_ids: set[int] = set()

    def sendMsg(self, msgId: int, msg: str) -> None:  # noqa: N802 - ibapi's name
        self.sent_ids.add(int(msgId))
        super().sendMsg(msgId, msg)


@pytest.fixture(scope="module")
def sim() -> Iterator[IBSimulator]:
    with IBSimulator(port=0, seed=7) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def app(sim: IBSimulator) -> Iterator[Spy]:
    client = Spy()
    client.start(sim.port, client_id=11)
    assert client.serverVersion() == 178
    yield client
    client.stop()


def _order(action: str, qty: float, order_type: str = "MKT", price: float | None = None) -> Order:
    o = Order()
    o.action = action
    o.totalQuantity = Decimal(str(qty))
    o.orderType = order_type
    if price is not None:
        o.lmtPrice = price
    return o


def _sub() -> ScannerSubscription:
    s = ScannerSubscription()
    s.instrument = "STK"
    s.locationCode = "STK.US.MAJOR"
    s.scanCode = "TOP_PERC_GAIN"
    s.numberOfRows = 5
    return s


NY_END = "20250610 10:00:00 US/Eastern"
UTC_END = "20250610-13:00:00"

# (label, request, callbacks that answer it, error code expected instead, or None)
REQUESTS: list[tuple[str, Callable[[Spy, int], None], set[str], int | None]] = [
    ("reqCurrentTime", lambda a, r: a.reqCurrentTime(), {"currentTime"}, None),
    ("reqManagedAccts", lambda a, r: a.reqManagedAccts(), {"managedAccounts"}, None),
    ("reqIds", lambda a, r: a.reqIds(1), {"nextValidId"}, None),
    ("reqContractDetails", lambda a, r: a.reqContractDetails(r, stock("AAPL")), {"contractDetailsEnd"}, None),
    ("reqMktData snapshot", lambda a, r: a.reqMktData(r, stock("AAPL"), "", True, False, []),
     {"tickSnapshotEnd"}, None),
    ("reqMktDepth", lambda a, r: a.reqMktDepth(r, stock("MSFT", "NASDAQ"), 3, False, []), {"updateMktDepth"}, None),
    ("reqMktDepth smart", lambda a, r: a.reqMktDepth(r, stock("AAPL"), 3, True, []), {"updateMktDepthL2"}, None),
    ("reqHistoricalData", lambda a, r: a.reqHistoricalData(r, stock("AAPL"), "", "1 D", "1 hour", "TRADES", 1, 1,
                                                            False, []), {"historicalDataEnd"}, None),
    ("reqHeadTimeStamp", lambda a, r: a.reqHeadTimeStamp(r, stock("AAPL"), "TRADES", 1, 1), {"headTimestamp"}, None),
    ("reqHistogramData", lambda a, r: a.reqHistogramData(r, stock("AAPL"), True, "3 days"), {"histogramData"}, None),
    ("reqHistoricalTicks TRADES", lambda a, r: a.reqHistoricalTicks(r, stock("AAPL"), "", NY_END, 50, "TRADES", 1,
                                                                     True, []), {"historicalTicksLast"}, None),
    ("reqHistoricalTicks BID_ASK", lambda a, r: a.reqHistoricalTicks(r, stock("AAPL"), "20250609 10:00:00 US/Eastern",
                                                                      "", 20, "BID_ASK", 1, True, []),
     {"historicalTicksBidAsk"}, None),
    ("reqHistoricalTicks MIDPOINT", lambda a, r: a.reqHistoricalTicks(r, forex("EURUSD"), "", UTC_END, 20,
                                                                       "MIDPOINT", 0, True, []),
     {"historicalTicks"}, None),
    ("reqTickByTickData Last", lambda a, r: a.reqTickByTickData(r, stock("AAPL"), "Last", 0, False),
     {"tickByTickAllLast"}, None),
    ("reqTickByTickData AllLast", lambda a, r: a.reqTickByTickData(r, stock("MSFT"), "AllLast", 0, False),
     {"tickByTickAllLast"}, None),
    ("reqTickByTickData BidAsk", lambda a, r: a.reqTickByTickData(r, forex("EURUSD"), "BidAsk", 0, False),
     {"tickByTickBidAsk"}, None),
    ("reqTickByTickData MidPoint", lambda a, r: a.reqTickByTickData(r, forex("GBPUSD"), "MidPoint", 0, False),
     {"tickByTickMidPoint"}, None),
    ("reqMarketRule", lambda a, r: a.reqMarketRule(26), {"marketRule"}, None),
    ("reqSmartComponents", lambda a, r: a.reqSmartComponents(r, "9c0001"), {"smartComponents"}, None),
    ("reqMktDepthExchanges", lambda a, r: a.reqMktDepthExchanges(), {"mktDepthExchanges"}, None),
    ("reqMatchingSymbols", lambda a, r: a.reqMatchingSymbols(r, "AA"), {"symbolSamples"}, None),
    ("reqSecDefOptParams", lambda a, r: a.reqSecDefOptParams(r, "AAPL", "", "STK", 265598),
     {"securityDefinitionOptionParameterEnd"}, None),
    ("reqNewsProviders", lambda a, r: a.reqNewsProviders(), {"newsProviders"}, None),
    ("reqNewsArticle", lambda a, r: a.reqNewsArticle(r, "BRFG", "BRFG$1", []), set(), 10276),
    ("reqHistoricalNews", lambda a, r: a.reqHistoricalNews(r, 265598, "BRFG", "", "", 10, []),
     {"historicalNewsEnd"}, None),
    ("reqNewsBulletins", lambda a, r: a.reqNewsBulletins(True), {"updateNewsBulletin"}, None),
    ("reqFamilyCodes", lambda a, r: a.reqFamilyCodes(), {"familyCodes"}, None),
    ("reqUserInfo", lambda a, r: a.reqUserInfo(r), {"userInfo"}, None),
    ("reqSoftDollarTiers", lambda a, r: a.reqSoftDollarTiers(r), {"softDollarTiers"}, None),
    ("reqScannerParameters", lambda a, r: a.reqScannerParameters(), {"scannerParameters"}, None),
    ("reqScannerSubscription", lambda a, r: a.reqScannerSubscription(r, _sub(), [], []), {"scannerDataEnd"}, None),
    ("requestFA", lambda a, r: a.requestFA(1), set(), 321),
    ("replaceFA", lambda a, r: a.replaceFA(r, 1, "<xml/>"), set(), 321),
    ("queryDisplayGroups", lambda a, r: a.queryDisplayGroups(r), {"displayGroupList"}, None),
    ("subscribeToGroupEvents", lambda a, r: a.subscribeToGroupEvents(r, 1), {"displayGroupUpdated"}, None),
    ("reqWshMetaData", lambda a, r: a.reqWshMetaData(r), set(), 10279),
    ("reqWshEventData", lambda a, r: a.reqWshEventData(r, _wsh()), set(), 10283),
    ("calculateImpliedVolatility", lambda a, r: a.calculateImpliedVolatility(r, stock("AAPL"), 5.0, 190.0, []),
     set(), 321),
    ("calculateOptionPrice", lambda a, r: a.calculateOptionPrice(r, stock("AAPL"), 0.3, 190.0, []), set(), 321),
    ("exerciseOptions", lambda a, r: a.exerciseOptions(r, stock("AAPL"), 1, 1, "", 0, "", "", False), set(), 321),
    ("reqPositions", lambda a, r: a.reqPositions(), {"positionEnd"}, None),
    ("reqPositionsMulti", lambda a, r: a.reqPositionsMulti(r, "", ""), {"positionMultiEnd"}, None),
    ("reqAccountUpdates", lambda a, r: a.reqAccountUpdates(True, ""), {"accountDownloadEnd"}, None),
    ("reqAccountUpdatesMulti", lambda a, r: a.reqAccountUpdatesMulti(r, "", "", True), {"accountUpdateMultiEnd"},
     None),
    ("reqAccountSummary", lambda a, r: a.reqAccountSummary(r, "All", "NetLiquidation"), {"accountSummaryEnd"}, None),
    ("reqPnL", lambda a, r: a.reqPnL(r, "DU1234567", ""), {"pnl"}, None),
    ("reqPnLSingle", lambda a, r: a.reqPnLSingle(r, "DU1234567", "", 265598), {"pnlSingle"}, None),
    ("reqOpenOrders", lambda a, r: a.reqOpenOrders(), {"openOrderEnd"}, None),
    ("reqAllOpenOrders", lambda a, r: a.reqAllOpenOrders(), {"openOrderEnd"}, None),
    ("reqCompletedOrders", lambda a, r: a.reqCompletedOrders(False), {"completedOrdersEnd"}, None),
    ("reqExecutions", lambda a, r: a.reqExecutions(r, ExecutionFilter()), {"execDetailsEnd"}, None),
    ("reqRealTimeBars", lambda a, r: a.reqRealTimeBars(r, stock("AAPL"), 5, "MIDPOINT", False, []),
     {"realtimeBar"}, None),
]


def _wsh():
    from ibapi.common import WshEventData

    data = WshEventData()
    data.conId = 265598
    return data


@pytest.mark.parametrize("label,request_fn,answers,error_code", REQUESTS, ids=[r[0] for r in REQUESTS])
def test_request_is_answered(sim: IBSimulator, app: Spy, label: str, request_fn, answers: set[str],
                             error_code: int | None) -> None:
    _expect_answer(sim, app, label, request_fn, answers, error_code)


def _expect_answer(sim: IBSimulator, app: Spy, label: str, request_fn, answers: set[str],
                   error_code: int | None) -> None:
    req_id = 1000 + [r[0] for r in REQUESTS].index(label)
    mark = app.mark()
    request_fn(app, req_id)
    if label == "reqRealTimeBars":
        _sync(app)  # the simulator has read the request...
        sim.advance(10)  # ...before a 5-second bar completes
    call = app.answer(mark, answers, req_id=None)
    if error_code is None:
        assert call.name in answers, f"{label}: {call}"
    else:
        assert call.name == "error" and call.args[2] == error_code, f"{label}: {call}"
    if label == "reqRealTimeBars":
        app.cancelRealTimeBars(req_id)


def _sync(app: Spy) -> None:
    """Requests are served in order: once currentTime answers, everything sent before was read."""
    mark = app.mark()
    app.reqCurrentTime()
    app.wait_for(lambda c: c.name == "currentTime", after=mark)


def test_fire_and_forget_requests_keep_the_connection(app: Spy) -> None:
    """Cancels and settings TWS acknowledges with silence: no error, the session stays usable."""
    _fire_and_forget(app)


def _fire_and_forget(app: Spy) -> None:
    mark = app.mark()
    app.setServerLogLevel(3)
    app.reqMarketDataType(1)
    app.cancelNewsBulletins()
    app.cancelHistogramData(1)
    app.cancelHeadTimeStamp(1)
    app.cancelPositionsMulti(1)
    app.cancelAccountUpdatesMulti(1)
    app.cancelPnL(1)
    app.cancelPnLSingle(1)
    app.cancelTickByTickData(1)
    app.cancelCalculateImpliedVolatility(1)
    app.cancelCalculateOptionPrice(1)
    app.cancelScannerSubscription(1)
    app.cancelWshMetaData(1)
    app.cancelWshEventData(1)
    app.cancelMktData(1)
    app.cancelMktDepth(1, False)
    app.cancelRealTimeBars(1)
    app.cancelHistoricalData(1)
    app.cancelAccountSummary(1)
    app.cancelPositions()
    app.updateDisplayGroup(1, "265598@SMART")
    app.unsubscribeFromGroupEvents(1)
    app.reqAutoOpenOrders(False)
    app.reqGlobalCancel(OrderCancel())
    app.reqCurrentTime()
    app.wait_for(lambda c: c.name == "currentTime", after=mark)
    errors = [c for c in app.since(mark, "error") if c.args[2] not in {2104, 2106, 2158}]
    # 366: no such historical query; 327: only client 0 may auto-bind (TWS's own answers).
    assert all(c.args[2] in {300, 366, 202, 327} for c in errors), errors


def test_verification_requests_are_refused(app: Spy) -> None:
    _verify(app)


def _verify(app: Spy) -> None:
    # ibapi only sends these when the connection asked for extra authentication.
    app.extraAuth = True
    try:
        mark = app.mark()
        app.verifyRequest("ccxt-brokers", "1")
        app.verifyMessage("data")
        app.verifyAndAuthRequest("ccxt-brokers", "1", "key")
        app.verifyAndAuthMessage("data", "response")
        app.wait_for(lambda c: c.name == "verifyCompleted", after=mark)
        app.wait_for(lambda c: c.name == "verifyAndAuthCompleted", after=mark)
    finally:
        app.extraAuth = False


def test_orders_through_ibapi(sim: IBSimulator, app: Spy) -> None:
    _order_round_trip(app)


def _order_round_trip(app: Spy) -> None:
    mark = app.mark()
    app.reqIds(1)
    order_id = app.wait_for(lambda c: c.name == "nextValidId", after=mark).args[0]
    app.placeOrder(order_id, stock("KO"), _order("BUY", 10, "LMT", 1.0))
    app.wait_for(lambda c: c.name == "orderStatus" and c.args[0] == order_id, after=mark)
    app.cancelOrder(order_id, OrderCancel())
    app.wait_for(lambda c: c.name == "orderStatus" and c.args[0] == order_id and c.args[1] == "Cancelled",
                 after=mark)


def test_every_request_id_ibapi_can_send_is_answered(sim: IBSimulator) -> None:
    """One fresh client drives the whole matrix: every id ibapi can send at v178 goes out, is
    served by a handler, and each request expecting an answer gets it (checked in the helpers)."""
    session_ids = _handled_ids()
    missing_handler = sorted(m.name for m in SENDABLE_AT_178 if int(m) not in session_ids)
    assert missing_handler == []
    sim.advance(20)  # past the 15 s in which IB refuses an identical historical request (pacing)
    client = Spy()
    client.start(sim.port, client_id=13)
    try:
        for label, request_fn, answers, error_code in REQUESTS:
            _expect_answer(sim, client, label, request_fn, answers, error_code)
        _fire_and_forget(client)
        _verify(client)
        _order_round_trip(client)
        not_sent = sorted(m.name for m in SENDABLE_AT_178 if int(m) not in client.sent_ids)
        assert not_sent == []
    finally:
        client.stop()


def _handled_ids() -> set[int]:
    class _Writer:
        def get_extra_info(self, _: str):
            return None

    session = Session(IBSimulator.__new__(IBSimulator), None, _Writer())  # type: ignore[arg-type]
    return set(session.handlers) | {71}


# -- values agree with the simulator's own books ---------------------------------------------
def test_market_rules_match_contract_min_ticks(app: Spy) -> None:
    for contract in (stock("AAPL"), forex("EURUSD"), forex("USDJPY"), stock("WBC", "SMART", "AUD")):
        mark = app.mark()
        app.reqContractDetails(77, contract)
        details = app.wait_for(lambda c: c.name == "contractDetails", after=mark).args[1]
        ids = {int(x) for x in details.marketRuleIds.split(",")}
        assert len(details.marketRuleIds.split(",")) == len(details.validExchanges.split(","))
        for rule_id in ids:
            mark = app.mark()
            app.reqMarketRule(rule_id)
            rule = app.wait_for(lambda c, rule_id=rule_id: c.name == "marketRule" and c.args[0] == rule_id,
                                after=mark)
            increments = rule.args[1]
            assert [(p.lowEdge, p.increment) for p in increments] == list(MARKET_RULES[rule_id])
            assert math.isclose(increments[0].increment, details.minTick)


def test_pnl_equals_the_ledger_and_streams(sim: IBSimulator, app: Spy) -> None:
    mark = app.mark()
    app.reqIds(1)
    order_id = app.wait_for(lambda c: c.name == "nextValidId", after=mark).args[0]
    app.placeOrder(order_id, stock("IBM"), _order("BUY", 100))
    app.wait_for(lambda c: c.name == "orderStatus" and c.args[0] == order_id and c.args[1] == "Filled", after=mark)
    ibm = sim.instrument("IBM")
    mark = app.mark()
    app.reqPnL(501, "DU1234567", "")
    app.reqPnLSingle(502, "DU1234567", "", ibm.con_id)
    app.wait_for(lambda c: c.name == "pnl" and c.args[0] == 501, after=mark)
    app.wait_for(lambda c: c.name == "pnlSingle" and c.args[0] == 502, after=mark)
    _sync(app)
    mark = app.mark()
    sim.advance(600)  # prices move: both streams send new figures
    pnl = app.wait_for(lambda c: c.name == "pnl" and c.args[0] == 501, after=mark).args
    single = app.wait_for(lambda c: c.name == "pnlSingle" and c.args[0] == 502, after=mark).args
    with sim.ledger.lock:
        pos = sim.ledger.positions[ibm.con_id]
        mark_price = sim.mark(ibm)
        unrealized = sum(sim.ledger.unrealized(p, sim.mark(p.instrument)) * sim.ledger.rate(p.instrument.currency)
                         for p in sim.ledger.positions.values() if p.qty)
        realized = sum(v * sim.ledger.rate(c) for c, v in sim.ledger.realized.items())
        pos_unrealized = sim.ledger.unrealized(pos, mark_price)
        pos_value = sim.ledger.market_value(pos, mark_price)
        qty = pos.qty
    assert pnl[2] == pytest.approx(unrealized, abs=0.01)
    assert pnl[3] == pytest.approx(realized, abs=0.01)
    assert pnl[1] == pytest.approx(unrealized + realized, abs=0.02)  # all of it made today
    assert single[1] == Decimal(str(int(qty)))
    assert single[3] == pytest.approx(pos_unrealized, abs=0.01)
    assert single[5] == pytest.approx(pos_value, abs=0.01)
    app.cancelPnL(501)
    app.cancelPnLSingle(502)


def test_positions_multi_carry_listing_exchange(sim: IBSimulator, app: Spy) -> None:
    mark = app.mark()
    app.reqIds(1)
    order_id = app.wait_for(lambda c: c.name == "nextValidId", after=mark).args[0]
    app.placeOrder(order_id, stock("JPM"), _order("BUY", 5))
    app.wait_for(lambda c: c.name == "orderStatus" and c.args[0] == order_id and c.args[1] == "Filled", after=mark)
    mark = app.mark()
    app.reqPositionsMulti(601, "DU1234567", "")
    app.wait_for(lambda c: c.name == "positionMultiEnd", after=mark)
    rows = {c.args[3].symbol: c.args for c in app.since(mark, "positionMulti")}
    assert rows["JPM"][3].exchange == "NYSE"
    assert rows["JPM"][4] == Decimal(5)
    mark = app.mark()
    app.reqPositions()
    app.wait_for(lambda c: c.name == "positionEnd", after=mark)
    positions = {c.args[1].symbol: c.args[1] for c in app.since(mark, "position")}
    assert positions["JPM"].exchange == "NYSE"
    app.cancelPositionsMulti(601)


def test_tick_by_tick_matches_quotes_and_streams(sim: IBSimulator, app: Spy) -> None:
    mark = app.mark()
    app.reqTickByTickData(701, stock("AMZN"), "BidAsk", 0, False)
    first = app.wait_for(lambda c: c.name == "tickByTickBidAsk" and c.args[0] == 701, after=mark).args
    quote = sim.quote("AMZN")
    assert (first[2], first[3]) == (quote.bid, quote.ask)
    _sync(app)
    mark = app.mark()
    sim.advance(300)
    moved = app.wait_for(lambda c: c.name == "tickByTickBidAsk" and c.args[0] == 701, after=mark).args
    quote = sim.quote("AMZN")
    assert (moved[2], moved[3]) == (quote.bid, quote.ask)
    assert moved[1] == int(sim.now())
    app.cancelTickByTickData(701)


def test_histogram_volume_equals_minute_bars(sim: IBSimulator, app: Spy) -> None:
    mark = app.mark()
    app.reqHistogramData(801, stock("AAPL"), True, "1 day")
    rows = app.wait_for(lambda c: c.name == "histogramData" and c.args[0] == 801, after=mark).args[1]
    now = int(sim.now())
    inst = sim.instrument("AAPL")
    bars = sim.market.bars(inst, "TRADES", now, 86400, 60, True, now)
    assert sum(float(r.size) for r in rows) == pytest.approx(sum(b.volume for b in bars if b.time + 60 <= now + 60))
    assert all(abs(r.price / inst.min_tick - round(r.price / inst.min_tick)) < 1e-6 for r in rows)


def test_bid_ask_bars_are_exact_to_the_tick(app: Spy) -> None:
    mark = app.mark()
    app.reqHistoricalData(901, stock("AAPL"), "", "1 D", "5 mins", "BID_ASK", 1, 1, False, [])
    app.wait_for(lambda c: c.name == "historicalDataEnd" and c.args[0] == 901, after=mark)
    bars = [c.args[1] for c in app.since(mark, "historicalData")]
    assert bars
    for bar in bars:
        for price in (bar.open, bar.high, bar.low, bar.close):
            assert len(repr(price).split(".")[-1]) <= 2, price


def test_smart_depth_names_venues_as_market_makers(app: Spy) -> None:
    mark = app.mark()
    app.reqMktDepth(951, stock("AAPL"), 4, True, [])
    app.wait_for(lambda c: c.name == "updateMktDepthL2" and c.args[0] == 951 and c.args[1] == 3, after=mark)
    rows = [c.args for c in app.since(mark, "updateMktDepthL2") if c.args[0] == 951]
    makers = {r[2] for r in rows}
    assert makers <= {"NASDAQ", "ARCA", "BATS", "IEX", "ISLAND"} and len(makers) > 1
    assert all(r[7] for r in rows)  # isSmartDepth
    app.cancelMktDepth(951, True)


def test_futures_name_their_underlying(app: Spy) -> None:
    from ibapi.contract import Contract

    es = Contract()
    es.symbol = "ES"
    es.secType = "FUT"
    es.exchange = "CME"
    es.currency = "USD"
    mark = app.mark()
    app.reqContractDetails(961, es)
    app.wait_for(lambda c: c.name == "contractDetailsEnd" and c.args[0] == 961, after=mark)
    details = [c.args[1] for c in app.since(mark, "contractDetails")]
    assert details and all(d.underConId == 11004968 and d.underSymbol == "ES" and d.underSecType == "IND"
                           for d in details)



def test_daily_pnl_counts_from_new_york_midnight() -> None:
    """A position held overnight: daily PnL is today's move, unrealized the move since the fill."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    ny = ZoneInfo("America/New_York")
    with IBSimulator(port=0, seed=3) as sim:
        client = IbapiApp().start(sim.port, client_id=12)
        try:
            mark = client.mark()
            client.reqIds(1)
            order_id = client.wait_for(lambda c: c.name == "nextValidId", after=mark).args[0]
            client.placeOrder(order_id, stock("IBM"), _order("BUY", 100))
            client.wait_for(lambda c: c.name == "orderStatus" and c.args[0] == order_id and c.args[1] == "Filled",
                            after=mark)
            wednesday_noon = dt.datetime(2025, 6, 11, 12, tzinfo=ny).timestamp()
            sim.set_time(wednesday_noon)
            ibm = sim.instrument("IBM")
            mark = client.mark()
            client.reqPnLSingle(1, "DU1234567", "", ibm.con_id)
            single = client.wait_for(lambda c: c.name == "pnlSingle", after=mark).args
            midnight = dt.datetime(2025, 6, 11, tzinfo=ny).timestamp()
            moved = (sim.market.mid(ibm, wednesday_noon) - sim.market.mid(ibm, midnight)) * 100
            assert single[2] == pytest.approx(moved, abs=0.01)
            with sim.ledger.lock:
                unrealized = sim.ledger.unrealized(sim.ledger.positions[ibm.con_id], sim.mark(ibm))
            assert single[3] == pytest.approx(unrealized, abs=0.01)
            assert single[2] != pytest.approx(single[3], abs=0.01)  # yesterday's move is not today's
        finally:
            client.stop()
