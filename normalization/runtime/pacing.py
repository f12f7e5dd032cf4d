"""A pacing scheduler: wait just long enough that no broker request-rate rule is ever broken.

Why: both brokers punish bursts -- IB answers error 162 "historical data request pacing violation"
(and can disconnect), Capital.com answers HTTP 429 -- and a long OHLCV download or a bot's polling loop
produces exactly such bursts. Instead of reacting to violations, the adapters ask the pacer before
each request; it computes the earliest moment every applicable rule allows and sleeps until then.

Every rule is a sliding window, "at most ``max_requests`` in any ``seconds``-long window":

* ``Window(60, 600)`` -- global, e.g. IB's 60 historical requests per 10 minutes;
* ``Window(5, 2, scope="contract")`` -- one window per *key* of a scope (per contract);
* :func:`no_identical` ``(15)`` -- ``Window(1, 15, scope="identical")``: the key is the request's
  identity, so the same request cannot repeat within 15 s;
* :func:`min_interval` ``(0.1, scope="deal")`` -- ``Window(1, 0.1, ...)``: at least 0.1 s apart.

A request names the keys of the scopes it falls under: ``await pacer.acquire(contract=con_id,
identical=(con_id, end, duration, bar_size, what))``; global rules always apply, a scoped rule applies
when its scope is given. The slot is *reserved* at the computed time before sleeping, so concurrent
callers queue without racing, and a cancelled waiter gives its slot back.

Time is injectable (``clock``, ``sleep``): tests drive a fake clock and never really sleep.
``plan_delay`` computes a wait without recording anything; ``plan`` schedules a batch (e.g. the pages
of a long download) on a copy of the state, for progress and ETA display.
"""

from __future__ import annotations

import asyncio
import bisect
import copy
import threading
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .shared import process_wide

__all__ = [
    "Pacer",
    "Window",
    "capital_pacer",
    "ib_historical_pacer",
    "min_interval",
    "no_identical",
    "shared_pacer",
]


@dataclass(frozen=True)
class Window:
    """At most ``max_requests`` requests in any half-open window of ``seconds``.

    ``scope`` None: one window for all requests. Otherwise one window per key passed for that scope.
    ``weighted``: whether a request's ``weight`` counts (IB: a BID_ASK request counts as two); rules
    about identity or spacing are unweighted.
    """

    max_requests: int
    seconds: float
    scope: str | None = None
    weighted: bool = True
    name: str = ""

    def __post_init__(self) -> None:
        if self.max_requests < 1 or self.seconds <= 0:
            raise ValueError(f"invalid pacing window {self}")

    def describe(self) -> str:
        label = self.name or (f"per {self.scope}" if self.scope else "global")
        return f"{label}: {self.max_requests} per {self.seconds:g}s"


def no_identical(seconds: float, scope: str = "identical") -> Window:
    """No two requests with the same identity key within ``seconds``."""
    return Window(1, seconds, scope=scope, weighted=False, name=f"no identical request within {seconds:g}s")


def min_interval(seconds: float, scope: str | None = None) -> Window:
    """Requests (of ``scope``, or all) at least ``seconds`` apart."""
    return Window(1, seconds, scope=scope, weighted=False, name=f"1 per {seconds:g}s ({scope or 'all'})")


EPSILON = 1e-9

_Bucket = tuple[int, Hashable]  # (rule index, key); key None for global rules


def _fits(entries: list[float], t: float, count: int, max_requests: int, seconds: float) -> bool:
    """Would adding ``count`` requests at ``t`` keep every window of ``seconds`` within ``max_requests``?

    ``entries`` is sorted. A sorted multiset respects the rule iff any ``max_requests + 1``
    consecutive entries span at least ``seconds``; only spans that include ``t`` can change.
    """
    if count > max_requests:
        return False
    i = bisect.bisect_left(entries, t)
    # Entries that could share a window with t: those within (t - seconds, t + seconds).
    lo = bisect.bisect_right(entries, t - seconds, 0, i)
    hi = bisect.bisect_left(entries, t + seconds, i)
    merged = entries[lo:i] + [t] * count + entries[i:hi]
    # EPSILON absorbs float rounding in candidate times such as ``e + seconds``; the pacer's margin
    # dwarfs it.
    limit = seconds - EPSILON
    return all(merged[j + max_requests] - merged[j] >= limit for j in range(len(merged) - max_requests))


