"""Streams across a lost connection: fills that happen while the socket is down are delivered after the
reconnect, each exactly once, by the order and fill streams (ccxt.pro.ibkr, ccxt.pro.capitalcom).

Waiting without races, as in test_ib_faults: the gateway is held down (clientId marked busy) while the
simulator's clock moves and fills the rest of the order; the test then releases it and waits on the
watch calls themselves (bounded), never sleeping.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import ccxt.pro
import pytest

import ccxt_ibkr  # noqa: F401 - registers ccxt.pro.ibkr
from ccxt_ibkr.sim import IBSimulator
from normalization.runtime.supervisor import CONNECTED, DISCONNECTED

from .brokers import ib_options

CLIENT_ID = 17
WAIT = 10.0


async def test_ib_fills_during_a_drop_arrive_once_after_the_reconnect(ib_sim: IBSimulator, tmp_path: Path) -> None:
    ex = ccxt.pro.ibkr({"options": ib_options(ib_sim, tmp_path / "journal.sqlite", CLIENT_ID)})
    try:
        await ex.load_markets()
        ib_sim.set_liquidity(max_fill_per_match=2, symbol="AAPL")  # 6 shares fill 2 at a time, a step apart
        trades_task = asyncio.ensure_future(ex.watch_my_trades("AAPL/USD"))
        orders_task = asyncio.ensure_future(ex.watch_orders("AAPL/USD"))
        while not {"myTrades", "orders"} <= set(ex.hub.subscriptions):
            await asyncio.wait({trades_task, orders_task}, timeout=0.05)
        placed = await ex.create_order("AAPL/USD", "market", "buy", 6, None, {"clientOrderId": "stream-drop"})
        assert placed["filled"] < 6

        delivered: dict[str, Any] = {}

        def collect(trades: list[dict[str, Any]]) -> None:
            for trade in trades:
                assert trade["id"] not in delivered, f"fill {trade['id']} delivered twice"
                delivered[trade["id"]] = trade

        collect(await asyncio.wait_for(trades_task, WAIT))
        # The gateway goes away; while it is down the order keeps filling at the broker.
        ib_sim.mark_client_id_in_use(CLIENT_ID)
        ib_sim.drop_client(CLIENT_ID)
        await ex.supervisor.wait_for(lambda s: s.state == DISCONNECTED and s.attempts >= 1, WAIT)
        ib_sim.advance(300)
        executions = [e for e in ib_sim.executions() if e.order.req.order_ref == "stream-drop"]
        assert sum(e.shares for e in executions) == 6, "the order filled completely during the outage"
        before = ex.supervisor.reconnects
        ib_sim.mark_client_id_in_use(CLIENT_ID, False)
        await ex.supervisor.wait_for(lambda s: s.reconnects > before and s.state == CONNECTED and not s.healing,
                                     WAIT)
        while sum(t["amount"] for t in delivered.values()) < 6:
            collect(await asyncio.wait_for(ex.watch_my_trades("AAPL/USD"), WAIT))
        assert set(delivered) == {e.exec_id for e in executions}
        assert all(t["fee"] is not None and t["fee"]["currency"] == "USD" for t in delivered.values())
        orders = await asyncio.wait_for(orders_task, WAIT)
        while not any(o["id"] == placed["id"] and o["status"] == "closed" and o["filled"] == 6 for o in ex.orders):
            orders = await asyncio.wait_for(ex.watch_orders("AAPL/USD"), WAIT)
        assert orders
    finally:
        ib_sim.set_liquidity(None)
        ib_sim.mark_client_id_in_use(CLIENT_ID, False)
        await ex.close()


@pytest.mark.capital_sim(rate_limits="off")
async def test_capital_fill_while_the_broker_is_away_is_polled_once_when_back(capital_sim: Any,
                                                                              tmp_path: Path) -> None:
    import ccxt_capital  # noqa: F401 - registers ccxt.pro.capitalcom

    from .brokers import capital_config

    ex = ccxt.pro.capitalcom(capital_config(capital_sim, tmp_path / "journal.sqlite", pollInterval=0.05))
    try:
        await ex.load_markets()
        trades_task = asyncio.ensure_future(ex.watch_my_trades("AAPL/USD"))
        orders_task = asyncio.ensure_future(ex.watch_orders("AAPL/USD"))
        while not {"myTrades", "orders"} <= set(ex.hub.subscriptions):
            await asyncio.wait({trades_task, orders_task}, timeout=0.05)
        bid = capital_sim.quote("AAPL").bid
        placed = await ex.create_order("AAPL/USD", "limit", "buy", 1, round(bid - 5, 2))
        assert placed["status"] == "open"
        await asyncio.wait_for(orders_task, WAIT)
        while placed["id"] not in {o["id"] for o in ex.orders}:  # (first seen by dealId, then by reference)
            await asyncio.wait_for(ex.watch_orders("AAPL/USD"), WAIT)
        capital_sim.go_down()
        await ex.supervisor.wait_for(lambda s: s.state != "connected", WAIT)  # a poll found the broker away
        capital_sim.pin_price("AAPL", round(bid - 10, 2), at=capital_sim.clock.now() + 60)
        capital_sim.advance(120)  # the working order fills while nobody can ask
        assert not capital_sim.working_orders()
        capital_sim.come_back()
        trades = await asyncio.wait_for(trades_task, WAIT)
        assert [t["symbol"] for t in trades] == ["AAPL/USD"] and trades[0]["amount"] == 1
        polls = ex._pollers["myTrades"].polls
        while ex._pollers["myTrades"].polls < polls + 3:  # later polls see the same fill: never again
            await asyncio.wait({trades_task}, timeout=0.05)
        assert "myTrades:AAPL/USD" not in ex.hub.unread and len(ex.myTrades) == 1
        while not any(o["id"] == placed["id"] and o["status"] == "closed" for o in ex.orders):
            await asyncio.wait_for(ex.watch_orders("AAPL/USD"), WAIT)
    finally:
        capital_sim.come_back()
        await ex.close()
