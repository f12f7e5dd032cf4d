"""Per-order latency on Capital.com (order['info']['latency'], normalization.runtime.latency): present and in
stage order for market, limit (resting, then filled) and rejected deals, through create_order, fetch_order
and watch_orders, on both faces, and kept in the journal across a restart."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import ccxt
import ccxt.pro
import pytest

from tests.conformance import check_latency

from .trader_fixtures import Face, face_fixture, face_kind_fixture, make_face_fixture, trader_config  # noqa: F401

pytestmark = pytest.mark.capital_sim(rate_limits="off")
WAIT = 5.0


async def journaled_stamps(face: Face, cid: str) -> tuple[int | None, ...]:
    row = (await face.journal()).get(cid)
    assert row is not None and row.latency is not None
    stamps = row.latency.values()
    reached = [s for s in stamps if s is not None]
    assert reached == sorted(reached) and stamps[0] is not None
    return stamps


async def test_a_market_order_from_intent_to_fill(face: Face, make_face: Any) -> None:
    order = await face.call("create_order", "AAPL/USD", "market", "buy", 1, None, {"clientOrderId": "lat-m"})
    check_latency(order["info"]["latency"], filled=True)
    fetched = await face.call("fetch_order", order["id"])
    assert fetched["info"]["latency"] == order["info"]["latency"]
    assert None not in await journaled_stamps(face, "lat-m")
    # Another process (a restart) reads the same stages from the journal.
    await face.close()
    later = make_face("async")
    await later.call("load_markets")
    try:
        again = await later.call("fetch_order", "lat-m")
        assert again["info"]["latency"] == order["info"]["latency"]
    finally:
        await later.close()


async def test_a_limit_order_resting_then_filled(face: Face, capital_sim: Any) -> None:
    level = round(capital_sim.quote("AAPL").offer - 5, 2)
    order = await face.call("create_order", "AAPL/USD", "limit", "buy", 1, level, {"clientOrderId": "lat-l"})
    assert order["status"] == "open"
    check_latency(order["info"]["latency"], filled=False)
    listed = await face.call("fetch_open_orders", "AAPL/USD")
    assert [o["info"]["latency"] for o in listed] == [order["info"]["latency"]]
    capital_sim.pin_price("AAPL", level - 1, at=capital_sim.clock.now() + 1)
    capital_sim.advance(120)
    filled = await face.call("fetch_order", order["id"])
    assert filled["status"] == "closed"
    latency = filled["info"]["latency"]
    check_latency(latency, filled=True)
    assert {k: latency[k] for k in ("intent_to_submit_ms", "submit_to_ack_ms")} == {
        k: order["info"]["latency"][k] for k in ("intent_to_submit_ms", "submit_to_ack_ms")}
    stamps = await journaled_stamps(face, "lat-l")
    assert None not in stamps
    assert (await face.call("fetch_order", "lat-l"))["info"]["latency"] == latency  # stamped once


async def test_a_rejected_deal_has_its_stages_up_to_the_refusal(face: Face) -> None:
    with pytest.raises(ccxt.InsufficientFunds):
        await face.call("create_order", "AAPL/USD", "market", "buy", 5000, None, {"clientOrderId": "lat-r"})
    fetched = await face.call("fetch_order", "lat-r")
    assert fetched["status"] == "rejected"
    check_latency(fetched["info"]["latency"], filled=False)
    assert (await journaled_stamps(face, "lat-r"))[3:] == (None, None)


async def test_watch_orders_carries_the_latency(capital_sim: Any, tmp_path: Path) -> None:
    pro = ccxt.pro.capitalcom(trader_config(capital_sim, tmp_path, pollInterval=1.0))
    try:
        await pro.load_markets()
        watching = asyncio.ensure_future(pro.watch_orders())
        while "orders" not in pro.hub.subscriptions:
            await asyncio.wait({watching}, timeout=0.05)
        level = round(capital_sim.quote("AAPL").offer - 5, 2)
        placed = await pro.create_order("AAPL/USD", "limit", "buy", 1, level)
        seen = {o["id"]: o for o in await asyncio.wait_for(watching, WAIT)}
        check_latency(seen[placed["id"]]["info"]["latency"], filled=False)
        capital_sim.pin_price("AAPL", level - 1, at=capital_sim.clock.now() + 1)
        capital_sim.advance(120)
        for _ in range(20):  # each poll that finds something new resolves the watch once
            update = {o["id"]: o for o in await asyncio.wait_for(pro.watch_orders(), WAIT)}
            if update.get(placed["id"], {}).get("status") == "closed":
                break
        check_latency(update[placed["id"]]["info"]["latency"], filled=True)
    finally:
        await pro.close()
