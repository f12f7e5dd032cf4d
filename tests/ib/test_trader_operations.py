"""Operator controls at IB, end to end on the simulator (real socket), both faces: cancel-all (own
clientId only, all clients on request), the kill switch (idempotent), account figures and today's PnL,
commission estimates equal to what the simulator charges, and fills older than IB's day from the journal.

This module has its own simulator: the kill switch closes every position of the account.
"""

# ruff: noqa: F811 - the fixtures imported from trader_fixtures are re-bound as test parameters
from __future__ import annotations

import ccxt
import pytest

from ccxt_ibkr.sim.server import IBSimulator
from tests.ib.trader_fixtures import (  # noqa: F401 - fixtures
    ex,
    face,
    make_trader,
    run,
    sim,
    sim_orders,
    trader_sim,
)


def _below(sim: IBSimulator, name: str) -> float:
    return round(sim.quote(name).bid * 0.8, 2)


async def test_cancel_all_takes_only_this_clients_orders(make_trader, sim: IBSimulator) -> None:
    mine, other = make_trader(), make_trader()
    a = await run(mine.create_order("AAPL/USD", "limit", "buy", 1, _below(sim, "AAPL")))
    b = await run(mine.create_order("MSFT/USD", "limit", "buy", 1, _below(sim, "MSFT")))
    theirs = await run(other.create_order("AAPL/USD", "limit", "buy", 1, _below(sim, "AAPL")))
    assert mine.has["cancelAllOrders"] is True

    only_aapl = await run(mine.cancel_all_orders("AAPL/USD"))
    assert [o["id"] for o in only_aapl] == [a["id"]] and only_aapl[0]["status"] == "canceled"
    rest = await run(mine.cancel_all_orders())
    assert [o["id"] for o in rest] == [b["id"]] and rest[0]["status"] == "canceled"
    assert await run(mine.cancel_all_orders()) == []  # nothing left: nothing sent
    assert (await run(other.fetch_order(theirs["id"])))["status"] == "open"  # another client's order stays
    journal = mine.impl.journal if hasattr(mine, "impl") else mine.journal
    assert {journal.get(o["clientOrderId"]).state for o in (a, b)} == {"canceled"}

    with pytest.raises(ccxt.BadRequest, match="allClients"):
        await run(mine.cancel_all_orders("AAPL/USD", {"allClients": True}))
    everything = await run(mine.cancel_all_orders(None, {"allClients": True}))  # IB's global cancel
    assert theirs["id"] in [o["id"] for o in everything]
    assert (await run(other.fetch_order(theirs["id"])))["status"] == "canceled"


async def test_kill_switch_cancels_then_flattens_and_is_idempotent(ex, sim: IBSimulator) -> None:
    await run(ex.create_order("AAPL/USD", "market", "buy", 3))
    await run(ex.create_order("MSFT/USD", "market", "sell", 2))
    resting = await run(ex.create_order("IBM/USD", "limit", "buy", 1, _below(sim, "IBM")))
    closes = await run(ex.close_all_positions())
    assert sorted((o["symbol"], o["side"], o["amount"]) for o in closes) == [
        ("AAPL/USD", "sell", 3), ("MSFT/USD", "buy", 2)]
    assert all(o["status"] == "closed" and o["reduceOnly"] for o in closes), [
        (o["status"], o["reduceOnly"], o["clientOrderId"]) for o in closes]
    assert (await run(ex.fetch_order(resting["id"])))["status"] == "canceled"
    assert [p for p in await run(ex.fetch_positions()) if p["contracts"]] == []

    booked = sim_orders(sim)
    assert await run(ex.close_all_positions()) == []  # the second run finds nothing to do
    assert sim_orders(sim) == booked  # and sends nothing


