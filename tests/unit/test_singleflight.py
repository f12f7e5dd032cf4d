"""RecentAnswers: concurrent identical requests join one, a repeat within the window reuses its answer."""

from __future__ import annotations

import asyncio
import threading

import pytest

from normalization.runtime.pacing import ib_historical_pacer, shared_pacer
from normalization.runtime.singleflight import RecentAnswers


async def test_concurrent_callers_share_one_request() -> None:
    answers: RecentAnswers[int] = RecentAnswers(0.0)
    calls = 0
    gate = asyncio.Event()

    async def fetch() -> int:
        nonlocal calls
        calls += 1
        await gate.wait()
        return 42

    tasks = [asyncio.create_task(answers.get("k", fetch)) for _ in range(11)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*tasks) == [42] * 11
    assert calls == 1
    assert await answers.get("k", fetch) == 42 and calls == 2  # window 0: nothing kept afterwards


async def test_answers_are_reused_within_the_window_only() -> None:
    now = [0.0]
    answers: RecentAnswers[int] = RecentAnswers(15.0, clock=lambda: now[0])
    values = iter(range(10))

    async def fetch() -> int:
        return next(values)

    assert await answers.get("k", fetch) == 0
    now[0] = 14.9
    assert await answers.get("k", fetch) == 0
    now[0] = 15.0
    assert await answers.get("k", fetch) == 1


async def test_a_failure_reaches_the_waiters_and_is_not_kept() -> None:
    answers: RecentAnswers[int] = RecentAnswers(15.0)
    gate = asyncio.Event()

    async def failing() -> int:
        await gate.wait()
        raise ValueError("no")

    tasks = [asyncio.create_task(answers.get("k", failing)) for _ in range(3)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, ValueError) for r in results)

    async def ok() -> int:
        return 7

    assert await answers.get("k", ok) == 7


async def test_a_cancelled_owner_hands_the_request_to_a_waiter() -> None:
    answers: RecentAnswers[int] = RecentAnswers(0.0)
    started = asyncio.Event()

    async def slow() -> int:
        started.set()
        await asyncio.sleep(3600)
        return 0

    async def quick() -> int:
        return 5

    owner = asyncio.create_task(answers.get("k", slow))
    await started.wait()
    waiter = asyncio.create_task(answers.get("k", quick))
    await asyncio.sleep(0)
    owner.cancel()
    assert await waiter == 5
    with pytest.raises(asyncio.CancelledError):
        await owner


def test_a_caller_on_another_loop_joins_the_request_in_flight() -> None:
    answers: RecentAnswers[int] = RecentAnswers(0.0)
    calls = []
    started, release = threading.Event(), threading.Event()

    async def fetch() -> int:
        calls.append(1)
        started.set()
        await asyncio.get_running_loop().run_in_executor(None, release.wait)
        return 9

    async def join() -> int:
        waiting = asyncio.create_task(answers.get("k", fetch))
        await asyncio.sleep(0)  # one turn: the task is now awaiting the request in flight
        release.set()
        return await waiting

    results: list[int] = []
    owner = threading.Thread(target=lambda: results.append(asyncio.run(answers.get("k", fetch))))
    owner.start()
    started.wait(10)
    results.append(asyncio.run(join()))
    owner.join(10)
    assert results == [9, 9] and len(calls) == 1


def test_shared_pacers_are_one_object_per_key() -> None:
    a = shared_pacer(("test", "gw", 1), ib_historical_pacer)
    b = shared_pacer(("test", "gw", 1), ib_historical_pacer)
    c = shared_pacer(("test", "gw", 2), ib_historical_pacer)
    assert a is b and a is not c
