"""Positions, working orders, stops and limits, netting and confirms of the Capital.com simulator.

Every deal goes through ``SimClient.deal`` which reads the confirm and asserts that the books add up.
Triggers are made exact by pinning a mid price at a chosen moment instead of hunting the random path.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from ccxt_capital.sim import CapitalSimulator
from ccxt_capital.sim.testing import SimClient

pytestmark = pytest.mark.capital_sim(rate_limits="off")


def position_id(confirm: dict) -> str:
    """The position a deal opened: ``affectedDeals``, not the confirm's own (order) ``dealId``."""
    return next(a["dealId"] for a in confirm["affectedDeals"] if a["status"] == "OPENED")


def _buy(client, epic="AAPL", size=10, **extra):
    return client.deal("POST", "/positions", {"epic": epic, "direction": "BUY", "size": size, **extra})


def _sell(client, epic="AAPL", size=10, **extra):
    return client.deal("POST", "/positions", {"epic": epic, "direction": "SELL", "size": size, **extra})


def _activity(client, **params):
    return client.get("/history/activity", params={"lastPeriod": 86400, "detailed": "true", **params}).json()[
        "activities"]


def test_market_buy_fills_at_offer_and_shows_up(capital_sim, capital_client):
    quote = capital_sim.quote("AAPL")
    confirm = _buy(capital_client)
    assert confirm["dealStatus"] == "ACCEPTED" and confirm["status"] == "OPEN"
    assert confirm["level"] == quote.offer
    assert confirm["dealReference"].startswith("o_")
    # The confirm's own dealId is the order's; the position is the OPENED entry of affectedDeals and
    # links back to the order through workingOrderId (a quirk real clients document).
    [affected] = confirm["affectedDeals"]
    assert affected["status"] == "OPENED" and affected["dealId"] != confirm["dealId"]
    positions = capital_client.get("/positions").json()["positions"]
    assert len(positions) == 1
    position, market = positions[0]["position"], positions[0]["market"]
    assert position["dealId"] == affected["dealId"]
    assert position["workingOrderId"] == confirm["dealId"]
    assert (position["direction"], position["size"], position["level"]) == ("BUY", 10, quote.offer)
    assert position["upl"] == pytest.approx((quote.bid - quote.offer) * 10)
    assert market["epic"] == "AAPL"
    single = capital_client.get(f"/positions/{affected['dealId']}").json()
    assert single["position"] == position
    # Money: deposit untouched, the spread is the unrealized loss, margin is 20 % of the notional.
    account = capital_client.get("/accounts").json()["accounts"][0]["balance"]
    assert account["deposit"] == 10000.0
    assert account["profitLoss"] == pytest.approx(position["upl"])
    assert account["balance"] == pytest.approx(10000.0 + position["upl"])
    assert account["available"] == pytest.approx(account["balance"] - 10 * quote.mid * 0.2, abs=0.01)


def test_fill_price_is_inside_the_minute_bar(capital_sim, capital_client):
    confirm = _sell(capital_client, "EURUSD", 10000)
    bar = capital_client.get("/prices/EURUSD", params={"max": 1}).json()["prices"][0]
    assert bar["lowPrice"]["bid"] <= confirm["level"] <= bar["highPrice"]["bid"]


def test_close_position_books_realized_pnl(capital_sim, capital_client):
    opened = _buy(capital_client)
    capital_sim.advance(3600)
    capital_client.login()
    quote = capital_sim.quote("AAPL")
    closed = capital_client.deal("DELETE", f"/positions/{position_id(opened)}")
    assert closed["status"] == "CLOSED" and closed["dealStatus"] == "ACCEPTED"
    assert closed["dealReference"].startswith("p_")
    assert closed["affectedDeals"] == [{"dealId": position_id(opened), "status": "FULLY_CLOSED"}]
    assert closed["dealId"] not in (position_id(opened), opened["dealId"])
    assert closed["level"] == quote.bid
    pnl = round((quote.bid - opened["level"]) * 10, 2)
    assert closed["profit"] == pnl
    assert capital_client.get("/positions").json() == {"positions": []}
    trades = capital_client.get("/history/transactions", params={"type": "TRADE", "lastPeriod": 86400}).json()
    assert [float(t["size"]) for t in trades["transactions"]] == [pnl]
    assert capital_sim.balances()["deposit"] == pytest.approx(10000 + pnl)
    actions = [a["details"]["actions"][0]["actionType"] for a in _activity(capital_client)]
    assert actions == ["POSITION_OPENED", "POSITION_CLOSED"]


