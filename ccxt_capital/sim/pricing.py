"""Quotes and bars: one deterministic mid path per epic, bid/offer derived with a fixed spread.

Quotes, bars and fills all read the same path, so a fill price can always be found in the bars a
client downloads afterwards. Paths are shared between simulator instances in one process (they are
immutable for a given seed) because building one costs a few milliseconds and tests start many
simulators. Tests can *pin* an epic's mid from a moment on, to make a stop or a limit trigger at an
exactly known time without searching the random path for a crossing.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from normalization.runtime.pricepath import Bar, CsvPricePath, PricePath

from .catalogue import Instrument

MINUTE = 60
DAY = 86_400

#: Capital's resolutions and their length in seconds.
RESOLUTIONS: dict[str, int] = {
    "MINUTE": 60,
    "MINUTE_5": 300,
    "MINUTE_15": 900,
    "MINUTE_30": 1800,
    "HOUR": 3600,
    "HOUR_4": 14_400,
    "DAY": 86_400,
    "WEEK": 604_800,
}


@lru_cache(maxsize=256)
def _shared_path(epic: str, price: float, seed: int, vol: float, volume_scale: float) -> PricePath:
    return PricePath(epic, price, seed=seed, daily_vol=vol, volume_scale=volume_scale)


@dataclass(frozen=True)
class Quote:
    """Bid and offer at one moment, already rounded to the instrument's decimals."""

    bid: float
    offer: float
    mid: float


