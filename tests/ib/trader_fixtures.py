"""Fixtures for the IBTrader end-to-end tests: one simulator per test module, one trader per test.

Every test runs against both faces (``face`` is ``sync`` or ``async``); tests are written as async
functions and call ``await run(ex.method(...))``, which awaits the async face and passes the sync
face's result through (the sync face blocks on its own loop thread, never on the test's loop).

Isolation inside a shared simulator: each trader gets a fresh clientId and its own journal file,
the simulator's pacing history is reset before each test, and tests assert on what *their*
orders did rather than on account totals.

The historical-data pacer is driven by the simulator's clock: its waits advance that clock
instead of sleeping, so pacing is exercised exactly (the simulator enforces the same rules on the
same clock) and the suite stays fast and deterministic.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import ccxt_ibkr
from ccxt_ibkr.async_support import IBTrader as AsyncIBTrader
from ccxt_ibkr.sim.server import IBSimulator
from ccxt_ibkr.sim.testing import running_simulator
from normalization.runtime.pacing import Pacer, ib_historical_pacer

SYMBOLS = ["AAPL/USD", "MSFT/USD", "EUR/USD", "BTC/USD"]
_client_ids = itertools.count(200)


async def run(value: Any) -> Any:
    """Await the async face's coroutine; return the sync face's value unchanged."""
    if inspect.isawaitable(value):
        return await value
    return value


def sim_pacer(sim: IBSimulator) -> Pacer:
    """IB's pacing rules on the simulator's clock; a wait advances that clock (no real sleep)."""

    async def advance(seconds: float) -> None:
        sim.advance(seconds)

    return ib_historical_pacer(clock=sim.now, sleep=advance)


def trader_options(sim: IBSimulator, journal: Path | str | None, **options: Any) -> dict[str, Any]:
    merged: dict[str, Any] = {
        "host": sim.host,
        "port": sim.port,
        "clientId": next(_client_ids),
        "symbols": list(SYMBOLS),
        "journal": str(journal) if journal is not None else None,
        "connectTimeout": 5.0,
        "requestTimeout": 10.0,
        "orderTimeout": 5.0,
        "pacer": sim_pacer(sim),
        "maintenanceWindows": [],  # deterministic whatever the wall clock: no nightly-restart window
        "reconnect": {"initialDelay": 0.02, "factor": 2.0, "maxDelay": 0.2, "jitter": 0.0, "seed": 7},
    }
    merged.update(options)
    return merged


@pytest.fixture(scope="module")
def trader_sim() -> Iterator[IBSimulator]:
    """One simulator for the module (clock frozen at Tue 2025-06-10 14:00 UTC, inside US RTH)."""
    with running_simulator() as sim:
        yield sim


@pytest.fixture
def sim(trader_sim: IBSimulator) -> IBSimulator:
    trader_sim.reset_pacing()
    return trader_sim


@pytest.fixture(params=["sync", "async"])
def face(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def make_trader(sim: IBSimulator, face: str, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """``make_trader(**options)`` -> a trader of this test's face, closed at the end of the test."""
    made: list[Any] = []

    def make(*, journal: Path | str | None = "default", face_: str | None = None, **options: Any) -> Any:
        if journal == "default":
            journal = tmp_path / f"journal-{len(made)}.sqlite"
        config = {"options": trader_options(sim, journal, **options)}
        cls = ccxt_ibkr.IBTrader if (face_ or face) == "sync" else AsyncIBTrader
        trader = cls(config)
        made.append(trader)
        return trader

    yield make
    for trader in made:
        await run(trader.close())


@pytest.fixture
async def ex(make_trader: Callable[..., Any]) -> Any:
    """A trader with the default universe (markets loaded lazily on first use)."""
    return make_trader()


def sim_orders(sim: IBSimulator) -> int:
    """How many orders the simulator has booked (every placeOrder that reached it)."""
    return len(sim.orders())


@pytest.fixture
def order_messages(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts placeOrder messages (msg 3) the simulator receives from sessions opened in this test."""
    from ccxt_ibkr.sim.session import Session

    seen: list[int] = []
    original = Session.place_order

    def counting(self: Session, fields: Any) -> None:
        seen.append(self.client_id or 0)
        original(self, fields)

    monkeypatch.setattr(Session, "place_order", counting)
    return seen
