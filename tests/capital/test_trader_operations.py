"""Operator controls at Capital.com, end to end on the simulator over real HTTP, both faces:
cancel-all (every working order, or one symbol's), the kill switch (idempotent), account figures
with today's realized PnL, and fee quotes (spread-only, overnight funding apart)."""

from __future__ import annotations

import pytest

from .trader_fixtures import Face, booked, face_fixture, face_kind_fixture, make_face_fixture  # noqa: F401

pytestmark = pytest.mark.capital_sim(rate_limits="sim")


def _below(capital_sim, epic: str) -> float:
    return round(capital_sim.quote(epic).bid * 0.8, 2)


async def test_cancel_all_takes_every_working_order_or_one_symbols(face: Face, capital_sim) -> None:
    aapl = await face.call("create_order", "AAPL/USD", "limit", "buy", 1, _below(capital_sim, "AAPL"))
    tsla = await face.call("create_order", "TSLA/USD", "limit", "buy", 1, _below(capital_sim, "TSLA"))
    assert face.exchange.has["cancelAllOrders"] is True

    only_aapl = await face.call("cancel_all_orders", "AAPL/USD")
    assert [(o["id"], o["status"]) for o in only_aapl] == [(aapl["id"], "canceled")]
    rest = await face.call("cancel_all_orders")
    assert [(o["id"], o["status"]) for o in rest] == [(tsla["id"], "canceled")]
    assert await face.call("cancel_all_orders") == []
    assert await face.call("fetch_open_orders") == []
    journal = await face.journal()
    assert {journal.get(o["clientOrderId"]).state for o in (aapl, tsla)} == {"canceled"}


async def test_kill_switch_cancels_then_flattens_and_is_idempotent(face: Face, capital_sim) -> None:
    await face.call("create_order", "AAPL/USD", "market", "buy", 3)
    await face.call("create_order", "AAPL/USD", "market", "buy", 2)  # a second deal: Capital lists it apart
    await face.call("create_order", "GOLD/USD", "market", "sell", 0.5)
    assert len(await face.call("fetch_positions")) == 3
    resting = await face.call("create_order", "TSLA/USD", "limit", "buy", 1, _below(capital_sim, "TSLA"))
    closes = await face.call("close_all_positions")  # one close_position per symbol and side (it closes both deals)
    assert sorted((o["symbol"], o["side"]) for o in closes) == [("AAPL/USD", "sell"), ("GOLD/USD", "buy")]
    assert [o["amount"] for o in closes if o["symbol"] == "GOLD/USD"] == [0.5]
    assert all(o["status"] == "closed" for o in closes)
    assert capital_sim.positions() == [] and await face.call("fetch_open_orders") == []
    assert (await face.call("fetch_order", resting["id"]))["status"] == "canceled"

    before = booked(capital_sim)
    assert await face.call("close_all_positions") == []  # the second run finds nothing to do
    assert booked(capital_sim) == before  # and the broker booked nothing new


async def test_balance_carries_account_figures_and_todays_realized_pnl(face: Face, capital_sim) -> None:
    await face.call("create_order", "AAPL/USD", "market", "buy", 10)
    capital_sim.pin_price("AAPL", capital_sim.quote("AAPL").bid + 5.0, at=capital_sim.clock.now() + 30)
    capital_sim.advance(60)
    await face.call("create_order", "AAPL/USD", "market", "sell", 10)
    balance = await face.call("fetch_balance")
    info = balance["info"]
    raw = info["balance"]
    assert info["account"] == {"balance": raw["balance"], "deposit": raw["deposit"], "profitLoss": raw["profitLoss"],
                               "available": raw["available"], "currency": "USD"}
    trades = [t for t in await face.call("fetch_ledger") if t["type"] == "trade"]
    assert info["pnlToday"]["realized"] == pytest.approx(sum(t["amount"] * (1 if t["direction"] == "in" else -1)
                                                              for t in trades))
    assert info["pnlToday"]["realized"] > 0  # the price rose 5 while 10 were held


async def test_fees_are_spread_only_with_funding_apart(face: Face) -> None:
    fee = face.exchange.calculate_fee("AAPL/USD", "market", "buy", 10, 200.0)
    assert (fee["cost"], fee["rate"], fee["currency"]) == (0.0, 0.0, "USD")
    funding = fee["info"]["overnightFunding"]
    assert funding["perNight"] == pytest.approx(2000.0 * funding["ratePercentPerDay"] / 100)
    fees = await face.call("fetch_trading_fees")
    assert fees["AAPL/USD"]["taker"] == 0.0 and fees["AAPL/USD"]["info"]["pricing"] == "spread"
    assert fees["AAPL/USD"]["info"]["overnightFundingPercentPerDay"]["long"] == funding["ratePercentPerDay"]
