"""The per-call guard: connection gate, separate breakers per kind, deadlines, nesting."""

from __future__ import annotations

import asyncio
from typing import Any

import ccxt
import pytest

from normalization.runtime.breaker import OPEN, Breakers
from normalization.runtime.guard import CallGuard, guarded
from normalization.runtime.supervisor import EXECUTION, MARKET_DATA, ConnectionSupervisor


class Adapter:
    """A stand-in adapter with one market-data and two execution methods."""

    def __init__(self, guard: CallGuard | None) -> None:
        self._guard = guard
        self.feed_down = False
        self.placed = 0

    @guarded(MARKET_DATA)
    async def fetch_ticker(self, symbol: str) -> dict[str, Any]:
        if self.feed_down:
            raise ccxt.RequestTimeout("market data farm not answering")
        return {"symbol": symbol}

    @guarded(EXECUTION, deadline=False)
    async def create_order(self, symbol: str) -> dict[str, Any]:
        await self.load_markets()  # nested guarded call: checked once, by the outermost
        self.placed += 1
        return {"symbol": symbol, "status": "open"}

    @guarded(EXECUTION)
    async def load_markets(self) -> dict[str, Any]:
        return {}

    @guarded(EXECUTION)
    async def cancel_order(self, id: str) -> dict[str, Any]:
        return {"id": id, "status": "canceled"}

    @guarded(EXECUTION, deadline=False, gate=False)
    async def repeat_order(self, symbol: str) -> dict[str, Any]:
        return {"symbol": symbol, "status": "open", "from": "journal"}

    @guarded(MARKET_DATA)
    async def hang(self) -> None:
        await asyncio.get_running_loop().create_future()


def make(call_timeout: float | None = 5.0) -> tuple[Adapter, ConnectionSupervisor, CallGuard]:
    sup = ConnectionSupervisor("test", auto_reconnect=False)
    breakers = Breakers.create("test", failure_threshold=2, reset_timeout=60)
    guard = CallGuard("test", sup, breakers, call_timeout=call_timeout)
    return Adapter(guard), sup, guard


async def test_a_failing_data_feed_never_blocks_a_cancel() -> None:
    ex, sup, guard = make()
    sup.connected()
    ex.feed_down = True
    for _ in range(2):
        with pytest.raises(ccxt.RequestTimeout):
            await ex.fetch_ticker("AAPL/USD")
    assert guard.breakers.market_data.state == OPEN
    with pytest.raises(ccxt.ExchangeNotAvailable, match="market data circuit breaker"):
        await ex.fetch_ticker("AAPL/USD")
    assert (await ex.cancel_order("1"))["status"] == "canceled"
    assert (await ex.create_order("AAPL/USD"))["status"] == "open"


async def test_gate_fails_fast_before_the_method_runs() -> None:
    ex, sup, _ = make()
    sup.connected()
    sup.outage("1100")
    with pytest.raises(ccxt.ExchangeNotAvailable):
        await ex.create_order("AAPL/USD")
    assert ex.placed == 0
    assert (await ex.repeat_order("AAPL/USD"))["from"] == "journal"  # gate=False: the method decides


async def test_deadline_bounds_reads_but_not_placements() -> None:
    ex, sup, _ = make(call_timeout=0.01)
    sup.connected()
    with pytest.raises(ccxt.RequestTimeout, match="hang"):
        await ex.hang()
    assert (await ex.create_order("AAPL/USD"))["status"] == "open"


async def test_reconnect_resets_both_breakers() -> None:
    ex, sup, guard = make()
    sup.connected()
    guard.breakers.execution.trip(ccxt.NetworkError("drop"))
    guard.breakers.market_data.trip(ccxt.NetworkError("drop"))
    await sup.restored(data_lost=False)
    assert (await ex.cancel_order("1"))["status"] == "canceled"
    assert (await ex.fetch_ticker("AAPL/USD"))["symbol"] == "AAPL/USD"


async def test_a_guard_without_its_own_gate_still_breaks_and_attaches_late() -> None:
    guard = CallGuard("test", gate=False, breakers=Breakers.create("test", failure_threshold=1))
    ex = Adapter(guard)
    sup = ConnectionSupervisor("test", auto_reconnect=False)
    guard.watch(sup)
    guard.watch(sup)  # idempotent
    sup.connected()
    sup.outage("1100")
    assert (await ex.cancel_order("1"))["status"] == "canceled", "gate=False: the adapter gates itself"
    ex.feed_down = True
    with pytest.raises(ccxt.RequestTimeout):
        await ex.fetch_ticker("AAPL/USD")
    with pytest.raises(ccxt.ExchangeNotAvailable, match="circuit breaker"):
        await ex.fetch_ticker("AAPL/USD")
    await sup.restored(data_lost=False)  # the reconnect hook resets the breakers
    ex.feed_down = False
    assert (await ex.fetch_ticker("AAPL/USD"))["symbol"] == "AAPL/USD"


async def test_without_a_guard_the_call_just_runs() -> None:
    ex = Adapter(None)
    assert (await ex.create_order("AAPL/USD"))["status"] == "open"
    assert Adapter.create_order.__name__ == "create_order"
    assert asyncio.iscoroutinefunction(Adapter.create_order)