def test_netting_partial_close_and_flip(capital_sim, capital_client):
    opened = _buy(capital_client, size=10)
    partial = _sell(capital_client, size=4)
    assert partial["status"] == "CLOSED"
    assert partial["affectedDeals"] == [{"dealId": position_id(opened), "status": "PARTIALLY_CLOSED"}]
    [position] = capital_sim.positions()
    assert (position.direction, position.size, position.deal_id) == ("BUY", 6, position_id(opened))
    flip = _sell(capital_client, size=10)
    assert flip["status"] == "OPEN"
    assert flip["affectedDeals"][0] == {"dealId": position_id(opened), "status": "FULLY_CLOSED"}
    assert flip["affectedDeals"][1]["status"] == "OPENED"
    [position] = capital_sim.positions()
    assert (position.direction, position.size) == ("SELL", 4)
    assert len(capital_sim.transactions()) == 3  # funding + two realized trades


def test_same_direction_deals_are_separate_positions(capital_sim, capital_client):
    _buy(capital_client, size=1)
    _buy(capital_client, size=2)
    assert sorted(p.size for p in capital_sim.positions()) == [1, 2]
    _sell(capital_client, size=2)  # nets the oldest first
    assert sorted(p.size for p in capital_sim.positions()) == [1]


def test_hedging_mode_keeps_both_directions(capital_sim, capital_client):
    assert capital_client.put("/accounts/preferences", {"hedgingMode": True}).json() == {"status": "SUCCESS"}
    _buy(capital_client, size=10)
    _sell(capital_client, size=4)
    assert sorted((p.direction, p.size) for p in capital_sim.positions()) == [("BUY", 10), ("SELL", 4)]
    # Hedging cannot be switched off while both directions are open on one epic.
    response = capital_client.put("/accounts/preferences", {"hedgingMode": False})
    assert response.status_code == 400
    assert capital_client.get("/accounts/preferences").json()["hedgingMode"] is True


