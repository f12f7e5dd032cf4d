"""Currency conversion with the broker's own FX quotes, for equity and PnL in the account's base.

Why this exists: an IB account whose base currency is AUD and that holds USD stocks must report
``fetch_balance`` totals and PnL in AUD the way IB's own statements do, i.e. converted at IB's
quotes, not at some third-party rate. The adapter supplies ``quote_fn(base, quote)`` (an awaitable
mid price from the broker); this module owns the broker-agnostic rest:

- caching with a TTL on an injectable clock (a rate request per balance call would eat IB's
  market-data lines and Capital.com's rate limit);
- inverting pairs, because brokers list FX pairs one way round only (``AUD/USD`` exists,
  ``USD/AUD`` does not), and trying the market-convention order first to avoid a wasted request;
- triangulating through a pivot (USD) when no direct pair exists (``AUD -> SEK`` =
  ``AUD/USD`` x ``USD/SEK``);
- remembering pairs the broker does not have (also for the TTL) so they are not re-asked every call.

``quote_fn`` signals "no such pair" by returning ``None`` or raising ``LookupError`` or
``ccxt.BadSymbol``; any other exception (network trouble) propagates to the caller unchanged.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal

import ccxt

__all__ = ["FxConverter", "FxRateUnavailable", "QuoteFn"]

QuoteFn = Callable[[str, str], Awaitable["float | Decimal | None"]]

# FX market convention: the currency earlier in this list is quoted as base (EUR/USD, AUD/USD,
# USD/JPY). Pairs are asked in this order first, the inverse only if the broker lacks it.
_PRIORITY = ("EUR", "GBP", "AUD", "NZD", "USD", "CAD", "CHF", "NOK", "SEK", "DKK", "JPY")


class FxRateUnavailable(ccxt.ExchangeError):
    """No direct, inverse or triangulated rate could be obtained for a currency pair."""


def _conventional(a: str, b: str) -> tuple[str, str]:
    rank_a = _PRIORITY.index(a) if a in _PRIORITY else len(_PRIORITY)
    rank_b = _PRIORITY.index(b) if b in _PRIORITY else len(_PRIORITY)
    return (b, a) if rank_b < rank_a else (a, b)


class FxConverter:
    """Cached broker FX rates: ``await fx.rate("USD", "AUD")`` = AUD per 1 USD.

    ``ttl_seconds`` bounds staleness; ``clock`` (seconds, default ``time.monotonic``) is injectable
    so tests move time without sleeping. ``refresh()`` re-asks every known pair at once, for an
    adapter that prefers refreshing on a schedule to refreshing on demand.
    """

    def __init__(
        self,
        quote_fn: QuoteFn,
        ttl_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        *,
        pivot: str = "USD",
    ) -> None:
        self._quote_fn = quote_fn
        self._ttl = float(ttl_seconds)
        self._clock = clock
        self._pivot = pivot.upper()
        # (base, quote) -> (rate or None if the broker lacks the pair, fetched_at)
        self._cache: dict[tuple[str, str], tuple[float | None, float]] = {}
        self._inflight: dict[tuple[str, str], asyncio.Future[float | None]] = {}
        self.requests = 0  # quote_fn calls made; tests and diagnostics read it

    # -- public API -------------------------------------------------------------------------------

    async def rate(self, base: str, quote: str) -> float:
        """Units of ``quote`` per one ``base``: direct, inverted, or triangulated through the pivot."""
        base, quote = base.upper(), quote.upper()
        if base == quote:
            return 1.0
        direct = await self._pair_rate(base, quote)
        if direct is not None:
            return direct
        pivot = self._pivot
        if pivot not in (base, quote):
            leg1 = await self._pair_rate(base, pivot)
            leg2 = await self._pair_rate(pivot, quote) if leg1 is not None else None
            if leg1 is not None and leg2 is not None:
                return leg1 * leg2
        raise FxRateUnavailable(f"no FX rate for {base}/{quote} (direct, inverse or via {pivot})")

    async def convert(self, amount: float, from_ccy: str, to_ccy: str) -> float:
        """``amount`` of ``from_ccy`` expressed in ``to_ccy``; zero needs no quote."""
        if not amount:
            return 0.0
        return float(amount) * await self.rate(from_ccy, to_ccy)

    async def equity_in(self, currency: str, balances_by_currency: Mapping[str, float | None]) -> float:
        """Sum of cash balances (``{"USD": 10_000, "AUD": 5_000}``) valued in ``currency``.

        ``None`` and zero balances are skipped without asking for a rate, so an account that merely
        lists a currency does not fail when the broker cannot quote it.
        """
        currency = currency.upper()
        items = [(c.upper(), float(v)) for c, v in balances_by_currency.items() if v]
        values = await asyncio.gather(*(self.convert(v, c, currency) for c, v in items))
        return float(sum(values))

    async def refresh(self) -> None:
        """Re-fetch every cached pair now (rates only; remembered misses are retried on expiry)."""
        pairs = [p for p, (r, _) in self._cache.items() if r is not None]
        for pair in pairs:
            self._cache.pop(pair, None)
        await asyncio.gather(*(self._fetch(*p) for p in pairs))

    def invalidate(self) -> None:
        """Forget everything, e.g. after a reconnect."""
        self._cache.clear()

    # -- internals --------------------------------------------------------------------------------

    def _fresh(self, pair: tuple[str, str]) -> tuple[bool, float | None]:
        hit = self._cache.get(pair)
        if hit is None or self._clock() - hit[1] >= self._ttl:
            return False, None
        return True, hit[0]

    async def _pair_rate(self, base: str, quote: str) -> float | None:
        """Rate for base/quote from the pair or its inverse, or None if the broker has neither."""
        first = _conventional(base, quote)
        second = (first[1], first[0])
        for pair in (first, second):
            known, value = self._fresh(pair)
            if known and value is not None:
                return value if pair == (base, quote) else 1.0 / value
        for pair in (first, second):
            known, value = self._fresh(pair)
            if not known:
                value = await self._fetch(*pair)
            if value is not None:
                return value if pair == (base, quote) else 1.0 / value
        return None

    async def _fetch(self, base: str, quote: str) -> float | None:
        """One quote_fn call per pair at a time; concurrent callers share the in-flight request."""
        pair = (base, quote)
        pending = self._inflight.get(pair)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[float | None] = asyncio.get_running_loop().create_future()
        self._inflight[pair] = future
        try:
            self.requests += 1
            try:
                raw = await self._quote_fn(base, quote)
            except (LookupError, ccxt.BadSymbol):
                raw = None
            value = None if raw is None else float(raw)
            if value is not None and (not math.isfinite(value) or value <= 0):
                value = None  # a zero/NaN mid is a broker without a quote, not a rate
            self._cache[pair] = (value, self._clock())
            future.set_result(value)
            return value
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: nobody else may be waiting
            raise
        finally:
            self._inflight.pop(pair, None)
