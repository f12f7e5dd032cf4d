"""ccxt.pro machinery shared by both brokers: futures per message hash, subscriptions, bounded caches.

ccxt.pro's contract is "each ``watch_x`` call resolves with the next update". Its own exchanges get
there through a WebSocket ``Client`` that keeps one future per *message hash* and resolves it when a
message for that hash arrives; several coroutines awaiting the same hash share the future (fan-out).
Our brokers do not speak ccxt's WebSocket (IB is a TCP socket owned by ib_async, Capital has its own
WebSocket and polls for account data), so the hub below is that part of ccxt's ``Client`` alone:

* :class:`StreamHub` — shared futures per hash (fan-out), the broker subscriptions behind them
  (started once, restarted after a reconnect by :meth:`StreamHub.resubscribe`, stopped by
  ``un_watch_*`` and ``close()``, which reject the waiting watchers as ccxt does: ``UnsubscribeError``,
  ``ExchangeClosedByUser``).
* :class:`StreamingExchange` — the mixin a broker's ``pro.py`` class puts in front of its async
  exchange: ``_watch`` (subscribe, then await the hash), the caches (ccxt.pro's own ``ArrayCache``
  family, bounded by the usual ``options`` limits) and ``close()``.
* :class:`SeenIds` — a bounded memory of delivered ids, so a fill or deal replayed by the broker after
  a reconnect is delivered once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import ccxt
from ccxt.async_support.base.ws.cache import (
    ArrayCache,
    ArrayCacheBySymbolById,
    ArrayCacheBySymbolBySide,
    ArrayCacheByTimestamp,
)
from ccxt.async_support.base.ws.future import Future

log = logging.getLogger("normalization.streams")

Starter = Callable[[], Awaitable[Any] | Any]

__all__ = [
    "ArrayCache",
    "ArrayCacheBySymbolById",
    "ArrayCacheBySymbolBySide",
    "ArrayCacheByTimestamp",
    "SeenIds",
    "StreamHub",
    "StreamingExchange",
    "Subscription",
]


async def _run(step: Starter | None) -> Any:
    if step is None:
        return None
    result = step()
    if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
        return await result
    return result


@dataclass
class Subscription:
    """One broker-side subscription: how to (re)start it, how to stop it, whose watchers it feeds."""

    key: str
    start: Starter
    stop: Starter | None = None
    hashes: set[str] = field(default_factory=set)


class StreamHub:
    """Futures by message hash and the subscriptions that feed them (one per exchange instance)."""

    def __init__(self, exchange_id: str) -> None:
        self.exchange_id = exchange_id
        self.futures: dict[str, Future] = {}
        self.subscriptions: dict[str, Subscription] = {}
        self.closed = False
        #: Hashes whose updates must not wait for a later one (orders, fills): an update that found no
        #: watcher is kept in ``unread`` and returned at once by the next watch.
        self.sticky: set[str] = set()
        self.unread: dict[str, Any] = {}
        self._starting: dict[str, asyncio.Future[Any]] = {}

    # ------------------------------------------------------------------ futures

    def future(self, message_hash: str) -> Future:
        """The future the next update for ``message_hash`` resolves; shared by every watcher of it."""
        if self.closed:
            raise ccxt.ExchangeClosedByUser(f"{self.exchange_id}: the exchange was closed")
        future = self.futures.get(message_hash)
        if future is None or future.done():
            future = Future()
            self.futures[message_hash] = future
        return future

    def watched(self, message_hash: str) -> bool:
        future = self.futures.get(message_hash)
        return future is not None and not future.done()

    def resolve(self, result: Any, message_hash: str) -> None:
        """Wake the watchers of ``message_hash`` (if any) with ``result``; the next watch waits anew."""
        future = self.futures.pop(message_hash, None)
        if future is not None and not future.done():
            future.set_result(result)
            self.unread.pop(message_hash, None)
        elif message_hash in self.sticky:
            self.unread[message_hash] = result

    def reject(self, error: BaseException, message_hashes: Iterable[str] | None = None) -> None:
        """Fail the watchers of these hashes (all hashes when None)."""
        keys = list(self.futures) if message_hashes is None else list(message_hashes)
        for key in keys:
            future = self.futures.pop(key, None)
            if future is not None and not future.done():
                future.set_exception(error)
                future.add_done_callback(_consume)  # nobody may be waiting: no "never retrieved" noise

    # ------------------------------------------------------------------ subscriptions

    async def subscribe(self, key: str, start: Starter, stop: Starter | None = None,
                        hashes: Iterable[str] = ()) -> None:
        """Start the broker subscription ``key`` unless it runs already (concurrent callers share one start)."""
        if self.closed:
            raise ccxt.ExchangeClosedByUser(f"{self.exchange_id}: the exchange was closed")
        known = self.subscriptions.get(key)
        if known is not None:
            known.hashes.update(hashes)
            return
        pending = self._starting.get(key)
        if pending is not None:
            await asyncio.shield(pending)
            return
        loop = asyncio.get_running_loop()
        pending = loop.create_future()
        self._starting[key] = pending
        try:
            await _run(start)
        except BaseException as exc:
            if not pending.done():
                pending.set_exception(exc)
                pending.add_done_callback(_consume)
            raise
        finally:
            self._starting.pop(key, None)
        if not pending.done():
            pending.set_result(None)
        self.subscriptions[key] = Subscription(key, start, stop, set(hashes))

    async def unsubscribe(self, key: str) -> bool:
        """Stop ``key`` at the broker and fail its watchers with ``UnsubscribeError``; False if unknown."""
        sub = self.subscriptions.pop(key, None)
        if sub is None:
            return False
        for message_hash in sub.hashes:
            self.unread.pop(message_hash, None)
        self.reject(ccxt.UnsubscribeError(f"{self.exchange_id}: unsubscribed from {key}"), sub.hashes)
        try:
            await _run(sub.stop)
        except Exception as exc:  # noqa: BLE001 - the watchers are gone either way; the broker may be too
            log.debug("%s: stopping %s failed: %s", self.exchange_id, key, exc)
        return True

    async def resubscribe(self) -> None:
        """Start every subscription again (after a reconnect the broker has forgotten them all)."""
        for sub in list(self.subscriptions.values()):
            try:
                await _run(sub.start)
            except Exception as exc:  # noqa: BLE001 - one failing stream must not starve the others
                log.warning("%s: resubscribing %s failed: %s", self.exchange_id, sub.key, exc)
                self.reject(exc if isinstance(exc, ccxt.BaseError) else ccxt.NetworkError(str(exc)), sub.hashes)

    async def close(self) -> None:
        """Stop every subscription and fail every watcher with ``ExchangeClosedByUser``."""
        if self.closed:
            return
        self.closed = True
        subs, self.subscriptions = list(self.subscriptions.values()), {}
        self.reject(ccxt.ExchangeClosedByUser(f"{self.exchange_id}: the exchange was closed"))
        for sub in subs:
            try:
                await _run(sub.stop)
            except Exception as exc:  # noqa: BLE001
                log.debug("%s: stopping %s on close failed: %s", self.exchange_id, sub.key, exc)


def _consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


class SeenIds:
    """The last ``size`` ids delivered, so a replay (a broker's catch-up after a reconnect) is skipped."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, key: object) -> bool:
        return key in self._ids

    def add(self, key: str) -> bool:
        """Remember ``key``; True if it is new."""
        if key in self._ids:
            return False
        self._ids[key] = None
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)
        return True


