"""Waiting for a stream's next update on a simulator with its own clock, shared by both brokers' stream tests.

A watch_* call resolves only when the broker pushes (or the adapter polls), and the simulators move only when
told to: the helper starts the watch and advances the simulator's clock in steps until the watch resolves,
bounded, so no test sleeps or hangs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol


class SteppedClock(Protocol):
    def advance(self, seconds: float) -> Any: ...


async def next_update(watch: Callable[[], Awaitable[Any]], sim: SteppedClock, step: float,
                      wait: float = 5.0) -> Any:
    """Start ``watch()`` and move ``sim``'s clock ``step`` seconds every 0.1 s of waiting until it resolves
    (50 steps, then ``wait`` seconds more at most)."""
    task = asyncio.ensure_future(watch())
    try:
        for _ in range(50):
            done, _ = await asyncio.wait({task}, timeout=0.1)
            if done:
                return task.result()
            sim.advance(step)
        return await asyncio.wait_for(task, wait)
    finally:
        if not task.done():
            task.cancel()