async def test_balance_carries_margin_figures_and_todays_pnl(ex, sim: IBSimulator) -> None:
    await run(ex.create_order("KO/USD", "market", "buy", 5))
    await run(ex.create_order("KO/USD", "market", "sell", 5))
    info = (await run(ex.fetch_balance()))["info"]
    account = info["account"]
    summary = sim.ledger.summary(sim.mark)
    for tag in ("BuyingPower", "AvailableFunds", "ExcessLiquidity", "InitMarginReq", "MaintMarginReq"):
        assert account[tag] == pytest.approx(summary[tag], abs=0.01), tag
    expected = sim.pnl.account()
    pnl = info["pnlToday"]
    assert pnl["source"] == "reqPnL"
    assert pnl["realized"] == pytest.approx(expected.realized, abs=0.01)
    assert pnl["unrealized"] == pytest.approx(expected.unrealized, abs=0.01)
    assert pnl["daily"] == pytest.approx(expected.daily, abs=0.01)
    assert pnl["realized"] < 0  # a round trip pays two commissions at an unchanged price


@pytest.mark.parametrize("symbol, amount", [("AAPL/USD", 1), ("AAPL/USD", 100), ("KO/USD", 10_000), ("KO/USD", 1),
                                            ("EUR/USD", 20_000), ("EUR/USD", 1_000_000)])
async def test_fee_estimate_equals_the_commission_charged(ex, symbol: str, amount: float) -> None:
    await run(ex.load_markets())
    ask = (await run(ex.fetch_ticker(symbol)))["ask"]
    estimate = ex.calculate_fee(symbol, "market", "buy", amount, ask)
    order = await run(ex.create_order(symbol, "market", "buy", amount))
    await run(ex.create_order(symbol, "market", "sell", amount))
    assert order["status"] == "closed" and order["average"] == pytest.approx(ask)
    assert estimate["currency"] == order["fee"]["currency"] == "USD"
    assert estimate["cost"] == pytest.approx(order["fee"]["cost"], abs=1e-6)
    # IB fixed: USD 0.005/share, min 1.00, max 1% of value; FX 0.2 bp of value, min USD 2.00
    expected = {("AAPL/USD", 1): 1.0, ("AAPL/USD", 100): 1.0, ("KO/USD", 10_000): 50.0, ("KO/USD", 1): ask * 0.01,
                ("EUR/USD", 20_000): 2.0, ("EUR/USD", 1_000_000): 1_000_000 * ask * 0.00002}
    assert estimate["cost"] == pytest.approx(expected[symbol, amount])


async def test_trading_fees_name_the_schedule(ex) -> None:
    await run(ex.load_markets())
    fees = await run(ex.fetch_trading_fees())
    assert fees["AAPL/USD"]["info"]["schedule"]["per_unit"] == 0.005
    assert fees["EUR/USD"]["taker"] == pytest.approx(0.00002) and fees["EUR/USD"]["percentage"] is True
    # per share, ccxt's absolute fee: USD 0.005 a share before the floor and the cap
    assert fees["AAPL/USD"]["taker"] == fees["AAPL/USD"]["maker"] == 0.005
    assert fees["AAPL/USD"]["percentage"] is False
    assert ex.calculate_fee("AAPL/USD", "limit", "buy", 1000, 50.0)["cost"] == pytest.approx(5.0)
    ex.options["commissions"] = {"plan": "tiered"}
    assert ex.calculate_fee("AAPL/USD", "limit", "buy", 1000, 50.0)["cost"] == pytest.approx(3.5)


async def test_fills_older_than_ibs_day_come_from_the_journal(make_trader, sim: IBSimulator, tmp_path) -> None:
    journal = tmp_path / "shared.sqlite"
    first = make_trader(journal=journal)
    old = await run(first.create_order("JPM/USD", "market", "buy", 2))
    since = (await run(first.fetch_my_trades("JPM/USD")))[0]["timestamp"] - 60_000
    await run(first.close())
    sim.advance(86_400)  # the next day: IB's reqExecutions no longer lists yesterday's fill
    later = make_trader(journal=journal)
    new = await run(later.create_order("JPM/USD", "market", "sell", 2))
    trades = await run(later.fetch_my_trades("JPM/USD", since))
    assert [t["order"] for t in trades] == [old["id"], new["id"]]
    assert trades[0]["info"]["source"] == "journal" and trades[0]["fee"]["cost"] == pytest.approx(1.0)
    assert trades[1]["info"].get("source") is None  # IB's own answer, not repeated from the journal
    assert len({t["id"] for t in trades}) == len(trades)
    assert [t["id"] for t in await run(later.fetch_my_trades("JPM/USD"))] == [trades[1]["id"]]
