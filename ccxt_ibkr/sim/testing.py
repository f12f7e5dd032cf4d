"""Test helpers: a running simulator as a context manager / pytest fixture, and waiting
helpers that block on the client's own events (bounded by a timeout) instead of sleeping.

The fixtures are re-exported from ``tests/ib/conftest.py``; other test packages can do the
same with ``from ccxt_ibkr.sim.testing import ib_sim, ib_client``.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from .server import IBSimulator

TEST_SEED = 7
_client_ids = itertools.count(100)  # clear of the ids tests pick by hand


@contextmanager
def running_simulator(**kwargs: Any) -> Iterator[IBSimulator]:
    """An ``IBSimulator`` serving on a free loopback port in its own thread."""
    kwargs.setdefault("port", 0)
    kwargs.setdefault("seed", TEST_SEED)
    with IBSimulator(**kwargs) as sim:
        yield sim


async def wait_until(ib: Any, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait for ``predicate()`` to hold, re-checking after each batch of client messages."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise TimeoutError("condition not met in time")
        try:
            await asyncio.wait_for(_next(ib.updateEvent), min(remaining, 0.25))
        except asyncio.TimeoutError:
            pass


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.005) -> None:
    """Poll simulator-side state (not client events) until ``predicate()`` holds, bounded."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(interval)


async def _next(event: Any) -> Any:
    return await event


async def connect(sim: Any, client_id: int | None = None, timeout: float = 5.0, **kwargs: Any) -> Any:
    """A connected client from the shim (ib_async or ib_insync); ``sim`` needs .host and .port."""
    from ccxt_ibkr._ib import IB

    ib = IB()
    cid = client_id if client_id is not None else next(_client_ids)
    await ib.connectAsync(sim.host, sim.port, clientId=cid, timeout=timeout, **kwargs)
    return ib


@pytest.fixture
def ib_sim() -> Iterator[IBSimulator]:
    """A fresh simulator per test: seed 7, clock frozen at Tue 2025-06-10 14:00 UTC, USD 1M."""
    with running_simulator() as sim:
        yield sim


@pytest.fixture
async def ib_client(ib_sim: IBSimulator) -> AsyncIterator[Any]:
    """An ib_async (or ib_insync) ``IB`` connected to ``ib_sim`` with clientId 1."""
    ib = await connect(ib_sim, client_id=1)
    try:
        yield ib
    finally:
        ib.disconnect()