def test_stop_loss_triggers_on_the_clock(capital_sim, capital_client):
    capital_sim.pin_price("AAPL", 100.0)
    quote = capital_sim.quote("AAPL")
    opened = _buy(capital_client, stopLevel=95.0, profitLevel=110.0)
    assert (opened["stopLevel"], opened["profitLevel"]) == (95.0, 110.0)
    position = capital_client.get(f"/positions/{position_id(opened)}").json()["position"]
    assert (position["stopLevel"], position["profitLevel"]) == (95.0, 110.0)
    start = capital_sim.clock.now()
    capital_sim.pin_price("AAPL", 94.0, at=start + 300)
    capital_sim.advance(200)
    assert len(capital_sim.positions()) == 1
    capital_sim.advance(200)
    assert capital_sim.positions() == []
    capital_sim.check_books()
    capital_client.login()
    closing = [a for a in _activity(capital_client) if a["source"] == "SL"]
    assert len(closing) == 1
    assert closing[0]["dateUTC"] == datetime.fromtimestamp(start + 300, timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.000")
    exit_bid = capital_sim.quote("AAPL").bid
    assert closing[0]["details"]["level"] == exit_bid
    pnl = round((exit_bid - quote.offer) * 10, 2)
    assert capital_sim.balances()["deposit"] == pytest.approx(10000 + pnl)


def test_take_profit_on_a_short(capital_sim, capital_client):
    capital_sim.pin_price("GOLD", 2000.0)
    opened = _sell(capital_client, "GOLD", 1, profitDistance=20, stopDistance=30)
    assert opened["profitLevel"] == pytest.approx(opened["level"] - 20)
    assert opened["stopLevel"] == pytest.approx(opened["level"] + 30)
    capital_sim.pin_price("GOLD", 1975.0, at=capital_sim.clock.now() + 600)
    capital_sim.advance(3600)
    assert capital_sim.positions() == []
    capital_client.login()
    assert [a["source"] for a in _activity(capital_client) if a["type"] == "POSITION"] == ["USER", "TP"]
    capital_sim.check_books()


def test_stop_amount_is_money_in_account_currency(capital_sim, capital_client):
    capital_sim.pin_price("MSFT", 400.0)
    opened = _buy(capital_client, "MSFT", 10, stopAmount=50)
    assert opened["stopLevel"] == pytest.approx(opened["level"] - 5.0)


def test_guaranteed_stop_fills_at_its_level_through_a_gap(capital_sim, capital_client):
    capital_sim.pin_price("NVDA", 100.0)
    opened = _buy(capital_client, "NVDA", 10, stopLevel=95.0, guaranteedStop=True)
    capital_sim.pin_price("NVDA", 80.0, at=capital_sim.clock.now() + 60)
    capital_sim.advance(120)
    assert capital_sim.positions() == []
    trade = [t for t in capital_sim.transactions() if t.type == "TRADE"][0]
    assert trade.amount == pytest.approx((95.0 - opened["level"]) * 10)


def test_trailing_stop_follows_the_price(capital_sim, capital_client):
    capital_sim.pin_price("BTCUSD", 60000.0)
    opened = _buy(capital_client, "BTCUSD", 0.1, trailingStop=True, stopDistance=1000)
    now = capital_sim.clock.now()
    capital_sim.pin_price("BTCUSD", 62000.0, at=now + 60)
    capital_sim.advance(120)
    [position] = capital_sim.positions()
    assert position.stop_level == pytest.approx(capital_sim.quote("BTCUSD").bid - 1000, abs=0.01)
    capital_sim.pin_price("BTCUSD", 60500.0, at=now + 180)
    capital_sim.advance(120)
    assert capital_sim.positions() == []
    trade = [t for t in capital_sim.transactions() if t.type == "TRADE"][0]
    assert trade.amount > 0  # the stop had moved above the entry
    assert opened["trailingStop"] is True


def test_amend_position_stop_and_profit(capital_sim, capital_client):
    capital_sim.pin_price("AAPL", 100.0)
    opened = _buy(capital_client)
    amended = capital_client.deal("PUT", f"/positions/{position_id(opened)}", {"stopLevel": 90.0, "profitLevel": 120.0})
    assert amended["status"] == "AMENDED"
    position = capital_client.get(f"/positions/{position_id(opened)}").json()["position"]
    assert (position["stopLevel"], position["profitLevel"]) == (90.0, 120.0)
    capital_client.deal("PUT", f"/positions/{position_id(opened)}", {"profitLevel": 125.0})
    position = capital_client.get(f"/positions/{position_id(opened)}").json()["position"]
    assert "stopLevel" not in position and position["profitLevel"] == 125.0
    too_close = capital_client.put(f"/positions/{position_id(opened)}", {"stopLevel": 99.99})
    assert too_close.status_code == 400
    # A BUY's stop just under the price is above the highest allowed level: maxvalue (official naming).
    assert too_close.json()["errorCode"].startswith("error.invalid.stoploss.maxvalue: ")
    assert capital_client.put("/positions/nope", {"stopLevel": 90.0}).status_code == 404
    edits = [a for a in _activity(capital_client) if a["type"] == "EDIT_STOP_AND_LIMIT"]
    assert len(edits) == 2


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"size": 0.5}, "error.invalid.size.minvalue: 1"),
        ({"size": 1.5}, "error.invalid.size.increment: 1"),
        ({"size": 100000}, "error.invalid.size.maxvalue: 5000"),
        ({"stopLevel": 99.9}, "error.invalid.stoploss.maxvalue: 99.55"),
        ({"stopLevel": 101.0}, "error.invalid.stoploss.maxvalue: 99.55"),
        ({"stopLevel": 1.0}, "error.invalid.stoploss.minvalue: 25.01"),
        ({"profitLevel": 100.1}, "error.invalid.takeprofit.minvalue: 100.55"),
        ({"profitLevel": 500.0}, "error.invalid.takeprofit.maxvalue: 175.09"),
        ({"guaranteedStop": True, "stopLevel": 99.5}, "error.invalid.stoploss.maxvalue: 99.05"),
    ],
)
def test_invalid_deals_are_refused_before_booking(capital_sim, capital_client, body, code):
    capital_sim.pin_price("AAPL", 100.0)
    response = capital_client.post("/positions", {"epic": "AAPL", "direction": "BUY", "size": 10, **body})
    assert response.status_code == 400
    assert response.json() == {"errorCode": code}
    assert capital_sim.positions() == []
    capital_sim.check_books()


