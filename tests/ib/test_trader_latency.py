"""Per-order latency on IB (order['info']['latency'], normalization.runtime.latency): present and in stage
order for market, limit (resting, then filled) and rejected orders, through create_order, fetch_order and
watch_orders, on both faces, and kept in the journal across a restart."""

# ruff: noqa: F811 - the fixtures imported from trader_fixtures are re-bound as test parameters
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import ccxt
import ccxt.pro
import pytest

from ccxt_ibkr.orders import is_done
from ccxt_ibkr.sim.server import IBSimulator
from tests.conformance import check_latency
from tests.ib.test_sim_orders import future_minutes
from tests.ib.trader_fixtures import ex, face, make_trader, run, sim, trader_options, trader_sim  # noqa: F401

WAIT = 5.0


def resting_limit(sim: IBSimulator) -> tuple[float, float]:
    """A buy limit below the ask that the price path crosses within half an hour, and the seconds until
    just after it does (the tests move the module's clock no further: it stays in trading hours)."""
    asks = future_minutes(sim, "AAPL", 30, "ask")
    limit = min(a for _, a in asks)
    crossing = next(t for t, a in asks if a <= limit)
    return limit, crossing - sim.now() + 60

async def filled(ex: Any, order: dict[str, Any]) -> None:
    """Wait, on the exchange's own loop, until IB reports the order done (an event, not a poll)."""
    impl = getattr(ex, "impl", ex)
    trade = impl._find_trade_local(order["clientOrderId"])
    wait = impl.transport.wait_trade(trade, is_done, WAIT)
    if impl is ex:
        assert await wait
    else:
        assert await asyncio.to_thread(ex._loop_thread.run, wait, WAIT + 1, "wait")


def journaled(ex: Any, cid: str) -> tuple[int | None, ...]:
    impl = getattr(ex, "impl", ex)
    run_on = (lambda f: f()) if impl is ex else (lambda f: ex._loop_thread.run(_call(f), 5, "journal"))
    row = run_on(lambda: (impl._flush_deferred(), impl.journal.get(cid))[1])
    assert row is not None and row.latency is not None
    stamps = row.latency.values()
    reached = [s for s in stamps if s is not None]
    assert reached == sorted(reached) and stamps[0] is not None
    return stamps


async def _call(f: Any) -> Any:
    return f()


async def test_a_market_order_from_intent_to_fill(ex, make_trader) -> None:
    order = await run(ex.create_order("AAPL/USD", "market", "buy", 1, None, {"clientOrderId": "lat-m"}))
    check_latency(order["info"]["latency"], filled=True)
    fetched = await run(ex.fetch_order(order["id"], "AAPL/USD"))
    assert fetched["info"]["latency"] == order["info"]["latency"]
    assert None not in journaled(ex, "lat-m")
    path = (getattr(ex, "impl", ex)).journal.path
    await run(ex.close())
    later = make_trader(journal=path, face_="async")  # a restart reads the stages from the journal
    again = await later.fetch_order(None, "AAPL/USD", {"clientOrderId": "lat-m"})
    assert again["info"]["latency"] == order["info"]["latency"]


async def test_a_limit_order_resting_then_filled(ex, sim: IBSimulator) -> None:
    limit, until_filled = resting_limit(sim)
    order = await run(ex.create_order("AAPL/USD", "limit", "buy", 1, limit, {"clientOrderId": "lat-l"}))
    assert order["status"] == "open"
    check_latency(order["info"]["latency"], filled=False)
    sim.advance(until_filled)
    await filled(ex, order)
    done = await run(ex.fetch_order(order["id"], "AAPL/USD"))
    assert done["status"] == "closed"
    check_latency(done["info"]["latency"], filled=True)
    assert done["info"]["latency"]["submit_to_ack_ms"] == order["info"]["latency"]["submit_to_ack_ms"]
    assert None not in journaled(ex, "lat-l")


async def test_a_rejected_order_has_its_stages_up_to_the_refusal(ex, sim: IBSimulator) -> None:
    await run(ex.load_markets())
    sim.reject_next_order("Simulated rejection")
    with pytest.raises(ccxt.InvalidOrder):
        await run(ex.create_order("AAPL/USD", "limit", "buy", 1, resting_limit(sim)[0], {"clientOrderId": "lat-r"}))
    fetched = await run(ex.fetch_order(None, "AAPL/USD", {"clientOrderId": "lat-r"}))
    assert fetched["status"] == "rejected"
    check_latency(fetched["info"]["latency"], filled=False)
    assert journaled(ex, "lat-r")[3:] == (None, None)


async def test_watch_orders_carries_the_latency(sim: IBSimulator, tmp_path: Path) -> None:
    pro = ccxt.pro.ibkr({"options": trader_options(sim, tmp_path / "journal.sqlite")})
    try:
        watching = asyncio.ensure_future(pro.watch_orders("AAPL/USD"))
        while "orders" not in pro.hub.subscriptions:
            await asyncio.wait({watching}, timeout=0.05)
        limit, until_filled = resting_limit(sim)
        placed = await pro.create_order("AAPL/USD", "limit", "buy", 1, limit)
        await asyncio.wait_for(watching, WAIT)
        # create_order returned on IB's acknowledgement: the stream has delivered it too
        acknowledged = [o for o in pro.orders if o["id"] == placed["id"]][-1]
        check_latency(acknowledged["info"]["latency"], filled=False)
        sim.advance(until_filled)
        while not any(o["id"] == placed["id"] and o["status"] == "closed" for o in pro.orders):
            await asyncio.wait_for(pro.watch_orders("AAPL/USD"), WAIT)
        closed = next(o for o in pro.orders if o["id"] == placed["id"] and o["status"] == "closed")
        check_latency(closed["info"]["latency"], filled=True)
    finally:
        await pro.close()
