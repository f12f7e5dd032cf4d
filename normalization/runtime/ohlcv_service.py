"""``fetch_ohlcv`` for both brokers: ccxt's since/limit/until turned into bar windows, served from the
on-disk cache when it is switched on, resampled when the broker lacks the timeframe.

Why one module: a bot's ``fetch_ohlcv(symbol, "1h", since, limit, {"until": ...})`` must mean the same
thing at IB and at Capital.com, and a backtest re-run must ask *neither* broker for bars it already
has. The adapters therefore supply only ``fetch_range(a, b)`` -- "the broker's bars whose start lies in
``[a, b)``", paginated and paced by the adapter; their own ``fetch_ohlcv(symbol, tf, a, None, {"until":
b - 1})`` is exactly that -- and :class:`CachedOhlcvMixin`, composed in front of each adapter by
:func:`with_runner_mixins`, calls :func:`fetch_ohlcv_via_cache` with it, which owns:

- **the window.** ``since``+``limit`` = the first ``limit`` bars at or after ``since``; ``limit`` alone
  = the last ``limit`` bars up to now (or up to ``params["until"]``); ``since``+``until`` = every bar in
  between (``until`` is inclusive, as in ccxt), cut to ``limit`` when given; ``since`` alone = every
  bar up to now (a backtest's "from this date"). Stocks have nights, weekends and holidays, so
  ``limit * timeframe`` of wall time rarely holds ``limit`` bars: the window is widened (doubling)
  until it does or the search gives up, and with the cache on a widening asks only for the new part;
- **the cache.** Off by default; ``options["ohlcvCache"]`` = ``True`` (per-user cache dir, see
  :func:`~normalization.runtime.ohlcv_cache.default_cache_root`), a directory, or an
  :class:`~normalization.runtime.ohlcv_cache.OhlcvCache`; or ``$CCXT_BROKERS_OHLCV_CACHE`` = ``1`` / a
  directory for runners configured by environment. Off by default because the cache key cannot tell
  a simulator from a paper or a live server (the bars differ) and because a live bot should not
  write to the user's disk unasked; backtests and the examples switch it on. ``options
  ["ohlcvCacheNamespace"]`` (default the exchange id) separates such sources inside one directory;
- **resampling.** A timeframe the broker lacks (``source_timeframe`` given, e.g. 1M from 1d at
  Capital.com) is built from the cached source bars, so the 1d cache also serves 1M and a half-built
  month is never stored: only source bars are. Daily bars open at the *exchange's* midnight (Tokyo's
  is 15:00 UTC the day before), so they are assigned to weeks/months by their midday, not by their
  UTC open;
- **partial bars.** The bar still forming at ``now`` is returned (as ccxt exchanges do) but never
  stored; ``now`` should be the *broker's* clock (the simulators run on simulated time), which is why
  ``now_ms`` may be a callable such as ``exchange.fetch_time``.

DST and holidays need no calendar here: the cache records the intervals it asked for, not a bar
grid, so an hour that moved with DST or a holiday that returned nothing is never asked again.
"""

from __future__ import annotations

import inspect
import os
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..arguments import check_fetch
from ..timeframes import (
    CAPITAL_MAX_BARS,
    IB_BAR_SIZES,
    ib_max_duration_seconds,
)
from .ohlcv_cache import CacheKey, ExpectedTimes, OhlcvCache
from .resample import bucket_start_ms, parse_timeframe, resample_ohlcv, timeframe_to_ms

__all__ = [
    "OHLCV_CACHE_OPTION",
    "OHLCV_CACHE_ENV",
    "DEFAULT_LIMIT",
    "cache_for",
    "default_chunk_ms",
    "fetch_ohlcv_via_cache",
    "ohlcv_window",
    "NowSource",
    "CachedOhlcvMixin",
    "with_runner_mixins",
]