@pytest.mark.parametrize(
    ("body", "code"),
    [  # a SELL's stop belongs above the price and its take-profit below: the bound named is the level's
        ({"stopLevel": 500.0}, "error.invalid.stoploss.maxvalue: 174.91"),
        ({"stopLevel": 100.0}, "error.invalid.stoploss.minvalue: 100.45"),
        ({"profitLevel": 1.0}, "error.invalid.takeprofit.minvalue: 24.99"),
        ({"profitLevel": 99.9}, "error.invalid.takeprofit.maxvalue: 99.45"),
    ],
)
def test_sell_protection_bounds_name_the_level_crossed(capital_sim, capital_client, body, code):
    capital_sim.pin_price("AAPL", 100.0)
    response = capital_client.post("/positions", {"epic": "AAPL", "direction": "SELL", "size": 10, **body})
    assert (response.status_code, response.json()) == (400, {"errorCode": code})
    assert capital_sim.positions() == []


def test_fractional_sizes_where_allowed(capital_sim, capital_client):
    assert _buy(capital_client, "TSLA", 0.3)["dealStatus"] == "ACCEPTED"
    assert capital_client.post("/positions", {"epic": "TSLA", "direction": "BUY", "size": 0.35}).json() == {
        "errorCode": "error.invalid.size.increment: 0.1"}


def test_closed_market_deal_is_rejected_on_the_confirm(capital_sim, capital_client):
    confirm = _buy(capital_client, "BHP", 10)  # Sydney is closed at 15:00 UTC
    assert confirm["dealStatus"] == "REJECTED"
    assert confirm["rejectReason"] == "MARKET_CLOSED"
    assert confirm["dealId"] is None
    assert capital_sim.positions() == []
    rejected = [a for a in _activity(capital_client) if a["status"] == "REJECTED"]
    assert len(rejected) == 1 and rejected[0]["epic"] == "BHP"
    # At 01:00 UTC (12:00 in Sydney) the same deal goes through.
    capital_sim.set_time(datetime(2024, 3, 6, 1, 0, tzinfo=timezone.utc))
    capital_client.login()
    assert _buy(capital_client, "BHP", 10)["dealStatus"] == "ACCEPTED"


def test_closing_on_a_closed_market_is_rejected(capital_sim, capital_client):
    opened = _buy(capital_client, "AAPL", 1)
    capital_sim.set_time(datetime(2024, 3, 9, 12, 0, tzinfo=timezone.utc))
    capital_client.login()
    closed = capital_client.deal("DELETE", f"/positions/{position_id(opened)}")
    assert (closed["dealStatus"], closed["rejectReason"]) == ("REJECTED", "MARKET_CLOSED")
    assert len(capital_sim.positions()) == 1