class Pacer:
    """Async scheduler enforcing a set of :class:`Window` rules.

    ``margin`` seconds are added to every window as a safety gap for clock skew and for the time
    between the computed slot and the bytes actually leaving (IB counts on its side of the socket).
    Thread-safe: the brokers count requests per gateway / per API key, not per exchange object, so
    one pacer serves every instance in the process (:func:`shared_pacer`), whichever event loop or
    thread each runs on. Reservations are taken under a lock; each caller sleeps on its own loop.
    """

    def __init__(
        self,
        rules: Iterable[Window],
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        margin: float = 0.0,
    ) -> None:
        self.rules: tuple[Window, ...] = tuple(rules)
        self.scopes = frozenset(r.scope for r in self.rules if r.scope is not None)
        self.margin = margin
        self._clock = clock
        self._sleep = sleep
        self._buckets: dict[_Bucket, list[float]] = {}
        self._lock = threading.Lock()
        self._horizon = max((r.seconds for r in self.rules), default=0.0) + margin

    def now(self) -> float:
        """The pacer's clock (a simulated one in tests): deadlines of paced retries are kept on it."""
        return self._clock()

    # ------------------------------------------------------------------ planning (no sleeping)

    def _applicable(self, keys: Mapping[str, Hashable]) -> list[tuple[Window, _Bucket]]:
        unknown = set(keys) - self.scopes
        if unknown:
            raise ValueError(f"unknown pacing scope(s) {sorted(unknown)}; this pacer knows {sorted(self.scopes)}")
        out = []
        for index, rule in enumerate(self.rules):
            if rule.scope is None:
                out.append((rule, (index, None)))
            elif rule.scope in keys:
                out.append((rule, (index, keys[rule.scope])))
        return out

    def _prune(self, now: float) -> None:
        """Forget requests too old to matter to any window containing ``now`` or later."""
        cutoff = now - self._horizon
        for bucket in list(self._buckets):
            entries = self._buckets[bucket]
            drop = bisect.bisect_right(entries, cutoff)
            if drop:
                del entries[:drop]
            if not entries:
                del self._buckets[bucket]

    def _earliest(self, keys: Mapping[str, Hashable], weight: int, at: float) -> tuple[float, list[_Bucket]]:
        applicable = self._applicable(keys)
        buckets = [b for _, b in applicable]
        checks = []
        for rule, bucket in applicable:
            count = weight if rule.weighted else 1
            if count > rule.max_requests:
                raise ValueError(f"a request of weight {weight} can never satisfy {rule.describe()}")
            checks.append((self._buckets.get(bucket, []), count, rule.max_requests, rule.seconds + self.margin))

        def feasible(t: float) -> bool:
            return all(_fits(entries, t, count, mx, s) for entries, count, mx, s in checks)

        if feasible(at):  # the common case: no wait
            return at, buckets
        # The earliest feasible time is where some window boundary moves past an existing entry;
        # trying every such boundary (plus the entries themselves) in order finds it.
        candidates: set[float] = set()
        for entries, _, _, seconds in checks:
            for e in entries:
                candidates.update((e + seconds, e - seconds, e))
        for t in sorted(c for c in candidates if c > at):
            if feasible(t):
                return t, buckets
        raise AssertionError("unreachable: the latest entry + window is always feasible")

    def plan_delay(self, weight: int = 1, **keys: Hashable) -> float:
        """Seconds ``acquire(weight=weight, **keys)`` would wait now; records nothing."""
        now = self._clock()
        with self._lock:
            t, _ = self._earliest(keys, weight, now)
        return t - now

    def reserve(self, weight: int = 1, *, at: float | None = None, **keys: Hashable) -> float:
        """Record a request at the earliest allowed time at or after ``at`` (default now); returns that
        time. ``acquire`` is ``reserve`` plus sleeping until then."""
        with self._lock:
            now = self._clock() if at is None else at
            self._prune(min(now, self._clock()))
            t, buckets = self._earliest(keys, weight, now)
            for index, key in buckets:
                rule = self.rules[index]
                entries = self._buckets.setdefault((index, key), [])
                for _ in range(weight if rule.weighted else 1):
                    bisect.insort(entries, t)
            return t

    def release(self, t: float, weight: int = 1, **keys: Hashable) -> None:
        """Give back a reservation made at ``t`` (a cancelled waiter). Removing never breaks a rule."""
        with self._lock:
            for rule, bucket in self._applicable(keys):
                entries = self._buckets.get(bucket)
                for _ in range(weight if rule.weighted else 1):
                    if entries:
                        i = bisect.bisect_left(entries, t)
                        if i < len(entries) and entries[i] == t:
                            del entries[i]

    def plan(self, requests: Sequence[Mapping[str, Hashable]], weight: int = 1) -> list[float]:
        """Start delays (seconds from now) for a batch of requests issued back to back, e.g. the pages
        of a download, without touching the real state -- for progress bars and ETAs."""
        shadow = copy.copy(self)
        shadow._lock = threading.Lock()
        with self._lock:
            shadow._buckets = {b: list(e) for b, e in self._buckets.items()}
        now = self._clock()
        return [shadow.reserve(weight, at=now, **keys) - now for keys in requests]

    # ------------------------------------------------------------------ the async API

    async def acquire_slot(self, weight: int = 1, **keys: Hashable) -> float:
        """``acquire``, returning the reserved slot's time (for a later ``release``) instead of the wait."""
        now = self._clock()
        t = self.reserve(weight, **keys)
        if t > now:
            try:
                await self._sleep(t - now)
            except BaseException:
                self.release(t, weight, **keys)
                raise
        return t

    async def acquire(self, weight: int = 1, **keys: Hashable) -> float:
        """Wait until every applicable rule allows one more request, then return the seconds waited.

        The caller sends its request right after this returns.
        """
        now = self._clock()
        t = self.reserve(weight, **keys)
        delay = t - now
        if delay > 0:
            try:
                await self._sleep(delay)
            except BaseException:
                self.release(t, weight, **keys)
                raise
        return delay

    def __repr__(self) -> str:
        return f"Pacer([{'; '.join(r.describe() for r in self.rules)}])"