OHLCV_CACHE_OPTION = "ohlcvCache"
OHLCV_CACHE_ENV = "CCXT_BROKERS_OHLCV_CACHE"
#: Bars returned when neither ``since`` nor ``limit`` is given, unless the exchange sets
#: ``options["ohlcvDefaultLimit"]`` (ccxt exchanges use 500-1000).
DEFAULT_LIMIT = 500
#: How many times a window may double while looking for ``limit`` bars (2**8 = 256x ``limit`` bars
#: of wall time: a year of hourly stock bars for limit=500 is ~10x, so this is ample).
MAX_WIDENINGS = 8

_DAY_MS = 86_400_000
_FALSE = {"", "0", "false", "no", "off"}
_TRUE = {"1", "true", "yes", "on"}

Row = list
FetchRange = Callable[[int, int], Awaitable[Sequence[Sequence[Any]]]]
#: ``now`` in ms, or something that produces it (``exchange.fetch_time``, sync or async).
NowSource = int | float | Callable[[], Any] | None

# One OhlcvCache per exchange instance (it holds asyncio locks and the fetch counter), rebuilt when
# the option changes. Weak keys: the cache goes away with the exchange.
_CACHES: weakref.WeakKeyDictionary[Any, tuple[Any, OhlcvCache]] = weakref.WeakKeyDictionary()


def _options(exchange: Any) -> Mapping[str, Any]:
    options = getattr(exchange, "options", None)
    return options if isinstance(options, Mapping) else {}


def _setting(exchange: Any) -> Any:
    """The effective cache setting: the option wins, then the environment variable."""
    options = _options(exchange)
    if OHLCV_CACHE_OPTION in options and options[OHLCV_CACHE_OPTION] is not None:
        return options[OHLCV_CACHE_OPTION]
    raw = os.environ.get(OHLCV_CACHE_ENV, "").strip()
    if raw.lower() in _FALSE:
        return False
    if raw.lower() in _TRUE:
        return True
    return raw


def cache_for(exchange: Any) -> OhlcvCache | None:
    """The :class:`OhlcvCache` ``exchange`` should use, or ``None`` when caching is off.

    ``options["ohlcvCache"]``: ``False``/``None`` off, ``True`` default dir, a path, or a cache object;
    ``options["ohlcvProgress"]``: ``None`` (a bar when stderr is a TTY), ``True`` or ``False``.
    """
    setting = _setting(exchange)
    if setting is False or setting is None:
        return None
    if isinstance(setting, OhlcvCache):
        return setting
    if setting is not True and not isinstance(setting, (str, os.PathLike)):
        raise TypeError(f"options[{OHLCV_CACHE_OPTION!r}] must be a bool, a directory or an OhlcvCache")
    progress = _options(exchange).get("ohlcvProgress")
    marker = (True if setting is True else str(Path(setting).expanduser()), progress)
    hit = _CACHES.get(exchange)
    if hit is not None and hit[0] == marker:
        return hit[1]
    cache = OhlcvCache(None if setting is True else setting, progress=progress)
    _CACHES[exchange] = (marker, cache)
    return cache


def default_chunk_ms(exchange_id: str, timeframe: str) -> int:
    """The span one broker request can cover for ``timeframe``, used to split long downloads.

    Chunks are the unit of progress and of resumption (the cache writes after each), and matching
    them to the broker's maximum request keeps the request count at the minimum: IB's duration
    table (``1 M`` for 1-hour bars), Capital.com's 1000 bars, else 1000 bars.

    One bar less than the maximum: each chunk is asked for with one bar of overlap at its end (see
    :func:`fetch_ohlcv_via_cache`), and chunk + overlap must still fit in one request.
    """
    tf_ms = timeframe_to_ms(timeframe)
    if exchange_id == "ibkr" and timeframe in IB_BAR_SIZES:
        span = ib_max_duration_seconds(IB_BAR_SIZES[timeframe]) * 1000
    elif exchange_id == "capitalcom":
        span = CAPITAL_MAX_BARS * tf_ms
    else:
        span = 1000 * tf_ms
    return max(span - tf_ms, tf_ms)


async def _resolve_now(now_ms: NowSource, exchange: Any) -> int:
    if now_ms is None:
        return int(exchange.milliseconds())
    if callable(now_ms):
        value = now_ms()
        if inspect.isawaitable(value):
            value = await value
        return int(value)
    return int(now_ms)


