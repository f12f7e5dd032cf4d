"""Profit and loss as reqPnL / reqPnLSingle report it, straight from the ledger.

Unrealized and realized figures are the ledger's own (base currency, commissions included
the IB way), so a client's PnL always agrees with updatePortfolio and the account values.
Daily PnL is the change of realized + unrealized since the day began: at each New York
midnight the book records, per position, the realized PnL so far and the unrealized PnL at
midnight's prices (the previous session's close for stocks, as markets are shut then). The
server rolls the book before every matching step, so a clock jump over midnight books the
day's fills after the baseline.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from .catalogue import Instrument
from .ledger import Ledger

DAY_ZONE = ZoneInfo("America/New_York")
Mark = Callable[[Instrument], float]
MarkAt = Callable[[Instrument, float], float]


@dataclass(frozen=True)
class PnL:
    daily: float
    unrealized: float
    realized: float


@dataclass(frozen=True)
class PnLSingle:
    position: float
    daily: float
    unrealized: float
    realized: float
    value: float


class PnLBook:
    """Day baselines per conId; figures computed on demand (cheap: a handful of positions)."""

    def __init__(self, ledger: Ledger, mark: Mark, mark_at: MarkAt | None = None) -> None:
        self.ledger = ledger
        self.mark = mark
        #: Price of an instrument at a given time: the baseline uses midnight's prices even when
        #: the clock jumps over it.
        self.mark_at = mark_at
        self._day: dt.date | None = None
        self._base: dict[int, float] = {}

    def roll(self, now: float) -> None:
        """Start a new day's baseline when ``now`` is past New York midnight."""
        day = dt.datetime.fromtimestamp(now, DAY_ZONE).date()
        if day == self._day:
            return
        first = self._day is None
        self._day = day
        if first:
            return  # an account opened now has made nothing yet today
        midnight = dt.datetime.combine(day, dt.time(0), DAY_ZONE).timestamp()
        with self.ledger.lock:
            positions = list(self.ledger.positions.values())
            self._base = {}
            for pos in positions:
                rate = self.ledger.rate(pos.instrument.currency)
                unrealized = 0.0
                if pos.qty:
                    price = self.mark_at(pos.instrument, midnight) if self.mark_at else self.mark(pos.instrument)
                    unrealized = self.ledger.unrealized(pos, price) * rate
                self._base[pos.instrument.con_id] = unrealized + pos.realized * rate

    def _figures(self, con_id: int) -> tuple[float, float, float, float]:
        """(qty, unrealized, realized, market value) in base currency for one conId."""
        with self.ledger.lock:
            pos = self.ledger.positions.get(con_id)
            if pos is None:
                return 0.0, 0.0, 0.0, 0.0
            rate = self.ledger.rate(pos.instrument.currency)
            if pos.qty:
                mark = self.mark(pos.instrument)
                unrealized = self.ledger.unrealized(pos, mark) * rate
                value = self.ledger.market_value(pos, mark) * rate
            else:
                unrealized = value = 0.0
            return pos.qty, unrealized, pos.realized * rate, value

    def single(self, con_id: int) -> PnLSingle:
        qty, unrealized, realized, value = self._figures(con_id)
        daily = unrealized + realized - self._base.get(con_id, 0.0)
        return PnLSingle(qty, daily, unrealized, realized, value)

    def account(self) -> PnL:
        with self.ledger.lock:
            con_ids = list(self.ledger.positions)
        daily = unrealized = realized = 0.0
        for con_id in con_ids:
            one = self.single(con_id)
            daily += one.daily
            unrealized += one.unrealized
            realized += one.realized
        return PnL(daily, unrealized, realized)
