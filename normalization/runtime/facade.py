"""One implementation, two faces: the sync ccxt class over the async one.

Every adapter is written once, as a ``ccxt.async_support.Exchange`` subclass. The sync class a
plain ccxt bot uses is generated from it: it runs the async twin's coroutines on an event loop of
ours, kept running by a daemon thread (events are processed while the bot sleeps), with a bounded
wait (:mod:`normalization.runtime.loop_thread`: the calling thread runs the loop itself for the
length of its call when it can, so a call costs no thread hops). Because the loop is ours, the sync
API also works inside Jupyter or any caller that already runs a loop, where ib_async's own blocking
calls fail with "This event loop is already running".

That loop is one per process (``normalization.runtime.home.process_loop``), shared by every sync
exchange: broker connections shared between exchange objects (one IB connection per clientId) live
on it, so sync instances share them without crossing threads. It stops when the last user closes.

Rules the facade keeps:
- the sync and async instances share ``options`` and the market tables, so a bot that edits
  ``exchange.options`` or reads ``exchange.markets`` sees one state;
- a sync call that times out raises ``RequestTimeout`` but never cancels the coroutine: an
  order placement in flight completes (or fails) on the loop and lands in the journal, instead
  of being torn in half;
- ``close()`` closes the async twin on its loop, then releases the thread (the last user stops it).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
from collections.abc import Callable, Coroutine
from typing import Any, ClassVar, TypeVar

import ccxt
import ccxt.async_support

from .home import announce_sync, process_loop, release_process_loop
from .loop_thread import LoopThread

T = TypeVar("T")

#: Attributes that mirror the async twin's after ``load_markets``.
MARKET_ATTRIBUTES = (
    "markets",
    "markets_by_id",
    "symbols",
    "ids",
    "currencies",
    "currencies_by_id",
    "codes",
    "baseCurrencies",
    "quoteCurrencies",
)

DEFAULT_SYNC_TIMEOUT = 300.0

#: ccxt methods that are synchronous in both faces (pure, no I/O): the sync face calls the twin's directly.
SYNC_METHODS = ("calculate_fee",)


def _own_coroutines(async_class: type) -> list[str]:
    """Public coroutine methods the adapter defines (or overrides) above ccxt's async base."""
    names: set[str] = set()
    for klass in async_class.__mro__:
        if klass in (ccxt.async_support.Exchange,) or klass.__module__.startswith("ccxt."):
            break
        for name, value in vars(klass).items():
            if not name.startswith("_") and inspect.iscoroutinefunction(value):
                names.add(name)
    return sorted(names)


def _make_forwarder(name: str) -> Callable[..., Any]:
    def forward(self: SyncFacade, *args: Any, **kwargs: Any) -> Any:
        return self._call(name, *args, **kwargs)

    forward.__name__ = name
    forward.__qualname__ = f"SyncFacade.{name}"
    return forward


def _make_sync_forwarder(name: str) -> Callable[..., Any]:
    def forward(self: SyncFacade, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.impl, name)(*args, **kwargs)

    forward.__name__ = name
    return forward


