"""Retry a broker call only when the request provably never left this process.

Why so narrow: retrying an order placement that timed out *after* it was written to the socket can
place it twice. Only the caller knows which failures happened before the send (IB: "not connected"
raised before ``placeOrder`` wrote anything; Capital: the connection could not be opened), so the
caller classifies them with ``is_unsent``. Everything else -- timeouts after send, broker rejections,
cancellations -- propagates at once, unchanged. A timeout after send is then handled by the adapter
(the order is reported ``open`` with what is known, and reconciliation finds out the rest).

Adapters can raise :class:`RequestNotSent` (a ``ccxt.NetworkError``) at the point where they know
nothing was sent; the default classifier recognises it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import ccxt

__all__ = ["RequestNotSent", "is_request_not_sent", "retry_if_never_sent"]

T = TypeVar("T")


class RequestNotSent(ccxt.NetworkError):
    """The request was not sent (e.g. not connected): retrying it cannot duplicate anything."""


def is_request_not_sent(exc: BaseException) -> bool:
    """Default classifier: only an explicit :class:`RequestNotSent` is provably unsent."""
    return isinstance(exc, RequestNotSent)


async def retry_if_never_sent(
    fn: Callable[[], Awaitable[T]],
    *,
    attempts: int = 3,
    backoff: float | Callable[[int], float] = 0.5,
    max_backoff: float = 10.0,
    is_unsent: Callable[[BaseException], bool] = is_request_not_sent,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> T:
    """``await fn()``, retrying up to ``attempts`` times in total while failures are provably unsent.

    ``backoff`` is either a base delay in seconds (doubling after each failure, capped at
    ``max_backoff``) or a function ``attempt_number -> delay`` (1 for the first retry). The last
    unsent failure is re-raised when attempts run out. ``sleep`` is injectable for tests.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    for attempt in range(1, attempts + 1):
        try:
            return await fn()
        except Exception as exc:
            if attempt >= attempts or not is_unsent(exc):
                raise
            delay = backoff(attempt) if callable(backoff) else min(max_backoff, backoff * 2 ** (attempt - 1))
            if delay > 0:
                await sleep(delay)
    raise AssertionError("unreachable")
