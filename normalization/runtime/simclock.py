"""A clock that simulators read instead of the wall clock.

Both simulators must behave deterministically under test: order expiries, session timeouts,
pacing windows and price paths all hang off one notion of "now" that a test can move forward
explicitly. In standalone mode the clock follows the wall clock (optionally offset), so a human
running the demo sees live-looking prices.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

Listener = Callable[[float], None]


class SimClock:
    """Epoch-seconds clock, either frozen (test-driven) or following real time.

    ``advance`` and ``set`` notify listeners so that a simulator can run what became due
    (trigger stops, expire DAY orders, charge overnight funding) at the moment time moves,
    instead of polling.
    """

    def __init__(self, start: float | None = None, *, real_time: bool = False) -> None:
        self._lock = threading.RLock()
        self._real_time = real_time
        base = time.time() if start is None else float(start)
        # In real-time mode `_offset` is added to the wall clock; frozen mode keeps `_now`.
        self._offset = base - time.time()
        self._now = base
        self._listeners: list[Listener] = []

    @property
    def real_time(self) -> bool:
        return self._real_time

    def now(self) -> float:
        with self._lock:
            if self._real_time:
                return time.time() + self._offset
            return self._now

    def now_ms(self) -> int:
        return int(self.now() * 1000)

    def set(self, when: float) -> None:
        """Jump to an absolute time; going backwards is refused since brokers never do it."""
        with self._lock:
            current = self.now()
            if when < current:
                raise ValueError(f"SimClock cannot go backwards ({when} < {current})")
            if self._real_time:
                self._offset += when - current
            else:
                self._now = float(when)
        self._notify(when)

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("SimClock.advance needs a non-negative number of seconds")
        target = self.now() + seconds
        self.set(target)
        return target

    def subscribe(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def _notify(self, when: float) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(when)
