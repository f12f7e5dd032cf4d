"""CapitalTrader account views end to end, sync and async: balances with holdings (long and short),
positions, fills from the activity history (each once, commission folded in when the account has
it), the ledger (funding, trades, deposits), history across days, and journal reconciliation."""

from __future__ import annotations

import ccxt
import httpx
import pytest

from ccxt_capital.sim.account import Transaction
from tests import conformance

from .trader_fixtures import Face, face_fixture, face_kind_fixture, make_face_fixture  # noqa: F401

pytestmark = pytest.mark.capital_sim(rate_limits="sim")


async def test_short_holdings_and_positions(face: Face, capital_sim) -> None:
    await face.call("create_order", "GOLD/USD", "market", "sell", 0.5)
    await face.call("create_order", "EUR/USD", "market", "buy", 2000)
    balance = await face.call("fetch_balance")
    conformance.check_balance(face.exchange, balance)
    assert balance["GOLD"]["total"] == 0 and balance["GOLD"]["debt"] == 0.5  # a short is owed
    assert balance["EUR"]["total"] == 2000
    positions = await face.call("fetch_positions")
    by_symbol = {p["symbol"]: p for p in positions}
    assert by_symbol["GOLD/USD"]["side"] == "short" and by_symbol["EUR/USD"]["side"] == "long"
    for position in positions:
        conformance.check_position(face.exchange, position, position["symbol"])
        assert position["notional"] == pytest.approx(position["contracts"] * position["markPrice"])
        assert position["collateral"] == pytest.approx(position["notional"] / position["leverage"])
    assert by_symbol["GOLD/USD"]["markPrice"] == capital_sim.quote("GOLD").offer  # a short closes at the offer
    only_gold = await face.call("fetch_positions", ["GOLD/USD"])
    assert [p["symbol"] for p in only_gold] == ["GOLD/USD"]


async def test_fills_each_once_with_commissions_when_charged(face: Face, capital_sim) -> None:
    buy = await face.call("create_order", "AAPL/USD", "market", "buy", 4)
    [position] = capital_sim.positions()
    # This account is charged commissions: the broker books a TRADE_COMMISSION against the deal.
    account = capital_sim.broker.preferred_account
    with capital_sim.broker.lock:
        account.book(Transaction(capital_sim.clock.now(), "TRADE_COMMISSION", -1.25, "USD", "Apple Inc",
                                 "Commission", position.deal_id))
    capital_sim.advance(5)
    sell = await face.call("create_order", "AAPL/USD", "market", "sell", 6)  # closes 4, opens 2 short
    trades = await face.call("fetch_my_trades")
    for trade in trades:
        conformance.check_trade(face.exchange, trade)
    assert len({t["id"] for t in trades}) == len(trades) == 3
    # The sell's two fills (closing 4, opening 2) share one timestamp; their order is by trade id.
    assert [(t["order"], t["side"], t["amount"]) for t in trades[:1]] == [(buy["id"], "buy", 4)]
    assert sorted((t["order"], t["side"], t["amount"]) for t in trades[1:]) == [
        (sell["id"], "sell", 2), (sell["id"], "sell", 4)]
    assert trades[0]["fee"] == {"cost": 1.25, "currency": "USD"}
    close = next(t for t in trades[1:] if t["amount"] == 4)
    opening = next(t for t in trades[1:] if t["amount"] == 2)
    assert close["fee"]["cost"] == 0.0 or close["fee"]["cost"] == 1.25  # same deal id: the close
    assert opening["fee"] == {"cost": 0.0, "currency": "USD", "rate": 0.0}
    since = await face.call("fetch_my_trades", "AAPL/USD", trades[1]["timestamp"])
    assert [t["id"] for t in since] == [t["id"] for t in trades[1:]]


async def test_ledger_has_funding_trades_and_deposits(face: Face, capital_sim) -> None:
    await face.call("create_order", "BTC/USD", "market", "buy", 0.1)
    capital_sim.advance(10 * 3600)  # past 22:00 UTC: overnight funding is charged
    await face.call("close_position", "BTC/USD")
    ledger = await face.call("fetch_ledger")
    kinds = [(e["type"], e["direction"], e["info"]["transactionType"]) for e in ledger]
    assert ("transaction", "in", "DEPOSIT") in kinds
    assert ("fee", "out", "SWAP") in kinds
    assert any(k[0] == "trade" for k in kinds)
    assert [e["timestamp"] for e in ledger] == sorted(e["timestamp"] for e in ledger)
    for entry in ledger:
        assert entry["currency"] == "USD" and entry["amount"] >= 0 and entry["id"]
    total = sum(e["amount"] if e["direction"] == "in" else -e["amount"] for e in ledger)
    assert total == pytest.approx(capital_sim.balances()["deposit"])
    assert await face.call("fetch_ledger", "EUR") == []


