"""Accounts, preferences, top-up, transactions, activity and overnight funding of the simulator."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

pytestmark = pytest.mark.capital_sim(rate_limits="off")


def position_id(confirm: dict) -> str:
    """The position a deal opened: ``affectedDeals``, not the confirm's own (order) ``dealId``."""
    return next(a["dealId"] for a in confirm["affectedDeals"] if a["status"] == "OPENED")


def _ts(*args: int) -> float:
    return datetime(*args, tzinfo=timezone.utc).timestamp()


def test_accounts_list(capital_client):
    accounts = capital_client.get("/accounts").json()["accounts"]
    assert len(accounts) == 2
    for account in accounts:
        assert set(account) == {"accountId", "accountName", "status", "accountType", "preferred", "balance",
                                "currency", "symbol"}
        assert account["status"] == "ENABLED" and account["accountType"] == "CFD"
        assert set(account["balance"]) == {"balance", "deposit", "profitLoss", "available"}
    assert [a["symbol"] for a in accounts] == ["$", "€"]


def test_preferences_get_and_put(capital_sim, capital_client):
    prefs = capital_client.get("/accounts/preferences").json()
    assert prefs["hedgingMode"] is False
    assert set(prefs["leverages"]) == {"SHARES", "CURRENCIES", "INDICES", "CRYPTOCURRENCIES", "COMMODITIES"}
    assert prefs["leverages"]["SHARES"] == {"current": 5, "available": [1, 2, 3, 4, 5]}
    response = capital_client.put("/accounts/preferences", {"leverages": {"SHARES": 2}, "hedgingMode": True})
    assert response.json() == {"status": "SUCCESS"}
    prefs = capital_client.get("/accounts/preferences").json()
    assert prefs["leverages"]["SHARES"]["current"] == 2 and prefs["hedgingMode"] is True
    assert capital_client.get("/markets/AAPL").json()["instrument"]["marginFactor"] == 50.0
    for body in ({"leverages": {"SHARES": 7}}, {"leverages": {"NOPE": 1}}, {"leverages": {"SHARES": "2"}},
                 {"hedgingMode": "yes"}, {"leverages": [1]}, [1, 2]):
        bad = capital_client.put("/accounts/preferences", body)
        assert bad.status_code == 400, body
        assert bad.json()["errorCode"].startswith("error.")
    # The other account keeps its own preferences.
    capital_client.put("/session", {"accountId": "200000000000002"})
    assert capital_client.get("/accounts/preferences").json()["leverages"]["SHARES"]["current"] == 5


def test_leverage_changes_margin(capital_sim, capital_client):
    capital_sim.pin_price("AAPL", 100.0)
    capital_client.deal("POST", "/positions", {"epic": "AAPL", "direction": "BUY", "size": 100})
    at_five = capital_sim.balances()
    assert at_five["margin"] == pytest.approx(2000.0)
    capital_client.put("/accounts/preferences", {"leverages": {"SHARES": 1}})
    at_one = capital_sim.balances()
    assert at_one["margin"] == pytest.approx(10000.0)
    assert at_one["available"] == pytest.approx(max(at_one["balance"] - 10000.0, 0.0))
    rejected = capital_client.deal("POST", "/positions", {"epic": "AAPL", "direction": "BUY", "size": 1})
    assert rejected["rejectReason"] == "INSUFFICIENT_FUNDS"


def test_top_up(capital_sim, capital_client):
    assert capital_client.post("/accounts/topUp", {"amount": 2500}).json() == {"successful": True}
    assert capital_sim.balances()["deposit"] == 12500.0
    deposits = capital_client.get("/history/transactions", params={"type": "DEPOSIT", "lastPeriod": 600}).json()
    assert [t["size"] for t in deposits["transactions"]] == ["10000.00", "2500.00"]
    for body in ({"amount": -5}, {"amount": "5"}, {}, {"amount": True}):
        response = capital_client.post("/accounts/topUp", body)
        assert response.status_code == 400
        assert response.json() == {"errorCode": "error.invalid.amount"}
    capital_sim.check_books()


def test_transactions_shape_and_window(capital_sim, capital_client):
    capital_client.deal("POST", "/positions", {"epic": "AAPL", "direction": "BUY", "size": 1})
    deal = capital_sim.positions()[0]
    capital_sim.advance(60)
    capital_client.deal("DELETE", f"/positions/{deal.deal_id}")
    body = capital_client.get("/history/transactions", params={"lastPeriod": 3600}).json()
    trade = body["transactions"][-1]
    assert set(trade) == {"date", "dateUtc", "instrumentName", "transactionType", "note", "reference", "size",
                          "currency", "status"}
    assert trade["transactionType"] == "TRADE" and trade["instrumentName"] == "Apple Inc"
    assert trade["reference"] == deal.deal_id and trade["currency"] == "USD"
    window = capital_client.get("/history/transactions", params={"from": "2024-03-05T15:00:30",
                                                                "to": "2024-03-05T15:02:00"}).json()
    assert [t["transactionType"] for t in window["transactions"]] == ["TRADE"]
    assert capital_client.get("/history/transactions", params={"from": "garbage"}).status_code == 400