class SyncFacade:
    """Mixin placed before ``ccxt.Exchange`` in a generated sync class.

    Subclasses set ``async_class``; ``__init_subclass__`` adds a blocking forwarder for every
    public coroutine that class defines, so a method written once exists in both faces.
    """

    async_class: ClassVar[type[ccxt.async_support.Exchange]]
    _forwarded: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        async_class = cls.__dict__.get("async_class")
        if async_class is None:
            return
        names = _own_coroutines(async_class)
        for name in names:
            if name in cls.__dict__ or name in ("load_markets", "close"):
                continue
            forwarder = _make_forwarder(name)
            original = getattr(async_class, name)
            functools.update_wrapper(forwarder, original, assigned=("__doc__",))
            setattr(cls, name, forwarder)
        cls._forwarded = tuple(names)
        for name in SYNC_METHODS:
            own = any(name in vars(k) for k in async_class.__mro__ if not k.__module__.startswith("ccxt."))
            if own and name not in cls.__dict__:
                setattr(cls, name, _make_sync_forwarder(name))

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        config = dict(config or {})
        self._loop_thread: LoopThread | None = None
        self._impl: ccxt.async_support.Exchange | None = None
        self._home_key: Any = None
        super().__init__(config)  # type: ignore[call-arg]
        self._loop_thread = process_loop()
        impl_config = dict(config)
        impl_config["options"] = self.options  # type: ignore[attr-defined]
        try:
            self._impl = self._loop_thread.run(_construct(self.async_class, impl_config), 30.0, "construct")
        except BaseException:
            release_process_loop(self._loop_thread)
            self._loop_thread = None
            raise
        home_key = getattr(self._impl, "_home_key", None)
        if callable(home_key):
            # A connection this face will share must live on the process loop, even if an async face
            # opens it first (see normalization.runtime.home).
            self._home_key = home_key()
            announce_sync(self._home_key, +1)
        # One options dict for both faces; the async twin may have normalised it. Likewise ``has``, which an
        # adapter may narrow to what its options load (e.g. spot or swap markets).
        self.options = self._impl.options  # type: ignore[attr-defined]
        self.has = self._impl.has  # type: ignore[attr-defined]

    # ccxt's describe() is shared: the async class provides ``description()`` overrides.
    def describe(self) -> Any:
        return self.deep_extend(super().describe(), self.async_class.description())  # type: ignore[misc, attr-defined]

    @property
    def impl(self) -> ccxt.async_support.Exchange:
        """The async twin doing the work (for tests and advanced users)."""
        if self._impl is None:
            raise ccxt.ExchangeClosedByUser("exchange is not constructed or already closed")
        return self._impl

    def _timeout(self) -> float:
        options = getattr(self, "options", {}) or {}
        return float(options.get("syncTimeout", DEFAULT_SYNC_TIMEOUT))

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        impl = self.impl
        method: Callable[..., Coroutine[Any, Any, Any]] = getattr(impl, name)
        assert self._loop_thread is not None
        # Forwarded methods are coroutine functions (see _own_coroutines): their coroutine runs as it is.
        result = self._loop_thread.run(method(*args, **kwargs), self._timeout(), f"{impl.id}.{name}")
        # Any method may load or replace the market tables on the loop thread (a symbol resolved
        # on demand); keep this face's tables the very objects the twin holds.
        if impl.markets is not None and self.markets is not impl.markets:  # type: ignore[has-type]
            self._mirror_markets()
        return result

    def _mirror_markets(self) -> None:
        impl = self.impl
        for attribute in MARKET_ATTRIBUTES:
            if hasattr(impl, attribute):
                setattr(self, attribute, getattr(impl, attribute))

    def load_markets(self, reload: bool = False, params: dict[str, Any] = {}) -> Any:
        if not reload and self.markets:  # type: ignore[has-type]
            return self.markets  # type: ignore[has-type]
        result = self._call("load_markets", reload, params)
        self._mirror_markets()
        return result

    def set_sandbox_mode(self, enabled: bool) -> None:
        impl = getattr(self, "_impl", None)
        if impl is None:
            # During ccxt's own __init__ (config sandbox=True): the twin gets the same config.
            self.isSandboxModeEnabled = bool(enabled)
            return
        impl.set_sandbox_mode(enabled)
        self.isSandboxModeEnabled = impl.isSandboxModeEnabled
        self.urls = impl.urls

    def close(self) -> None:
        thread, impl = self._loop_thread, self._impl
        if thread is None or impl is None or not thread.alive:
            return
        try:
            thread.run(impl.close(), 30.0, f"{impl.id}.close")
        finally:
            self._impl = None
            if self._home_key is not None:
                announce_sync(self._home_key, -1)
                self._home_key = None
            release_process_loop(thread)

    def __enter__(self) -> SyncFacade:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        thread = getattr(self, "_loop_thread", None)
        if thread is not None and thread.alive and getattr(self, "_impl", None) is not None:
            if threading.current_thread() is thread._thread or asyncio._get_running_loop() is thread.loop:
                return  # collected while running the loop itself: it cannot wait on itself
            try:
                self.close()
            except Exception:  # noqa: BLE001 - never raise from a finaliser
                pass


async def _construct(cls: type[T], config: dict[str, Any]) -> T:
    return cls(config)  # type: ignore[call-arg]
