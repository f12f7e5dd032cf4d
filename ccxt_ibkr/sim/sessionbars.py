"""Bars cut along exchange sessions, the way IB's HMDS builds them.

* Intraday bars sit on the clock grid of the exchange's zone, but the first bar of a session
  starts at the open and the last ends at the close: with useRTH, NYSE hourly bars are
  09:30, 10:00, 11:00 ... 15:00 New York, and a 13:00 half day stops at 13:00.
* A daily bar is one trading date: the regular session for stocks (whatever useRTH says),
  the liquid or the full session for other instruments; holidays have none. Weekly and
  monthly bars aggregate those daily bars.

Every bar is the aggregate of the minute bars inside it (open = the close before its first
minute, as each minute bar's open is), so a daily bar equals its session's minute bars.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo

from normalization.runtime.pricepath import Bar, CsvPricePath, PricePath

MINUTE = 60
DAY = 86_400
Windows = Callable[[float, float, bool], list[tuple[float, float]]]


def aggregate(path: PricePath, start: int, end: int) -> Bar | None:
    """The bar of the minutes in [start, end) (minute-aligned), labelled ``start``."""
    if end <= start:
        return None
    if isinstance(path, CsvPricePath):
        minutes = path.bars(start, end, MINUTE)
        if not minutes:
            return None
        return Bar(start, minutes[0].open, max(m.high for m in minutes), min(m.low for m in minutes),
                   minutes[-1].close, sum(m.volume for m in minutes))
    bar = path._bar(start, end - start)
    return Bar(start, bar.open, bar.high, bar.low, bar.close, bar.volume)


def _minute_ceil(ts: float) -> int:
    """End of the minute containing ``ts``: the forming bar includes the minute under way."""
    return (int(ts) // MINUTE + 1) * MINUTE


def intraday(
    path: PricePath, windows: list[tuple[float, float]], tz: str, start: int, stop: int, seconds: int, now: float,
) -> list[Bar]:
    """Bars of ``seconds`` whose (clipped) start lies in [start, stop) and has begun by ``now``."""
    zone = ZoneInfo(tz)
    out: list[Bar] = []
    for w_open, w_close in windows:
        w0, w1 = int(w_open), int(w_close)
        if w1 <= start or w0 >= stop:
            continue
        local = dt.datetime.fromtimestamp(w0, zone)
        midnight = int(dt.datetime.combine(local.date(), dt.time(0), zone).timestamp())
        grid = midnight + (w0 - midnight) // seconds * seconds
        while grid < w1:
            b0 = max(grid, w0)
            b1 = min(grid + seconds, w1)
            grid += seconds
            if b0 < start or b0 >= stop or b0 > now:
                continue
            bar = aggregate(path, b0, min(b1, _minute_ceil(now)))
            if bar is not None:
                out.append(bar)
    return out


def daily(
    path: PricePath, windows: list[tuple[float, float]], tz: str, start: int, stop: int, now: float,
) -> list[Bar]:
    """One bar per session that overlaps [start, stop) and has opened, labelled its trading date (UTC midnight)."""
    zone = ZoneInfo(tz)
    out: list[Bar] = []
    for w_open, w_close in windows:
        w0, w1 = int(w_open), int(w_close)
        if w1 <= start or w0 >= stop or w0 > now:
            continue
        bar = aggregate(path, w0, min(w1, _minute_ceil(now)))
        if bar is None:
            continue
        trading_date = dt.datetime.fromtimestamp(w1 - 1, zone).date()
        label = int(dt.datetime.combine(trading_date, dt.time(0), dt.timezone.utc).timestamp())
        out.append(Bar(label, bar.open, bar.high, bar.low, bar.close, bar.volume))
    return out


def group(bars: list[Bar], monthly: bool) -> list[Bar]:
    """Weekly (labelled Monday) or monthly (labelled the 1st) bars from daily bars."""
    groups: dict[int, list[Bar]] = {}
    for b in bars:
        day = dt.datetime.fromtimestamp(b.time, dt.timezone.utc).date()
        first = day.replace(day=1) if monthly else day - dt.timedelta(days=day.weekday())
        key = int(dt.datetime.combine(first, dt.time(0), dt.timezone.utc).timestamp())
        groups.setdefault(key, []).append(b)
    return [
        Bar(key, g[0].open, max(b.high for b in g), min(b.low for b in g), g[-1].close, sum(b.volume for b in g))
        for key, g in sorted(groups.items())
    ]
