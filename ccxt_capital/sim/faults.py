"""Faults a test can ask for: error statuses, 429 bursts, slow replies, dropped connections,
sessions that expire early and confirms that stay pending.

Rules are matched per request by method and path (a substring of the path after ``/api/v1``) and
consumed: ``times=3`` affects the next three matching requests. All methods are thread-safe so a
test thread can arm faults while the server thread serves.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

KINDS = ("status", "delay", "drop_before", "drop_after", "expire_session")


@dataclass
class FaultRule:
    """One armed fault; ``times`` counts the matching requests it still affects."""

    kind: str
    times: int = 1
    method: str | None = None
    path: str | None = None
    status: int = 500
    code: str = "error.internal"
    delay: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path is None or self.path in path


class FaultPlan:
    """The armed faults of one simulator."""

    def __init__(self, on_pending: Callable[[float, int, int], None],
                 on_expire: Callable[[], int]) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._on_pending = on_pending
        self._on_expire = on_expire

    def add(self, rule: FaultRule) -> FaultRule:
        if rule.kind not in KINDS:
            raise ValueError(f"fault kind must be one of {KINDS}")
        with self._lock:
            self._rules.append(rule)
        return rule

    def take(self, method: str, path: str) -> list[FaultRule]:
        """The rules that fire for this request (at most one of each kind), each used once."""
        fired: list[FaultRule] = []
        kinds: set[str] = set()
        with self._lock:
            for rule in self._rules:
                if rule.times > 0 and rule.kind not in kinds and rule.matches(method, path):
                    rule.times -= 1
                    kinds.add(rule.kind)
                    fired.append(rule)
            self._rules = [rule for rule in self._rules if rule.times > 0]
        return fired

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    @property
    def armed(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    # -- convenience ---------------------------------------------------------------------
    def fail(self, status: int = 500, code: str = "error.internal", *, times: int = 1,
             method: str | None = None, path: str | None = None) -> FaultRule:
        """Answer ``status`` with ``{"errorCode": code}`` without touching the books."""
        return self.add(FaultRule("status", times, method, path, status=status, code=code))

    def too_many_requests(self, times: int = 1, *, method: str | None = None,
                          path: str | None = None) -> FaultRule:
        """A burst of 429 ``error.too-many.requests`` regardless of the real counters."""
        return self.fail(429, "error.too-many.requests", times=times, method=method, path=path)

    def slow(self, seconds: float, *, times: int = 1, method: str | None = None,
             path: str | None = None) -> FaultRule:
        """Delay the reply by ``seconds`` of wall time (for client timeouts) before handling it."""
        return self.add(FaultRule("delay", times, method, path, delay=seconds))

    def drop(self, *, after: bool = False, times: int = 1, method: str | None = None,
             path: str | None = None) -> FaultRule:
        """Close the connection without a reply, before the request is handled or after it was
        (``after=True``: the deal is booked but the client never hears of it)."""
        return self.add(FaultRule("drop_after" if after else "drop_before", times, method, path))

    def expire_session(self, *, times: int = 1, method: str | None = None,
                       path: str | None = None) -> FaultRule:
        """End all sessions when a matching request arrives, so it gets 401."""
        return self.add(FaultRule("expire_session", times, method, path))

    def expire_sessions_now(self) -> int:
        """End every session at once (an early expiry); returns how many ended."""
        return self._on_expire()

    def pending_confirms(self, *, seconds: float = 0.0, polls: int = 0, deals: int = 1) -> None:
        """The next ``deals`` confirms answer 404 ``error.not-found.dealReference`` for ``polls``
        reads and until ``seconds`` of simulated time have passed, like a slow dealing desk."""
        self._on_pending(seconds, polls, deals)
