"""ccxt.pro.ibkr end to end: every watch_* over the real socket to the simulator, bounded waits, no sleeps.

The simulator pushes market data when its clock moves, so a test starts the watch, moves the clock
(``sim.advance``) and waits on the watch itself (``asyncio.wait_for``): the update that resolves it
is the one the clock move caused.
"""

# ruff: noqa: F811 - the fixtures imported from trader_fixtures are re-bound as test parameters
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import ccxt
import ccxt.pro
import pytest

import ccxt_ibkr
from ccxt_ibkr.sim.server import IBSimulator
from tests import streams
from tests.conformance import check_order, check_trade
from tests.ib.trader_fixtures import sim, trader_options, trader_sim  # noqa: F401 - fixtures

WAIT = 5.0


@pytest.fixture
async def pro(sim: IBSimulator, tmp_path: Path) -> AsyncIterator[Any]:
    ex = ccxt.pro.ibkr({"options": trader_options(sim, tmp_path / "journal.sqlite", commissionWait=2.0)})
    yield ex
    await ex.close()


async def next_update(watch: Callable[[], Awaitable[Any]], sim: IBSimulator, step: float = 5.0) -> Any:
    return await streams.next_update(watch, sim, step, WAIT)


def test_has_says_what_streams() -> None:
    ex = ccxt_ibkr.IBTraderPro({"options": {"journal": None}})
    for name in ("watchTicker", "watchTickers", "watchOrderBook", "watchOHLCV", "watchTrades", "watchOrders",
                 "watchMyTrades", "watchBalance", "watchPositions", "unWatchTicker", "unWatchOrders"):
        assert ex.has[name] is True, name
    assert ex.has["watchLiquidations"] is False and ex.pro is True
    rest = ccxt_ibkr.AsyncIBTrader({"options": {"journal": None}})
    assert rest.has["watchTicker"] is False  # the REST class does not stream


async def test_watch_ticker_resolves_on_the_next_quote(pro, sim: IBSimulator) -> None:
    first = await next_update(lambda: pro.watch_ticker("AAPL/USD"), sim)
    assert first["symbol"] == "AAPL/USD" and (first["bid"] or first["ask"])
    while first["ask"] is None or first["bid"] is None:  # IB's first ticks may come one side at a time
        first = await next_update(lambda: pro.watch_ticker("AAPL/USD"), sim)
    assert 0 < first["bid"] <= first["ask"]
    sim.advance(30)
    second = await next_update(lambda: pro.watch_ticker("AAPL/USD"), sim)
    assert second["symbol"] == "AAPL/USD"
    assert pro.tickers["AAPL/USD"] is second


async def test_two_watchers_share_one_update(pro, sim: IBSimulator) -> None:
    await next_update(lambda: pro.watch_ticker("MSFT/USD"), sim)  # subscribed
    ra, rb = await next_update(lambda: asyncio.gather(pro.watch_ticker("MSFT/USD"), pro.watch_ticker("MSFT/USD")),
                               sim)
    assert ra is rb


async def test_watch_tickers_returns_the_symbol_that_moved(pro, sim: IBSimulator) -> None:
    result = await next_update(lambda: pro.watch_tickers(["AAPL/USD", "EUR/USD"]), sim)
    assert set(result) <= {"AAPL/USD", "EUR/USD"} and len(result) == 1


async def test_un_watch_ticker_fails_the_waiter_and_stops_the_line(pro, sim: IBSimulator) -> None:
    await next_update(lambda: pro.watch_ticker("AAPL/USD"), sim)
    waiting = asyncio.ensure_future(pro.watch_ticker("AAPL/USD"))
    await asyncio.sleep(0)
    assert await pro.un_watch_ticker("AAPL/USD") is True
    with pytest.raises(ccxt.UnsubscribeError):
        await asyncio.wait_for(waiting, WAIT)
    assert "ticker:AAPL/USD" not in pro.hub.subscriptions


async def test_close_ends_every_stream(sim: IBSimulator, tmp_path: Path) -> None:
    ex = ccxt.pro.ibkr({"options": trader_options(sim, tmp_path / "j.sqlite")})
    await next_update(lambda: ex.watch_ticker("AAPL/USD"), sim)
    waiting = asyncio.ensure_future(ex.watch_ticker("AAPL/USD"))
    await asyncio.sleep(0)
    await ex.close()
    with pytest.raises(ccxt.ExchangeClosedByUser):
        await asyncio.wait_for(waiting, WAIT)
    assert not ex.hub.subscriptions


