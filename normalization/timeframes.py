"""ccxt timeframes and what each broker calls them.

A bot asks for ``'1h'``; IB wants ``barSizeSetting='1 hour'`` plus a ``durationStr`` no longer
than its per-bar-size maximum, Capital wants ``resolution=HOUR`` and at most 1000 bars. Keeping
the tables here, pure, lets both adapters paginate with the fewest requests the broker allows.
"""

from __future__ import annotations

from ccxt.base.errors import BadRequest

MINUTE = 60
HOUR = 3_600
DAY = 86_400
WEEK = 7 * DAY
MONTH = 30 * DAY  # ccxt's parse_timeframe convention for '1M'
YEAR = 365 * DAY

UNIT_SECONDS = {"s": 1, "m": MINUTE, "h": HOUR, "d": DAY, "w": WEEK, "M": MONTH, "y": YEAR}


def split_timeframe(timeframe: str) -> tuple[int, str]:
    """``'15m'`` -> ``(15, 'm')``; the unit is one of s m h d w M y (m is minutes, M months)."""
    if not isinstance(timeframe, str) or len(timeframe) < 2:
        raise BadRequest(f"invalid timeframe {timeframe!r}")
    amount, unit = timeframe[:-1], timeframe[-1]
    if not amount.isdigit() or unit not in UNIT_SECONDS or int(amount) <= 0:
        raise BadRequest(f"invalid timeframe {timeframe!r}: expected e.g. '1m', '4h', '1d', '1M'")
    return int(amount), unit


def timeframe_seconds(timeframe: str) -> int:
    """Seconds in a ccxt timeframe (``'1M'`` counts 30 days, as ccxt does)."""
    amount, unit = split_timeframe(timeframe)
    return amount * UNIT_SECONDS[unit]


# --------------------------------------------------------------------------------------------
# Interactive Brokers: barSizeSetting and the longest durationStr allowed for each

IB_BAR_SIZES: dict[str, str] = {
    "1s": "1 secs",
    "5s": "5 secs",
    "10s": "10 secs",
    "15s": "15 secs",
    "30s": "30 secs",
    "1m": "1 min",
    "2m": "2 mins",
    "3m": "3 mins",
    "5m": "5 mins",
    "10m": "10 mins",
    "15m": "15 mins",
    "20m": "20 mins",
    "30m": "30 mins",
    "1h": "1 hour",
    "2h": "2 hours",
    "3h": "3 hours",
    "4h": "4 hours",
    "8h": "8 hours",
    "1d": "1 day",
    "1w": "1 week",
    "1M": "1 month",
}
IB_TIMEFRAMES: dict[str, str] = {bar: tf for tf, bar in IB_BAR_SIZES.items()}

#: IB's step-size table inverted: bar size -> longest durationStr per request.
IB_MAX_DURATION: dict[str, str] = {
    "1 secs": "1800 S",
    "5 secs": "3600 S",
    "10 secs": "14400 S",
    "15 secs": "14400 S",
    "30 secs": "28800 S",
    "1 min": "1 D",
    "2 mins": "2 D",
    "3 mins": "1 W",
    "5 mins": "1 W",
    "10 mins": "1 W",
    "15 mins": "1 W",
    "20 mins": "1 W",
    "30 mins": "1 M",
    "1 hour": "1 M",
    "2 hours": "1 M",
    "3 hours": "1 M",
    "4 hours": "1 M",
    "8 hours": "1 M",
    "1 day": "1 Y",
    "1 week": "1 Y",
    "1 month": "1 Y",
}

_DURATION_UNITS = {"S": 1, "D": DAY, "W": WEEK, "M": MONTH, "Y": YEAR}


def ib_bar_size(timeframe: str) -> str:
    try:
        return IB_BAR_SIZES[timeframe]
    except KeyError:
        raise BadRequest(
            f"timeframe {timeframe!r} is not an IB bar size; supported: {', '.join(IB_BAR_SIZES)}"
        ) from None


def ib_timeframe(bar_size: str) -> str:
    try:
        return IB_TIMEFRAMES[bar_size]
    except KeyError:
        raise BadRequest(f"unknown IB bar size {bar_size!r}") from None


def duration_seconds(duration: str) -> int:
    """Seconds covered by an IB ``durationStr`` such as ``'2 D'`` (months count 30 days)."""
    try:
        amount, unit = duration.split(" ")
        return int(amount) * _DURATION_UNITS[unit]
    except (ValueError, KeyError):
        raise BadRequest(f"invalid IB duration {duration!r}") from None


def ib_max_duration_seconds(bar_size: str) -> int:
    return duration_seconds(IB_MAX_DURATION[bar_size])


