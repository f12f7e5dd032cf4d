"""Fixtures for the CapitalTrader end-to-end tests: both faces against the simulator over real HTTP.

Time is the simulator's: the exchange gets ``options['clock'] = sim.clock.now`` and a ``sleep`` that
advances that clock, so the client-side limiter, the confirm polling and the session expiry all run
on simulated time -- deterministic, and no test ever really sleeps.

Fixtures are registered under their short names (``face``, ``face_kind``, ``make_face``); test
modules import the ``*_fixture`` functions. ``face`` is parametrized over ``sync`` and ``async``;
tests talk to it through :class:`Face`, whose ``call`` awaits the async method or runs the sync one
in a worker thread, so one test body checks both faces.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

import ccxt_capital
from ccxt_capital.async_support import CapitalTrader as AsyncCapitalTrader
from ccxt_capital.sim import CapitalSimulator

#: A small universe keeps load_markets cheap (one details request) and covers every instrument type.
UNIVERSE = ["AAPL/USD", "TSLA/USD", "EUR/USD", "GOLD/USD", "US100/USD", "BTC/USD"]


def sim_sleep(sim: CapitalSimulator) -> Callable[[float], Any]:
    async def sleep(seconds: float) -> None:
        if seconds > 0:
            sim.advance(seconds)
        await asyncio.sleep(0)

    return sleep


def trader_config(sim: CapitalSimulator, tmp_path: Path, **options: Any) -> dict[str, Any]:
    """The config a user would write, pointed at the simulator, with the simulated clock injected."""
    merged: dict[str, Any] = {
        "baseUrl": sim.base_url,
        "journal": str(tmp_path / "journal.sqlite"),
        "symbols": list(UNIVERSE),
        "clock": sim.clock.now,
        "sleep": sim_sleep(sim),
        # after a lost connection: log in again within milliseconds, the same delays every run
        "reconnect": {"initialDelay": 0.01, "maxDelay": 0.05, "jitter": 0.0, "seed": 1},
    }
    merged.update(options)
    return {"apiKey": sim.api_key, "login": sim.identifier, "password": sim.password, "options": merged}


class Face:
    """One exchange object, sync or async, behind an awaitable ``call``."""

    def __init__(self, kind: str, exchange: Any) -> None:
        self.kind = kind
        self.exchange = exchange

    @property
    def impl(self) -> AsyncCapitalTrader:
        return self.exchange.impl if self.kind == "sync" else self.exchange

    @property
    def wire(self) -> Any:
        return self.impl._wire()

    async def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        method = getattr(self.exchange, name)
        if self.kind == "sync":
            return await asyncio.to_thread(method, *args, **kwargs)
        return await method(*args, **kwargs)

    async def settled(self) -> None:
        """Let the exchange's loop run what its last call queued (the post-answer journal writes run
        at the loop's next turn, after a sync caller got its answer): a no-op queued behind them."""
        if self.kind == "sync":
            await asyncio.to_thread(self.exchange._loop_thread.run, asyncio.sleep(0), 10)
        else:
            await asyncio.sleep(0)

    async def journal(self) -> Any:
        """The exchange's journal once its queued writes ran."""
        await self.settled()
        return await self.impl._journal_ready()

    async def close(self) -> None:
        if self.kind == "sync":
            await asyncio.to_thread(self.exchange.close)
        else:
            await self.exchange.close()


def build_face(kind: str, config: dict[str, Any]) -> Face:
    if kind == "sync":
        return Face(kind, ccxt_capital.CapitalTrader(config))
    return Face(kind, AsyncCapitalTrader(config))


@pytest.fixture(name="face_kind", params=["sync", "async"])
def face_kind_fixture(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(name="face")
async def face_fixture(face_kind: str, capital_sim: CapitalSimulator, tmp_path: Path) -> AsyncIterator[Face]:
    """A CapitalTrader (sync or async) on the simulator, markets loaded."""
    ex = build_face(face_kind, trader_config(capital_sim, tmp_path))
    try:
        await ex.call("load_markets")
        yield ex
    finally:
        await ex.close()


@pytest.fixture(name="make_face")
def make_face_fixture(capital_sim: CapitalSimulator, tmp_path: Path) -> Any:
    """Build more exchanges on the same simulator (restarts, other options); closed at teardown."""
    made: list[Face] = []

    def make(kind: str = "async", **options: Any) -> Face:
        config = trader_config(capital_sim, tmp_path, **options)
        ex = build_face(kind, config)
        made.append(ex)
        return ex

    yield make
    for ex in made:
        if ex.kind == "sync":
            ex.exchange.close()
        else:
            # The async twin's transport lives on the test loop, already closed by the test itself.
            pass


def booked(sim: CapitalSimulator) -> dict[str, int]:
    """How much the simulator's books hold: positions, working orders, activity lines, confirms."""
    dealer = sim.broker.dealer
    with sim.broker.lock:
        return {
            "positions": len(dealer.positions),
            "orders": len(dealer.orders),
            "activities": len(dealer.activities),
            "confirms": len(dealer.confirms),
        }
