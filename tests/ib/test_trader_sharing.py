"""One IB connection per (host, port, clientId) per process, shared by every exchange object and face.

IB refuses a second connection with a clientId in use (error 326); a bot framework that builds a sync
and an async exchange from one config, or two bots in one process, must share one. These tests check
the simulator sees one session, both objects work as if alone, and the last close() disconnects.
"""

# ruff: noqa: F811 - the fixtures imported from trader_fixtures are re-bound as test parameters
from __future__ import annotations

import asyncio
from pathlib import Path

import ccxt
import pytest

import ccxt_ibkr
from ccxt_ibkr.async_support import IBTrader as AsyncIBTrader
from ccxt_ibkr.sim.server import IBSimulator
from tests.ib.trader_fixtures import sim, trader_options, trader_sim  # noqa: F401 - fixtures


async def test_a_sync_and_an_async_face_share_one_connection(sim: IBSimulator, tmp_path: Path) -> None:
    options = trader_options(sim, None)
    client_id = options["clientId"]
    sync = ccxt_ibkr.IBTrader({"options": dict(options)})
    aio = AsyncIBTrader({"options": dict(options)})
    transport = None
    try:
        await aio.load_markets()  # the async face connects first; the sync face was built first
        transport = aio.transport
        await asyncio.to_thread(sync.load_markets)
        quote = await aio.fetch_ticker("EUR/USD")
        price = float(aio.price_to_precision("EUR/USD", quote["bid"] * 0.9))
        first = await aio.create_order("EUR/USD", "limit", "buy", 20000, price)
        second = await asyncio.to_thread(sync.create_order, "EUR/USD", "limit", "buy", 20000, price)
        assert sim.connected_client_ids().count(client_id) == 1
        assert {o["id"] for o in await aio.fetch_open_orders("EUR/USD")} >= {first["id"], second["id"]}
        assert (await asyncio.to_thread(sync.cancel_order, first["id"], "EUR/USD"))["status"] == "canceled"
        assert (await aio.cancel_order(second["id"], "EUR/USD"))["status"] == "canceled"
        await aio.close()  # not the last user: the sync face keeps working on the same connection
        assert (await asyncio.to_thread(sync.fetch_balance))["EUR"]["total"] is not None
        assert sim.connected_client_ids().count(client_id) == 1
    finally:
        await aio.close()
        await asyncio.to_thread(sync.close)
    assert transport is not None and not transport.connected  # the last close() disconnected


async def test_two_async_bots_on_one_loop_share_one_connection(sim: IBSimulator) -> None:
    options = trader_options(sim, None)
    bots = [AsyncIBTrader({"options": dict(options)}) for _ in range(2)]
    transport = None
    try:
        balances = await asyncio.gather(*(bot.fetch_balance() for bot in bots))
        assert all("USD" in b for b in balances)
        assert sim.connected_client_ids().count(options["clientId"]) == 1
        assert bots[0].transport is bots[1].transport
        transport = bots[0].transport
        await bots[0].close()
        assert transport.connected  # the other bot still uses it
    finally:
        for bot in bots:
            await bot.close()
    assert transport is not None and not transport.connected  # the last close() disconnected


async def test_an_async_face_alone_keeps_its_connection_on_its_own_loop(sim: IBSimulator) -> None:
    ex = AsyncIBTrader({"options": trader_options(sim, None)})
    try:
        await ex.fetch_balance()
        assert ex._shared is not None and ex._shared.loop is asyncio.get_running_loop()  # no thread hop
    finally:
        await ex.close()


async def test_concurrent_ohlcv_calls_share_one_time_request(sim: IBSimulator) -> None:
    ex = AsyncIBTrader({"options": trader_options(sim, None)})
    try:
        now = sim.now() * 1000
        windows = await asyncio.gather(*(
            ex.fetch_ohlcv("AAPL/USD", "1h", since=int(now - (k + 1) * 86_400_000), limit=5) for k in range(6)))
        assert all(windows)
    finally:
        await ex.close()


async def test_a_pacing_violation_is_retried_in_the_next_slot(sim: IBSimulator) -> None:
    ex = AsyncIBTrader({"options": trader_options(sim, None)})
    try:
        await ex.load_markets()
        sim.pacing_violation(1)
        assert await ex.fetch_ohlcv("AAPL/USD", "1h", limit=5)
        assert ex.transport.pacing_retries == 1
        sim.pacing_violation(100)
        with pytest.raises(ccxt.RateLimitExceeded):  # still refused when the deadline passes: the bot is told
            await ex.fetch_ohlcv("MSFT/USD", "1h", limit=5)
    finally:
        sim.pacer.forced_violations = 0  # the module's simulator serves the next tests
        await ex.close()


def test_readme_snippet_indexes_the_balance_of_what_it_ordered(sim: IBSimulator) -> None:
    """README's first snippet: no symbols configured, a resting limit order, then balance['AAPL']."""
    exchange = ccxt.ibkr({"options": {"host": sim.host, "port": sim.port, "clientId": 977, "journal": None,
                                      "pacer": trader_options(sim, None)["pacer"]}})
    try:
        markets = exchange.load_markets()
        assert {"EUR/USD", "AAPL/USD"} <= set(markets)  # the default universe, never empty
        exchange.fetch_ohlcv("AAPL/USD", "1h", limit=50)
        order = exchange.create_order("AAPL/USD", "limit", "buy", 10, 150.0, {"clientOrderId": "readme-42"})
        assert order["status"] == "open"
        assert exchange.fetch_balance()["AAPL"]["total"] == 0
        exchange.cancel_order(order["id"], "AAPL/USD")
    finally:
        exchange.close()
