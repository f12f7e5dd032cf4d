"""Operator controls at IB, end to end against the fake TWS: pre-trade limits (every rule's breach and
message, nothing sent), dry run (nothing sent, counted at the simulator), staging (the order sits in
TWS untransmitted until edit_order transmits it), trailing stops and algos."""

# ruff: noqa: F811 - the fixtures imported from trader_fixtures are re-bound as test parameters
from __future__ import annotations

import re
import sqlite3
import uuid
from typing import Any

import ccxt
import pytest

from ccxt_ibkr.sim.server import IBSimulator
from ccxt_ibkr.sim.testing import eventually
from tests import conformance
from tests.conformance import check_order
from tests.ib.trader_fixtures import (  # noqa: F401 - fixtures
    face,
    make_trader,
    order_messages,
    run,
    sim,
    trader_sim,
)


def journal_rows(path: Any) -> dict[str, tuple[str, str, str | None]]:
    """clientOrderId -> (account scope, state, reason), read from the journal file itself."""
    with sqlite3.connect(path) as db:
        return {cid: (account, state, reason) for account, cid, state, reason in db.execute(
            "SELECT account, client_order_id, state, reason FROM orders")}


@pytest.fixture
def tag() -> str:
    """A suffix that keeps this test's clientOrderIds apart from the other face's in the shared simulator."""
    return uuid.uuid4().hex[:8]


def sim_order(sim: IBSimulator, ref: str) -> Any:
    (order,) = [o for o in sim.orders() if o.req.order_ref == ref]
    return order


async def booked(sim: IBSimulator, ref: str) -> Any:
    """The simulator's order ``ref`` once it arrived (a staged order is answered before TWS reads it)."""
    await eventually(lambda: any(o.req.order_ref == ref for o in sim.orders()))
    return sim_order(sim, ref)


# ---------------------------------------------------------------------------------------- limits


@pytest.mark.parametrize(("risk", "args", "words"), [
    ({"maxOrderNotional": 100}, ("market", "buy", 5), "maxOrderNotional: notional"),
    ({"maxOrderNotional": {"AAPL/USD": 100, "*": 1e9}}, ("limit", "buy", 5, "touch"), "exceeds the limit 100.00 USD"),
    ({"maxOrderAmount": 4}, ("market", "buy", 5), "maxOrderAmount: amount 5 AAPL/USD exceeds the limit 4"),
    ({"maxOrderAmount": {"AAPL/USD": 2}}, ("market", "buy", 3), "maxOrderAmount: amount 3 AAPL/USD"),
    ({"maxPositionAmount": 4}, ("market", "buy", 5), "beyond the limit 4"),
    ({"allowSymbols": ["MSFT/USD"]}, ("market", "buy", 1), "allowSymbols: AAPL/USD is not in the allowed"),
    ({"denySymbols": ["AAPL/USD"]}, ("market", "buy", 1), "denySymbols: AAPL/USD is denied"),
    ({"allowTypes": ["forex", "future"]}, ("market", "buy", 1), "allowTypes: AAPL/USD is spot/stock"),
    ({"maxOpenOrders": 0.5 + 0.5}, ("limit", "buy", 1, "below"), "maxOpenOrders: 1 open orders"),
    ({"maxOrdersPerDay": 1}, ("market", "buy", 1), "maxOrdersPerDay: 1 orders placed today"),
    ({"priceCollarPct": 5}, ("limit", "buy", 1, "far"), "priceCollarPct: limit price"),
])
async def test_each_limit_refuses_before_anything_is_sent(make_trader, sim: IBSimulator, order_messages,
                                                          risk: dict[str, Any], args: tuple[Any, ...],
                                                          words: str) -> None:
    # Orders of earlier tests carrying the default prefix are adopted by reconciliation (and counted): not these.
    ex = make_trader(risk=risk, clientOrderPrefix=f"lim{uuid.uuid4().hex[:6]}-")
    quote = sim.quote("AAPL")
    prices = {"touch": round(quote.ask, 2), "below": round(quote.bid - 5, 2), "far": round(quote.ask * 1.2, 2)}
    kind, side, amount, *price = args
    if "maxOpenOrders" in risk or "maxOrdersPerDay" in risk:  # one order first, within the limit
        first = await run(ex.create_order("AAPL/USD", kind, side, amount, prices[price[0]] if price else None))
        assert first["status"] in ("open", "closed")
    sent = len(order_messages)
    with pytest.raises(ccxt.InvalidOrder) as info:
        await run(ex.create_order("AAPL/USD", kind, side, amount, prices[price[0]] if price else None))
    assert words in str(info.value) and "ibkr risk limit refused" in str(info.value)
    assert len(order_messages) == sent  # nothing reached TWS
    if "maxOpenOrders" in risk:  # the module's simulator is shared: leave no open order behind
        await run(ex.cancel_order(first["id"], "AAPL/USD"))


