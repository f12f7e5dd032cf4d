"""Quotes, depth and historical bars from deterministic price paths, plus IB's HMDS rules.

Every price the simulator shows (ticks, bars, fills) comes from one ``PricePath`` per
instrument, seeded from the simulator seed and the instrument key, so a test sees the same
numbers on every run and a fill price can be predicted from the quote. Bid/ask sit a whole
number of ticks either side of the tick-rounded mid. The historical-data rules (bar-size vs
duration table, whatToShow availability, pacing) are checked against the simulated clock so
pacing tests never sleep.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import re
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from normalization.runtime.pricepath import Bar, CsvPricePath, PricePath

from . import sessionbars
from .catalogue import Instrument

BAR_SIZES: dict[str, int] = {
    "1 secs": 1, "5 secs": 5, "10 secs": 10, "15 secs": 15, "30 secs": 30,
    "1 min": 60, "2 mins": 120, "3 mins": 180, "5 mins": 300, "10 mins": 600, "15 mins": 900,
    "20 mins": 1200, "30 mins": 1800, "1 hour": 3600, "2 hours": 7200, "3 hours": 10800,
    "4 hours": 14400, "8 hours": 28800, "1 day": 86400, "1 week": 604800, "1 month": 2592000,
}
#: Longest duration (seconds) per bar size, from IB's "step size" table (ib-protocol.md §4).
#: Bars of a day or longer have no practical limit ("10 Y" of daily bars works at IB).
MAX_DURATION: dict[int, int] = {
    1: 1800, 5: 3600, 10: 14400, 15: 14400, 30: 28800, 60: 86400, 120: 2 * 86400,
    180: 7 * 86400, 300: 7 * 86400, 600: 7 * 86400, 900: 7 * 86400, 1200: 7 * 86400,
    1800: 30 * 86400, 3600: 30 * 86400, 7200: 30 * 86400, 10800: 30 * 86400,
    14400: 30 * 86400, 28800: 30 * 86400,
}
DURATION_UNITS = {"S": 1, "D": 86400, "W": 7 * 86400, "M": 30 * 86400, "Y": 365 * 86400}
WHAT_TO_SHOW = {"TRADES", "MIDPOINT", "BID", "ASK", "BID_ASK", "ADJUSTED_LAST"}
HMDS = "Historical Market Data Service error message:"
#: Quote cadence (seconds between changes) per secType: IB aggregates stock quotes every 250 ms
#: and FX every 5 ms; futures and crypto like stocks.
DEFAULT_CADENCE = {"STK": 0.25, "FUT": 0.25, "CRYPTO": 0.25, "CASH": 0.005}


class HistoricalError(Exception):
    """Maps to a TWS error message for a historical request."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


@dataclass(frozen=True)
class Quote:
    bid: float
    ask: float
    last: float
    bid_size: float
    ask_size: float
    last_size: float
    volume: float
    high: float
    low: float
    close: float
    time: int


def _noise(*parts: object) -> int:
    return int.from_bytes(hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=4).digest(), "big")


def _digits(tick: float) -> int:
    return max(0, -int(f"{tick:e}".split("e")[1])) + 2


def round_to_tick(price: float, tick: float) -> float:
    """``price`` on the tick grid, printed without float noise (163.36, not 163.35999999999999)."""
    return round(round(price / tick) * tick, _digits(tick))


def parse_duration(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+)\s*([SDWMY])\s*", text or "")
    if not match:
        raise HistoricalError(321, f"Error validating request.-'bX' : cause - Invalid duration format {text!r}")
    return int(match.group(1)) * DURATION_UNITS[match.group(2)]