def test_insufficient_funds(capital_sim, capital_client):
    capital_sim.pin_price("AAPL", 100.0)
    confirm = _buy(capital_client, "AAPL", 600)  # 60 000 notional at 5:1 needs 12 000 of margin
    assert (confirm["dealStatus"], confirm["rejectReason"]) == ("REJECTED", "INSUFFICIENT_FUNDS")
    assert _buy(capital_client, "AAPL", 400)["dealStatus"] == "ACCEPTED"
    # Closing or reducing never needs margin.
    assert _sell(capital_client, "AAPL", 400)["dealStatus"] == "ACCEPTED"
    # Raising leverage preference lowers the margin: at 5:1 SHARES is already the maximum, FX goes 30:1.
    assert _buy(capital_client, "EURUSD", 200000)["dealStatus"] == "ACCEPTED"


def test_validation_rejections_can_come_on_the_confirm():
    with CapitalSimulator(port=0, rate_limits="off", rejects_on_confirm=True) as sim:
        client = SimClient(sim)
        confirm = client.deal("POST", "/positions", {"epic": "AAPL", "direction": "BUY", "size": 0.5})
        assert (confirm["dealStatus"], confirm["rejectReason"]) == ("REJECTED", "error.invalid.size.minvalue: 1")


def test_unknown_epic_and_unknown_ids(capital_client):
    response = capital_client.post("/positions", {"epic": "NOPE", "direction": "BUY", "size": 1})
    assert response.status_code == 404 and response.json() == {"errorCode": "error.not-found.epic"}
    assert capital_client.get("/positions/nope").json() == {"errorCode": "error.not-found.dealId"}
    assert capital_client.delete("/positions/nope").status_code == 404
    assert capital_client.get("/confirms/o_nope").json() == {"errorCode": "error.not-found.dealReference"}


def test_deals_of_one_account_are_invisible_to_the_other(capital_sim, capital_client):
    opened = _buy(capital_client, "AAPL", 1)
    reference = capital_sim.broker.dealer.positions[position_id(opened)].deal_reference
    capital_client.put("/session", {"accountId": "200000000000002"})
    assert capital_client.get(f"/confirms/{reference}").status_code == 404
    assert capital_client.get(f"/positions/{position_id(opened)}").status_code == 404
    assert capital_client.delete(f"/positions/{position_id(opened)}").status_code == 404


# -- working orders -----------------------------------------------------------------------------
def _order(client, **body):
    payload = {"epic": "AAPL", "direction": "BUY", "size": 10, "type": "LIMIT", **body}
    return client.deal("POST", "/workingorders", payload)


def test_limit_order_rests_then_fills(capital_sim, capital_client):
    capital_sim.pin_price("AAPL", 100.0)
    confirm = _order(capital_client, level=95.0, stopDistance=5, profitDistance=10)
    assert (confirm["status"], confirm["dealStatus"]) == ("OPEN", "ACCEPTED")
    orders = capital_client.get("/workingorders").json()["workingOrders"]
    assert len(orders) == 1
    data = orders[0]["workingOrderData"]
    assert data["dealId"] == confirm["dealId"]
    assert (data["orderType"], data["orderLevel"], data["orderSize"]) == ("LIMIT", 95.0, 10)
    assert data["timeInForce"] == "GOOD_TILL_CANCELLED"
    assert (data["stopDistance"], data["profitDistance"]) == (5, 10)
    assert orders[0]["marketData"]["epic"] == "AAPL"
    capital_sim.advance(600)
    assert len(capital_sim.working_orders()) == 1
    capital_sim.pin_price("AAPL", 94.0, at=capital_sim.clock.now() + 60)
    capital_sim.advance(120)
    assert capital_sim.working_orders() == []
    [position] = capital_sim.positions()
    assert position.working_order_id == confirm["dealId"]
    assert position.level == capital_sim.quote("AAPL").offer
    assert (position.stop_level, position.profit_level) == (90.0, 105.0)
    capital_sim.check_books()
    capital_client.login()
    filled = [a for a in _activity(capital_client) if a["type"] == "WORKING_ORDER"]
    assert [a["details"]["actions"][0]["actionType"] for a in filled] == ["WORKING_ORDER_CREATED",
                                                                        "LIMIT_ORDER_FILLED"]
    listed = capital_client.get("/positions").json()["positions"][0]["position"]
    assert listed["workingOrderId"] == confirm["dealId"]


