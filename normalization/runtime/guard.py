"""One guard around every public call: connection gate, the right circuit breaker, a deadline.

Why: the issue's three promises -- calls during an outage fail fast, a failing data feed never
blocks a cancel, every public call is bounded -- must hold for every unified method of both
adapters, and must not be re-implemented method by method. An adapter marks each public coroutine
with :func:`guarded` and its *kind* (``market_data`` or ``execution``; account reads count as
execution: they share the order route's fate at both brokers); :class:`CallGuard` then

1. asks the :class:`~normalization.runtime.supervisor.ConnectionSupervisor` whether that kind of
   traffic can reach the broker (raising ``NotConnected`` / ``BrokerOutage`` / ``BrokerMaintenance``
   before anything is sent);
2. runs the call through that kind's :class:`~normalization.runtime.breaker.CircuitBreaker` (the two
   are separate objects: market-data failures never open the execution breaker);
3. bounds it with a deadline -- except calls that place or change orders (``deadline=False``): a
   cancelled placement would be torn between "sent" and "recorded", so those rely on their own
   per-request timeouts and on the journal instead.

Nested guarded calls (``create_order`` -> ``load_markets``) are checked once, by the outermost.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from .breaker import Breakers, CircuitBreaker
from .supervisor import EXECUTION, MARKET_DATA, ConnectionSupervisor, bounded

__all__ = ["CallGuard", "guarded"]

T = TypeVar("T")

_INSIDE: contextvars.ContextVar[bool] = contextvars.ContextVar("ccxt_brokers_guarded", default=False)


class CallGuard:
    """The gate + breakers + deadline an adapter applies to each public call.

    ``supervisor`` may be attached later with :meth:`watch` (an adapter whose supervisor lives in a
    lazily created transport). ``gate=False`` leaves the connection gate to the adapter's own request
    path (both adapters check ``supervisor.ensure_usable`` right before sending); the guard then adds
    only the breakers and the deadline.
    """

    def __init__(
        self,
        exchange_id: str,
        supervisor: ConnectionSupervisor | None = None,
        breakers: Breakers | None = None,
        *,
        call_timeout: float | None = 120.0,
        gate: bool = True,
    ) -> None:
        self.exchange_id = exchange_id
        self.supervisor: ConnectionSupervisor | None = None
        self.breakers = breakers or Breakers.create(exchange_id)
        self.call_timeout = call_timeout
        self.gate = gate
        if supervisor is not None:
            self.watch(supervisor)

    def watch(self, supervisor: ConnectionSupervisor) -> None:
        """Gate on ``supervisor`` and reset both breakers after each of its reconnects: a reconnect
        proves the broker reachable, so failures counted during the drop must not keep failing calls
        for the rest of the breaker's reset timeout."""
        if self.supervisor is supervisor:
            return
        self.supervisor = supervisor
        supervisor.on_reconnected(lambda event: self.reset())

    def reset(self) -> None:
        self.breakers.market_data.record_success()
        self.breakers.execution.record_success()

    def breaker(self, kind: str) -> CircuitBreaker:
        return self.breakers.market_data if kind == MARKET_DATA else self.breakers.execution

    async def run(
        self, kind: str, what: str, make: Callable[[], Awaitable[T]], *, deadline: bool = True, gate: bool = True
    ) -> T:
        """Run ``await make()`` as one guarded public call of ``kind``.

        ``gate=False`` leaves the connection check to the method itself, for calls that can answer
        without the broker (``create_order`` repeating a journaled clientOrderId returns the first order).
        """
        if _INSIDE.get():
            return await make()
        token = _INSIDE.set(True)
        try:
            if gate and self.gate and self.supervisor is not None:
                self.supervisor.ensure_usable(kind)
            breaker = self.breaker(kind)
            async with breaker:
                if deadline and self.call_timeout:
                    return await bounded(make(), self.call_timeout, what, self.exchange_id)
                return await make()
        finally:
            _INSIDE.reset(token)


Method = Callable[..., Awaitable[T]]


def guarded(
    kind: str = EXECUTION, *, deadline: bool = True, gate: bool = True
) -> Callable[[Method[T]], Method[T]]:
    """Decorate an adapter's public coroutine; the instance provides ``self._guard`` (a :class:`CallGuard`).

    Without a guard (``_guard`` missing or None, e.g. during construction) the call runs unguarded.
    """

    def decorate(fn: Method[T]) -> Method[T]:
        @functools.wraps(fn)
        async def wrapper(self: Any, *args: Any, **kwargs: Any) -> T:
            guard: CallGuard | None = getattr(self, "_guard", None)
            if guard is None:
                return await fn(self, *args, **kwargs)
            call = lambda: fn(self, *args, **kwargs)  # noqa: E731
            return await guard.run(kind, fn.__name__, call, deadline=deadline, gate=gate)

        return wrapper

    return decorate
