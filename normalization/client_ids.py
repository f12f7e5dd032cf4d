"""clientOrderId: our handle on an order across retries, restarts and brokers.

IB carries it in ``orderRef`` and echoes it on every order and execution; Capital.com has no
such field, so the journal maps it to the dealReference. A prefix marks the orders this bot
placed, so ``fetch_open_orders`` can leave alone what a human or another bot put there.
"""

from __future__ import annotations

import functools
import itertools
import os
import re
import secrets

from ccxt.base.errors import InvalidOrder

DEFAULT_PREFIX = "ccxt-"
MAX_LENGTH = 64  # comfortably inside IB's orderRef; the journal key too
_ALLOWED = re.compile(r"^[A-Za-z0-9._:\-]+$")


def validate_prefix(prefix: str) -> str:
    if not isinstance(prefix, str) or len(prefix) > 24 or (prefix and not _ALLOWED.match(prefix)):
        raise InvalidOrder(f"clientOrderId prefix {prefix!r} must be up to 24 of A-Z a-z 0-9 . _ : -")
    return prefix


_valid_prefix = functools.lru_cache(maxsize=64)(validate_prefix)


class _Sequence:
    """A random 80-bit stem per process and a counter: ids unique without coordinating, and without
    asking the OS for randomness on every order (a syscall, the dearest part of a uuid4 in a VM).
    A forked child draws its own stem, so parent and child never share ids."""

    def __init__(self) -> None:
        self.reseed()
        os.register_at_fork(after_in_child=self.reseed)

    def reseed(self) -> None:
        self.stem = secrets.token_hex(10)
        self.counter = itertools.count()

    def next(self) -> str:
        return self.stem + format(next(self.counter) & 0xFFFF_FFFF_FFFF, "012x")


_SEQUENCE = _Sequence()


def generate(prefix: str = DEFAULT_PREFIX) -> str:
    """``<prefix><32 hex>``: a per-process random stem and a counter, so two processes never collide."""
    return _valid_prefix(prefix) + _SEQUENCE.next()


def validate(client_order_id: object) -> str:
    if not isinstance(client_order_id, str) or not client_order_id:
        raise InvalidOrder(f"clientOrderId must be a non-empty string, got {client_order_id!r}")
    if len(client_order_id) > MAX_LENGTH:
        raise InvalidOrder(f"clientOrderId {client_order_id!r} is longer than {MAX_LENGTH} characters")
    if not _ALLOWED.match(client_order_id):
        raise InvalidOrder(f"clientOrderId {client_order_id!r} may only contain A-Z a-z 0-9 . _ : -")
    return client_order_id


def is_own(client_order_id: str | None, prefix: str = DEFAULT_PREFIX) -> bool:
    """True if the id carries this bot's prefix (an empty prefix claims nothing)."""
    return bool(prefix) and isinstance(client_order_id, str) and client_order_id.startswith(prefix)


def supplied(params: dict[str, object]) -> str | None:
    """The caller's own ``clientOrderId`` (ccxt's param; ``clientOid`` / ``newClientOrderId`` too), checked."""
    for key in ("clientOrderId", "clientOid", "newClientOrderId"):
        value = params.get(key)
        if value is not None:
            return validate(value)
    return None


def take_or_generate(params: dict[str, object], prefix: str = DEFAULT_PREFIX) -> str:
    """The caller's ``clientOrderId`` or a new one."""
    return supplied(params) or generate(prefix)