def test_stop_order_sell_triggers_below(capital_sim, capital_client):
    capital_sim.pin_price("EURUSD", 1.1)
    confirm = _order(capital_client, epic="EURUSD", direction="SELL", size=10000, type="STOP", level=1.09)
    capital_sim.pin_price("EURUSD", 1.095, at=capital_sim.clock.now() + 60)
    capital_sim.advance(300)
    assert len(capital_sim.working_orders()) == 1
    capital_sim.pin_price("EURUSD", 1.0899, at=capital_sim.clock.now() + 60)
    capital_sim.advance(300)
    [position] = capital_sim.positions()
    assert (position.direction, position.working_order_id) == ("SELL", confirm["dealId"])
    assert position.level <= 1.09


def test_marketable_limit_fills_at_once(capital_sim, capital_client):
    capital_sim.pin_price("AAPL", 100.0)
    _order(capital_client, level=101.0)
    assert capital_sim.working_orders() == []
    [position] = capital_sim.positions()
    assert position.level == capital_sim.quote("AAPL").offer


def test_order_on_closed_market_waits_for_the_open(capital_sim, capital_client):
    capital_sim.pin_price("BHP", 40.0)
    _order(capital_client, epic="BHP", level=45.0)  # would fill, but Sydney is closed
    assert len(capital_sim.working_orders()) == 1
    capital_sim.set_time(datetime(2024, 3, 5, 22, 0, tzinfo=timezone.utc))  # 09:00 Sydney
    assert len(capital_sim.working_orders()) == 1
    capital_sim.set_time(datetime(2024, 3, 5, 23, 30, tzinfo=timezone.utc))  # 10:30 Sydney
    assert capital_sim.working_orders() == []
    [position] = capital_sim.positions()
    assert position.created == datetime(2024, 3, 5, 23, 0, tzinfo=timezone.utc).timestamp()


def test_good_till_date_expiry(capital_sim, capital_client):
    capital_sim.pin_price("AAPL", 100.0)
    confirm = _order(capital_client, level=90.0, goodTillDate="2024-03-05T16:00:00")
    data = capital_client.get("/workingorders").json()["workingOrders"][0]["workingOrderData"]
    assert data["timeInForce"] == "GOOD_TILL_DATE"
    assert data["goodTillDate"] == data["goodTillDateUTC"] == "2024-03-05T16:00:00"
    capital_sim.advance(3599)
    assert len(capital_sim.working_orders()) == 1
    capital_sim.advance(1)
    assert capital_sim.working_orders() == []
    capital_client.login()
    last = _activity(capital_client)[-1]
    assert (last["dealId"], last["source"]) == (confirm["dealId"], "SYSTEM")
    assert last["details"]["actions"][0]["actionType"] == "WORKING_ORDER_DELETED"
    past = capital_client.post("/workingorders", {"epic": "AAPL", "direction": "BUY", "size": 1, "type": "LIMIT",
                                                  "level": 90.0, "goodTillDate": "2024-03-05T15:00:00"})
    assert past.json() == {"errorCode": "error.not-in-future.goodTillDate"}
    zoned = capital_client.post("/workingorders", {"epic": "AAPL", "direction": "BUY", "size": 1, "type": "LIMIT",
                                                   "level": 90.0, "goodTillDate": "2024-03-06T15:00:00Z"})
    assert zoned.json() == {"errorCode": "error.invalid.goodtilldate"}


