"""Unmodified client patterns against simulator processes on the wall clock (issue 16).

Each test is bot code as people write it -- a framework that builds a sync and an async exchange from
one config, two bots in one process, a backtest loader fetching monthly windows concurrently, a burst
of concurrent calls, a create / cancel loop -- against ``python -m ccxt_ibkr.sim`` and
``python -m ccxt_capital.sim`` running as separate processes. Every call must succeed: no
RateLimitExceeded, no IB 162 (pacing) or 326 (clientId in use), no timeout reaches the caller (any of
them fails the test with the exception the bot would have seen).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import ccxt
import ccxt.async_support
import pytest

import ccxt_capital  # noqa: F401 - registers ccxt.capitalcom
import ccxt_ibkr  # noqa: F401 - registers ccxt.ibkr
from ccxt_capital.sim import DEFAULT_API_KEY, DEFAULT_IDENTIFIER, DEFAULT_PASSWORD

from .conftest import SimProcess

pytestmark = pytest.mark.long

LOOP_SECONDS = 30.0


def ib_config(sim: SimProcess, client_id: int) -> dict[str, Any]:
    # README's first config, pointed at the simulator's port, with an in-memory journal.
    return {"options": {"host": "127.0.0.1", "port": sim.port, "clientId": client_id, "journal": None}}


def capital_config(sim: SimProcess) -> dict[str, Any]:
    return {"apiKey": DEFAULT_API_KEY, "login": DEFAULT_IDENTIFIER, "password": DEFAULT_PASSWORD,
            "options": {"baseUrl": f"http://127.0.0.1:{sim.port}", "journal": None}}


def far_bid(exchange: Any, symbol: str, ticker: dict[str, Any]) -> float:
    """A buy limit well below the market: it rests until cancelled."""
    return float(exchange.price_to_precision(symbol, ticker["bid"] * 0.8))


def sync_round_trip(exchange: Any, symbol: str, amount: float) -> None:
    """What a plain bot does each cycle: candles, ticker, a resting order, its state, cancel, balance."""
    exchange.load_markets()
    assert exchange.fetch_ohlcv(symbol, "1h", limit=50)
    ticker = exchange.fetch_ticker(symbol)
    order = exchange.create_order(symbol, "limit", "buy", amount, far_bid(exchange, symbol, ticker))
    assert order["status"] == "open"
    assert exchange.fetch_order(order["id"], symbol)["status"] == "open"
    assert exchange.cancel_order(order["id"], symbol)["status"] == "canceled"
    exchange.fetch_balance()


async def async_round_trip(exchange: Any, symbol: str, amount: float) -> None:
    await exchange.load_markets()
    assert await exchange.fetch_ohlcv(symbol, "1h", limit=50)
    ticker = await exchange.fetch_ticker(symbol)
    order = await exchange.create_order(symbol, "limit", "buy", amount, far_bid(exchange, symbol, ticker))
    assert order["status"] == "open"
    assert (await exchange.fetch_order(order["id"], symbol))["status"] == "open"
    assert (await exchange.cancel_order(order["id"], symbol))["status"] == "canceled"
    await exchange.fetch_balance()


# ----------------------------------------------------------------------------- one config, two faces


@pytest.mark.parametrize("broker", ["ibkr", "capitalcom"])
def test_a_sync_and_an_async_instance_from_one_config_both_trade(broker: str, ib_process: SimProcess,
                                                                 capital_process: SimProcess) -> None:
    """A bot framework's pattern: the sync exchange for most calls, the async twin for candles, both
    built from one config before either connects; the async one driven by ``run_until_complete``."""
    config = ib_config(ib_process, 11) if broker == "ibkr" else capital_config(capital_process)
    symbol, amount = ("EUR/USD", 20000) if broker == "ibkr" else ("AAPL/USD", 1)
    sync = getattr(ccxt, broker)(dict(config))
    aio = getattr(ccxt.async_support, broker)(dict(config))
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(aio.load_markets())  # the async one connects first
        sync_round_trip(sync, symbol, amount)
        loop.run_until_complete(async_round_trip(aio, symbol, amount))
        sync_round_trip(sync, symbol, amount)  # and the sync one still works after the async one ran
        if broker == "ibkr":
            assert sync.impl.transport is aio.transport  # one connection (IB would refuse a second: 326)
        else:
            assert sync.impl._wire().session is aio._wire().session  # one login, one session
    finally:
        loop.run_until_complete(aio.close())
        sync.close()
        loop.close()


def test_a_sync_instance_then_an_async_one_ask_the_same_candles(ib_process: SimProcess) -> None:
    """A plain bot: one fetch_ohlcv on its sync instance, then an async instance (another clientId) asks
    the same candles at once -- IB would answer 162 to the identical request within 15 s."""
    sync = ccxt.ibkr(ib_config(ib_process, 12))
    try:
        first = sync.fetch_ohlcv("AAPL/USD", "1h", limit=100)

        async def second() -> list[list[Any]]:
            aio = ccxt.async_support.ibkr(ib_config(ib_process, 13))
            try:
                return await aio.fetch_ohlcv("AAPL/USD", "1h", limit=100)
            finally:
                await aio.close()

        assert asyncio.run(second())[-1][0] == first[-1][0]
    finally:
        sync.close()


# ----------------------------------------------------------------------------- two bots in a process


@pytest.mark.parametrize("broker", ["ibkr", "capitalcom"])
def test_two_bots_in_one_process(broker: str, ib_process: SimProcess, capital_process: SimProcess) -> None:
    """Two bots on threads, each with its own exchange from the same config (one clientId / API key)."""
    config = ib_config(ib_process, 14) if broker == "ibkr" else capital_config(capital_process)
    symbols = ["EUR/USD", "GBP/USD"] if broker == "ibkr" else ["AAPL/USD", "EUR/USD"]
    amounts = [20000, 20000] if broker == "ibkr" else [1, 1000]

    def bot(index: int) -> None:
        exchange = getattr(ccxt, broker)(dict(config))
        try:
            for _ in range(3):
                sync_round_trip(exchange, symbols[index], amounts[index])
        finally:
            exchange.close()

    with ThreadPoolExecutor(2) as pool:
        for future in [pool.submit(bot, i) for i in range(2)]:
            future.result()


# ----------------------------------------------------------------------------- concurrency


def test_eleven_concurrent_monthly_windows(ib_process: SimProcess) -> None:
    """A backtest loader fetches monthly windows concurrently (ccxt-download style)."""
    async def load() -> list[list[list[Any]]]:
        exchange = ccxt.async_support.ibkr(ib_config(ib_process, 15))
        try:
            await exchange.load_markets()
            month = 30 * 24 * 3600 * 1000
            now = exchange.milliseconds()
            starts = [now - (k + 1) * month for k in range(11)]
            return await asyncio.gather(*(
                exchange.fetch_ohlcv("AAPL/USD", "1h", since=s, limit=200) for s in starts))
        finally:
            await exchange.close()

    windows = asyncio.run(load())
    assert len(windows) == 11 and all(windows)


def test_eleven_concurrent_windows_from_threads_on_the_sync_face(ib_process: SimProcess) -> None:
    exchange = ccxt.ibkr(ib_config(ib_process, 16))
    try:
        exchange.load_markets()
        week = 7 * 24 * 3600 * 1000
        now = exchange.milliseconds()
        with ThreadPoolExecutor(11) as pool:
            windows = list(pool.map(
                lambda k: exchange.fetch_ohlcv("MSFT/USD", "1h", since=now - (k + 1) * week, limit=100), range(11)))
        assert all(windows)
    finally:
        exchange.close()


def test_forty_concurrent_capital_calls(capital_process: SimProcess) -> None:
    async def burst() -> list[Any]:
        exchange = ccxt.async_support.capitalcom(capital_config(capital_process))
        try:
            await exchange.load_markets()
            calls: list[Callable[[], Any]] = []
            for symbol in ("AAPL/USD", "EUR/USD", "GOLD/USD", "US100/USD"):
                calls += [lambda s=symbol: exchange.fetch_ticker(s)] * 5
                calls += [lambda s=symbol: exchange.fetch_ohlcv(s, "1m", limit=10)] * 3
            calls += [exchange.fetch_balance] * 4 + [exchange.fetch_open_orders] * 4
            assert len(calls) == 40
            return await asyncio.gather(*(call() for call in calls))
        finally:
            await exchange.close()

    results = asyncio.run(burst())
    assert len(results) == 40 and all(r is not None for r in results)


# ----------------------------------------------------------------------------- create / cancel loops


@pytest.mark.parametrize("broker", ["ibkr", "capitalcom"])
def test_create_cancel_loop_as_fast_as_allowed(broker: str, ib_process: SimProcess,
                                               capital_process: SimProcess) -> None:
    config = ib_config(ib_process, 17) if broker == "ibkr" else capital_config(capital_process)
    symbol, amount = ("EUR/USD", 20000) if broker == "ibkr" else ("AAPL/USD", 1)
    exchange = getattr(ccxt, broker)(config)
    cycles = 0
    try:
        exchange.load_markets()
        price = far_bid(exchange, symbol, exchange.fetch_ticker(symbol))
        deadline = time.monotonic() + LOOP_SECONDS
        while time.monotonic() < deadline:
            order = exchange.create_order(symbol, "limit", "buy", amount, price)
            assert exchange.cancel_order(order["id"], symbol)["status"] == "canceled"
            cycles += 1
        assert exchange.fetch_open_orders(symbol) == []
    finally:
        exchange.close()
    print(f"{broker}: {cycles} create/cancel cycles in {LOOP_SECONDS:g} s")
    assert cycles > 10


def test_async_bots_on_their_own_loops_in_threads(ib_process: SimProcess) -> None:
    """Two asyncio bots, each ``asyncio.run`` on its own thread with its own clientId, as IB requires."""
    errors: list[BaseException] = []

    def bot(client_id: int) -> None:
        async def run() -> None:
            exchange = ccxt.async_support.ibkr(ib_config(ib_process, client_id))
            try:
                await async_round_trip(exchange, "EUR/USD", 20000)
            finally:
                await exchange.close()
        try:
            asyncio.run(run())
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=bot, args=(client_id,)) for client_id in (18, 19)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors


def test_one_client_id_on_two_event_loops_is_refused_clearly(ib_process: SimProcess) -> None:
    """The same clientId from an async bot on a second event loop: a clear error at once, never a hang."""
    async def first(ready: threading.Event, done: threading.Event) -> None:
        exchange = ccxt.async_support.ibkr(ib_config(ib_process, 20))
        try:
            await exchange.load_markets()
            ready.set()
            await asyncio.get_running_loop().run_in_executor(None, done.wait)
        finally:
            await exchange.close()

    async def second() -> None:
        exchange = ccxt.async_support.ibkr(ib_config(ib_process, 20))
        try:
            await exchange.fetch_balance()
        finally:
            await exchange.close()

    ready, done = threading.Event(), threading.Event()
    owner = threading.Thread(target=lambda: asyncio.run(first(ready, done)))
    owner.start()
    try:
        assert ready.wait(60)
        with pytest.raises(ccxt.AuthenticationError, match="own clientId"):
            asyncio.run(second())
    finally:
        done.set()
        owner.join(60)