async def test_an_edit_meets_the_limits_too(make_trader, sim: IBSimulator, tag: str) -> None:
    ex = make_trader(risk={"maxOrderAmount": 5, "priceCollarPct": 5, "maxOpenOrders": 1000})
    quote = sim.quote("AAPL")
    order = await run(ex.create_order("AAPL/USD", "limit", "buy", 2, round(quote.bid * 0.98, 2),
                                      {"clientOrderId": f"edit-{tag}"}))
    with pytest.raises(ccxt.InvalidOrder, match="maxOrderAmount: amount 6 AAPL/USD exceeds the limit 5"):
        await run(ex.edit_order(order["id"], "AAPL/USD", "limit", "buy", 6))
    with pytest.raises(ccxt.InvalidOrder, match="priceCollarPct"):
        await run(ex.edit_order(order["id"], "AAPL/USD", "limit", "buy", None, round(quote.bid * 0.5, 2)))
    held = sim_order(sim, f"edit-{tag}")
    assert held.req.total_qty == 2 and held.req.lmt_price == order["price"]  # unchanged at TWS
    moved = await run(ex.edit_order(order["id"], "AAPL/USD", "limit", "buy", 3))  # within the limits
    assert moved["amount"] == 3
    await run(ex.cancel_order(order["id"], "AAPL/USD"))


async def test_a_closing_order_passes_the_exposure_limits(make_trader, sim: IBSimulator) -> None:
    opener = make_trader()
    await run(opener.create_order("AAPL/USD", "market", "buy", 5))
    ex = make_trader(risk={"maxOrderAmount": 1, "maxOrderNotional": 10, "denySymbols": ["AAPL/USD"]},
                     clientId=opener.options["clientId"] + 1000)
    with pytest.raises(ccxt.InvalidOrder, match="denySymbols"):
        await run(ex.create_order("AAPL/USD", "market", "buy", 5))
    closing = await run(ex.create_order("AAPL/USD", "market", "sell", 5))  # takes risk off: passes
    assert closing["status"] == "closed" and closing["filled"] == 5


async def test_a_notional_limit_in_another_currency_is_converted_at_the_broker_rate(make_trader, order_messages,
                                                                                    tag: str) -> None:
    ex = make_trader(risk={"maxOrderNotional": 1000, "notionalCurrency": "EUR"})
    eur = await run(ex.fetch_ticker("EUR/USD"))
    usd_per_eur = (eur["bid"] + eur["ask"]) / 2
    assert 5 * 208.0 > 1000 and 5 * 208.0 / usd_per_eur < 1000  # over the limit in USD, within it in EUR
    sent = len(order_messages)
    # MSFT (~420) bought at 208 rests; no other test here holds MSFT short, which a buy would only reduce.
    order = await run(ex.create_order("MSFT/USD", "limit", "buy", 5, 208.0, {"clientOrderId": f"fx-{tag}"}))
    assert len(order_messages) == sent + 1
    with pytest.raises(ccxt.InvalidOrder, match=re.escape(conformance.fx_notional_refusal(usd_per_eur))):
        await run(ex.create_order("MSFT/USD", "limit", "buy", 6, 208.0))
    assert len(order_messages) == sent + 1  # the refused one never reached TWS
    await run(ex.cancel_order(order["id"], "MSFT/USD"))
    unknown = make_trader(risk={"maxOrderNotional": 1e9, "notionalCurrency": "SEK"})  # no USD/SEK market loaded
    with pytest.raises(ccxt.InvalidOrder, match="no FX rate from USD to SEK known"):
        await run(unknown.create_order("MSFT/USD", "limit", "buy", 1, 208.0))
    assert len(order_messages) == sent + 1


@pytest.mark.parametrize("risk", [{"maxOrderAmount": "lots"}, {"maxOrders": 3}, {"allowTypes": "shares"}])
def test_bad_risk_settings_fail_at_construction(sim: IBSimulator, risk: dict[str, Any]) -> None:
    import ccxt_ibkr

    with pytest.raises(ccxt.BadRequest, match="risk"):
        ccxt_ibkr.IBTrader({"options": {"port": sim.port, "risk": risk, "journal": None}})


