"""Rate limits as the broker documents them, measured on a chosen time source.

Capital.com allows 10 requests per second per session, one ``POST /session`` per second per API
key, one ``POST /positions`` or ``POST /workingorders`` per 0.1 s, and (demo) 1000 of those per
hour. Over the limit the answer is 429 ``error.too-many.requests``.

*How* "10 per second" is measured is not documented (the collection and the docs only give the
rate). The simulator must not be stricter than that text, so each limit is a token bucket (GCRA) of
``count`` tokens refilled at ``count / window`` per second: a full burst of ``count`` at once, then
one every ``window / count`` seconds. Any stream that respects a sliding window of ``count`` per
``window`` also passes the bucket (it is never stricter than that reading), and a client that paces
itself with the same bucket (burst 10, 10 per second) is never refused -- which a sliding window
would do, since such a client legitimately sends up to 19 requests within one second.

Which clock measures "a second" is a deliberate choice (see :class:`RateLimiter`):

* ``"sim"``  -- the simulated clock. Deterministic: with a frozen clock every request happens at
  the same instant, so the 11th request in a session is refused until the test advances the clock.
  This is how limit tests are written.
* ``"wall"`` -- the wall clock, as at the real broker. Right for standalone use and for driving a
  real client whose own throttle sleeps in real time (its sleeps never move a frozen sim clock).
  Arrival times jitter (the network, the scheduler), which can bunch two requests a client sent
  one interval apart, so the wall mode forgives half an interval (:data:`WALL_JITTER`).
* ``"off"``  -- no limits.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

MODES = ("sim", "wall", "off")
#: With the wall clock, how much of one emission interval an early arrival is forgiven.
WALL_JITTER = 0.5


@dataclass(frozen=True)
class Limit:
    """``count`` events per ``window`` seconds: a bucket of ``count`` tokens, one back every
    ``window / count`` seconds."""

    count: int
    window: float

    @property
    def interval(self) -> float:
        return self.window / self.count


SESSION_REQUESTS = Limit(10, 1.0)
LOGIN_PER_KEY = Limit(1, 1.0)
DEALS = Limit(1, 0.1)
DEALS_PER_HOUR = Limit(1000, 3600.0)


class RateLimiter:
    """Token buckets keyed by (limit name, subject); only admitted events take a token.

    Kept as GCRA: per bucket the "theoretical arrival time" ``tat``; an event at ``now`` is admitted
    when ``tat - now <= window - interval (+ jitter)``, and then moves ``tat`` one interval on.
    """

    def __init__(self, mode: str, sim_now: Callable[[], float]) -> None:
        if mode not in MODES:
            raise ValueError(f"rate limit mode must be one of {MODES}, not {mode!r}")
        self.mode = mode
        self._sim_now = sim_now
        self._tat: dict[tuple[str, str], float] = {}
        #: How many events were refused so far (a test's check that a paced client was never refused).
        self.refused = 0

    def now(self) -> float:
        return self._sim_now() if self.mode == "sim" else time.monotonic()

    def admit(self, checks: list[tuple[str, str, Limit]]) -> bool:
        """Take one token from every bucket, or none of them if any is empty."""
        if self.mode == "off":
            return True
        now = self.now()
        jitter = WALL_JITTER if self.mode == "wall" else 0.0
        updates = []
        for name, subject, limit in checks:
            tat = max(self._tat.get((name, subject), now), now)
            # A tiny tolerance so that "exactly one interval later" is allowed despite float noise.
            if tat - now > limit.window - limit.interval + jitter * limit.interval + 1e-9:
                self.refused += 1
                return False
            updates.append(((name, subject), tat + limit.interval))
        self._tat.update(updates)
        return True

    def reset(self) -> None:
        self._tat.clear()
