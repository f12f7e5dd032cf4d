"""Retries happen only for failures that provably never left the process."""

from __future__ import annotations

import asyncio

import ccxt
import pytest

from normalization.runtime.retry import RequestNotSent, retry_if_never_sent


class Flaky:
    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "placed"


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


async def test_retries_unsent_failures_with_backoff() -> None:
    fn, sleep = Flaky(RequestNotSent("not connected"), RequestNotSent("not connected")), Sleeps()
    assert await retry_if_never_sent(fn, attempts=3, backoff=0.5, sleep=sleep) == "placed"
    assert fn.calls == 3 and sleep.delays == [0.5, 1.0]


@pytest.mark.parametrize(
    "error",
    [ccxt.RequestTimeout("timed out after send"), ccxt.InvalidOrder("no"), asyncio.CancelledError()],
)
async def test_anything_else_propagates_at_once(error: BaseException) -> None:
    fn, sleep = Flaky(error), Sleeps()
    with pytest.raises(type(error)):
        await retry_if_never_sent(fn, attempts=5, sleep=sleep)
    assert fn.calls == 1 and sleep.delays == []


async def test_gives_up_after_attempts_and_custom_classifier() -> None:
    fn, sleep = Flaky(*(ConnectionRefusedError("refused") for _ in range(5))), Sleeps()
    with pytest.raises(ConnectionRefusedError):
        await retry_if_never_sent(
            fn,
            attempts=3,
            backoff=lambda n: n * 10.0,
            is_unsent=lambda e: isinstance(e, ConnectionRefusedError),
            sleep=sleep,
        )
    assert fn.calls == 3 and sleep.delays == [10.0, 20.0]


async def test_backoff_is_capped_and_attempts_validated() -> None:
    fn, sleep = Flaky(*(RequestNotSent("x") for _ in range(4))), Sleeps()
    assert await retry_if_never_sent(fn, attempts=5, backoff=4, max_backoff=10, sleep=sleep) == "placed"
    assert sleep.delays == [4, 8, 10, 10]
    with pytest.raises(ValueError):
        await retry_if_never_sent(fn, attempts=0)
    assert issubclass(RequestNotSent, ccxt.NetworkError)