async def test_limits_from_the_environment(make_trader, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CCXT_BROKERS_RISK_MAX_ORDER_AMOUNT", "2")
    ex = make_trader()
    with pytest.raises(ccxt.InvalidOrder, match="maxOrderAmount: amount 3 AAPL/USD exceeds the limit 2"):
        await run(ex.create_order("AAPL/USD", "market", "buy", 3))


# ---------------------------------------------------------------------------------------- dry run


async def test_dry_run_validates_prices_journals_and_sends_nothing(make_trader, sim: IBSimulator,
                                                                  order_messages, tmp_path, tag: str) -> None:
    ex = make_trader(dryRun=True, risk={"maxOrderAmount": 100}, journal=tmp_path / "dry.sqlite")
    order = await run(ex.create_order("AAPL/USD", "market", "buy", 10, None, {"clientOrderId": f"dry-1-{tag}"}))
    check_order(ex, order, "AAPL/USD")
    assert order["status"] == "canceled" and order["filled"] == 0 and order["id"] == f"dry-1-{tag}"
    assert order["info"]["dryRun"] is True and order["info"]["sent"] is False
    assert order["fee"]["cost"] > 0 and order["info"]["estimate"]["price"] > 0
    assert order["info"]["request"]["order"]["orderType"] == "MKT"
    await run(ex.fetch_time())  # a round trip: anything sent before it has reached the simulator
    assert order_messages == [] and not [o for o in sim.orders() if o.req.order_ref == f"dry-1-{tag}"]
    again = await run(ex.create_order("AAPL/USD", "market", "buy", 10, None, {"clientOrderId": f"dry-1-{tag}"}))
    assert again["id"] == f"dry-1-{tag}" and order_messages == []  # journaled once
    with pytest.raises(ccxt.InvalidOrder, match="maxOrderAmount"):  # the limits hold in a dry run too
        await run(ex.create_order("AAPL/USD", "market", "buy", 101))
    with pytest.raises(ccxt.InvalidOrder):  # and so do the market's rules
        await run(ex.create_order("AAPL/USD", "market", "buy", 0.5))
    account, state, _ = journal_rows(tmp_path / "dry.sqlite")[f"dry-1-{tag}"]
    assert account.endswith(":dry-run") and state == "canceled"  # kept apart from real orders


async def test_dry_run_from_the_environment(make_trader, order_messages, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CCXT_BROKERS_DRY_RUN", "1")
    ex = make_trader()
    order = await run(ex.create_order("AAPL/USD", "limit", "buy", 1, 100.0))
    await run(ex.fetch_time())
    assert order["info"]["dryRun"] is True and order_messages == []


@pytest.mark.parametrize(("symbol", "amount"), [("AAPL/USD", 1), ("AAPL/USD", 100), ("KO/USD", 10_000),
                                              ("EUR/USD", 20_000)])
async def test_a_dry_runs_fee_is_the_commission_then_charged(make_trader, symbol: str, amount: float) -> None:
    rehearsal, real = make_trader(dryRun=True), make_trader()
    estimate = await run(rehearsal.create_order(symbol, "market", "buy", amount))
    order = await run(real.create_order(symbol, "market", "buy", amount))
    await run(real.create_order(symbol, "market", "sell", amount))  # flat again for the module's next tests
    assert estimate["info"]["estimate"]["price"] == pytest.approx(order["average"])  # the touch it took
    assert estimate["fee"]["currency"] == order["fee"]["currency"]
    assert estimate["fee"]["cost"] == pytest.approx(order["fee"]["cost"], abs=1e-6)


# ---------------------------------------------------------------------------------------- staging


async def test_a_staged_order_sits_untransmitted_until_released(make_trader, sim: IBSimulator, tmp_path,
                                                                tag: str) -> None:
    ex = make_trader(journal=tmp_path / "staged.sqlite")
    order = await run(ex.create_order("AAPL/USD", "market", "buy", 2, None,
                                      {"clientOrderId": f"stage-1-{tag}", "transmit": False}))
    assert order["status"] == "open" and order["info"]["staged"] is True and order["filled"] == 0
    held = await booked(sim, f"stage-1-{tag}")
    sim.advance(600)
    assert not held.transmitted and held.filled == 0  # TWS holds it: no fill however long it sits
    listed = await run(ex.fetch_open_orders("AAPL/USD"))
    assert [o["clientOrderId"] for o in listed if o["info"].get("staged")] == [f"stage-1-{tag}"]
    _, state, reason = journal_rows(tmp_path / "staged.sqlite")[f"stage-1-{tag}"]
    assert state == "open" and reason.startswith("staged")
    kept = await run(ex.edit_order(order["id"], "AAPL/USD", "market", "buy", 3))  # edited, still staged
    assert kept["info"]["staged"] is True and kept["amount"] == 3
    await eventually(lambda: held.req.total_qty == 3)  # TWS updated it in place
    assert not held.transmitted
    sent = await run(ex.edit_order(order["id"], "AAPL/USD", "market", "buy", None, None, {"transmit": True}))
    assert held.transmitted and sent["info"].get("staged") is None
    assert sent["status"] == "closed" and sent["filled"] == 3  # a market order answers with its fill
    assert journal_rows(tmp_path / "staged.sqlite")[f"stage-1-{tag}"][2] == "transmitted after staging"


async def test_a_staged_bracket_stays_in_tws_whole(make_trader, sim: IBSimulator, tag: str) -> None:
    ex = make_trader()
    quote = sim.quote("AAPL")
    params = {"clientOrderId": f"stage-2-{tag}", "transmit": False,
              "stopLoss": {"triggerPrice": round(quote.bid - 5, 2)}}
    order = await run(ex.create_order("AAPL/USD", "limit", "buy", 1, round(quote.bid - 1, 2), params))
    assert order["info"]["staged"] is True
    await booked(sim, f"stage-2-{tag}-sl")
    legs = [o for o in sim.orders() if o.req.order_ref.startswith(f"stage-2-{tag}")]
    assert len(legs) == 2 and not any(o.transmitted for o in legs)


async def test_a_staged_order_can_be_discarded(make_trader, sim: IBSimulator, tag: str) -> None:
    ex = make_trader()
    order = await run(ex.create_order("AAPL/USD", "market", "buy", 1, None,
                                      {"clientOrderId": f"stage-3-{tag}", "transmit": False}))
    held = await booked(sim, f"stage-3-{tag}")
    canceled = await run(ex.cancel_order(order["id"], "AAPL/USD"))
    assert canceled["status"] == "canceled"
    await eventually(lambda: held.status == "Cancelled")  # discarded in TWS too
    sim.advance(600)
    assert held.filled == 0


# ---------------------------------------------------------------------------------------- trailing, algos


async def test_trailing_stop_by_amount_trails_and_triggers(make_trader, sim: IBSimulator, tag: str) -> None:
    ex = make_trader()
    await run(ex.create_order("AAPL/USD", "market", "buy", 2))
    order = await run(ex.create_order("AAPL/USD", "market", "sell", 2, None,
                                      {"clientOrderId": f"trail-1-{tag}", "trailingAmount": 0.5}))
    check_order(ex, order, "AAPL/USD")
    assert order["status"] == "open" and order["type"] == "market"
    held = sim_order(sim, f"trail-1-{tag}")
    assert held.req.order_type == "TRAIL" and held.req.aux_price == 0.5
    start = held.trail_stop
    sim.advance(24 * 3600)
    await eventually(lambda: held.status == "Filled")
    await run(ex.fetch_time())  # IB's fill messages precede this answer on the socket
    done = await run(ex.fetch_order(order["id"], "AAPL/USD"))
    assert done["status"] == "closed" and held.trail_stop >= start


async def test_trailing_percent_and_trailing_stop_limit(make_trader, sim: IBSimulator, tag: str) -> None:
    ex = make_trader()
    quote = sim.quote("AAPL")
    pct = await run(ex.create_order("AAPL/USD", "market", "buy", 1, None,
                                    {"clientOrderId": f"trail-2-{tag}", "trailingPercent": 1.5}))
    assert pct["status"] == "open" and sim_order(sim, f"trail-2-{tag}").req.trailing_percent == 1.5
    stop = round(quote.bid - 2, 2)
    limited = await run(ex.create_order("AAPL/USD", "stop_limit", "sell", 1, round(stop - 0.3, 2),
                                        {"clientOrderId": f"trail-3-{tag}", "triggerPrice": stop, "trailingAmount": 1}))
    req = sim_order(sim, f"trail-3-{tag}").req
    assert req.order_type == "TRAIL LIMIT" and req.trail_stop_price == stop
    assert req.lmt_price_offset == pytest.approx(0.3) and limited["triggerPrice"] >= stop
    with pytest.raises(ccxt.NotSupported, match="trailingTriggerPrice"):
        await run(ex.create_order("AAPL/USD", "market", "sell", 1, None,
                                  {"trailingAmount": 1, "trailingTriggerPrice": stop}))
    with pytest.raises(ccxt.InvalidOrder, match="trailingAmount'\\] and params\\['trailingPercent"):
        await run(ex.create_order("AAPL/USD", "market", "sell", 1, None, {"trailingAmount": 1,
                                                                           "trailingPercent": 1}))


async def test_algo_strategy_with_params(make_trader, sim: IBSimulator, tag: str) -> None:
    ex = make_trader()
    order = await run(ex.create_order("AAPL/USD", "market", "buy", 1, None, {
        "clientOrderId": f"algo-1-{tag}", "algoStrategy": "adaptive", "algoParams": {"adaptivePriority": "Urgent"}}))
    assert order["status"] == "closed"
    req = sim_order(sim, f"algo-1-{tag}").req
    assert req.algo_strategy == "Adaptive" and req.algo_params == [("adaptivePriority", "Urgent")]
    with pytest.raises(ccxt.InvalidOrder, match="algoStrategy"):
        await run(ex.create_order("AAPL/USD", "market", "buy", 1, None, {"algoParams": {"a": 1}}))
