"""Exchange sessions from ``exchange_calendars``: which days trade and when the regular session runs.

The library keeps every venue's holidays and early closes (NYSE's 13:00 closes, ASX's
Christmas Eve, CME's holiday schedule), so the simulator's holidays and half days are the
real ones, not a hand table. Calendars load lazily (about half a second each) and are kept
for the process; dates outside a calendar's range fall back to plain weekdays.
"""

from __future__ import annotations

import datetime as dt
import threading
import warnings
from functools import cache
from typing import Any

#: Sessions a calendar is asked for start here: synthetic price history begins in 2000.
FIRST_DAY = "2000-01-01"
#: Returned when the calendar does not cover the date: the caller uses its weekday rule.
CALENDAR_UNKNOWN: Any = object()
_lock = threading.Lock()


@cache
def _calendar(name: str) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import exchange_calendars  # imported on first use: the package costs ~1 s to import

    with _lock, warnings.catch_warnings():
        # exchange_calendars 4.x trips pandas' deprecation of Series.values on tz-aware data.
        warnings.simplefilter("ignore")
        return exchange_calendars.get_calendar(name, start=FIRST_DAY)


@cache
def _sessions(name: str) -> tuple[dt.date, dt.date, dict[dt.date, tuple[float, float]]]:
    cal = _calendar(name)
    schedule = cal.schedule
    days = schedule.index.values.astype("datetime64[D]").tolist()
    opens = (schedule["open"].dt.tz_convert(None).to_numpy().astype("datetime64[s]").astype("int64").tolist())
    closes = (schedule["close"].dt.tz_convert(None).to_numpy().astype("datetime64[s]").astype("int64").tolist())
    table = {day: (float(o), float(c)) for day, o, c in zip(days, opens, closes, strict=True)}
    return days[0], days[-1], table


def calendar_session(name: str, day: dt.date) -> tuple[float, float] | None | Any:
    """(open, close) epoch seconds of ``day``'s regular session, None on a holiday, or CALENDAR_UNKNOWN."""
    first, last, table = _sessions(name)
    if day < first or day > last:
        return CALENDAR_UNKNOWN
    return table.get(day)


def preload(names: set[str]) -> None:
    """Load calendars up front (seconds, once per process) so no request stalls the event loop later."""
    for name in sorted(n for n in names if n):
        _sessions(name)