class StreamingExchange:
    """Mixin for a broker's ``ccxt.pro`` class: put it before the async exchange in the bases.

    Caches follow ccxt.pro: ``options['tradesLimit']`` (trades and fills), ``options['ordersLimit']``,
    ``options['OHLCVLimit']``; ``newUpdates`` (ccxt's default True) makes each watch return only what
    arrived since the previous call.
    """

    _hub: StreamHub | None = None

    @property
    def hub(self) -> StreamHub:
        if self._hub is None:
            self._hub = StreamHub(self.id)  # type: ignore[attr-defined]
        return self._hub

    def stream_limit(self, name: str, default: int = 1000) -> int:
        return int(self.options.get(name) or default)  # type: ignore[attr-defined]

    async def _watch(self, message_hash: str, key: str, start: Starter, stop: Starter | None = None,
                     sticky: bool = False) -> Any:
        """Make sure ``key`` is subscribed, then wait for the next update on ``message_hash``.

        The future is taken before the subscription starts: the first update may arrive while the
        start is still being awaited (IB answers a subscription with its current state at once).
        ``sticky`` (order and fill streams): updates that arrived while no call was waiting -- a fill
        caught up during a reconnect, say -- are returned at once instead of after the next update
        (ccxt.pro would wait for the next message; a bot's last fill would then sit unseen).
        """
        hub = self.hub
        if sticky:
            hub.sticky.add(message_hash)
            if message_hash in hub.unread and key in hub.subscriptions:
                return hub.unread.pop(message_hash)
        future = hub.future(message_hash)
        await hub.subscribe(key, start, stop, (message_hash,))
        return await future

    async def _watch_any(self, message_hashes: list[str], subscriptions: list[tuple[str, Starter, Starter | None]]
                         ) -> Any:
        """Subscribe to all and resolve with the first update on any of ``message_hashes``."""
        futures = [self.hub.future(h) for h in message_hashes]
        for (key, start, stop), message_hash in zip(subscriptions, message_hashes, strict=False):
            await self.hub.subscribe(key, start, stop, (message_hash,))
        return await Future.race(futures)

    async def watch_tickers(self, symbols: list[str] | None = None, params: dict[str, Any] = {}) -> dict[str, Any]:
        """The next quote change among ``symbols`` (all loaded markets when None), as {symbol: ticker}.

        Written once for both brokers: each supplies ``_ticker_subscription(market)``, the (start, stop)
        pair that subscribes one market's quotes on its own wire.
        """
        await self.load_markets()  # type: ignore[attr-defined]
        markets = [await self._market(s) for s in (symbols or list(self.symbols or []))]  # type: ignore[attr-defined]
        if not markets:
            raise ccxt.ArgumentsRequired(f"{self.id} watch_tickers needs symbols (no markets are loaded)")  # type: ignore[attr-defined]
        hashes = ["ticker:" + m["symbol"] for m in markets]
        subs = [("ticker:" + m["symbol"], *self._ticker_subscription(m)) for m in markets]  # type: ignore[attr-defined]
        ticker = await self._watch_any(hashes, subs)
        return {ticker["symbol"]: ticker}

    async def un_watch_ticker(self, symbol: str, params: dict[str, Any] = {}) -> Any:
        market = await self._market(symbol)  # type: ignore[attr-defined]
        return await self.hub.unsubscribe("ticker:" + market["symbol"])

    async def un_watch_tickers(self, symbols: list[str] | None = None, params: dict[str, Any] = {}) -> Any:
        keys = [k for k in list(self.hub.subscriptions) if k.startswith("ticker:")]
        if symbols:
            keys = ["ticker:" + (await self._market(s))["symbol"] for s in symbols]  # type: ignore[attr-defined]
        for key in keys:
            await self.hub.unsubscribe(key)
        return True

    def _since_limit(self, cache: Any, symbol: str | None, since: int | None, limit: int | None,
                     by_symbol: bool = True) -> list[Any]:
        """ccxt.pro's tail of a cache: only the new updates when ``newUpdates`` is on."""
        if self.newUpdates:  # type: ignore[attr-defined]
            limit = cache.getLimit(symbol, limit)
        if by_symbol:
            return self.filter_by_symbol_since_limit(cache, symbol, since, limit, True)  # type: ignore[attr-defined]
        return self.filter_by_since_limit(cache, since, limit, 0, True)  # type: ignore[attr-defined]

    async def close(self) -> None:
        if self._hub is not None:
            await self._hub.close()
        await super().close()  # type: ignore[misc]
