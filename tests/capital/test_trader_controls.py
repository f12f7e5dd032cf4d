"""Operator controls at Capital.com, end to end against the simulator over HTTP: pre-trade limits (every
rule's breach and message, nothing posted), dry run (nothing posted, counted at the simulator), no
staging (transmit=False is NotSupported before anything is sent), trailing stops that move and trigger."""

from __future__ import annotations

import re
from typing import Any

import ccxt
import pytest

import ccxt_capital
from ccxt_capital.sim import CapitalSimulator, routes
from tests import conformance

from .trader_fixtures import Face, booked, face_fixture, face_kind_fixture, make_face_fixture  # noqa: F401

pytestmark = pytest.mark.capital_sim(rate_limits="sim")


@pytest.fixture
def deal_posts(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Every deal POST (/positions, /workingorders) that reached the simulator: ``working`` per post."""
    seen: list[bool] = []
    original = routes.deal_request

    def counting(body: Any, working: bool) -> Any:
        seen.append(working)
        return original(body, working=working)

    monkeypatch.setattr(routes, "deal_request", counting)
    return seen


async def limited(make_face: Any, face_kind: str, **risk: Any) -> Face:
    ex = make_face(face_kind, risk=risk)
    await ex.call("load_markets")
    return ex


@pytest.mark.parametrize(("risk", "args", "words"), [
    ({"maxOrderNotional": 1000}, ("market", "buy", 10), "maxOrderNotional: notional"),
    ({"maxOrderNotional": {"AAPL/USD": 100}}, ("limit", "buy", 1, "below"), "exceeds the limit 100.00 USD"),
    ({"maxOrderAmount": 5}, ("market", "buy", 10), "maxOrderAmount: amount 10 AAPL/USD exceeds the limit 5"),
    ({"maxPositionAmount": 5}, ("market", "buy", 10), "maxPositionAmount: position 0 AAPL/USD would become 10"),
    ({"allowSymbols": ["EUR/USD"]}, ("market", "buy", 1), "allowSymbols: AAPL/USD is not in the allowed"),
    ({"denySymbols": ["AAPL/USD"]}, ("market", "buy", 1), "denySymbols: AAPL/USD is denied"),
    ({"allowTypes": ["forex"]}, ("market", "buy", 1), "allowTypes: AAPL/USD is cfd/spot/stock"),
    ({"maxOpenOrders": 1}, ("limit", "buy", 1, "below"), "maxOpenOrders: 1 open orders"),
    ({"maxOrdersPerDay": 1}, ("market", "buy", 1), "maxOrdersPerDay: 1 orders placed today"),
    ({"priceCollarPct": 5}, ("limit", "buy", 1, "far"), "priceCollarPct: limit price"),
])
async def test_each_limit_refuses_before_anything_is_posted(make_face: Any, face_kind: str,
                                                            capital_sim: CapitalSimulator, deal_posts: list[bool],
                                                            risk: dict[str, Any], args: tuple[Any, ...],
                                                            words: str) -> None:
    ex = await limited(make_face, face_kind, **risk)
    quote = capital_sim.quote("AAPL")
    prices = {"below": round(quote.bid * 0.98, 2), "far": round(quote.offer * 1.2, 2)}
    kind, side, amount, *price = args
    level = prices[price[0]] if price else None
    if "maxOpenOrders" in risk or "maxOrdersPerDay" in risk:  # one order first, within the limit
        await ex.call("create_order", "AAPL/USD", kind, side, amount, level)
    before, posts = booked(capital_sim), len(deal_posts)
    with pytest.raises(ccxt.InvalidOrder) as info:
        await ex.call("create_order", "AAPL/USD", kind, side, amount, level)
    assert words in str(info.value) and "capitalcom risk limit refused" in str(info.value)
    assert booked(capital_sim) == before and len(deal_posts) == posts  # nothing reached the broker


async def test_an_edited_level_meets_the_collar(make_face: Any, face_kind: str,
                                                 capital_sim: CapitalSimulator) -> None:
    ex = await limited(make_face, face_kind, priceCollarPct=5)
    bid = capital_sim.quote("AAPL").bid
    order = await ex.call("create_order", "AAPL/USD", "limit", "buy", 1, round(bid * 0.98, 2))
    with pytest.raises(ccxt.InvalidOrder, match="priceCollarPct"):
        await ex.call("edit_order", order["id"], "AAPL/USD", "limit", "buy", None, round(bid * 0.5, 2))
    [working] = capital_sim.working_orders()
    assert working.level == order["price"]  # unchanged at the broker
    edited = await ex.call("edit_order", order["id"], "AAPL/USD", "limit", "buy", None, round(bid * 0.97, 2))
    assert edited["price"] == round(bid * 0.97, 2)


async def test_a_closing_deal_passes_the_exposure_limits(make_face: Any, face_kind: str,
                                                         capital_sim: CapitalSimulator) -> None:
    opener = make_face(face_kind)
    await opener.call("create_order", "AAPL/USD", "market", "buy", 10)
    ex = await limited(make_face, face_kind, maxOrderAmount=1, maxPositionAmount=1, denySymbols=["AAPL/USD"])
    with pytest.raises(ccxt.InvalidOrder, match="denySymbols"):
        await ex.call("create_order", "AAPL/USD", "market", "buy", 10)
    closing = await ex.call("create_order", "AAPL/USD", "market", "sell", 10)
    assert closing["status"] == "closed" and capital_sim.positions() == []


async def test_a_notional_limit_in_another_currency_is_converted_at_the_broker_rate(
        make_face: Any, face_kind: str, capital_sim: CapitalSimulator, deal_posts: list[bool]) -> None:
    ex = await limited(make_face, face_kind, maxOrderNotional=1000, notionalCurrency="EUR")
    eur = await ex.call("fetch_ticker", "EUR/USD")
    usd_per_eur = (eur["bid"] + eur["ask"]) / 2
    assert 5 * 208.0 > 1000 and 5 * 208.0 / usd_per_eur < 1000  # over the limit in USD, within it in EUR
    await ex.call("create_order", "AAPL/USD", "limit", "sell", 5, 208.0)
    assert len(deal_posts) == 1
    with pytest.raises(ccxt.InvalidOrder, match=re.escape(conformance.fx_notional_refusal(usd_per_eur))):
        await ex.call("create_order", "AAPL/USD", "limit", "sell", 6, 208.0)
    unknown = await limited(make_face, face_kind, maxOrderNotional=1e9, notionalCurrency="SEK")
    with pytest.raises(ccxt.InvalidOrder, match="no FX rate from USD to SEK known"):
        await unknown.call("create_order", "AAPL/USD", "limit", "sell", 1, 208.0)
    assert len(deal_posts) == 1  # the refused ones were never posted


def test_bad_risk_settings_fail_at_construction(capital_sim: CapitalSimulator) -> None:
    with pytest.raises(ccxt.BadRequest, match="maxOrderNotional must be a positive finite number"):
        ccxt_capital.CapitalTrader({"options": {"baseUrl": capital_sim.base_url, "journal": None,
                                                "risk": {"maxOrderNotional": 0}}})


# ---------------------------------------------------------------------------------------- dry run, staging


async def test_dry_run_sends_nothing(make_face: Any, face_kind: str, capital_sim: CapitalSimulator,
                                     deal_posts: list[bool]) -> None:
    ex = make_face(face_kind, dryRun=True)
    await ex.call("load_markets")
    before = booked(capital_sim)
    order = await ex.call("create_order", "AAPL/USD", "market", "buy", 10, None, {"clientOrderId": "dry-1"})
    conformance.check_order(ex.exchange, order, "AAPL/USD")
    assert order["status"] == "canceled" and order["filled"] == 0 and order["info"]["dryRun"] is True
    assert order["info"]["request"]["path"] == "/positions" and order["info"]["request"]["body"]["size"] == 10
    assert order["fee"]["cost"] == 0 and order["info"]["estimate"]["price"] > 0
    level = round(capital_sim.quote("AAPL").bid * 0.98, 2)
    working = await ex.call("create_order", "AAPL/USD", "limit", "buy", 1, level)
    assert working["info"]["request"]["path"] == "/workingorders" and working["price"] == level
    assert deal_posts == [] and booked(capital_sim) == before
    journal = await ex.journal()
    assert journal.get("dry-1") is None  # dry runs are journaled apart from real deals
    assert journal.scoped(journal.account + ":dry-run").get("dry-1").params["dryRun"] is True


async def test_staging_is_not_supported(face: Face, capital_sim: CapitalSimulator, deal_posts: list[bool]) -> None:
    before = booked(capital_sim)
    with pytest.raises(ccxt.NotSupported, match="no staged orders"):
        await face.call("create_order", "AAPL/USD", "market", "buy", 1, None, {"transmit": False})
    assert deal_posts == [] and booked(capital_sim) == before
    journal = await face.journal()
    assert journal.orders() == []


# ---------------------------------------------------------------------------------------- trailing stops


async def test_trailing_amount_attaches_a_trailing_stop_that_moves_and_triggers(
        face: Face, capital_sim: CapitalSimulator) -> None:
    mid = capital_sim.quote("AAPL").mid
    order = await face.call("create_order", "AAPL/USD", "market", "buy", 10, None, {"trailingAmount": 5})
    assert order["status"] == "closed"
    [position] = capital_sim.positions()
    assert position.trailing and position.trailing_distance == pytest.approx(5)
    first = position.stop_level
    capital_sim.pin_price("AAPL", mid + 20)  # up: the stop follows
    capital_sim.advance(120)
    [position] = capital_sim.positions()
    assert position.stop_level > first
    raised = position.stop_level
    capital_sim.pin_price("AAPL", raised - 1)  # back down through the raised stop: closed there
    capital_sim.advance(120)
    assert capital_sim.positions() == []
    capital_sim.check_books()


async def test_trailing_percent_on_a_working_order(face: Face, capital_sim: CapitalSimulator) -> None:
    level = round(capital_sim.quote("AAPL").bid * 0.98, 2)
    await face.call("create_order", "AAPL/USD", "limit", "buy", 1, level, {"trailingPercent": 2})
    [working] = capital_sim.working_orders()
    assert working.trailing and working.stop_distance == pytest.approx(round(level * 0.02, 2))


async def test_a_trailing_deal_that_would_close_a_position_is_refused(face: Face,
                                                                       capital_sim: CapitalSimulator) -> None:
    await face.call("create_order", "AAPL/USD", "market", "buy", 10)
    before = booked(capital_sim)
    with pytest.raises(ccxt.NotSupported, match="no standalone trailing stop"):
        await face.call("create_order", "AAPL/USD", "market", "sell", 10, None, {"trailingAmount": 5})
    assert booked(capital_sim) == before
    with pytest.raises(ccxt.NotSupported, match="trailingTriggerPrice"):
        await face.call("create_order", "AAPL/USD", "market", "buy", 1, None,
                        {"trailingAmount": 5, "trailingTriggerPrice": 100})