# ---------------------------------------------------------------------- presets (data, not broker code)


def ib_historical_pacer(
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    margin: float = 0.25,
    per_contract: int = 5,
) -> Pacer:
    """IB historical-data pacing (ib-protocol.md §4).

    * 60 requests in any 10 minutes (weighted: pass ``weight=2`` for BID_ASK, which counts twice);
    * per contract (+exchange +whatToShow, the ``contract`` key): IB forbids "six or more within two
      seconds", so at most ``per_contract`` = 5 in 2 s;
    * no identical request within 15 s (the ``identical`` key: contract, end, duration, bar size,
      whatToShow, useRTH).

    Usage: ``await pacer.acquire(weight, contract=key, identical=request_key)``.
    """
    return Pacer(
        [
            Window(60, 600.0, name="IB historical: 60 per 10 min"),
            Window(per_contract, 2.0, scope="contract", name=f"IB historical: {per_contract} per contract per 2s"),
            no_identical(15.0),
        ],
        clock=clock,
        sleep=sleep,
        margin=margin,
    )


#: Seconds added to each Capital window; see :func:`capital_pacer`.
CAPITAL_MARGIN = 0.05

def shared_pacer(key: Hashable, factory: Callable[[], Pacer]) -> Pacer:
    """The process-wide pacer for ``key`` (a gateway, an API key), made by ``factory`` on first use.

    Brokers count requests per gateway or per API key, whichever exchange object sends them: a sync and
    an async instance (or two bots) in one process must draw from one budget, or together they break
    the limit each respects alone.
    """
    return process_wide(("pacer", key), factory)


def capital_pacer(
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    margin: float = CAPITAL_MARGIN,
    demo: bool = False,
) -> Pacer:
    """Capital.com REST limits (capital-api.md §2), one pacer per user/API key.

    ``margin`` widens every window: the broker counts on its own clock when a request arrives, and
    the gap between our computed send time and its arrival varies by tens of milliseconds on a busy
    machine (measured: 10 ms was not enough, 2-7 429s in 40 concurrent calls). What still slips
    through is retried by the transport (a 429 proves nothing was booked).

    * every request: 10 per second -> ``acquire()``;
    * ``POST /session``: 1 per second -> ``acquire(session=True)``;
    * ``POST /positions`` and ``POST /workingorders`` (one shared limit, the conservative reading):
      1 per 0.1 s -> ``acquire(deal=True)``; on the demo environment also 1000 per hour.
    """
    rules = [
        Window(10, 1.0, name="Capital: 10 requests per second"),
        min_interval(1.0, scope="session"),
        min_interval(0.1, scope="deal"),
    ]
    if demo:
        rules.append(Window(1000, 3600.0, scope="deal", name="Capital demo: 1000 deals per hour"))
    return Pacer(rules, clock=clock, sleep=sleep, margin=margin)
