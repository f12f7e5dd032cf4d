"""Shared broker connections: one per broker identity per process, on the event loop that owns it.

Why: a broker sees one client per connection identity -- IB refuses a second connection with the
same (host, port, clientId) (error 326), and paces per gateway. A bot framework that builds a sync
and an async exchange from one config, or two bots in one process, must share that connection:
opened by the first user, closed by the last ``close()``, with every exchange object served as if it
were alone.

The catch is the event loop: a client library's connection (ib_async's ``IB``) belongs to the loop
it was opened on. The sync face runs on a process-wide loop thread (:func:`process_loop`); the async
face runs on the caller's loop. So each connection has a *home* loop, and an exchange object whose
calls arrive on another loop runs them on the home loop (``run_coroutine_threadsafe``), awaiting the
answer on its own. The home is chosen when the connection is first used:

* an async face alone on its loop keeps the connection there: no hop, no added latency;
* otherwise (a sync face is among the users, or the first call comes from the process loop) the
  home is the process loop, which runs for as long as any user needs it. This is the case of the
  bot frameworks that drive their async instance with ``loop.run_until_complete`` between sync
  calls: their loop is idle between calls, so it could not host a connection the sync face uses.

Calls only ever hop *into the process loop*, which lives as long as anyone uses it. A connection homed
on an async face's own loop cannot be shared with an exchange object on another loop (that loop may
stop, or sit idle between ``run_until_complete`` calls, at any time, and the connection cannot move):
such a join fails at once with AuthenticationError naming the remedy (build the sync face first, or
use another clientId) -- what IB itself would answer with error 326, said clearly and before anything
is sent.

:func:`hop_to_home` wraps an async exchange class's public coroutines so that every call runs on the
instance's home loop; the class provides ``_home_key()`` (the identity, or None for "not shared")
and sets nothing else.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import ccxt

__all__ = [
    "SharedConnection",
    "hop_to_home",
    "process_loop",
    "release_process_loop",
    "shared_connection",
]

T = TypeVar("T")

_LOCK = threading.RLock()
_PROCESS_LOOP: Any = None  # the LoopThread (normalization.runtime.facade), created on demand
_PROCESS_USERS = 0


def process_loop() -> Any:
    """The process-wide loop thread shared by every sync exchange (and by connections homed there);
    each caller holds one reference until :func:`release_process_loop`."""
    global _PROCESS_LOOP, _PROCESS_USERS
    from .facade import LoopThread  # the facade imports this module

    with _LOCK:
        if _PROCESS_LOOP is None or not _PROCESS_LOOP.alive:
            _PROCESS_LOOP = LoopThread(name="ccxt-brokers-loop")
            _PROCESS_USERS = 0
        _PROCESS_USERS += 1
        return _PROCESS_LOOP


def release_process_loop(thread: Any) -> None:
    """Drop one reference; the last one stops the thread (a process with no exchange runs no thread)."""
    global _PROCESS_LOOP, _PROCESS_USERS
    with _LOCK:
        if thread is not _PROCESS_LOOP:
            return
        _PROCESS_USERS -= 1
        if _PROCESS_USERS > 0:
            return
        _PROCESS_LOOP = None
    thread.stop()


def on_process_loop() -> bool:
    thread = _PROCESS_LOOP
    if thread is None:
        return False
    try:
        return asyncio.get_running_loop() is thread.loop
    except RuntimeError:
        return False


@dataclass(eq=False)
class SharedConnection:
    """One broker connection and the exchange objects using it."""

    key: Hashable
    loop: asyncio.AbstractEventLoop
    holds_process_loop: Any = None  # the LoopThread reference held while homed there
    users: set[int] = field(default_factory=set)
    sync_users: set[int] = field(default_factory=set)
    #: The broker-specific connection object (e.g. an IBTransport), made by the first user on ``loop``.
    value: Any = None

    def get(self, factory: Callable[[], T]) -> T:
        if self.value is None:
            self.value = factory()
        return self.value  # type: ignore[no-any-return]


_CONNECTIONS: dict[Hashable, SharedConnection] = {}
_SYNC_INTENT: dict[Hashable, int] = {}  # sync faces constructed per key, whether connected yet or not


def announce_sync(key: Hashable, delta: int) -> None:
    """A sync face for ``key`` was built (+1) or closed (-1): it will need the connection on the process
    loop, so a connection opened meanwhile by an async face is homed there too."""
    with _LOCK:
        count = _SYNC_INTENT.get(key, 0) + delta
        if count > 0:
            _SYNC_INTENT[key] = count
        else:
            _SYNC_INTENT.pop(key, None)


def shared_connection(key: Hashable, user: object) -> SharedConnection:
    """Join (or open the record of) the connection ``key``, homed as the module doc says."""
    try:
        here: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:  # touched from plain sync code (a property read before any call)
        here = None
    with _LOCK:
        found = _CONNECTIONS.get(key)
        if found is not None and not found.loop.is_closed() and found.holds_process_loop is None \
                and found.loop is not here and found.users:
            raise ccxt.AuthenticationError(
                f"{key}: this connection is open on another exchange object's event loop and cannot be shared "
                "with this one (an event loop of its own); create the sync exchange before the async one "
                "connects, run both on one loop, or give this one its own clientId"
            )
        if found is None or found.loop.is_closed() or not found.users:
            if here is None or on_process_loop() or _SYNC_INTENT.get(key):
                thread = process_loop()
                found = SharedConnection(key, thread.loop, holds_process_loop=thread)
            else:
                found = SharedConnection(key, here)  # an async face alone: its own loop, no hop
            _CONNECTIONS[key] = found
        found.users.add(id(user))
        return found


def leave_connection(connection: SharedConnection, user: object) -> bool:
    """``user`` is done; True if it was the last one (the caller closes the connection, on its loop)."""
    with _LOCK:
        connection.users.discard(id(user))
        if connection.users:
            return False
        if _CONNECTIONS.get(connection.key) is connection:
            del _CONNECTIONS[connection.key]
        return True


def after_last_close(connection: SharedConnection) -> None:
    if connection.holds_process_loop is not None:
        thread, connection.holds_process_loop = connection.holds_process_loop, None
        release_process_loop(thread)


def _serviced(loop: asyncio.AbstractEventLoop) -> bool:
    """The process loop is always serviced while its thread lives, even between turns, when no thread
    is inside ``run_forever`` (its thread sleeps on it and wakes for the call; see loop_thread.py)."""
    thread = _PROCESS_LOOP
    return thread is not None and loop is thread.loop and thread.alive


async def run_home(loop: asyncio.AbstractEventLoop, coro: Any, what: str) -> Any:
    """Run ``coro`` on ``loop`` (another loop's thread) and await its outcome here."""
    if not (loop.is_running() or _serviced(loop)):
        coro.close()
        raise ccxt.ExchangeNotAvailable(
            f"{what}: this exchange shares its broker connection with an exchange whose event loop is not "
            "running; create the sync instance before the async one connects, or give it its own clientId"
        )
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))


