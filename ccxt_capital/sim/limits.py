"""Rate limits as the broker enforces them, measured on a chosen time source.

Capital.com allows 10 requests per second per session, one ``POST /session`` per second per API
key, one ``POST /positions`` or ``POST /workingorders`` per 0.1 s, and (demo) 1000 of those per
hour. Over the limit the answer is 429 ``error.too-many.requests``.

Which clock measures "a second" is a deliberate choice (see :class:`RateLimiter`):

* ``"sim"``  -- the simulated clock. Deterministic: with a frozen clock every request happens at
  the same instant, so the 11th request in a session is refused until the test advances the clock.
  This is how limit tests are written.
* ``"wall"`` -- the wall clock, as at the real broker. Right for standalone use and for driving a
  real client whose own throttle sleeps in real time (its sleeps never move a frozen sim clock).
* ``"off"``  -- no limits.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

MODES = ("sim", "wall", "off")


@dataclass(frozen=True)
class Limit:
    """At most ``count`` events per ``window`` seconds."""

    count: int
    window: float


SESSION_REQUESTS = Limit(10, 1.0)
LOGIN_PER_KEY = Limit(1, 1.0)
DEALS = Limit(1, 0.1)
DEALS_PER_HOUR = Limit(1000, 3600.0)


class RateLimiter:
    """Sliding-window counters keyed by (limit name, subject); only admitted events count."""

    def __init__(self, mode: str, sim_now: Callable[[], float]) -> None:
        if mode not in MODES:
            raise ValueError(f"rate limit mode must be one of {MODES}, not {mode!r}")
        self.mode = mode
        self._sim_now = sim_now
        self._events: dict[tuple[str, str], deque[float]] = {}

    def now(self) -> float:
        return self._sim_now() if self.mode == "sim" else time.monotonic()

    def admit(self, checks: list[tuple[str, str, Limit]]) -> bool:
        """Count one event against every check, or none of them if any is full."""
        if self.mode == "off":
            return True
        now = self.now()
        windows = []
        for name, subject, limit in checks:
            events = self._events.setdefault((name, subject), deque())
            # A tiny tolerance so that "exactly one window later" is allowed despite float noise.
            while events and events[0] <= now - limit.window + 1e-9:
                events.popleft()
            if len(events) >= limit.count:
                return False
            windows.append(events)
        for events in windows:
            events.append(now)
        return True

    def reset(self) -> None:
        self._events.clear()
