"""Identical requests share one answer: the one in flight, or one given moments ago.

Why: some broker requests cannot be repeated freely. IB refuses an identical historical request
within 15 s (error 162), and its client library keeps only one ``reqCurrentTime`` in flight, so a
second concurrent one never gets its reply. Concurrent callers (eleven ``fetch_ohlcv`` windows of a
backtest loader, a sync and an async bot on one gateway) must therefore join the request already
under way, and a repeat within the broker's window gets the previous answer.

Works across event loops and threads: the in-flight answer is a ``concurrent.futures.Future``
that callers on any loop await; the table is guarded by a lock. Failures are shared with the callers
waiting on them but never remembered.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["RecentAnswers"]

T = TypeVar("T")


class _OwnerGone(Exception):
    """The caller that was asking for everyone was cancelled: the others ask again."""


class RecentAnswers(Generic[T]):
    """``await answers.get(key, fetch)``: ``fetch()`` runs once per key at a time, and its answer is
    reused for ``window`` seconds (0: only while in flight)."""

    def __init__(self, window: float = 0.0, *, clock: Callable[[], float] = time.monotonic, size: int = 256) -> None:
        self.window = window
        self._clock = clock
        self._size = size
        self._lock = threading.Lock()
        self._answers: dict[Hashable, tuple[float, T]] = {}
        self._pending: dict[Hashable, concurrent.futures.Future[T]] = {}

    def recent(self, key: Hashable) -> tuple[bool, T | None]:
        """(True, answer) if ``key`` was answered within the window."""
        with self._lock:
            found = self._answers.get(key)
            if found is not None and self._clock() - found[0] < self.window:
                return True, found[1]
            return False, None

    async def get(self, key: Hashable, fetch: Callable[[], Awaitable[T]]) -> T:
        while True:
            try:
                return await self._get(key, fetch)
            except _OwnerGone:
                continue

    async def _get(self, key: Hashable, fetch: Callable[[], Awaitable[T]]) -> T:
        with self._lock:
            found = self._answers.get(key)
            if found is not None and self._clock() - found[0] < self.window:
                return found[1]
            pending = self._pending.get(key)
            owner = pending is None
            if owner:
                pending = self._pending[key] = concurrent.futures.Future()
        assert pending is not None
        if not owner:
            return await asyncio.shield(asyncio.wrap_future(pending))
        try:
            value = await fetch()
        except BaseException as error:
            with self._lock:
                self._pending.pop(key, None)
            if isinstance(error, Exception):
                pending.set_exception(error)
            else:  # the owner was cancelled: the others must ask again, not inherit the cancellation
                pending.set_exception(_OwnerGone())
            raise
        with self._lock:
            self._pending.pop(key, None)
            if self.window > 0:
                if len(self._answers) >= self._size:
                    self._answers.pop(next(iter(self._answers)))
                self._answers[key] = (self._clock(), value)
        pending.set_result(value)
        return value

    def forget(self) -> None:
        """Drop the remembered answers (requests in flight are still joined)."""
        with self._lock:
            self._answers.clear()

    clear = forget

    def __len__(self) -> int:
        return len(self._answers)

    def __repr__(self) -> str:
        return f"RecentAnswers(window={self.window:g}, answers={len(self._answers)}, pending={len(self._pending)})"