def _public_coroutines(cls: type) -> dict[str, Callable[..., Any]]:
    found: dict[str, Callable[..., Any]] = {}
    for klass in cls.__mro__:
        if klass.__module__.startswith("ccxt.") or klass is object:
            break
        for name, value in vars(klass).items():
            if name.startswith("_") or name in found or not inspect.iscoroutinefunction(value):
                continue
            found[name] = value
    return found


def _hopping(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    async def hop(self: Any, *args: Any, **kwargs: Any) -> Any:
        # ``close`` of an object that never used a connection must not open a record (or fail to join one).
        loop = self._home_loop(create=name != "close")
        if loop is None:
            return await method(self, *args, **kwargs)
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover - coroutines always run on a loop
            running = None
        if running is loop:
            return await method(self, *args, **kwargs)
        return await run_home(loop, method(self, *args, **kwargs), f"{self.id}.{name}")

    hop.__hops_home__ = True  # type: ignore[attr-defined]
    return hop


def hop_to_home(cls: type[T]) -> type[T]:
    """Make every public coroutine of ``cls`` run on the instance's home loop (see the module doc).

    The instance's ``_home_loop(create=True)`` says where (None: wherever it is called); the first call
    of any method fixes it.
    """
    for name, method in _public_coroutines(cls).items():
        if getattr(method, "__hops_home__", False):
            continue
        setattr(cls, name, _hopping(name, method))
    return cls