def test_amend_and_delete_working_order(capital_sim, capital_client):
    capital_sim.pin_price("AAPL", 100.0)
    confirm = _order(capital_client, level=90.0, stopDistance=5)
    amended = capital_client.deal("PUT", f"/workingorders/{confirm['dealId']}",
                                  {"level": 92.0, "goodTillDate": "2024-03-06T15:00:00"})
    assert amended["status"] == "AMENDED"
    [order] = capital_sim.working_orders()
    assert (order.level, order.stop_distance) == (92.0, 5)
    assert order.good_till == datetime(2024, 3, 6, 15, 0, tzinfo=timezone.utc).timestamp()
    deleted = capital_client.deal("DELETE", f"/workingorders/{confirm['dealId']}")
    assert deleted["status"] == "DELETED"
    assert deleted["affectedDeals"] == [{"dealId": confirm["dealId"], "status": "DELETED"}]
    assert capital_client.get("/workingorders").json() == {"workingOrders": []}
    assert capital_client.delete(f"/workingorders/{confirm['dealId']}").status_code == 404
    assert capital_client.put(f"/workingorders/{confirm['dealId']}", {"level": 1.0}).status_code == 404


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"type": "MARKET"}, "error.invalid.type"),
        ({"level": None}, "error.invalid.level"),
        ({"level": -1}, "error.invalid.level"),
        ({"size": 0.5}, "error.invalid.size.minvalue: 1"),
        ({"stopLevel": 89.9}, "error.invalid.stoploss.maxvalue: 89.55"),
    ],
)
def test_invalid_working_orders(capital_sim, capital_client, body, code):
    capital_sim.pin_price("AAPL", 100.0)
    payload = {"epic": "AAPL", "direction": "BUY", "size": 10, "type": "LIMIT", "level": 90.0, **body}
    response = capital_client.post("/workingorders", payload)
    assert response.status_code == 400
    assert response.json() == {"errorCode": code}
    assert capital_sim.working_orders() == []


def test_triggered_order_without_margin_is_rejected(capital_sim, capital_client):
    capital_sim.pin_price("AAPL", 100.0)
    _order(capital_client, level=95.0, size=1000)
    capital_sim.pin_price("AAPL", 90.0, at=capital_sim.clock.now() + 60)
    capital_sim.advance(120)
    assert capital_sim.working_orders() == [] and capital_sim.positions() == []
    capital_client.login()
    last = _activity(capital_client)[-1]
    assert (last["status"], last["details"]["rejectReason"]) == ("REJECTED", "INSUFFICIENT_FUNDS")
    capital_sim.check_books()


def test_events_run_in_time_order_across_instruments(capital_sim, capital_client):
    capital_sim.pin_price("AAPL", 100.0)
    capital_sim.pin_price("MSFT", 400.0)
    _buy(capital_client, "AAPL", 10, stopLevel=95.0)
    _buy(capital_client, "MSFT", 1, stopLevel=390.0)
    now = capital_sim.clock.now()
    capital_sim.pin_price("MSFT", 380.0, at=now + 120)
    capital_sim.pin_price("AAPL", 90.0, at=now + 240)
    capital_sim.advance(3600)
    capital_client.login()
    stops = [a for a in _activity(capital_client) if a["source"] == "SL"]
    assert [a["epic"] for a in stops] == ["MSFT", "AAPL"]


def test_stop_out_closes_the_worst_position_below_half_the_margin(capital_sim, capital_client):
    capital_sim.pin_price("AAPL", 100.0)
    capital_sim.pin_price("MSFT", 400.0)
    _buy(capital_client, "AAPL", 400)  # margin 8 000 of 10 000
    _buy(capital_client, "MSFT", 10)  # margin 800
    now = capital_sim.clock.now()
    capital_sim.pin_price("AAPL", 85.0, at=now + 60)
    capital_sim.advance(120)
    assert len(capital_sim.positions()) == 2  # equity ~4 000, still above half the margin (~3 800)
    capital_sim.pin_price("AAPL", 80.0, at=now + 180)
    capital_sim.advance(120)
    assert [p.epic for p in capital_sim.positions()] == ["MSFT"]
    capital_sim.check_books()
    values = capital_sim.balances()
    assert values["balance"] >= 0.5 * values["margin"]
    capital_client.login()
    closing = [a for a in _activity(capital_client) if a["source"] == "SYSTEM"]
    assert [(a["epic"], a["details"]["actions"][0]["actionType"]) for a in closing] == [("AAPL", "POSITION_CLOSED")]
