"""Circuit breakers: open on network failures only, fail fast, half-open trial, kept apart."""

from __future__ import annotations

import asyncio

import ccxt
import pytest

from normalization.runtime.breaker import CLOSED, HALF_OPEN, OPEN, Breakers, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


async def fail(exc: BaseException) -> None:
    raise exc


async def ok() -> str:
    return "ok"


async def test_opens_after_threshold_and_fails_fast_naming_itself() -> None:
    clock = Clock()
    b = CircuitBreaker("ibkr execution", failure_threshold=3, reset_timeout=10, clock=clock)
    for _ in range(2):
        with pytest.raises(ccxt.RequestTimeout):
            await b.call(fail, ccxt.RequestTimeout("slow"))
    assert b.state == CLOSED and b.failures == 2
    with pytest.raises(ConnectionResetError):
        await b.call(fail, ConnectionResetError("reset"))
    assert b.state == OPEN
    called = False

    async def never() -> None:
        nonlocal called
        called = True

    with pytest.raises(ccxt.ExchangeNotAvailable, match="ibkr execution circuit breaker is open"):
        await b.call(never)
    assert not called


async def test_answers_from_the_broker_do_not_count() -> None:
    b = CircuitBreaker("x", failure_threshold=1)
    for exc in (
        ccxt.InvalidOrder("bad"),
        ccxt.InsufficientFunds("poor"),
        ccxt.RateLimitExceeded("429"),
        ValueError("bug"),
    ):
        with pytest.raises(type(exc)):
            async with b:
                raise exc
        assert b.state == CLOSED


async def test_success_resets_the_count() -> None:
    b = CircuitBreaker("x", failure_threshold=2)
    with pytest.raises(ccxt.NetworkError):
        await b.call(fail, ccxt.NetworkError("x"))
    assert await b.call(ok) == "ok"
    with pytest.raises(ccxt.NetworkError):
        await b.call(fail, ccxt.NetworkError("x"))
    assert b.state == CLOSED


async def test_half_open_allows_one_trial() -> None:
    clock = Clock()
    b = CircuitBreaker("x", failure_threshold=1, reset_timeout=5, clock=clock)
    with pytest.raises(ccxt.ExchangeNotAvailable):
        await b.call(fail, ccxt.ExchangeNotAvailable("down"))
    clock.t += 5
    assert b.state == HALF_OPEN
    gate = asyncio.Event()

    async def trial() -> str:
        await gate.wait()
        return "recovered"

    task = asyncio.create_task(b.call(trial))
    await asyncio.sleep(0)
    with pytest.raises(ccxt.ExchangeNotAvailable):  # a second caller while the trial runs
        await b.call(ok)
    gate.set()
    assert await task == "recovered"
    assert b.state == CLOSED


async def test_failed_trial_reopens_and_cancelled_trial_frees_the_slot() -> None:
    clock = Clock()
    b = CircuitBreaker("x", failure_threshold=3, reset_timeout=5, clock=clock)
    b.trip(ccxt.NetworkError("1100"))
    assert b.state == OPEN
    clock.t += 5
    with pytest.raises(ccxt.NetworkError):
        await b.call(fail, ccxt.NetworkError("still down"))
    assert b.state == OPEN  # one failed trial re-opens, whatever the threshold
    clock.t += 5
    task = asyncio.create_task(b.call(asyncio.sleep, 10))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert b.state == HALF_OPEN
    assert await b.call(ok) == "ok"  # the slot was freed
    assert b.state == CLOSED


async def test_market_data_failures_never_block_execution() -> None:
    clock = Clock()
    breakers = Breakers.create("ibkr", failure_threshold=1, clock=clock)
    with pytest.raises(ccxt.RequestTimeout):
        await breakers.market_data.call(fail, ccxt.RequestTimeout("farm down"))
    with pytest.raises(ccxt.ExchangeNotAvailable, match="ibkr market data"):
        await breakers.market_data.call(ok)
    async with breakers.execution:  # a cancel still goes through
        pass
    assert breakers.execution.state == CLOSED
    assert Breakers().market_data is not Breakers().market_data