async def test_watch_order_book(pro, sim: IBSimulator) -> None:
    book = await next_update(lambda: pro.watch_order_book("AAPL/USD", 5), sim)
    assert book["symbol"] == "AAPL/USD" and book["bids"] and book["asks"]
    assert book["bids"][0][0] < book["asks"][0][0]
    await pro.un_watch_order_book("AAPL/USD")


async def test_watch_ohlcv_updates_the_forming_bar(pro, sim: IBSimulator) -> None:
    bars = await next_update(lambda: pro.watch_ohlcv("AAPL/USD", "1m"), sim, step=20)
    assert bars and all(len(bar) == 6 for bar in bars)
    assert bars[-1][0] % 60_000 == 0 and bars[-1][2] >= bars[-1][3]
    await pro.un_watch_ohlcv("AAPL/USD", "1m")


async def test_watch_orders_and_my_trades_with_commission(pro, sim: IBSimulator) -> None:
    orders_task = asyncio.ensure_future(pro.watch_orders("AAPL/USD"))
    trades_task = asyncio.ensure_future(pro.watch_my_trades("AAPL/USD"))
    await asyncio.sleep(0)
    placed = await pro.create_order("AAPL/USD", "market", "buy", 2)
    orders = await asyncio.wait_for(orders_task, WAIT)
    assert orders and all(o["symbol"] == "AAPL/USD" for o in orders)
    for order in orders:
        check_order(pro, order, "AAPL/USD", method="watchOrders")
    seen: dict[str, Any] = {}
    trades = await asyncio.wait_for(trades_task, WAIT)
    for trade in trades:
        check_trade(pro, trade, "AAPL/USD", method="watchMyTrades")
        seen[trade["id"]] = trade
    while sum(t["amount"] for t in seen.values()) < 2:
        for trade in await asyncio.wait_for(pro.watch_my_trades("AAPL/USD"), WAIT):
            assert trade["id"] not in seen
            seen[trade["id"]] = trade
    assert all(t["fee"] and t["fee"]["currency"] == "USD" and t["fee"]["cost"] > 0 for t in seen.values())
    assert {t["order"] for t in seen.values()} == {placed["id"]}
    while placed["id"] not in {o["id"] for o in pro.orders if o["status"] == "closed"}:
        await asyncio.wait_for(pro.watch_orders(), WAIT)


async def test_watch_balance_and_positions_follow_a_fill(pro, sim: IBSimulator) -> None:
    balance_task = asyncio.ensure_future(pro.watch_balance())
    positions_task = asyncio.ensure_future(pro.watch_positions(["MSFT/USD"]))
    await asyncio.sleep(0)
    await pro.create_order("MSFT/USD", "market", "buy", 3)
    positions = await asyncio.wait_for(positions_task, WAIT)
    assert positions and positions[-1]["symbol"] == "MSFT/USD" and positions[-1]["contracts"] >= 3
    balance = await asyncio.wait_for(balance_task, WAIT)
    assert balance["USD"]["total"] > 0 and balance["MSFT"]["total"] >= 3


async def test_watch_trades_tick_by_tick(pro, sim: IBSimulator) -> None:
    trades = await next_update(lambda: pro.watch_trades("AAPL/USD"), sim)
    assert trades and all(t["symbol"] == "AAPL/USD" and t["price"] > 0 for t in trades)
    for trade in trades:
        check_trade(pro, trade, "AAPL/USD", method="watchTrades")
    assert await pro.un_watch_trades("AAPL/USD") is True


async def test_exchanges_sharing_a_connection_share_a_line_until_the_last_stops(
        pro, sim: IBSimulator, tmp_path: Path) -> None:
    twin = ccxt.pro.ibkr({"options": {**pro.options, "journal": str(tmp_path / "twin.sqlite")}})
    try:
        await next_update(lambda: pro.watch_ticker("AAPL/USD"), sim)
        await next_update(lambda: twin.watch_ticker("AAPL/USD"), sim)
        assert twin.transport is pro.transport  # one IB connection per clientId in the process
        await pro.un_watch_ticker("AAPL/USD")
        update = await next_update(lambda: twin.watch_ticker("AAPL/USD"), sim)  # the line is still there
        assert update["symbol"] == "AAPL/USD"
    finally:
        await twin.close()
