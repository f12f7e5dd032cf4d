"""Historical ticks and histograms, built from the same minute path as bars and quotes.

The price path has one price per minute, so there is one trade (or quote, or midpoint)
tick per traded minute: its price is exactly the price bars and quotes show for that
minute, and a histogram is the volume of that window's minute bars per price.
"""

from __future__ import annotations

from dataclasses import dataclass

from .catalogue import Instrument
from .marketdata import MarketData, _noise, round_to_tick

#: TWS returns at most this many ticks per reqHistoricalTicks.
MAX_TICKS = 1000


@dataclass(frozen=True)
class Tick:
    time: int
    price: float = 0.0
    size: float = 0.0
    bid: float = 0.0
    ask: float = 0.0
    bid_size: float = 0.0
    ask_size: float = 0.0


def _minutes(market: MarketData, inst: Instrument, start: int, end: int, liquid: bool) -> list[int]:
    """Minute starts in [start, end) when the venue trades (regular hours if ``liquid``)."""
    out: list[int] = []
    for open_, close in market.windows(inst, start, end, liquid):
        t = max(int(open_), start)
        t += (-t) % 60
        stop = min(int(close), end)
        while t < stop:
            out.append(t)
            t += 60
    return out


def historical_ticks(
    market: MarketData, inst: Instrument, what: str, start: float | None, end: float, count: int, use_rth: bool
) -> list[Tick]:
    """Up to ``count`` ticks from ``start`` forward, or the last ``count`` before ``end``."""
    count = max(1, min(count, MAX_TICKS))
    if start is not None:
        lo, hi = int(start), int(end)
        minutes = _minutes(market, inst, lo, hi, use_rth)[:count]
    else:
        hi = int(end)
        lo = hi - 86400
        minutes = []
        for _ in range(14):  # look back up to two weeks for enough traded minutes
            minutes = _minutes(market, inst, lo, hi, use_rth)
            if len(minutes) >= count:
                break
            lo -= 86400
        minutes = minutes[-count:]
    path = market.path(inst)
    half = market.half_spread(inst)
    out: list[Tick] = []
    for minute in minutes:
        mid = path.price_at(minute)
        n = _noise(inst.con_id, minute, "tick")
        if what == "BID_ASK":
            out.append(Tick(minute, bid=round_to_tick(mid - half, inst.min_tick),
                            ask=round_to_tick(mid + half, inst.min_tick),
                            bid_size=100.0 * (1 + n % 9), ask_size=100.0 * (1 + (n >> 8) % 9)))
        elif what == "MIDPOINT":
            out.append(Tick(minute, price=mid))
        else:
            out.append(Tick(minute + n % 60, price=mid, size=float(1 + (n >> 16) % 500)))
    return out


def histogram(market: MarketData, inst: Instrument, start: int, end: int, use_rth: bool) -> list[tuple[float, float]]:
    """(price, volume) per price level: the window's minute-bar volume at each minute's close."""
    path = market.path(inst)
    volume: dict[float, float] = {}
    minutes = set(_minutes(market, inst, start, end, use_rth))
    for bar in path.bars(start - start % 60, end, 60):
        if bar.time in minutes:
            volume[bar.close] = volume.get(bar.close, 0.0) + bar.volume
    return sorted(volume.items())
