"""ccxt.pro.capitalcom end to end: quotes and bars over the simulator's WebSocket, the account streams by
paced polls over HTTP; bounded waits on the watch calls themselves, no sleeps.

The simulator pushes when its clock moves; the polls sleep on that clock too (the exchange's injected
``sleep`` advances it), so a polled stream moves time forward by itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import ccxt
import ccxt.pro
import pytest

import ccxt_capital
from ccxt_capital.sim import CapitalSimulator
from ccxt_capital.sim.testing import SimClient
from tests import streams
from tests.capital.trader_fixtures import trader_config
from tests.conformance import check_order, check_ticker, check_trade

pytestmark = pytest.mark.capital_sim(rate_limits="off")
WAIT = 5.0


@pytest.fixture
async def pro(capital_sim: CapitalSimulator, tmp_path: Path) -> AsyncIterator[Any]:
    ex = ccxt.pro.capitalcom(trader_config(capital_sim, tmp_path, pollInterval=1.0))
    await ex.load_markets()
    yield ex
    await ex.close()


async def next_update(watch: Callable[[], Awaitable[Any]], sim: CapitalSimulator, step: float = 20.0) -> Any:
    return await streams.next_update(watch, sim, step, WAIT)


def test_has_says_what_streams() -> None:
    ex = ccxt_capital.CapitalTraderPro()
    for name in ("watchTicker", "watchTickers", "watchOHLCV", "watchOrders", "watchMyTrades", "watchBalance",
                 "watchPositions", "unWatchTicker"):
        assert ex.has[name] is True, name
    assert ex.has["watchOrderBook"] is False and ex.has["watchTrades"] is False
    assert ccxt.pro.capitalcom is ccxt_capital.CapitalTraderPro
    assert not ccxt_capital.AsyncCapitalTrader().has["watchTicker"]


async def test_watch_ticker_over_the_websocket(pro, capital_sim: CapitalSimulator) -> None:
    first = await asyncio.wait_for(pro.watch_ticker("AAPL/USD"), WAIT)  # the subscription's first quote
    quote = capital_sim.quote("AAPL")
    assert first["symbol"] == "AAPL/USD" and (first["bid"], first["ask"]) == (quote.bid, quote.offer)
    check_ticker(pro, first, "AAPL/USD", method="watchTicker")
    capital_sim.pin_price("AAPL", 150.0, at=capital_sim.clock.now() + 60)
    update = await next_update(lambda: pro.watch_ticker("AAPL/USD"), capital_sim)
    assert update["bid"] == capital_sim.quote("AAPL").bid and update["timestamp"] == capital_sim.clock.now_ms()
    both = await next_update(lambda: pro.watch_tickers(["AAPL/USD", "EUR/USD"]), capital_sim)
    assert len(both) == 1 and set(both) <= {"AAPL/USD", "EUR/USD"}
    waiting = asyncio.ensure_future(pro.watch_ticker("AAPL/USD"))
    await asyncio.sleep(0)
    assert await pro.un_watch_ticker("AAPL/USD") is True
    with pytest.raises(ccxt.UnsubscribeError):
        await asyncio.wait_for(waiting, WAIT)


async def test_epics_beyond_the_per_connection_cap_open_another_connection(
        pro, capital_sim: CapitalSimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    import ccxt_capital.streaming as streaming

    assert streaming.MAX_EPICS_PER_CONNECTION == 40  # Capital's documented cap
    monkeypatch.setattr(streaming, "MAX_EPICS_PER_CONNECTION", 3)  # the simulator lists fewer than 41 epics
    epics = [pro.market(s)["id"] for s in ("AAPL/USD", "TSLA/USD", "EUR/USD", "GOLD/USD", "US100/USD")]
    await pro.stream.subscribe_quotes(epics)
    assert [len(c.epics()) for c in pro.stream.connections] == [3, 2]
    got = await next_update(lambda: pro.watch_tickers(["US100/USD", "GOLD/USD"]), capital_sim)
    assert set(got) <= {"US100/USD", "GOLD/USD"}


async def test_watch_ohlcv_mid_bars(pro, capital_sim: CapitalSimulator) -> None:
    bars = await next_update(lambda: pro.watch_ohlcv("AAPL/USD", "1m"), capital_sim)
    assert bars and all(len(b) == 6 and b[0] % 60_000 == 0 and b[2] >= b[3] for b in bars)
    bid = await next_update(lambda: pro.watch_ohlcv("AAPL/USD", "1m", params={"price": "bid"}), capital_sim)
    assert bid[-1][4] <= pro.ohlcvs["AAPL/USD"]["1m"][-1][4] + 1e-9 or bid[-1][0] != bars[-1][0]
    assert await pro.un_watch_ohlcv("AAPL/USD", "1m") is True


async def test_stream_survives_a_dropped_websocket(pro, capital_sim: CapitalSimulator) -> None:
    await asyncio.wait_for(pro.watch_ticker("EUR/USD"), WAIT)
    pro.stream.drop()
    update = await next_update(lambda: pro.watch_ticker("EUR/USD"), capital_sim)
    assert update["symbol"] == "EUR/USD" and pro.stream.reconnects >= 1


async def test_polled_orders_my_trades_positions_balance(pro, capital_sim: CapitalSimulator) -> None:
    orders_task = asyncio.ensure_future(pro.watch_orders())
    trades_task = asyncio.ensure_future(pro.watch_my_trades())
    positions_task = asyncio.ensure_future(pro.watch_positions())
    balance_task = asyncio.ensure_future(pro.watch_balance())
    while not all(k in pro.hub.subscriptions for k in ("orders", "myTrades", "positions", "balance")):
        await asyncio.wait({orders_task, trades_task, positions_task, balance_task}, timeout=0.05)
    placed = await pro.create_order("AAPL/USD", "market", "buy", 1)
    trades = await asyncio.wait_for(trades_task, WAIT)
    assert trades and trades[-1]["symbol"] == "AAPL/USD"
    for trade in trades:
        check_trade(pro, trade, "AAPL/USD", method="watchMyTrades")
    orders = await asyncio.wait_for(orders_task, WAIT)
    assert placed["id"] in {o["id"] for o in orders}
    for order in orders:
        check_order(pro, order, order["symbol"], method="watchOrders")
    positions = await asyncio.wait_for(positions_task, WAIT)
    assert any(p["symbol"] == "AAPL/USD" and p["contracts"] >= 1 for p in positions)
    balance = await asyncio.wait_for(balance_task, WAIT)
    assert balance["AAPL"]["total"] >= 1


async def test_watch_orders_shows_one_id_per_order(pro, capital_sim: CapitalSimulator) -> None:
    """A working order keeps the id create_order / fetch_order give it (its dealReference) in every update:
    one of ours placed while the stream polls (its confirm slow to come), and one placed elsewhere (no
    journal row: GET /workingorders names it by dealId) seen resting, then filled."""
    watching = asyncio.ensure_future(pro.watch_orders())
    while "orders" not in pro.hub.subscriptions:
        await asyncio.wait({watching}, timeout=0.05)
    seen: list[dict[str, Any]] = []
    level = round(capital_sim.quote("AAPL").offer - 5, 2)
    capital_sim.faults.pending_confirms(polls=12)  # create_order polls the confirm while the stream polls
    placing = asyncio.ensure_future(pro.create_order("AAPL/USD", "limit", "buy", 1, level))
    while not placing.done():
        done, _ = await asyncio.wait({placing, watching}, timeout=WAIT, return_when=asyncio.FIRST_COMPLETED)
        if watching in done:
            seen.extend(watching.result())
            watching = asyncio.ensure_future(pro.watch_orders())
    placed = placing.result()
    # An order placed by another client of the account, resting then filled.
    other = SimClient(capital_sim)
    reference = other.post("/workingorders", {"epic": "AAPL", "direction": "BUY", "size": 2, "level": level,
                                              "type": "LIMIT"}).json()["dealReference"]
    while not any(o["amount"] == 2 and o["status"] == "open" for o in seen):  # the other order, resting
        seen.extend(await asyncio.wait_for(watching, WAIT))
        watching = asyncio.ensure_future(pro.watch_orders())
    capital_sim.pin_price("AAPL", level - 1, at=capital_sim.clock.now() + 1)
    capital_sim.advance(120)
    while not {placed["id"], reference} <= {o["id"] for o in seen if o["status"] == "closed"}:
        seen.extend(await asyncio.wait_for(watching, WAIT))
        watching = asyncio.ensure_future(pro.watch_orders())
    watching.cancel()
    other.close()
    assert {o["id"] for o in seen} == {placed["id"], reference}
    fetched = await pro.fetch_order(reference)
    assert fetched["id"] == reference
