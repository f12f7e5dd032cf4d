# ruff: noqa: F811 - the fixtures imported from trader_fixtures are re-bound as test parameters
"""Money safety at IB (issue #15): the live gate on every connect and order, close_position leaving no
bracket behind, rejections and fills journaled with IB's own words."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import ccxt
import pytest

from ccxt_ibkr.async_support import IBTrader as AsyncIBTrader
from ccxt_ibkr.sim.server import IBSimulator
from ccxt_ibkr.sim.testing import running_simulator
from tests.ib.trader_fixtures import (  # noqa: F401 - fixtures
    face,
    make_trader,
    order_messages,
    run,
    sim,
    trader_options,
    trader_sim,
)


class LivePort:
    """A stand-in for TWS on the live port 7496: counts the connections that reach it (none may)."""

    def __init__(self) -> None:
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.close()


@pytest.fixture
async def live_port() -> AsyncIterator[LivePort]:
    endpoint = LivePort()
    try:
        server = await asyncio.start_server(endpoint.handle, "127.0.0.1", 7496)
    except OSError:
        pytest.skip("port 7496 is taken on this machine")
    try:
        yield endpoint
    finally:
        server.close()
        await server.wait_closed()


async def test_a_live_port_set_after_construction_is_refused(make_trader, sim: IBSimulator, live_port: LivePort,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CCXT_BROKERS_ALLOW_LIVE", raising=False)
    ex = make_trader(face_="async")
    ex.options["port"] = 7496  # after construction: the old check only ran in __init__
    with pytest.raises(ccxt.PermissionDenied, match=r"port 7496 .*missing: options\['live'\] = True and"):
        await ex.load_markets()
    with pytest.raises(ccxt.PermissionDenied):
        await ex.create_order("AAPL/USD", "limit", "buy", 1, 100.0, {"clientOrderId": "gate-port"})
    assert live_port.connections == 0, "nothing may reach the live port"


async def test_a_live_port_set_while_connected_is_refused_before_the_order(make_trader, sim: IBSimulator,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CCXT_BROKERS_ALLOW_LIVE", raising=False)
    ex = make_trader(face_="async")
    await ex.load_markets()  # connected to the paper simulator
    booked = len(sim.orders())
    ex.options["port"] = 4001  # IB Gateway live
    with pytest.raises(ccxt.PermissionDenied, match="port 4001"):
        await ex.create_order("AAPL/USD", "limit", "buy", 1, 100.0, {"clientOrderId": "gate-port-late"})
    assert len(sim.orders()) == booked


@pytest.fixture(scope="module")
def live_account_sim() -> Any:
    with running_simulator(account="U7654321") as sim:  # a live account behind a paper port
        yield sim


async def test_a_live_account_on_a_paper_port_is_refused(live_account_sim: IBSimulator, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CCXT_BROKERS_ALLOW_LIVE", raising=False)
    ex = AsyncIBTrader({"options": trader_options(live_account_sim, tmp_path / "j.sqlite")})
    try:
        with pytest.raises(ccxt.PermissionDenied, match="U7654321"):
            await ex.create_order("AAPL/USD", "market", "buy", 1, None, {"clientOrderId": "gate-account"})
        assert not ex.transport.connected  # the gate hung up
    finally:
        await ex.close()
    assert live_account_sim.orders() == [], "no order may reach a live account"
    # Both opt-ins: the same account is allowed.
    monkeypatch.setenv("CCXT_BROKERS_ALLOW_LIVE", "1")
    ex = AsyncIBTrader({"options": trader_options(live_account_sim, tmp_path / "j2.sqlite", live=True)})
    try:
        await ex.load_markets()
        assert ex.transport.connected
    finally:
        await ex.close()


async def test_close_position_cancels_the_positions_bracket(make_trader, sim: IBSimulator) -> None:
    ex = make_trader(face_="async")
    quote = sim.quote("AAPL")
    params = {"clientOrderId": "cp-bracket", "stopLoss": {"triggerPrice": round(quote.bid - 10, 2)},
              "takeProfit": {"price": round(quote.ask + 10, 2)}}
    entry = await ex.create_order("AAPL/USD", "market", "buy", 3, None, params)
    assert entry["status"] == "closed"
    children = {o["clientOrderId"] for o in await ex.fetch_open_orders("AAPL/USD")} & {"cp-bracket-tp",
                                                                                        "cp-bracket-sl"}
    assert children == {"cp-bracket-tp", "cp-bracket-sl"}
    closed = await ex.close_position("AAPL/USD")
    assert closed["status"] == "closed" and closed["side"] == "sell"
    still = {o["clientOrderId"] for o in await ex.fetch_open_orders("AAPL/USD")}
    assert not still & children, "a flat position must leave no take-profit / stop-loss working"
    at_sim = {o.req.order_ref: o.status for o in sim.orders() if o.req.order_ref in children}
    assert set(at_sim.values()) <= {"Cancelled", "ApiCancelled"}, at_sim


async def test_rejection_reason_and_fill_payload_are_journaled(make_trader, sim: IBSimulator) -> None:
    ex = make_trader(face_="async")
    await ex.load_markets()
    sim.reject_next_order("Simulated rejection")
    with pytest.raises(ccxt.InvalidOrder):
        await ex.create_order("AAPL/USD", "limit", "buy", 1, 100.0, {"clientOrderId": "rj-1"})
    filled = await ex.create_order("AAPL/USD", "market", "buy", 2, None, {"clientOrderId": "fp-1"})
    assert filled["status"] == "closed"
    await run(asyncio.sleep(0))  # the post-answer journal writes run at the loop's next turn
    ex._flush_deferred()
    row = ex.journal.get("rj-1")
    assert row is not None and row.state == "rejected" and "Simulated rejection" in (row.reason or "")
    assert row.info and any("Simulated rejection" in entry["message"] for entry in row.info["log"])
    fills = ex.journal.fills("fp-1")
    assert fills and all(f.symbol == "AAPL/USD" and f.info and f.info["execId"] == f.exec_id for f in fills)
    await ex.create_order("AAPL/USD", "market", "sell", 2)


async def test_two_tasks_placing_one_client_order_id_get_one_order(make_trader, sim: IBSimulator,
                                                                   order_messages) -> None:
    ex = make_trader(face_="async")
    await ex.load_markets()
    cid = f"twin-tasks-{uuid.uuid4().hex[:8]}"  # the simulator lives for the module
    price = round(sim.quote("AAPL").bid - 5, 2)
    first, second = await asyncio.gather(
        ex.create_order("AAPL/USD", "limit", "buy", 1, price, {"clientOrderId": cid}),
        ex.create_order("AAPL/USD", "limit", "buy", 1, price, {"clientOrderId": cid}),
    )
    assert first["id"] == second["id"] and first["status"] == second["status"] == "open"
    assert sum(1 for o in sim.orders() if o.req.order_ref == cid) == 1 and len(order_messages) == 1
    await ex.cancel_order(first["id"])


async def test_two_threads_placing_one_client_order_id_get_one_order(make_trader, sim: IBSimulator,
                                                                     order_messages) -> None:
    ex = make_trader(face_="sync")
    await asyncio.to_thread(ex.load_markets)
    cid = f"twin-threads-{uuid.uuid4().hex[:8]}"
    price = round(sim.quote("AAPL").bid - 5, 2)

    def place() -> Any:
        return ex.create_order("AAPL/USD", "limit", "buy", 1, price, {"clientOrderId": cid})

    first, second = await asyncio.gather(asyncio.to_thread(place), asyncio.to_thread(place))
    assert first["id"] == second["id"] and first["status"] == second["status"] == "open"
    assert sum(1 for o in sim.orders() if o.req.order_ref == cid) == 1 and len(order_messages) == 1
    await asyncio.to_thread(ex.cancel_order, first["id"])
