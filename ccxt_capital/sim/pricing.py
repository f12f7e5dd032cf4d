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
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from normalization.runtime.pricepath import EPOCH_DAY, MAX_DAYS, Bar, CsvPricePath, PricePath

from .catalogue import Instrument

MINUTE = 60
DAY = 86_400
#: Synthetic paths exist from 2000-01-02 to about 2049; requests outside are clamped to this.
SYNTHETIC_START = (EPOCH_DAY + 1) * DAY
SYNTHETIC_END = (EPOCH_DAY + MAX_DAYS - 1) * DAY
_CHUNKS = 256  # a day of minute bars is ~200 kB
WEEK = 7 * DAY
#: 1970-01-01 was a Thursday, so the first Monday is day 4. (The shared PricePath uses day 3, a
#: Sunday, for its week bars; weeks are therefore built here from daily bars.)
FIRST_MONDAY = 4 * DAY

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


class SessionPath:
    """Prices move only while the market is open, as at the broker.

    A closed market repeats the last open minute's price (a frozen quote over the weekend), bars
    exist only for periods with at least one open minute, and a bar that straddles the open or the
    close aggregates just its open minutes. The synthetic path keeps running underneath, so the
    first minute of a session opens with a realistic gap.
    """

    def __init__(self, inner: PinnedPath, inst: Instrument, *, follow_hours: bool = True) -> None:
        self.inner = inner
        self.inst = inst
        # A user's CSV is the truth as given (its own gaps), so only synthetic paths follow the hours.
        self.always = not follow_hours or all(day == [(0, 1440)] for day in inst.hours.parsed())

    def price_at(self, ts: float) -> float:
        if self.always:
            return self.inner.price_at(ts)
        intervals = self.inst.open_intervals(ts - 10 * DAY, ts)
        index = bisect.bisect_right([begin for begin, _ in intervals], ts) - 1
        if index < 0:
            return self.inner.price_at(ts)
        begin, end = intervals[index]
        return self.inner.price_at(ts if ts < end else end - MINUTE)

    def bars(self, start: int, end: int, seconds: int) -> list[Bar]:
        full = self.inner.bars(start, end, seconds)
        if self.always or not full:
            return full
        intervals = self.inst.open_intervals(full[0].time, full[-1].time + seconds)
        out: list[Bar] = []
        for bar in full:
            bar_end = bar.time + seconds
            parts = [(max(a, bar.time), min(b, bar_end)) for a, b in intervals if a < bar_end and b > bar.time]
            if not parts:
                continue
            if parts == [(bar.time, bar_end)]:
                out.append(bar)
                continue
            pieces: list[Bar] = []
            for a, b in parts:
                pieces.extend(self._span(int(a) // MINUTE * MINUTE, int(b)))
            if pieces:
                out.append(_merge(bar.time, pieces))
        return out

    def _span(self, a: int, b: int) -> list[Bar]:
        """Bars exactly covering [a, b): whole hours where possible, minutes at the edges."""
        out: list[Bar] = []
        first_hour = -(-a // 3600) * 3600
        last_hour = b // 3600 * 3600
        if last_hour - first_hour >= 3600:
            out.extend(self.inner.bars(a, first_hour, MINUTE))
            out.extend(self.inner.bars(first_hour, last_hour, 3600))
            out.extend(self.inner.bars(last_hour, b, MINUTE))
        else:
            out.extend(self.inner.bars(a, b, MINUTE))
        return out


class PriceFeed:
    """Bid/offer quotes and bid/ask bars for every instrument of a catalogue."""

    def __init__(self, instruments: dict[str, Instrument], seed: int = 0,
                 csv: dict[str, str | Path] | None = None) -> None:
        self.instruments = instruments
        self.seed = seed
        self._csv = dict(csv or {})
        self._paths: dict[str, SessionPath] = {}
        self._lock = threading.Lock()
        self._day_stats: dict[tuple[str, int], tuple[float, float]] = {}
        # Bars are immutable once computed (pins clear their epic), so whole chunks are cached:
        # a day of minutes costs ~20 ms to build and is then sliced for free.
        self._chunks: OrderedDict[tuple[str, int, int], list[Bar]] = OrderedDict()

    def valid_range(self, epic: str) -> tuple[int, int]:
        """The span a path can price; CSV paths are not limited."""
        if epic in self._csv:
            return 0, 2**62
        return SYNTHETIC_START, SYNTHETIC_END

    def path(self, epic: str) -> SessionPath:
        with self._lock:
            path = self._paths.get(epic)
            if path is None:
                inst = self.instruments[epic]
                if epic in self._csv:
                    base: PricePath = CsvPricePath(epic, self._csv[epic], tick=inst.tick)
                else:
                    base = _shared_path(epic, inst.price, self.seed, inst.daily_vol, inst.volume_scale)
                path = self._paths[epic] = SessionPath(PinnedPath(base), inst,
                                                       follow_hours=epic not in self._csv)
            return path

    def pin(self, epic: str, price: float | None, at: float) -> None:
        """Hold ``epic``'s mid at ``price`` from ``at`` on (``None`` releases it)."""
        self.path(epic).inner.pin(at, price)
        with self._lock:
            self._day_stats = {k: v for k, v in self._day_stats.items() if k[0] != epic}
            for key in [k for k in self._chunks if k[0] == epic]:
                del self._chunks[key]

    @staticmethod
    def _chunk_span(seconds: int) -> tuple[int, int]:
        """(span, origin) of the cache chunks for bars of ``seconds``."""
        if seconds < DAY:
            return DAY, 0
        if seconds == DAY:
            return 64 * DAY, 0
        return 16 * WEEK, FIRST_MONDAY

    def bars(self, epic: str, start: int, end: int, seconds: int) -> list[Bar]:
        """Complete or not, the bars opening in [start, end), served from cached chunks."""
        low, high = self.valid_range(epic)
        start, end = max(start, low), min(end, high)
        if start >= end:
            return []
        span, origin = self._chunk_span(seconds)
        path = self.path(epic)
        out: list[Bar] = []
        index = (start - origin) // span
        while origin + index * span < end:
            key = (epic, seconds, index)
            with self._lock:
                chunk = self._chunks.get(key)
                if chunk is not None:
                    self._chunks.move_to_end(key)
            piece_start = max(start, origin + index * span)
            piece_end = min(end, origin + (index + 1) * span)
            if chunk is None and (piece_end - piece_start) * 24 < span:
                # A small slice of an uncached chunk (a forming bar's last minutes): build just that.
                out.extend(path_bars(path, piece_start, piece_end, seconds))
                index += 1
                continue
            if chunk is None:
                chunk_start = origin + index * span
                chunk = path_bars(path, max(chunk_start, low), min(chunk_start + span, high), seconds)
                with self._lock:
                    self._chunks[key] = chunk
                    while len(self._chunks) > _CHUNKS:
                        self._chunks.popitem(last=False)
            out.extend(bar for bar in chunk if start <= bar.time < end)
            index += 1
        return out

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
    def _partial(self, epic: str, start: int, now_minute: int) -> list[Bar]:
        """Bars covering [start, now_minute] cheaply: whole hours, then minutes (days for weeks)."""
        out: list[Bar] = []
        cursor = start
        for step in (DAY, 3600, MINUTE):
            if now_minute + MINUTE - cursor >= step:
                whole_end = cursor + (now_minute + MINUTE - cursor) // step * step
                if step == MINUTE:
                    whole_end = now_minute + MINUTE
                out.extend(self.bars(epic, cursor, whole_end, step))
                cursor = whole_end
        return out

    def bars_between(self, epic: str, start: int, last_open: int, now: float, seconds: int) -> list[Bar]:
        """Bars opening in [start, last_open]; the one containing ``now`` (if any) is cut at ``now``."""
        now_open = _align(int(now) // MINUTE * MINUTE, seconds)
        if last_open >= now_open:
            return self.bars_until(epic, start, now, seconds)
        return self.bars(epic, start, last_open + seconds, seconds)

    def bars_until(self, epic: str, start: int, now: float, seconds: int) -> list[Bar]:
        """Mid bars opening in [start, now]; the bar containing ``now`` is cut at ``now``.

        Cutting the last bar keeps the future out of anything a client sees, which matters
        for backtests that must not peek.
        """
        now_minute = int(now) // MINUTE * MINUTE
        current_open = _align(now_minute, seconds)
        if start > current_open:
            return []
        bars = self.bars(epic, start, current_open, seconds) if current_open > start else []
        if current_open >= start:
            minutes = self._partial(epic, current_open, now_minute)
            if minutes:
                bars.append(_merge(current_open, minutes))
        return bars


def _align(ts: int, seconds: int) -> int:
    if seconds == WEEK:
        return ts - ((ts - FIRST_MONDAY) % seconds)
    return ts - (ts % seconds)


def path_bars(path: PricePath | PinnedPath | SessionPath, start: int, end: int, seconds: int) -> list[Bar]:
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