def parse_end(text: str, now: float) -> float:
    """TWS accepts ``yyyymmdd hh:mm:ss [tz]``, ``yyyymmdd-hh:mm:ss`` (UTC) and ``yyyymmdd``."""
    text = (text or "").strip()
    if not text:
        return now
    try:
        if "-" in text and " " not in text:
            when = dt.datetime.strptime(text, "%Y%m%d-%H:%M:%S").replace(tzinfo=dt.timezone.utc)
        elif len(text) == 8:
            when = dt.datetime.strptime(text, "%Y%m%d").replace(tzinfo=dt.timezone.utc) + dt.timedelta(days=1)
        else:
            parts = text.split()
            when = dt.datetime.strptime(" ".join(parts[:2]), "%Y%m%d %H:%M:%S")
            zone = ZoneInfo(parts[2]) if len(parts) > 2 else dt.timezone.utc
            when = when.replace(tzinfo=zone)
    except (ValueError, KeyError) as exc:
        raise HistoricalError(321, f"Error validating request.-'bX' : cause - bad endDateTime {text!r}") from exc
    return min(when.timestamp(), now)


def parse_start(text: str) -> float:
    """A start time in any form ``parse_end`` accepts, not capped at now."""
    return parse_end(text, float("inf"))


def format_bar_time(ts: int, daily: bool, format_date: int, tz: str) -> str:
    if daily:
        return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y%m%d")
    if format_date == 2:
        return str(int(ts))
    local = dt.datetime.fromtimestamp(ts, ZoneInfo(tz))
    return f"{local:%Y%m%d %H:%M:%S} {tz}"


