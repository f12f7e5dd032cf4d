"""Process-wide objects keyed by what the broker counts by (a gateway, an API key).

Brokers meter and identify clients per gateway, per API key, per connection id -- never per ccxt
exchange object. A bot framework that builds a sync and an async instance from one config, or two
bots in one process, must therefore share the pacer, the recent answers and the connection that the
broker sees as one client. This module is the one place such objects are kept.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

__all__ = ["fingerprint", "process_wide"]

T = TypeVar("T")

_OBJECTS: dict[Hashable, Any] = {}
_LOCK = threading.Lock()


def process_wide(key: Hashable, factory: Callable[[], T]) -> T:
    """The object kept for ``key``, made by ``factory`` the first time it is asked for."""
    with _LOCK:
        found = _OBJECTS.get(key)
        if found is None:
            found = _OBJECTS[key] = factory()
        return found  # type: ignore[no-any-return]


def fingerprint(*parts: object) -> str:
    """A key for secrets (an API key, a login) that keeps the secret itself out of any table or repr."""
    digest = hashlib.sha256("\x00".join(str(p) for p in parts).encode()).hexdigest()
    return digest[:24]
