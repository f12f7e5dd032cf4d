"""Circuit breakers: fail fast while the broker is unreachable, instead of piling up timeouts.

Why two: a failing market-data feed (IB farm down, Capital prices timing out) must never stop a bot
from cancelling or placing orders, and a broken order route must not silence quotes. Each adapter
holds a :class:`Breakers` with a separate ``market_data`` and ``execution`` breaker and wraps each
broker call in the one it belongs to.

Only network-type failures count (``ccxt.NetworkError`` and its family, plus Python's own
``TimeoutError`` / ``ConnectionError``): an ``InvalidOrder`` or ``InsufficientFunds`` proves the broker
answered, so it counts as a success for the breaker's purpose. ``RateLimitExceeded`` and
``InvalidNonce`` are NetworkErrors in ccxt but are answers too, so they do not count either.

States: *closed* (calls pass; ``failure_threshold`` consecutive failures open it), *open* (calls
fail at once with ``ccxt.ExchangeNotAvailable`` naming the breaker, for ``reset_timeout`` seconds),
*half-open* (one trial call passes; success closes, failure re-opens).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import TypeVar

import ccxt

__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "Breakers", "CircuitBreaker", "is_network_failure"]

T = TypeVar("T")

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half-open"

_ANSWERED = (ccxt.RateLimitExceeded, ccxt.InvalidNonce)


def is_network_failure(exc: BaseException) -> bool:
    """True for failures that say "the broker could not be reached", the only ones a breaker counts."""
    if isinstance(exc, _ANSWERED):
        return False
    return isinstance(exc, (ccxt.NetworkError, TimeoutError, asyncio.TimeoutError, ConnectionError))


_NO_TASK = object()


def _current_task() -> object:
    try:
        return asyncio.current_task() or _NO_TASK
    except RuntimeError:  # no running loop: a synchronous caller
        return _NO_TASK


class CircuitBreaker:
    """A closed / open / half-open breaker; ``async with breaker:`` or ``await breaker.call(fn)``.

    ``clock`` is injectable (seconds, monotonic) so tests move time without sleeping. Not thread-safe
    by design: each breaker lives on the adapter's event loop.
    """

    def __init__(
        self,
        name: str,
        failure_threshold: int = 5,
        reset_timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        *,
        counts: Callable[[BaseException], bool] = is_network_failure,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self._clock = clock
        self._counts = counts
        self._failures = 0
        self._opened_at: float | None = None
        # The task running the half-open trial call; other calls finishing must not free its slot.
        self._trial_owner: object | None = None
        self.last_error: BaseException | None = None

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return CLOSED
        if self._clock() - self._opened_at >= self.reset_timeout:
            return HALF_OPEN
        return OPEN

    @property
    def failures(self) -> int:
        """Consecutive counted failures since the last success."""
        return self._failures

    def before_call(self) -> None:
        """Admit a call or raise ``ExchangeNotAvailable``; pair with :meth:`after_call`."""
        state = self.state
        if state == CLOSED:
            return
        if state == HALF_OPEN and self._trial_owner is None:
            self._trial_owner = _current_task()
            return
        assert self._opened_at is not None
        retry_in = max(0.0, self.reset_timeout - (self._clock() - self._opened_at))
        detail = f"; last error: {type(self.last_error).__name__}: {self.last_error}" if self.last_error else ""
        raise ccxt.ExchangeNotAvailable(
            f"{self.name} circuit breaker is open after {self._failures} consecutive network failures; "
            f"failing fast, next trial in {retry_in:.1f}s{detail}"
        )

    def after_call(self, exc: BaseException | None) -> None:
        """Record the outcome of an admitted call (``exc`` None on success)."""
        trial = self._trial_owner is not None and self._trial_owner is _current_task()
        if trial:
            self._trial_owner = None
        if exc is not None and isinstance(exc, asyncio.CancelledError):
            return  # no verdict on the broker; frees the half-open trial slot
        if exc is not None and self._counts(exc):
            self.last_error = exc
            self._failures += 1
            if trial or self._failures >= self.failure_threshold:
                self._opened_at = self._clock()
            return
        self.record_success()

    def record_success(self) -> None:
        """Close the breaker (also for adapters that learn of recovery out of band, e.g. IB 1102)."""
        self._failures = 0
        self._opened_at = None
        self._trial_owner = None

    def trip(self, error: BaseException | None = None) -> None:
        """Open the breaker now (e.g. IB 1100 "connectivity lost")."""
        self.last_error = error or self.last_error
        self._failures = max(self._failures, self.failure_threshold)
        self._opened_at = self._clock()

    async def call(self, fn: Callable[..., Awaitable[T]], *args: object, **kwargs: object) -> T:
        """Run ``await fn(*args, **kwargs)`` through the breaker."""
        async with self:
            return await fn(*args, **kwargs)

    async def __aenter__(self) -> CircuitBreaker:
        self.before_call()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.after_call(exc)

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.name!r}, state={self.state}, failures={self._failures})"


@dataclass
class Breakers:
    """The pair every adapter holds: market data and execution never share a breaker."""

    market_data: CircuitBreaker = field(default_factory=lambda: CircuitBreaker("market data"))
    execution: CircuitBreaker = field(default_factory=lambda: CircuitBreaker("execution"))

    @classmethod
    def create(
        cls,
        exchange: str,
        *,
        failure_threshold: int = 5,
        reset_timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> Breakers:
        """Both breakers named after the exchange, e.g. ``"ibkr market data"`` / ``"ibkr execution"``."""
        return cls(
            market_data=CircuitBreaker(f"{exchange} market data", failure_threshold, reset_timeout, clock),
            execution=CircuitBreaker(f"{exchange} execution", failure_threshold, reset_timeout, clock),
        )