class MarketData:
    """Price paths per instrument and the views built on them; safe to call from any thread."""

    def __init__(
        self, seed: int = 0, csv_paths: Mapping[str, str | Path] | None = None,
        cadence: Mapping[str, float] | None = None,
    ) -> None:
        self.seed = seed
        #: Seconds between quote changes per secType (0 = once a minute, the path's resolution).
        self.cadence: dict[str, float] = {**DEFAULT_CADENCE, **(cadence or {})}
        self.csv_paths = {k.upper(): v for k, v in (csv_paths or {}).items()}
        self._paths: dict[int, PricePath] = {}
        self._lock = threading.Lock()

    def path(self, inst: Instrument) -> PricePath:
        with self._lock:
            path = self._paths.get(inst.con_id)
            if path is None:
                csv = self.csv_paths.get(inst.local_symbol.upper()) or self.csv_paths.get(inst.symbol.upper())
                if csv is not None:
                    path = CsvPricePath(inst.key, csv, tick=inst.min_tick)
                else:
                    path = PricePath(
                        inst.key, inst.start_price, seed=self.seed, daily_vol=inst.daily_vol,
                        volume_scale=inst.volume_scale or 1.0, tick=inst.min_tick,
                    )
                self._paths[inst.con_id] = path
            return path

    def set_path(self, inst: Instrument, path: PricePath) -> None:
        with self._lock:
            self._paths[inst.con_id] = path

    def mid(self, inst: Instrument, ts: float) -> float:
        """Mid price at ``ts``; outside trading hours the last session's final price, as at TWS.

        The path has one price per minute (the price at a minute's start); between two minutes
        the quote walks from one to the next in steps of the venue's cadence (IB aggregates
        stock quotes every 250 ms, FX every 5 ms), never leaving their range. Prices at whole
        minutes, where matching steps and bars are cut, are the path's own.
        """
        path = self.path(inst)
        t = inst.hours.last_trade_time(ts)
        minute = int(t) // 60 * 60
        here = path.price_at(minute)
        step = self.cadence.get(inst.sec_type, 0.0)
        if t != ts or step <= 0 or step >= 60:
            return here
        k = int((t - minute) / step)
        if k <= 0 or inst.hours.last_trade_time(minute + 60) != minute + 60:
            return here  # a minute's start, or the session's last minute: no next price to walk to
        there = path.price_at(minute + 60)
        if there == here:
            return here
        base = here + (there - here) * k * step / 60
        jitter = (_noise(inst.con_id, minute, k) % 5 - 2) * inst.min_tick
        low, high = min(here, there), max(here, there)
        return round_to_tick(min(max(base + jitter, low), high), inst.min_tick)

    def half_spread(self, inst: Instrument) -> float:
        return inst.spread_ticks * inst.min_tick

    def touch(self, inst: Instrument, ts: float) -> tuple[float, float, float]:
        """(bid, ask, last) only: what matching needs, without the day statistics."""
        mid = self.mid(inst, ts)
        half = self.half_spread(inst)
        digits = _digits(inst.min_tick)
        return round(mid - half, digits), round(mid + half, digits), mid

    def _day_stats(self, inst: Instrument, ts: float) -> tuple[float, float, float]:
        """Today's (UTC) high, low and volume up to ``ts`` (the last trading minute when closed)."""
        ts = inst.hours.last_trade_time(ts)
        path = self.path(inst)
        day, second = divmod(int(ts), 86400)
        cache = getattr(path, "_day_cache", None)
        if cache is not None:
            closes, volumes = cache(day)
            upto = second // 60 + 1
            prev = path.price_at(day * 86400 - 60)
            return (
                path._round(max(float(closes[:upto].max()), prev)),
                path._round(min(float(closes[:upto].min()), prev)),
                float(volumes[:upto].sum()),
            )
        today = path.bars(day * 86400, int(ts) + 1, 60)
        mid = path.price_at(ts)
        return (
            max((b.high for b in today), default=mid),
            min((b.low for b in today), default=mid),
            sum(b.volume for b in today),
        )

    def quote(self, inst: Instrument, ts: float) -> Quote:
        bid, ask, mid = self.touch(inst, ts)
        step = self.cadence.get(inst.sec_type, 0.0)
        n = _noise(inst.con_id, int(ts // step) if 0 < step < 60 else int(ts) // 60)
        if inst.sec_type == "CASH":
            unit = 1_000_000.0
        elif inst.sec_type == "CRYPTO":
            unit = 0.5
        elif inst.sec_type == "FUT":
            unit = 5.0
        else:
            unit = 100.0
        high, low, volume = self._day_stats(inst, ts)
        traded = inst.hours.last_trade_time(ts)
        day_start = int(traded) - int(traded) % 86400
        return Quote(
            bid=bid,
            ask=ask,
            last=mid,
            bid_size=unit * (1 + n % 9),
            ask_size=unit * (1 + (n >> 8) % 9),
            last_size=unit * (1 + (n >> 16) % 5),
            volume=volume,
            high=high,
            low=low,
            close=self.path(inst).price_at(inst.hours.last_trade_time(day_start - 60)),
            time=int(ts),
        )

    # -- historical bars -------------------------------------------------------------------
    def validate_request(
        self, inst: Instrument, bar_size: str, duration: str, what: str
    ) -> tuple[int, int]:
        """(bar seconds, duration seconds) or HistoricalError with TWS's code and text."""
        seconds = BAR_SIZES.get(bar_size.strip())
        if seconds is None:
            raise HistoricalError(321, f"Error validating request.-'bP' : cause - Invalid bar size {bar_size!r}")
        span = parse_duration(duration)
        what = what.upper()
        if what not in WHAT_TO_SHOW:
            raise HistoricalError(162, f"{HMDS}No historical market data for {inst.symbol} {what}")
        if inst.sec_type == "CASH" and what in {"TRADES", "ADJUSTED_LAST"}:
            raise HistoricalError(
                162,
                f"{HMDS}No data of type {what} is available for the exchange '{inst.exchange}' "
                f"and the security type 'Forex' and '{duration}' and '{bar_size}'",
            )
        limit = MAX_DURATION.get(seconds)
        if limit is not None and span > limit:
            raise HistoricalError(162, f"{HMDS}Time length exceed max.")
        return seconds, span

    def check_age(self, inst: Instrument, seconds: int, end: float, now: float) -> None:
        """IB keeps bars of 30 s or less for six months only."""
        if seconds <= 30 and end < now - 183 * 86400:
            raise HistoricalError(
                162, f"{HMDS}HMDS query returned no data: {inst.local_symbol}@{inst.exchange} Trades"
            )

    def windows(self, inst: Instrument, start: float, end: float, liquid: bool) -> list[tuple[float, float]]:
        """Sessions (open, close) of the trading dates around [start, end], oldest first."""
        return self._windows(inst, start, end, liquid)

    def _windows(self, inst: Instrument, start: float, end: float, liquid: bool) -> list[tuple[float, float]]:
        out: list[tuple[float, float]] = []
        zone = ZoneInfo(inst.hours.tz)
        day = dt.datetime.fromtimestamp(start, zone).date() - dt.timedelta(days=1)
        last = dt.datetime.fromtimestamp(end, zone).date() + dt.timedelta(days=1)
        while day <= last:
            window = inst.hours.session_on(day, liquid)
            if window:
                out.append(window)
            day += dt.timedelta(days=1)
        return out

    def bars(
        self, inst: Instrument, what: str, end: float, span: int, seconds: int, use_rth: bool, now: float
    ) -> list[Bar]:
        """Bars whose open lies in [end-span, end), the last one partial if still forming."""
        path = self.path(inst)
        start = int(end - span)
        stop = int(end)
        if inst.sec_type != "CRYPTO" and seconds >= 60:
            return self._shift(inst, self._session_bars(inst, path, start, stop, seconds, use_rth, now), what)
        if seconds >= 86400:
            # Crypto trades around the clock: days are UTC days.
            daily = path.bars(start - start % 86400, stop, 86400) if seconds == 86400 else []
            if seconds == 604800:
                daily = path.bars(start, stop, 604800)
            elif seconds > 604800:
                daily = self._monthly(path, start, stop)
            out = [self._finish(path, b, seconds, now) for b in daily if b.time <= now]
        elif seconds < 60:
            first = start - start % seconds
            if first < start:
                first += seconds
            out = []
            t = first
            while t < stop and t <= now:
                price = path.price_at(t)
                out.append(Bar(t, price, price, price, price, float(_noise(inst.con_id, t) % 50)))
                t += seconds
        else:
            out = [self._finish(path, b, seconds, now) for b in path.bars(start, stop, seconds) if b.time <= now]
        if seconds < 60 and inst.sec_type != "CRYPTO":
            windows = self._windows(inst, start, stop, liquid=use_rth)
            opens = [w[0] for w in windows]

            def inside(t: int) -> bool:
                i = bisect.bisect_right(opens, t) - 1
                return i >= 0 and windows[i][0] <= t < windows[i][1]

            out = [b for b in out if inside(b.time) or inside(b.time + seconds - 1)]
        return self._shift(inst, out, what)

    def _session_bars(
        self, inst: Instrument, path: PricePath, start: int, stop: int, seconds: int, use_rth: bool, now: float
    ) -> list[Bar]:
        """Minute-and-longer bars of a venue with sessions (see ``sessionbars``)."""
        tz = inst.hours.tz
        if seconds < 86400:
            windows = self._windows(inst, start, stop, liquid=use_rth)
            return sessionbars.intraday(path, windows, tz, start, stop, seconds, now)
        # Stocks' daily bars are the regular session whatever useRTH says; others follow useRTH.
        liquid = use_rth or inst.sec_type == "STK"
        days = sessionbars.daily(path, self._windows(inst, start, stop, liquid), tz, start, stop, now)
        if seconds == 86400:
            return days
        if seconds == 604800:
            return [b for b in sessionbars.group(days, monthly=False) if b.time >= start - 86400]
        return sessionbars.group(days, monthly=True)

    def _finish(self, path: PricePath, bar: Bar, seconds: int, now: float) -> Bar:
        """Recompute a bar that is still forming from the minutes that have started."""
        if bar.time + seconds <= now:
            return bar
        minutes = path.bars(bar.time, int(now) + 1, 60)
        if not minutes:
            return bar
        return Bar(
            time=bar.time,
            open=minutes[0].open,
            high=max(m.high for m in minutes),
            low=min(m.low for m in minutes),
            close=minutes[-1].close,
            volume=sum(m.volume for m in minutes),
        )

    def _monthly(self, path: PricePath, start: int, stop: int) -> list[Bar]:
        groups: dict[tuple[int, int], list[Bar]] = {}
        for b in path.bars(start - start % 86400, stop, 86400):
            d = dt.datetime.fromtimestamp(b.time, dt.timezone.utc)
            groups.setdefault((d.year, d.month), []).append(b)
        out = []
        for (year, month), group in sorted(groups.items()):
            first = int(dt.datetime(year, month, 1, tzinfo=dt.timezone.utc).timestamp())
            out.append(
                Bar(first, group[0].open, max(b.high for b in group), min(b.low for b in group),
                    group[-1].close, sum(b.volume for b in group))
            )
        return out

    def _shift(self, inst: Instrument, bars: list[Bar], what: str) -> list[Bar]:
        what = what.upper()
        half = self.half_spread(inst)
        tick = inst.min_tick

        def on_tick(bar: Bar) -> Bar:
            return Bar(bar.time, round_to_tick(bar.open, tick), round_to_tick(bar.high, tick),
                       round_to_tick(bar.low, tick), round_to_tick(bar.close, tick), bar.volume)

        return [on_tick(b) for b in self._shift_raw(bars, what, half)]

    def _shift_raw(self, bars: list[Bar], what: str, half: float) -> list[Bar]:
        if what == "BID":
            return [Bar(b.time, b.open - half, b.high - half, b.low - half, b.close - half, -1) for b in bars]
        if what == "ASK":
            return [Bar(b.time, b.open + half, b.high + half, b.low + half, b.close + half, -1) for b in bars]
        if what == "BID_ASK":
            return [Bar(b.time, b.open - half, b.high + half, b.low - half, b.close + half, -1) for b in bars]
        if what == "MIDPOINT":
            return [Bar(b.time, b.open, b.high, b.low, b.close, -1) for b in bars]
        return bars


class HistoricalPacer:
    """IB's historical pacing rules, measured on the simulated clock (ib-protocol.md §4).

    * no identical request within 15 s;
    * no 6 or more requests for the same contract/exchange/whatToShow within 2 s;
    * no more than 60 requests in any 10 minutes; BID_ASK counts twice.

    IB says the hard limits are lifted for bars of 1 min and above; the adapter is designed
    to obey them anyway, so they apply to every bar size unless ``strict`` is False.
    """

    def __init__(self) -> None:
        self.enabled = True
        self.strict = True
        self._history: deque[tuple[float, tuple, tuple, int]] = deque()
        self._lock = threading.Lock()
        self.forced_violations = 0

    def force_violation(self, count: int = 1) -> None:
        """Fault injection: the next ``count`` requests fail with a pacing violation."""
        with self._lock:
            self.forced_violations += count

    def reset(self) -> None:
        with self._lock:
            self._history.clear()

    def check(self, now: float, identical: tuple, contract: tuple, weight: int, bar_seconds: int) -> str | None:
        """Record the request and return None, or return the violation text."""
        violation = f"{HMDS}Historical data request pacing violation"
        with self._lock:
            if self.forced_violations:
                self.forced_violations -= 1
                return violation
            if not self.enabled or (not self.strict and bar_seconds >= 60):
                return None
            while self._history and self._history[0][0] <= now - 600:
                self._history.popleft()
            total = sum(h[3] for h in self._history)
            same_contract = sum(h[3] for h in self._history if h[2] == contract and h[0] > now - 2)
            repeated = any(h[1] == identical and h[0] > now - 15 for h in self._history)
            if repeated or same_contract + weight >= 6 or total + weight > 60:
                return violation
            self._history.append((now, identical, contract, weight))
            return None
