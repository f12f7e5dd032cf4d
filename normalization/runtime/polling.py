"""Streams made of paced polls, for brokers that push nothing for an account (Capital.com).

A :class:`Poller` runs one coroutine every ``interval`` seconds while at least one stream needs it,
stops when the last one unsubscribes, and survives errors (a failed poll is retried at the next turn
with the same backoff as the rest of the adapter; the stream's watchers keep waiting). The
coroutine compares what it read with what it delivered and resolves the watchers itself, so a poll
that finds nothing new wakes nobody. The requests go through the adapter's own limiter like any other.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("normalization.polling")


class Poller:
    """``poll()`` every ``interval`` seconds (``sleep`` is the adapter's, so a simulated clock works)."""

    def __init__(self, name: str, poll: Callable[[], Awaitable[Any]], interval: float,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        self.name = name
        self.interval = interval
        self.polls = 0
        self.failures = 0
        self._poll = poll
        self._sleep = sleep
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Poll once now (so the baseline is known before the caller waits), then keep polling."""
        if self.running:
            return
        await self._poll()
        self.polls += 1
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"poll-{self.name}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await self._sleep(self.interval)
            await asyncio.sleep(0)  # a zero-cost sleep (simulated clocks) must still let the loop run
            try:
                await self._poll()
                self.polls += 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the next turn tries again
                self.failures += 1
                log.debug("poll %s failed: %s", self.name, exc)
