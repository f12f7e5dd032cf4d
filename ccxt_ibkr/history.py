"""Historical bars of Interactive Brokers: one ``fetch_ohlcv`` as the fewest reqHistoricalData IB allows.

A mixin of ``IBTrader``: the exchange checks the arguments, this pages through IB's duration table
(forward from ``since``, or back from now) with the requests paced by the transport.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any, Protocol

import ccxt
import ccxt.async_support

from normalization.arguments import OHLCV_MAX_LIMIT
from normalization.timeframes import ib_bar_size, ib_duration_for, ib_max_duration_seconds

from ._ib import Contract
from .parsing import parse_ib_bars, to_ms
from .transport import IBTransport

WHAT_TO_SHOW = {"bid": "BID", "ask": "ASK", "mid": "MIDPOINT", "midpoint": "MIDPOINT", "trades": "TRADES"}
MAX_OHLCV_REQUESTS = 60  # one full IB pacing window; longer downloads belong to the OHLCV cache


class HistoryHost(Protocol):
    """What bar downloads need from the exchange beyond ccxt's ``Exchange``."""

    _heads: dict[tuple[int, str, bool], int]

    @property
    def transport(self) -> IBTransport: ...
    async def _market(self, symbol: str) -> dict[str, Any]: ...
    def _contract(self, market: dict[str, Any]) -> Contract: ...


if TYPE_CHECKING:
    class _Base(ccxt.async_support.Exchange, HistoryHost):
        pass
else:
    _Base = object


class IBHistory(_Base):
    """Bar downloads, mixed into ``IBTrader``."""

    async def _download_ohlcv(self, symbol: str, timeframe: str, since: int | None, limit: int | None,
                              params: dict[str, Any]) -> list[list[Any]]:
        """Bars of checked arguments; see ``IBTrader.fetch_ohlcv`` for the rules."""
        limit = min(limit, OHLCV_MAX_LIMIT) if limit is not None else None
        market = await self._market(symbol)
        bar_size = ib_bar_size(timeframe)
        step_ms = self.parse_timeframe(timeframe) * 1000
        contract = self._contract(market)
        what = self._what_to_show(market, params)
        use_rth = bool(self.safe_value(params, "useRTH", self.options.get("useRTH", False)))
        until = self.safe_integer(params, "until")
        max_ms = ib_max_duration_seconds(bar_size) * 1000
        bars: dict[int, list[Any]] = {}

        async def request(end_ms: int | None, span_ms: int) -> list[list[Any]]:
            end = "" if end_ms is None else self._ib_time(end_ms)
            duration = ib_duration_for(max(1, math.ceil(span_ms / 1000)), bar_size)
            rows = await self.transport.historical(
                contract, end=end, duration=duration, bar_size=bar_size, what=what, use_rth=use_rth
            )
            parsed = parse_ib_bars(rows)
            for row in parsed:
                bars[row[0]] = row
            return parsed

        if since is None:
            # Walk back from now (or ``until``); closed markets (nights, weekends) mean a span of N bar
            # lengths holds fewer than N bars, so ask for twice that and keep walking while short.
            wanted = limit or 100
            end_ms: int | None = until
            span = min(2 * wanted * step_ms, max_ms)
            empty = 0
            for _ in range(MAX_OHLCV_REQUESTS):
                before = len(bars)
                got = await request(end_ms, span)
                if len(bars) >= wanted:
                    break
                if len(bars) == before:
                    empty += 1
                    if empty >= 3:
                        break  # nothing further back: the contract's history ends here
                    if end_ms is None:
                        end_ms = min(bars) if bars else await self.fetch_time()
                    end_ms -= span
                    span = min(span * 2, max_ms)
                    continue
                empty = 0
                end_ms = min(row[0] for row in got)
                span = min(max(span, 2 * (wanted - len(bars)) * step_ms), max_ms)  # never shrink: gaps
            result = sorted(bars.values(), key=lambda row: row[0])
            if until is not None:
                result = [row for row in result if row[0] <= until]  # ccxt's until is inclusive
            return result[-wanted:]

        # Forward from ``since`` to ``until`` (or now): windows of at most IB's maximum duration; with a
        # limit, start with a window twice the limit's span and widen it while closed markets leave
        # the window short of bars.
        now_ms = await self.fetch_time()
        if since < now_ms - max_ms:
            # Before IB's first bar every window would come back empty: start at that bar instead.
            since = max(since, await self._head_ms(contract, what, use_rth))
        stop = now_ms if until is None else min(until + 1, now_ms)  # ccxt's until is inclusive
        open_ended = until is None or until >= now_ms

        async def forward(start: int, end: int, wanted: int | None) -> list[list[Any]]:
            span = max_ms if wanted is None else min(max_ms, max(2 * wanted * step_ms, step_ms))
            window_start = start
            for _ in range(MAX_OHLCV_REQUESTS):
                if window_start >= end:
                    break
                window_end = min(window_start + span, end)
                last = window_end >= stop and open_ended
                await request(None if last else window_end, window_end - window_start)
                window_start = window_end
                if wanted is not None:
                    if sum(1 for t in bars if t >= start) >= wanted:
                        break
                    span = min(span * 2, max_ms)
            return [row for row in sorted(bars.values(), key=lambda row: row[0]) if start <= row[0] < end]

        result = await forward(since, stop if until is not None else stop + step_ms, limit)
        return result[:limit] if limit else result

    async def _head_ms(self, contract: Contract, what: str, use_rth: bool) -> int:
        """IB's first bar of a series (reqHeadTimeStamp, asked once per series and connection), in ms; 0 if
        IB does not say."""
        key = (contract.conId, what, use_rth)
        if key not in self._heads:
            when = await self.transport.head_timestamp(contract, what, use_rth)
            self._heads[key] = (to_ms(when) or 0) if when is not None else 0
        return self._heads[key]

    def _what_to_show(self, market: dict[str, Any], params: dict[str, Any]) -> str:
        price = self.safe_string_lower(params, "price")
        if price is not None:
            if price not in WHAT_TO_SHOW:
                raise ccxt.BadRequest(f"{self.id} fetch_ohlcv params['price'] must be bid, ask or mid, not {price!r}")
            return WHAT_TO_SHOW[price]
        return "MIDPOINT" if market["info"].get("secType") == "CASH" else "TRADES"

    @staticmethod
    def _ib_time(ms: int) -> str:
        return time.strftime("%Y%m%d %H:%M:%S UTC", time.gmtime(ms / 1000))