def _until_param(params: Mapping[str, Any] | None) -> int | None:
    """ccxt's ``params["until"]`` (ms, inclusive); ``till`` is accepted as older ccxt code used it."""
    if not params:
        return None
    for key in ("until", "till"):
        value = params.get(key)
        if value is not None:
            return int(value)
    return None


def ohlcv_window(
    timeframe: str, since: int | None, limit: int | None, until: int | None, now_ms: int
) -> tuple[int, int, str]:
    """The first window ``[a, b)`` to look at and the direction to widen it in.

    Direction ``"forward"``: keep the first ``limit`` bars (``since`` given); ``"backward"``: keep the
    last ``limit`` (no ``since``); ``"fixed"``: the window is the answer (``since`` + ``until``, or
    ``since`` alone up to now).
    """
    tf_ms = timeframe_to_ms(timeframe)
    end = now_ms + 1 if until is None else min(int(until) + 1, now_ms + 1)
    if since is not None:
        since = int(since)
        if until is not None or limit is None:
            return since, max(end, since), "fixed"
        return since, max(min(since + limit * tf_ms, now_ms + 1), since), "forward"
    count = limit if limit is not None else DEFAULT_LIMIT
    return end - count * tf_ms, end, "backward"


def _daily_or_longer(timeframe: str) -> bool:
    amount, unit = parse_timeframe(timeframe)
    return unit in ("d", "w", "M", "y")


def _resample(rows: Sequence[Sequence[Any]], source_tf: str, target_tf: str) -> list[Row]:
    """Resample, bucketing daily-or-longer source bars by their midday (exchange-local midnight opens)."""
    if not rows:
        return []
    if not _daily_or_longer(source_tf):
        return resample_ohlcv(rows, target_tf)
    shift = _DAY_MS // 2
    shifted = [[int(r[0]) + shift, *r[1:6]] for r in rows]
    return resample_ohlcv(shifted, target_tf)


