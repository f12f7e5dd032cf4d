"""Per-connection subscription records (market data, depth, bars) kept by a session."""

from __future__ import annotations

from dataclasses import dataclass

from .catalogue import Instrument
from .marketdata import Quote


@dataclass
class MktSub:
    inst: Instrument
    last: Quote | None = None
    delayed: bool = False


@dataclass
class HistSub:
    inst: Instrument
    what: str
    seconds: int
    format_date: int
    use_rth: bool
    last_sent: tuple | None = None


@dataclass
class RealTimeSub:
    inst: Instrument
    what: str
    next_bar: int


@dataclass
class DepthSub:
    inst: Instrument
    rows: int
    sent: bool = False
    smart: bool = False


@dataclass
class TickByTickSub:
    inst: Instrument
    tick_type: int  # 1 Last, 2 AllLast, 3 BidAsk, 4 MidPoint
    ignore_size: bool = False
    last: tuple | None = None