#: IB's step-size table: (durationStr, smallest bar, largest bar) per row.
IB_DURATION_TABLE: tuple[tuple[str, str, str], ...] = (
    ("60 S", "1 secs", "1 min"),
    ("120 S", "1 secs", "2 mins"),
    ("1800 S", "1 secs", "30 mins"),
    ("3600 S", "5 secs", "1 hour"),
    ("14400 S", "10 secs", "3 hours"),
    ("28800 S", "30 secs", "8 hours"),
    ("1 D", "1 min", "1 day"),
    ("2 D", "2 mins", "1 day"),
    ("1 W", "3 mins", "1 week"),
    ("1 M", "30 mins", "1 month"),
    ("1 Y", "1 day", "1 month"),
)


def bar_size_seconds(bar_size: str) -> int:
    return timeframe_seconds(ib_timeframe(bar_size))


def ib_min_duration_seconds(bar_size: str) -> int:
    """The shortest durationStr IB accepts for ``bar_size`` (a 1-hour bar needs 3600 S)."""
    bar = bar_size_seconds(bar_size)
    for duration, smallest, largest in IB_DURATION_TABLE:
        if bar_size_seconds(smallest) <= bar <= bar_size_seconds(largest):
            return duration_seconds(duration)
    raise BadRequest(f"IB bar size {bar_size!r} fits no duration")


def ib_duration_for(span_seconds: int, bar_size: str) -> str:
    """The shortest durationStr covering ``span_seconds`` that IB allows for ``bar_size``.

    The span is clamped into [minimum, maximum] of IB's step-size table, so IB never sees a
    step it rejects with error 162; spans beyond the maximum are the caller's to paginate.
    """
    limit = ib_max_duration_seconds(bar_size)
    span = max(ib_min_duration_seconds(bar_size), min(int(span_seconds), limit))
    if span == limit:
        return IB_MAX_DURATION[bar_size]
    if span < DAY:
        return f"{span} S"
    days = -(-span // DAY)
    if days * DAY <= limit and days <= 30:
        return f"{days} D"
    months = -(-span // MONTH)
    if months * MONTH <= limit and months <= 11:
        return f"{months} M"
    return IB_MAX_DURATION[bar_size]


# --------------------------------------------------------------------------------------------
# Capital.com: resolutions, 1000 bars per request

CAPITAL_RESOLUTIONS: dict[str, str] = {
    "1m": "MINUTE",
    "5m": "MINUTE_5",
    "15m": "MINUTE_15",
    "30m": "MINUTE_30",
    "1h": "HOUR",
    "4h": "HOUR_4",
    "1d": "DAY",
    "1w": "WEEK",
}
CAPITAL_TIMEFRAMES: dict[str, str] = {res: tf for tf, res in CAPITAL_RESOLUTIONS.items()}
CAPITAL_MAX_BARS = 1000


def capital_resolution(timeframe: str) -> str:
    try:
        return CAPITAL_RESOLUTIONS[timeframe]
    except KeyError:
        raise BadRequest(
            f"timeframe {timeframe!r} is not a Capital.com resolution; "
            f"supported: {', '.join(CAPITAL_RESOLUTIONS)} (and 1M by resampling)"
        ) from None


def capital_timeframe(resolution: str) -> str:
    try:
        return CAPITAL_TIMEFRAMES[resolution]
    except KeyError:
        raise BadRequest(f"unknown Capital.com resolution {resolution!r}") from None


# --------------------------------------------------------------------------------------------
# Timeframes a broker lacks, built by resampling a native one

#: Derived timeframe -> native timeframe it is resampled from, per broker.
RESAMPLED: dict[str, dict[str, str]] = {
    "ibkr": {"12h": "4h", "6h": "2h"},
    "capitalcom": {"1M": "1d", "2h": "1h", "3h": "1h", "6h": "1h", "8h": "4h", "12h": "4h", "10m": "5m"},
}


def resample_source(broker: str, timeframe: str) -> str | None:
    """The native timeframe ``timeframe`` is built from at ``broker``, or None if it is native."""
    return RESAMPLED.get(broker, {}).get(timeframe)


def paginate(since_ms: int, until_ms: int, step_ms: int) -> list[tuple[int, int]]:
    """Split [since, until) into consecutive windows of at most ``step_ms``.

    Windows are returned oldest first; the last one may be shorter.
    """
    if step_ms <= 0:
        raise ValueError("step must be positive")
    windows: list[tuple[int, int]] = []
    start = since_ms
    while start < until_ms:
        end = min(start + step_ms, until_ms)
        windows.append((start, end))
        start = end
    return windows