async def fetch_ohlcv_via_cache(
    exchange: Any,
    symbol: str,
    timeframe: str = "1m",
    since: int | None = None,
    limit: int | None = None,
    params: Mapping[str, Any] | None = None,
    *,
    fetch_range: FetchRange,
    price_kind: str = "TRADES",
    instrument: str | None = None,
    source_timeframe: str | None = None,
    now_ms: NowSource = None,
    chunk_ms: int | None = None,
    expected_times: ExpectedTimes | None = None,
    cache: OhlcvCache | None | bool = True,
) -> list[Row]:
    """ccxt ``fetch_ohlcv`` semantics over ``fetch_range``, through the cache when it is on.

    ``fetch_range(a, b)`` returns the broker's ``source_timeframe`` bars (default ``timeframe``) with
    start in ``[a, b)``, ``[]`` for none. ``instrument`` names the series in the cache (IB conId, Capital
    epic; default ``symbol``) and ``price_kind`` its price (IB whatToShow, Capital bid/ask/mid).
    ``cache``: ``True`` = decide from the exchange's options (:func:`cache_for`), ``False``/``None`` =
    no cache, or a cache object. ``chunk_ms`` defaults to :func:`default_chunk_ms`.

    Returns rows ``[ms, open, high, low, close, volume]`` sorted by time, at most ``limit`` of them.
    """
    if limit is not None and int(limit) <= 0:
        return []
    limit = None if limit is None else int(limit)
    source_tf = source_timeframe or timeframe
    resampled = source_tf != timeframe
    tf_ms = timeframe_to_ms(timeframe)
    src_ms = timeframe_to_ms(source_tf)
    store = cache_for(exchange) if cache is True else (cache or None)
    now = await _resolve_now(now_ms, exchange)
    until = _until_param(params)
    exchange_id = str(getattr(exchange, "id", "") or "exchange")
    namespace = str(_options(exchange).get("ohlcvCacheNamespace") or exchange_id)
    key = CacheKey(namespace, instrument or symbol, source_tf, price_kind)
    chunk = chunk_ms if chunk_ms is not None else default_chunk_ms(exchange_id, source_tf)

    async def fetch_whole_bars(a: int, b: int) -> list[Sequence[Any]]:
        # A request ending inside a bar gets that bar cut short (IB builds its last bar up to the
        # request's end; a month asked up to the 6th holds six days), and the cache would keep it as
        # final. So ask one bar further than the chunk and keep the bars starting in [a, b).
        end = b if b > now else min(b + src_ms, now + 1)
        rows = await fetch_range(a, end)
        return [r for r in rows if a <= int(r[0]) < b]

    async def load_source(a: int, b: int) -> list[Row]:
        if b <= a:
            return []
        if store is not None:
            return await store.get(key, a, b, fetch_whole_bars, src_ms, now, expected_times, chunk_ms=chunk)
        rows = await fetch_range(a, b)
        return sorted(([int(r[0]), *r[1:6]] for r in rows if a <= int(r[0]) < b), key=lambda r: r[0])

    async def load(a: int, b: int) -> list[Row]:
        """Bars of ``timeframe`` starting in ``[a, b)``."""
        if not resampled:
            return await load_source(a, b)
        # Whole buckets only: from the start of the bucket holding `a` to the end of the one holding
        # b-1, plus a day either side for daily bars whose open is the exchange's, not UTC's, midnight.
        first = bucket_start_ms(a, timeframe)
        last_end = bucket_start_ms(max(b - 1, a), timeframe) + tf_ms
        pad = _DAY_MS if _daily_or_longer(source_tf) else 0
        rows = await load_source(first - pad, min(last_end + pad, now + 1))
        return [r for r in _resample(rows, source_tf, timeframe) if a <= int(r[0]) < b]

    if limit is None and since is None:
        limit = int(_options(exchange).get("ohlcvDefaultLimit") or DEFAULT_LIMIT)
    a, b, direction = ohlcv_window(timeframe, since, limit, until, now)
    if direction == "fixed":
        rows = await load(a, b)
        return rows if limit is None else rows[:limit]

    wanted = limit if limit is not None else DEFAULT_LIMIT  # set above whenever the window needs it
    if direction == "forward":
        rows = await load(a, b)
        span = max(b - a, tf_ms)
        for _ in range(MAX_WIDENINGS):
            if len(rows) >= wanted or b > now:
                break
            nxt = min(b + span, now + 1)
            rows += await load(b, nxt)
            b, span = nxt, span * 2
        return rows[:wanted]

    rows = await load(a, b)
    span = max(b - a, tf_ms)
    for _ in range(MAX_WIDENINGS):
        if len(rows) >= wanted or a <= 0:
            break
        prev = max(a - span, 0)
        rows = await load(prev, a) + rows
        a, span = prev, span * 2
    return rows[-wanted:]