def test_activity_filters_and_limits(capital_sim, capital_client):
    capital_client.deal("POST", "/positions", {"epic": "AAPL", "direction": "BUY", "size": 1})
    capital_client.deal("POST", "/positions", {"epic": "BHP", "direction": "BUY", "size": 1})  # rejected
    capital_client.deal("POST", "/workingorders", {"epic": "GOLD", "direction": "SELL", "size": 1,
                                                   "type": "LIMIT", "level": 99999})
    everything = capital_client.get("/history/activity", params={"lastPeriod": 600}).json()["activities"]
    assert [a["type"] for a in everything] == ["POSITION", "POSITION", "WORKING_ORDER"]
    assert "details" not in everything[0]
    assert set(everything[0]) == {"date", "dateUTC", "epic", "dealId", "source", "type", "status"}
    detailed = capital_client.get("/history/activity", params={"lastPeriod": 600, "detailed": "true"}).json()
    details = detailed["activities"][0]["details"]
    assert {"dealReference", "marketName", "currency", "size", "direction", "level", "actions"} <= set(details)
    only_orders = capital_client.get("/history/activity", params={"filter": "type==WORKING_ORDER"}).json()
    assert [a["epic"] for a in only_orders["activities"]] == ["GOLD"]
    accepted = capital_client.get("/history/activity", params={"filter": "status!=REJECTED;type==POSITION"}).json()
    assert [a["epic"] for a in accepted["activities"]] == ["AAPL"]
    by_deal = capital_client.get("/history/activity", params={"dealId": everything[0]["dealId"]}).json()
    assert len(by_deal["activities"]) == 1
    assert capital_client.get("/history/activity", params={"filter": "colour==red"}).status_code == 400
    assert capital_client.get("/history/activity", params={"filter": "nonsense"}).status_code == 400
    too_long = capital_client.get("/history/activity", params={"from": "2024-03-01T00:00:00",
                                                              "to": "2024-03-03T00:00:00"})
    assert too_long.json() == {"errorCode": "error.invalid.daterange"}
    assert capital_client.get("/history/activity", params={"lastPeriod": 86401}).status_code == 400
    # Activity is per account.
    capital_client.put("/session", {"accountId": "200000000000002"})
    assert capital_client.get("/history/activity").json() == {"activities": []}


def test_activity_default_window_is_ten_minutes(capital_sim, capital_client):
    capital_client.deal("POST", "/positions", {"epic": "AAPL", "direction": "BUY", "size": 1})
    capital_sim.advance(601)
    capital_client.login()
    assert capital_client.get("/history/activity").json() == {"activities": []}
    assert len(capital_client.get("/history/activity", params={"lastPeriod": 700}).json()["activities"]) == 1


def test_overnight_funding_is_charged_at_swap_time(capital_sim, capital_client):
    capital_sim.pin_price("AAPL", 100.0)
    capital_sim.pin_price("EURUSD", 1.1)
    capital_client.deal("POST", "/positions", {"epic": "AAPL", "direction": "BUY", "size": 100})
    capital_client.deal("POST", "/positions", {"epic": "EURUSD", "direction": "SELL", "size": 10000})
    capital_sim.set_time(_ts(2024, 3, 5, 21, 59))
    assert [t for t in capital_sim.transactions() if t.type == "SWAP"] == []
    capital_sim.set_time(_ts(2024, 3, 5, 22, 0))
    swaps = [t for t in capital_sim.transactions() if t.type == "SWAP"]
    assert [t.amount for t in swaps] == [pytest.approx(-2.26), pytest.approx(-0.18)]
    assert swaps[0].ts == _ts(2024, 3, 5, 22, 0)
    capital_sim.set_time(_ts(2024, 3, 8, 23, 0))  # three more nights
    assert len([t for t in capital_sim.transactions() if t.type == "SWAP"]) == 8
    capital_sim.check_books()
    capital_client.login()
    listed = capital_client.get("/history/transactions", params={"type": "SWAP", "from": "2024-03-05T00:00:00",
                                                                "to": "2024-03-08T23:00:00"}).json()
    assert len(listed["transactions"]) == 8
    assert all(t["instrumentName"] in ("Apple Inc", "EUR/USD") for t in listed["transactions"])


def test_foreign_currency_instrument_converts_to_account_currency(capital_sim, capital_client):
    capital_sim.pin_price("SAP", 200.0)
    capital_sim.pin_price("EURUSD", 1.1)
    opened = capital_client.deal("POST", "/positions", {"epic": "SAP", "direction": "BUY", "size": 10})
    position = capital_client.get(f"/positions/{position_id(opened)}").json()["position"]
    assert position["currency"] == "EUR"
    quote = capital_sim.quote("SAP")
    assert position["upl"] == pytest.approx((quote.bid - quote.offer) * 10 * 1.1, abs=0.01)
    assert capital_sim.balances()["margin"] == pytest.approx(10 * 200 * 0.2 * 1.1)
    capital_sim.pin_price("SAP", 210.0, at=capital_sim.clock.now() + 60)
    capital_sim.advance(120)
    capital_client.login()
    closed = capital_client.deal("DELETE", f"/positions/{position_id(opened)}")
    expected = round((capital_sim.quote("SAP").bid - opened["level"]) * 10 * 1.1, 2)
    assert closed["profit"] == expected and closed["profitCurrency"] == "USD"
    assert capital_sim.balances()["deposit"] == pytest.approx(10000 + expected)


