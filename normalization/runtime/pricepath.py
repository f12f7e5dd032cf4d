"""Deterministic synthetic prices shared by both simulators.

A simulator needs the same price for quotes, bars and fills, for any moment a test asks about,
in any order, and identically on every run. A plain random walk would force generating history
sequentially; instead daily anchor closes come from one seeded walk over days and each day's
minute path is a seeded Brownian bridge between two anchors. Any minute is computable from its
day alone, so years of bars cost only the days actually requested.
"""

from __future__ import annotations

import csv
import hashlib
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

MINUTE = 60
DAY = 86_400
#: Anchor walk starts here; earlier dates are refused rather than invented.
EPOCH_DAY = 10_957  # 2000-01-01 in days since 1970-01-01
MAX_DAYS = 18_000  # about 49 years of anchors


def _seed_for(*parts: object) -> int:
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


@dataclass(frozen=True)
class Bar:
    """One OHLCV bar; ``time`` is the bar's open in epoch seconds."""

    time: int
    open: float
    high: float
    low: float
    close: float
    volume: float


class PricePath:
    """Minute-resolution mid prices for one instrument, deterministic for a seed.

    ``start_price`` is the price on 2000-01-01; ``daily_vol`` the daily log-return deviation.
    Volumes are synthetic too, scaled by ``volume_scale``.
    """

    def __init__(
        self,
        key: str,
        start_price: float,
        *,
        seed: int = 0,
        daily_vol: float = 0.015,
        volume_scale: float = 1_000.0,
        tick: float | None = None,
    ) -> None:
        self.key = key
        self.seed = seed
        self.start_price = float(start_price)
        self.daily_vol = float(daily_vol)
        self.volume_scale = float(volume_scale)
        self.tick = tick
        rng = np.random.default_rng(_seed_for(seed, key, "anchors"))
        # Mean-reverting in log space so a path stays near its start over decades.
        shocks = rng.normal(0.0, self.daily_vol, MAX_DAYS)
        log_anchor = np.empty(MAX_DAYS + 1)
        log_anchor[0] = 0.0
        kappa = 0.002
        for i in range(MAX_DAYS):  # one pass, ~18k steps, done once per instrument
            log_anchor[i + 1] = log_anchor[i] * (1 - kappa) + shocks[i]
        self._anchors = self.start_price * np.exp(log_anchor)
        self._day_cache = lru_cache(maxsize=512)(self._day_minutes)

    # -- raw minute data -------------------------------------------------------------------
    def _anchor(self, day: int) -> float:
        index = day - EPOCH_DAY
        if index < 0 or index >= MAX_DAYS:
            raise ValueError(f"no synthetic prices for day {day} of {self.key}")
        return float(self._anchors[index])

    def _day_minutes(self, day: int) -> tuple[np.ndarray, np.ndarray]:
        """Mid closes and volumes of the 1440 minutes of ``day`` (days since the epoch)."""
        start, end = self._anchor(day), self._anchor(day + 1)
        rng = np.random.default_rng(_seed_for(self.seed, self.key, day))
        steps = rng.normal(0.0, self.daily_vol / math.sqrt(1440), 1440)
        walk = np.cumsum(steps)
        # Brownian bridge: pin the last minute to the next anchor.
        ramp = np.arange(1, 1441) / 1440.0
        bridge = walk - ramp * walk[-1]
        log_path = math.log(start) + ramp * (math.log(end) - math.log(start)) + bridge
        closes = np.exp(log_path)
        volumes = np.round(self.volume_scale * (0.5 + rng.random(1440)))
        return closes, volumes

    def _round(self, price: float) -> float:
        if not self.tick:
            return float(price)
        return round(round(price / self.tick) * self.tick, 10)

    def price_at(self, ts: float) -> float:
        """Mid price at ``ts`` (epoch seconds): the close of the minute containing it."""
        day, second = divmod(int(ts), DAY)
        closes, _ = self._day_cache(day)
        return self._round(float(closes[second // MINUTE]))

    def bars(self, start: int, end: int, seconds: int) -> list[Bar]:
        """Bars of ``seconds`` length whose open lies in [start, end), aligned to ``seconds``.

        Bars of a day or longer align to UTC midnight (weeks to Monday), the way brokers
        label daily bars in UTC.
        """
        if seconds < MINUTE or seconds % MINUTE:
            raise ValueError("bar length must be a whole number of minutes")
        first = _align(start, seconds)
        if first < start:
            first += seconds
        out: list[Bar] = []
        t = first
        while t < end:
            out.append(self._bar(t, seconds))
            t += seconds
        return out

    def _bar(self, t: int, seconds: int) -> Bar:
        minutes_needed = seconds // MINUTE
        closes_parts: list[np.ndarray] = []
        volume_parts: list[np.ndarray] = []
        cursor = t
        remaining = minutes_needed
        while remaining > 0:
            day, second = divmod(cursor, DAY)
            offset = second // MINUTE
            take = min(remaining, 1440 - offset)
            closes, volumes = self._day_cache(day)
            closes_parts.append(closes[offset : offset + take])
            volume_parts.append(volumes[offset : offset + take])
            remaining -= take
            cursor += take * MINUTE
        closes = np.concatenate(closes_parts)
        volumes = np.concatenate(volume_parts)
        open_price = self.price_at(t - MINUTE) if t - MINUTE >= EPOCH_DAY * DAY else float(closes[0])
        high = max(float(closes.max()), open_price)
        low = min(float(closes.min()), open_price)
        return Bar(
            time=t,
            open=self._round(open_price),
            high=self._round(high),
            low=self._round(low),
            close=self._round(float(closes[-1])),
            volume=float(volumes.sum()),
        )


def _align(ts: int, seconds: int) -> int:
    if seconds == 7 * DAY:
        # 1970-01-01 was a Thursday; the first Monday is 1970-01-05, four days later.
        monday = 4 * DAY
        return ts - ((ts - monday) % seconds)
    return ts - (ts % seconds)


class CsvPricePath(PricePath):
    """Prices replayed from a user's CSV of bars (``time,open,high,low,close,volume``).

    ``time`` is epoch seconds or an ISO-8601 date. Between bars the last close holds; bar
    requests aggregate the CSV rows, so a CSV of 1-minute bars serves every timeframe.
    """

    def __init__(self, key: str, path: str | Path, *, tick: float | None = None) -> None:
        rows: list[Bar] = []
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                rows.append(
                    Bar(
                        time=_parse_time(row["time"]),
                        open=float(row["open"]),
                        high=float(row["high"]),
                        low=float(row["low"]),
                        close=float(row["close"]),
                        volume=float(row.get("volume") or 0.0),
                    )
                )
        if not rows:
            raise ValueError(f"{path}: no bars")
        rows.sort(key=lambda bar: bar.time)
        self.key = key
        self.seed = 0
        self.tick = tick
        self.start_price = rows[0].open
        self._rows = rows
        self._times = np.array([bar.time for bar in rows], dtype=np.int64)

    def price_at(self, ts: float) -> float:
        index = int(np.searchsorted(self._times, int(ts), side="right")) - 1
        return self._round(self._rows[max(index, 0)].close)

    def bars(self, start: int, end: int, seconds: int) -> list[Bar]:
        lo = int(np.searchsorted(self._times, start, side="left"))
        hi = int(np.searchsorted(self._times, end, side="left"))
        grouped: dict[int, list[Bar]] = {}
        for bar in self._rows[lo:hi]:
            grouped.setdefault(_align(bar.time, seconds), []).append(bar)
        return [
            Bar(
                time=t,
                open=group[0].open,
                high=max(b.high for b in group),
                low=min(b.low for b in group),
                close=group[-1].close,
                volume=sum(b.volume for b in group),
            )
            for t, group in sorted(grouped.items())
        ]


def _parse_time(value: str) -> int:
    value = value.strip()
    if value.isdigit():
        number = int(value)
        return number // 1000 if number > 10**11 else number
    from datetime import datetime, timezone

    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return int(parsed.timestamp())