class CachedOhlcvMixin:
    """Serves an adapter's ``fetch_ohlcv`` through the cache when it is on; composed *in front of* the
    adapter class by :func:`with_runner_mixins` (a mixin listed among the adapter's own bases would sit
    behind the adapter's ``fetch_ohlcv`` in the MRO and never run).

    With ``options["ohlcvCache"]`` off (the default) the adapter's own ``fetch_ohlcv`` runs untouched;
    on, the adapter's ``fetch_ohlcv(symbol, tf, a, None, {"until": b - 1})`` (``until`` inclusive, as in
    ccxt) becomes the ``fetch_range`` of :func:`fetch_ohlcv_via_cache`, so it must return the bars
    starting in ``[a, b)``, which both adapters' forward pagination does. Timeframes listed in
    :data:`normalization.timeframes.RESAMPLED` for the exchange id are fetched (and cached) as their
    source timeframe and resampled here.

    An adapter may define ``ohlcv_cache_series(market, params) -> (instrument, price_kind)`` to name
    the series (default: the market id, and the ``price`` / ``useRTH`` params, which change the bars).
    """

    async def fetch_ohlcv(
        self,
        symbol: str,
        timeframe: str = "1m",
        since: int | None = None,
        limit: int | None = None,
        params: dict[str, Any] = {},
    ) -> list[list[Any]]:
        parent = super().fetch_ohlcv  # type: ignore[misc]
        if cache_for(self) is None:
            return await parent(symbol, timeframe, since, limit, params)
        # The adapter checks its arguments too; here they are used first (market look-up, windows).
        symbol, since, limit, params = check_fetch(  # type: ignore[assignment]
            getattr(self, "id", "exchange"), "fetch_ohlcv", symbol, since, limit, params, symbol_required=True)
        from ..timeframes import resample_source

        exchange: Any = self
        market = await _resolve_market(exchange, symbol)
        namer = getattr(exchange, "ohlcv_cache_series", None)
        if callable(namer):
            instrument, price_kind = namer(market, params)
        else:
            instrument, price_kind = _default_series(exchange, market, params)
        source = resample_source(str(exchange.id), timeframe) or timeframe
        passthrough = {k: v for k, v in (params or {}).items() if k not in ("until", "till")}

        async def fetch_range(a: int, b: int) -> list[list[Any]]:
            # ccxt's `until` is inclusive: b - 1 is the last instant of [a, b), so a chunk that fills
            # one broker request exactly is not pushed over the maximum by a single millisecond.
            rows = await parent(market["symbol"], source, a, None, {**passthrough, "until": b - 1})
            return [r for r in rows if a <= int(r[0]) < b]

        has = getattr(exchange, "has", {}) or {}
        now_source: NowSource = exchange.fetch_time if has.get("fetchTime") else None
        return await fetch_ohlcv_via_cache(
            exchange,
            market["symbol"],
            timeframe,
            since,
            limit,
            params,
            fetch_range=fetch_range,
            price_kind=price_kind,
            instrument=instrument,
            source_timeframe=source,
            now_ms=now_source,
        )


async def _resolve_market(exchange: Any, symbol: str) -> Mapping[str, Any]:
    """The market for ``symbol``; adapters that resolve symbols lazily (IB looks contracts up on first
    use rather than listing the whole universe) expose that as ``_market(symbol)``."""
    lazy = getattr(exchange, "_market", None)
    if lazy is not None and inspect.iscoroutinefunction(lazy):
        return await lazy(symbol)
    await exchange.load_markets()
    return exchange.market(symbol)


def _default_series(exchange: Any, market: Mapping[str, Any], params: Mapping[str, Any] | None) -> tuple[str, str]:
    """(instrument, price kind) for the cache key: what makes two bar series of one market differ."""
    params = params or {}
    options = _options(exchange)
    price = str(params.get("price") or options.get("ohlcvPrice") or "default").upper()
    rth = params.get("useRTH", options.get("useRTH"))
    if rth:
        price += "-RTH"
    return str(market.get("id") or market.get("symbol")), price


def with_runner_mixins(async_class: type, *, equity_holdings: str | None = None) -> type:
    """``async_class`` with :class:`CachedOhlcvMixin` and the equity mixin in front, unless it has them.

    This is how each adapter package wires the runtime in: its public async class is
    ``with_runner_mixins(<implementation>)`` (``ccxt_ibkr/async_support.py``), and the sync face is
    generated from that. Composition rather than listing the mixins as the implementation's bases,
    because the mixins wrap methods the implementation itself defines (``fetch_ohlcv``,
    ``fetch_balance``), which only a class in front of it in the MRO can do. A no-op for a class that
    already has both. ``equity_holdings`` sets the equity model here if the adapter does not declare it.
    """
    from .equity import BaseCurrencyMixin

    missing = tuple(m for m in (CachedOhlcvMixin, BaseCurrencyMixin) if not issubclass(async_class, m))
    if not missing:
        return async_class
    namespace: dict[str, Any] = {"__module__": async_class.__module__, "__doc__": async_class.__doc__}
    if equity_holdings is not None:
        namespace["equity_holdings"] = equity_holdings
    return type(async_class.__name__, (*missing, async_class), namespace)
