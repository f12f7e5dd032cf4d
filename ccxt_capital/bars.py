"""Capital.com's price history (GET /prices) walked into ccxt OHLCV rows, 1000 bars per request.

A mixin of the exchange class, as :class:`ccxt_capital.parsing.CapitalParsing` is: ``fetch_ohlcv`` (the
ccxt surface, with its argument checks) stays in :mod:`ccxt_capital.exchange`; how the broker's pages are
walked -- forward from ``since``, backward from now, over closed markets, from before the first bar,
and the calendar months built from daily bars -- is here. It sends through the exchange's ``_call``
(the connection gate, the market-data breaker and the transport) and does no I/O of its own.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from normalization.runtime.resample import resample_ohlcv
from normalization.timeframes import CAPITAL_MAX_BARS, CAPITAL_RESOLUTIONS

from .parsing import capital_time

__all__ = ["CapitalBars"]

if TYPE_CHECKING:
    from .connection import CapitalConnection
    from .parsing import CapitalParsing

    class _Host(CapitalConnection, CapitalParsing):
        """What the walk needs of the exchange it is mixed into: ccxt's helpers, the parsers, ``_call``."""

else:
    _Host = object


class CapitalBars(_Host):
    """OHLCV paging; mixed into the exchange class before ``ccxt.async_support.Exchange``."""

    async def _monthly_bars(self, market: dict[str, Any], timeframe: str, source: str, since: int | None,
                            limit: int | None, price: str, until: int | None) -> list[list[Any]]:
        """A resampled timeframe (1M): whole source buckets fetched, then aggregated on calendar months."""
        if since is None:
            months = limit or int(self.safe_integer(self.options, "ohlcvDefaultLimit", CAPITAL_MAX_BARS))
            now = until or self._now_ms()
            start = datetime.fromtimestamp(now / 1000, tz=timezone.utc).replace(day=1, hour=0, minute=0, second=0)
            year, month = start.year, start.month - (min(months, 240) - 1)
            while month <= 0:
                month += 12
                year -= 1
            first = int(start.replace(year=year, month=month).timestamp() * 1000)
        else:
            day = datetime.fromtimestamp(since / 1000, tz=timezone.utc)
            first = int(day.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp() * 1000)
        daily = await self._bars(market, source, first, None, price, until)
        rows = resample_ohlcv(daily, timeframe)
        return self.filter_by_since_limit(rows, since, limit, 0, since is None)

    async def _bars(self, market: dict[str, Any], timeframe: str, since: int | None, limit: int | None,
                    price: str, until: int | None) -> list[list[Any]]:
        resolution = CAPITAL_RESOLUTIONS[timeframe]
        step = self.parse_timeframe(timeframe)  # seconds
        path = f"/prices/{quote(market['id'], safe='')}"
        by_time: dict[int, list[Any]] = {}  # backward paging (pages may overlap at their edges)
        rows: list[list[Any]] = []  # forward paging (pages are disjoint and ascending)

        async def page(query: dict[str, Any]) -> list[list[Any]]:
            body = await self._call("GET", path, params={"resolution": resolution, **query})
            return self.parse_ohlcvs_page(self.safe_list(body, "prices", []) or [], price)

        if since is not None:
            end = (until if until is not None else self._now_ms()) // 1000
            offset = 0  # bar opens are ``offset`` mod ``step``; learnt from the bars (weeks differ)

            def next_open(after: int) -> int:
                """The first bar open at or after ``after`` seconds."""
                return after + (offset - after) % step

            cursor = next_open(-(-int(since) // 1000))
            probed = False
            while cursor <= end and (limit is None or len(rows) < limit):
                # Every window spans the broker's maximum (1000 bars, 999 steps), whatever the limit: a
                # small limit over a closed market (a weekend, the years before the data) must not walk
                # it a few bars per request. So requests <= ceil(range / 1000 bars).
                window_end = min(cursor + (CAPITAL_MAX_BARS - 1) * step, end)
                bars = await page({"max": CAPITAL_MAX_BARS, "from": capital_time(cursor * 1000),
                                   "to": capital_time(window_end * 1000)})
                if not bars and not rows and not probed and window_end < end:
                    probed = True  # nothing yet: maybe ``since`` is before the broker's first bar
                    first = await self._earliest_bar(path, resolution, cursor, end, (CAPITAL_MAX_BARS - 1) * step)
                    if first is None:
                        break  # the broker has no bars of this market up to ``end``
                    if first // 1000 > window_end:
                        cursor = next_open(first // 1000)
                        continue
                if bars:
                    if rows and bars[0][0] <= rows[-1][0]:
                        bars = [bar for bar in bars if bar[0] > rows[-1][0]]
                    rows.extend(bars)
                    offset = (rows[-1][0] // 1000) % step
                cursor = next_open(window_end + 1)
            return rows
        else:
            want = limit or int(self.safe_integer(self.options, "ohlcvDefaultLimit", CAPITAL_MAX_BARS))
            to_ms = until
            empty = 0
            while len(by_time) < want:
                count = min(CAPITAL_MAX_BARS, want - len(by_time))
                query: dict[str, Any] = {"max": count}
                if to_ms is not None:
                    query["to"] = capital_time(to_ms)
                bars = await page(query)
                fresh = [bar for bar in bars if bar[0] not in by_time]
                for bar in fresh:
                    by_time[bar[0]] = bar
                if fresh:
                    empty = 0
                    to_ms = min(bar[0] for bar in fresh) - step * 1000
                else:
                    # A closed market (weekend, night) answers nothing: step back over the gap, boundedly.
                    empty += 1
                    if empty > 10:
                        break
                    to_ms = (to_ms if to_ms is not None else self._now_ms()) - count * step * 1000
        return [by_time[t] for t in sorted(by_time)]

    async def _earliest_bar(self, path: str, resolution: str, start: int, end: int, span: int) -> int | None:
        """Where the broker's bars of a market begin, between ``start`` and ``end`` (s), to within ``span``
        seconds; None if it has none before ``end``.

        Capital has no "first available" call. "Is there a bar at or before t" (one bar, walking back from
        t) is false before the first bar and true after it, so a bisection finds the start in
        log2(range / span) small requests -- about 15 for a minute series asked from 1970, where walking
        the empty decades forward would take tens of thousands."""

        async def any_before(t: int) -> bool:
            body = await self._call("GET", path, params={"resolution": resolution, "max": 1,
                                                          "to": capital_time(t * 1000)})
            return bool(self.safe_list(body, "prices", []))

        if await any_before(start):
            return start * 1000  # the series began earlier: the empty window was a closed market, walk on
        if not await any_before(end):
            return None
        low, high = start, end
        while high - low > span:
            middle = (low + high) // 2
            if await any_before(middle):
                high = middle
            else:
                low = middle
        return low * 1000