def test_books_add_up_through_a_busy_session(capital_sim, capital_client):
    """Many deals across currencies, swaps and triggers; money must reconcile after every step."""
    epics = ["AAPL", "EURUSD", "SAP", "GOLD", "BTCUSD", "US100", "USDJPY", "J225"]
    sizes = {"AAPL": 5, "EURUSD": 5000, "SAP": 3, "GOLD": 1, "BTCUSD": 0.01, "US100": 0.1, "USDJPY": 5000,
             "J225": 0.1}
    for step in range(24):
        epic = epics[step % len(epics)]
        direction = "BUY" if step % 3 else "SELL"
        capital_client.deal("POST", "/positions", {"epic": epic, "direction": direction, "size": sizes[epic]})
        capital_sim.advance(1800)
        capital_client.login()
        capital_sim.check_books()
    capital_sim.set_time(_ts(2024, 3, 6, 14, 45))  # New York, Frankfurt and Tokyo all open
    capital_client.login()
    assert capital_sim.positions()
    for position in capital_sim.positions():
        assert capital_client.deal("DELETE", f"/positions/{position.deal_id}")["dealStatus"] == "ACCEPTED"
    values = capital_sim.balances()
    total = sum(t.amount for t in capital_sim.transactions())
    assert values["deposit"] == pytest.approx(total, abs=0.001)
    assert values["profitLoss"] == 0.0 and values["balance"] == values["deposit"]


@pytest.mark.capital_sim(rate_limits="off", tz_offset=2)
def test_local_dates_follow_the_account_timezone(capital_sim, capital_client):
    session = capital_client.get("/session").json()
    assert session["timezoneOffset"] == 2
    opened = capital_client.deal("POST", "/positions", {"epic": "AAPL", "direction": "BUY", "size": 1})
    assert (opened["date"], opened["dateUTC"]) == ("2024-03-05T17:00:00.000", "2024-03-05T15:00:00.000")
    position = capital_client.get(f"/positions/{position_id(opened)}").json()["position"]
    assert (position["createdDate"], position["createdDateUTC"]) == ("2024-03-05T17:00:00.000",
                                                                     "2024-03-05T15:00:00.000")
    bar = capital_client.get("/prices/BTCUSD", params={"resolution": "HOUR", "max": 1}).json()["prices"][0]
    assert (bar["snapshotTime"], bar["snapshotTimeUTC"]) == ("2024-03-05T17:00:00", "2024-03-05T15:00:00")
    # Query dates are UTC.
    window = capital_client.get("/prices/BTCUSD", params={"resolution": "HOUR", "from": "2024-03-05T14:00:00",
                                                         "max": 1}).json()["prices"]
    assert window[0]["snapshotTimeUTC"] == "2024-03-05T14:00:00"


def test_preferences_fields_are_each_optional_and_null_means_unchanged(capital_client):
    before = capital_client.get("/accounts/preferences").json()
    answer = capital_client.put("/accounts/preferences", {"leverages": None, "hedgingMode": False})
    assert (answer.status_code, answer.json()) == (200, {"status": "SUCCESS"})
    assert capital_client.put("/accounts/preferences", {"hedgingMode": None}).status_code == 200
    assert capital_client.get("/accounts/preferences").json() == before


def test_activity_or_lists_and_one_date_alone(capital_sim, capital_client):
    start = capital_sim.clock.now()
    for epic in ("AAPL", "EURUSD", "GOLD"):
        capital_client.deal("POST", "/positions", {"epic": epic, "direction": "BUY",
                                                   "size": 1000 if epic == "EURUSD" else 1})
    both = capital_client.get("/history/activity", params={"filter": "epic==AAPL,EURUSD"}).json()["activities"]
    assert sorted(a["epic"] for a in both) == ["AAPL", "EURUSD"]
    neither = capital_client.get("/history/activity", params={"filter": "epic!=AAPL,EURUSD"}).json()["activities"]
    assert [a["epic"] for a in neither] == ["GOLD"]
    # ``from`` alone: the one day from it (documented), here the day before the deals...
    day_before = datetime.fromtimestamp(start - 86_400 - 60, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    assert capital_client.get("/history/activity", params={"from": day_before}).json() == {"activities": []}
    # ...and from just before them, the three; ``to`` alone: the day up to it.
    just_before = datetime.fromtimestamp(start - 60, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    assert len(capital_client.get("/history/activity", params={"from": just_before}).json()["activities"]) == 3
    until = datetime.fromtimestamp(start + 60, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    assert len(capital_client.get("/history/activity", params={"to": until}).json()["activities"]) == 3