async def test_history_over_several_days(face: Face, capital_sim) -> None:
    start = capital_sim.clock.now_ms()
    first = await face.call("create_order", "BTC/USD", "market", "buy", 0.01)
    capital_sim.advance(2 * 86_400)
    second = await face.call("create_order", "BTC/USD", "market", "sell", 0.01)
    recent = await face.call("fetch_closed_orders", "BTC/USD")
    assert [o["id"] for o in recent if o["id"] in (first["id"], second["id"])] == [second["id"]]  # last 24 h
    everything = await face.call("fetch_closed_orders", "BTC/USD", start)
    assert [o["id"] for o in everything] == [first["id"], second["id"]]
    conformance.check_orders(face.exchange, everything, "BTC/USD", method="fetchClosedOrders")
    trades = await face.call("fetch_my_trades", "BTC/USD", start)
    assert [t["order"] for t in trades] == [first["id"], second["id"]]
    orders = await face.call("fetch_orders", "BTC/USD", start)
    assert [o["id"] for o in orders] == [first["id"], second["id"]]


async def test_orders_placed_elsewhere_are_shown_by_deal_reference(face: Face, capital_sim) -> None:
    """An order placed by another client keeps one id, its dealReference, resting as when it is done (the
    activity history groups it under that): a bot and watch_orders never see it under two ids."""
    capital_sim.advance(1)  # one login per second per API key, and the exchange just logged in
    async with httpx.AsyncClient(base_url=capital_sim.api_url) as http:
        login = await http.post("/session", headers={"X-CAP-API-KEY": capital_sim.api_key},
                                json={"identifier": capital_sim.identifier, "password": capital_sim.password})
        headers = {"CST": login.headers["CST"], "X-SECURITY-TOKEN": login.headers["X-SECURITY-TOKEN"]}
        placed = await http.post("/workingorders", headers=headers,
                                 json={"epic": "AAPL", "direction": "BUY", "size": 1, "level": 100.0, "type": "LIMIT"})
    [foreign] = await face.call("fetch_open_orders")
    conformance.check_order(face.exchange, foreign, "AAPL/USD", method="fetchOpenOrders")
    assert foreign["id"] == placed.json()["dealReference"] and foreign["clientOrderId"] is None
    assert (await face.call("fetch_order", foreign["id"]))["status"] == "open"
    by_deal_id = await face.call("fetch_order", capital_sim.working_orders()[0].deal_id)  # still accepted
    assert by_deal_id["id"] == foreign["id"]
    canceled = await face.call("cancel_order", foreign["id"])
    assert canceled["status"] == "canceled" and capital_sim.working_orders() == []


async def test_reconcile_adopts_what_the_broker_booked(face_kind: str, make_face, capital_sim) -> None:
    ex = make_face(face_kind)
    try:
        await ex.call("load_markets")
        journal = await ex.impl._journal_ready()
        # A crash between sending and hearing back: the journal says sent_unknown, the broker booked it.
        journal.record_intent("crash-1", symbol="AAPL/USD", side="buy", type="market", amount=2,
                              params={"body": {"epic": "AAPL", "direction": "BUY", "size": 2}})
        journal.mark_sent("crash-1")
        capital_sim.advance(1)  # one login per second per API key
        async with httpx.AsyncClient(base_url=capital_sim.api_url) as http:
            login = await http.post("/session", headers={"X-CAP-API-KEY": capital_sim.api_key},
                                    json={"identifier": capital_sim.identifier, "password": capital_sim.password})
            headers = {"CST": login.headers["CST"], "X-SECURITY-TOKEN": login.headers["X-SECURITY-TOKEN"]}
            sent = await http.post("/positions", headers=headers, json={"epic": "AAPL", "direction": "BUY", "size": 2})
        reference = sent.json()["dealReference"]
        order = await ex.call("fetch_order", "crash-1")  # resolved from the activity history
        assert order["id"] == reference and order["status"] == "closed" and order["clientOrderId"] == "crash-1"
        # and reconciliation agrees
        capital_sim.advance(120)
        report = await ex.call("reconcile_journal")
        assert report.resolved == [] and journal.get("crash-1").deal_reference == reference
        with pytest.raises(ccxt.OrderNotFound):
            await ex.call("fetch_order", "nobody-1")
    finally:
        await ex.close()