class PinnedPath:
    """A price path with test-set constant segments: from ``at`` on, the mid is ``price``.

    A pin lasts until the next pin (``price=None`` unpins, returning to the base path). Bars that
    overlap a pinned stretch are rebuilt minute by minute so that bars and quotes stay consistent.
    """

    def __init__(self, base: PricePath) -> None:
        self.base = base
        self._times: list[float] = []
        self._prices: list[float | None] = []

    def pin(self, at: float, price: float | None) -> None:
        index = bisect.bisect_right(self._times, at)
        # A new pin replaces everything later: tests pin forward in time.
        del self._times[index:]
        del self._prices[index:]
        self._times.append(at)
        self._prices.append(price)

    def _pinned(self, ts: float) -> float | None:
        index = bisect.bisect_right(self._times, ts) - 1
        return self._prices[index] if index >= 0 else None

    def price_at(self, ts: float) -> float:
        pinned = self._pinned(ts)
        return self.base.price_at(ts) if pinned is None else pinned

    def _touches_pin(self, start: float, end: float) -> bool:
        if not self._times:
            return False
        for index, at in enumerate(self._times):
            nxt = self._times[index + 1] if index + 1 < len(self._times) else float("inf")
            if self._prices[index] is not None and at < end and nxt > start - MINUTE:
                return True
        return False

    def bars(self, start: int, end: int, seconds: int) -> list[Bar]:
        if not self._touches_pin(start - seconds, end):
            return self.base.bars(start, end, seconds)
        out: list[Bar] = []
        for bar in self.base.bars(start, end, seconds):
            if not self._touches_pin(bar.time, bar.time + seconds):
                out.append(bar)
                continue
            prices = [self.price_at(bar.time + m * MINUTE) for m in range(seconds // MINUTE)]
            open_price = self.price_at(bar.time - MINUTE)
            out.append(
                Bar(bar.time, open_price, max(prices + [open_price]), min(prices + [open_price]),
                    prices[-1], bar.volume)
            )
        return out


class PriceFeed:
    """Bid/offer quotes and bid/ask bars for every instrument of a catalogue."""

    def __init__(self, instruments: dict[str, Instrument], seed: int = 0,
                 csv: dict[str, str | Path] | None = None) -> None:
        self.instruments = instruments
        self.seed = seed
        self._csv = dict(csv or {})
        self._paths: dict[str, PinnedPath] = {}
        self._lock = threading.Lock()
        self._day_stats: dict[tuple[str, int], tuple[float, float]] = {}

    def path(self, epic: str) -> PinnedPath:
        with self._lock:
            path = self._paths.get(epic)
            if path is None:
                inst = self.instruments[epic]
                if epic in self._csv:
                    base: PricePath = CsvPricePath(epic, self._csv[epic], tick=inst.tick)
                else:
                    base = _shared_path(epic, inst.price, self.seed, inst.daily_vol, inst.volume_scale)
                path = self._paths[epic] = PinnedPath(base)
            return path

    def pin(self, epic: str, price: float | None, at: float) -> None:
        """Hold ``epic``'s mid at ``price`` from ``at`` on (``None`` releases it)."""
        self.path(epic).pin(at, price)
        with self._lock:
            self._day_stats = {k: v for k, v in self._day_stats.items() if k[0] != epic}

    # -- quotes -------------------------------------------------------------------------
    def mid(self, epic: str, ts: float) -> float:
        return self.path(epic).price_at(ts)

    def quote(self, epic: str, ts: float) -> Quote:
        inst = self.instruments[epic]
        return self._quote_from_mid(inst, self.mid(epic, ts))

    @staticmethod
    def _quote_from_mid(inst: Instrument, mid: float) -> Quote:
        bid = round(mid - inst.spread / 2, inst.decimals)
        offer = round(bid + inst.spread, inst.decimals)
        return Quote(bid=bid, offer=offer, mid=mid)

    def side_prices(self, inst: Instrument, mid: float) -> tuple[float, float]:
        quote = self._quote_from_mid(inst, mid)
        return quote.bid, quote.offer

    def day_stats(self, epic: str, ts: float) -> tuple[float, float, float]:
        """(high, low, previous close) of the UTC day so far, in mid terms, cached per minute."""
        minute = int(ts) // MINUTE * MINUTE
        day_start = minute // DAY * DAY
        key = (epic, minute)
        with self._lock:
            cached = self._day_stats.get(key)
        if cached is None:
            bars = self.bars_until(epic, day_start, minute, 3600) if minute > day_start else []
            last = self.mid(epic, minute)
            highs = [bar.high for bar in bars] + [last]
            lows = [bar.low for bar in bars] + [last]
            cached = (max(highs), min(lows))
            with self._lock:
                if len(self._day_stats) > 4096:
                    self._day_stats.clear()
                self._day_stats[key] = cached
        previous_close = self.mid(epic, day_start - 1)
        return cached[0], cached[1], previous_close

    # -- bars ---------------------------------------------------------------------------
    @staticmethod
    def _partial(path: PinnedPath, start: int, now_minute: int) -> list[Bar]:
        """Bars covering [start, now_minute] cheaply: whole hours, then minutes (days for weeks)."""
        out: list[Bar] = []
        cursor = start
        for step in (DAY, 3600, MINUTE):
            if now_minute + MINUTE - cursor >= step:
                whole_end = cursor + (now_minute + MINUTE - cursor) // step * step
                if step == MINUTE:
                    whole_end = now_minute + MINUTE
                out.extend(path.bars(cursor, whole_end, step))
                cursor = whole_end
        return out

    def bars_until(self, epic: str, start: int, now: float, seconds: int) -> list[Bar]:
        """Mid bars opening in [start, now]; the bar containing ``now`` is cut at ``now``.

        Cutting the last bar keeps the future out of anything a client sees, which matters
        for backtests that must not peek.
        """
        path = self.path(epic)
        now_minute = int(now) // MINUTE * MINUTE
        current_open = _align(now_minute, seconds)
        if start > current_open:
            return []
        bars = path_bars(path, start, current_open, seconds) if current_open > start else []
        if current_open >= start:
            minutes = self._partial(path, current_open, now_minute)
            if minutes:
                bars.append(_merge(current_open, minutes))
        return bars


WEEK = 7 * DAY
#: 1970-01-01 was a Thursday, so the first Monday is day 4. (The shared PricePath uses day 3, a
#: Sunday, for its week bars; weeks are therefore built here from daily bars.)
FIRST_MONDAY = 4 * DAY


def _align(ts: int, seconds: int) -> int:
    if seconds == WEEK:
        return ts - ((ts - FIRST_MONDAY) % seconds)
    return ts - (ts % seconds)


def path_bars(path: PricePath | PinnedPath, start: int, end: int, seconds: int) -> list[Bar]:
    """``path.bars`` with Monday-aligned weeks aggregated from daily bars."""
    if seconds != WEEK:
        return path.bars(start, end, seconds)
    first = _align(start, WEEK)
    if first < start:
        first += WEEK
    if first >= end:
        return []
    days = path.bars(first, end + WEEK, DAY)
    out: list[Bar] = []
    t = first
    while t < end:
        group = [bar for bar in days if t <= bar.time < t + WEEK]
        if group:
            out.append(_merge(t, group))
        t += WEEK
    return out


def _merge(t: int, group: list[Bar]) -> Bar:
    return Bar(time=t, open=group[0].open, high=max(b.high for b in group), low=min(b.low for b in group),
               close=group[-1].close, volume=sum(b.volume for b in group))


def align(ts: int, seconds: int) -> int:
    """Start of the bar of length ``seconds`` containing ``ts`` (weeks start on Monday)."""
    return _align(ts, seconds)
