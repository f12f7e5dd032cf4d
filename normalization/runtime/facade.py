"""One implementation, two faces: the sync ccxt class over the async one.

Every adapter is written once, as a ``ccxt.async_support.Exchange`` subclass. The sync class a
plain ccxt bot uses is generated from it: it runs the async twin's coroutines on an event loop of
ours on a daemon thread (``run_coroutine_threadsafe``) with a bounded wait. Because the loop is ours
and lives on its own thread, the sync API also works inside Jupyter or any caller that already runs
a loop, where ib_async's own blocking calls fail with "This event loop is already running".

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
import concurrent.futures
import functools
import inspect
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ClassVar, TypeVar

import ccxt
import ccxt.async_support

from .home import announce_sync, process_loop, release_process_loop

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


class LoopThread:
    """A private asyncio event loop running forever on a daemon thread."""

    def __init__(self, name: str = "ccxt-brokers-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()
        self._ready.wait()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        try:
            self.loop.run_forever()
        finally:
            pending = [task for task in asyncio.all_tasks(self.loop) if not task.done()]
            for task in pending:
                task.cancel()
            if pending:
                self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self.loop.is_closed()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None, what: str = "call") -> T:
        """Run ``coro`` on the loop and wait at most ``timeout`` seconds for its result."""
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError(f"{what}: the sync API was called from its own event loop thread")
        if not self.alive:
            coro.close()
            raise ccxt.ExchangeClosedByUser(f"{what}: the exchange is closed")
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        asyncio.run_coroutine_threadsafe(_deliver(coro, future), self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            raise ccxt.RequestTimeout(
                f"{what} did not finish within {timeout:g} s; it keeps running in the background "
                "and its outcome is recorded (no order is ever sent twice)"
            ) from None

    def stop(self, timeout: float = 10.0) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)


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
        method: Callable[..., Awaitable[Any]] = getattr(impl, name)
        assert self._loop_thread is not None
        result = self._loop_thread.run(_await(method(*args, **kwargs)), self._timeout(), f"{impl.id}.{name}")
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
            thread.run(_await(impl.close()), 30.0, f"{impl.id}.close")
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
            if threading.current_thread() is thread._thread:
                return  # collected on the loop thread itself: it cannot wait on itself
            try:
                self.close()
            except Exception:  # noqa: BLE001 - never raise from a finaliser
                pass


async def _construct(cls: type[T], config: dict[str, Any]) -> T:
    return cls(config)  # type: ignore[call-arg]


async def _deliver(coro: Coroutine[Any, Any, T], future: concurrent.futures.Future[T]) -> None:
    """Run ``coro`` and hand its outcome to the waiting thread the instant it has one.

    ``run_coroutine_threadsafe`` would hand it over from the task's done-callback, queued behind
    whatever the coroutine scheduled with ``call_soon`` -- the adapters' post-order journal writes --
    so the caller would wait for them too. Here the caller wakes first and that work follows."""
    try:
        value = await coro
    except BaseException as error:  # noqa: BLE001 - every outcome belongs to the caller
        if not future.cancelled():
            future.set_exception(error)
        if not isinstance(error, Exception):
            raise  # cancellation and interpreter exits still end this task
    else:
        if not future.cancelled():
            future.set_result(value)


async def _await(awaitable: Awaitable[T]) -> T:
    return await awaitable
