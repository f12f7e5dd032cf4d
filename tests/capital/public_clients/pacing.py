"""What every driver shares: pacing all HTTP of a ``requests``-based client, and recording calls.

Neither public client paces its requests. Capital.com documents 10 requests per second per user, so
the drivers pace for them, the way a careful client would: a token bucket of burst 10 refilled at 10
per second, in front of every request ``requests`` sends (``Session.request`` is what both
``requests.get`` and a ``Session`` go through). The simulator must never refuse such a client.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any


class TokenBucket:
    """Burst ``capacity``, then ``rate`` tokens a second; ``take`` sleeps until one is there."""

    def __init__(self, capacity: float = 10, rate: float = 10) -> None:
        self.capacity, self.rate = capacity, rate
        self.tokens, self.stamp = capacity, time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> None:
        with self.lock:
            while True:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
                self.stamp = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                time.sleep((1 - self.tokens) / self.rate)


def pace_requests(bucket: TokenBucket) -> None:
    import requests.sessions

    original = requests.sessions.Session.request

    def paced(self: Any, *args: Any, **kwargs: Any) -> Any:
        bucket.take()
        return original(self, *args, **kwargs)

    requests.sessions.Session.request = paced  # type: ignore[method-assign]


class Calls:
    """The outcome of each public call: ok, or why not (and whether the client's own bug is why)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def run(self, name: str, call: Callable[[], Any], check: Callable[[Any], str | None] = lambda _: None,
            *, client_bug: str | None = None) -> Any:
        """Run one call; ``check`` returns a problem with its result (None = fine)."""
        try:
            result = call()
            problem = check(result)
        except Exception as error:  # the client raised: that is this call's outcome
            result, problem = None, f"{type(error).__name__}: {error}"[:300]
            traceback.print_exc(file=sys.stderr)
        self.rows.append({"call": name, "ok": problem is None, "problem": problem, "client_bug": client_bug})
        return result

    def report(self) -> None:
        print(json.dumps(self.rows))


def no_error(result: Any) -> str | None:
    """A body-returning call succeeded when the body is not a broker refusal."""
    if isinstance(result, str):
        try:
            result = json.loads(result)
        except ValueError:
            return None
    if isinstance(result, dict) and "errorCode" in result:
        return f"refused: {result['errorCode']}"
    return None
