"""What happens when the clock moves: triggers, stops and limits, expiries and overnight funding.

Between two moments the price path is replayed minute by minute, only over minutes when the
instrument's market is open, so a working order, stop loss or take profit triggers at the first
minute its level is touched -- in time order across instruments, interleaved with good-till-date
expiries and the daily swap. A long jump of the clock therefore has the same outcome as many
small ones.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from .account import Transaction, money
from .catalogue import SWAP_SECOND_OF_DAY, Instrument
from .models import Position
from .pricing import MINUTE

if TYPE_CHECKING:
    from .dealing import Dealer

EPS = 1e-9
#: Positions are closed when equity falls below this fraction of the margin in use.
STOP_OUT_LEVEL = 0.5


class ClockWork:
    """Runs the books of a :class:`~.dealing.Dealer` forward in time."""

    def __init__(self, dealer: Dealer) -> None:
        self.dealer = dealer

    def process_until(self, target: float) -> None:
        """Run everything that became due between the last processed moment and ``target``."""
        d = self.dealer
        while True:
            start = d.processed_at
            if target <= start:
                return
            events: list[tuple[float, int, str, Any]] = []
            swap = _next_swap(start)
            if swap <= target:
                events.append((swap, 1, "swap", None))
            for order in d.orders.values():
                if order.good_till is not None and start < order.good_till <= target:
                    events.append((order.good_till, 2, "expire", order.deal_id))
            horizon = min([e[0] for e in events] + [target])
            minute = self._first_trigger_minute(start, horizon)
            if minute is not None:
                events.append((minute, 0, "trigger", None))
            if not events:
                self._trail(start, target)
                d.processed_at = target
                self._margin_check(target)
                return
            when, _, kind, item = min(events, key=lambda e: (e[0], e[1]))
            self._trail(start, when)
            d.processed_at = when
            if kind == "swap":
                self._charge_swaps(when)
            elif kind == "expire":
                order = d.orders.get(item)
                if order is not None:
                    d.remove_order(order, "SYSTEM", when)
            else:
                self._apply_minute(when)
            self._margin_check(when)

    def _trigger_epics(self) -> set[str]:
        d = self.dealer
        epics = {o.epic for o in d.orders.values()}
        epics.update(p.epic for p in d.positions.values()
                     if p.stop_level is not None or p.profit_level is not None)
        return epics

    def _first_trigger_minute(self, start: float, end: float) -> float | None:
        """First minute start in (start, end] at which some order or stop/limit would trigger."""
        d = self.dealer
        first = (int(start) // MINUTE + 1) * MINUTE
        if first > end:
            return None
        best: float | None = None
        for epic in sorted(self._trigger_epics()):
            inst = d.catalogue.by_epic[epic]
            intervals = inst.open_intervals(first, end)
            limit = end if best is None else min(end, best - MINUTE)
            for begin, finish in intervals:
                t = max(first, math.ceil(begin / MINUTE) * MINUTE)
                while t <= limit and t < finish:
                    if self._anything_hits(epic, inst, t):
                        best = t if best is None else min(best, t)
                        limit = t - MINUTE
                        break
                    t += MINUTE
        return best

    def _trail_stop(self, pos: Position, bid: float, offer: float) -> float | None:
        d = self.dealer
        if not pos.trailing or pos.trailing_distance is None or pos.stop_level is None:
            return pos.stop_level
        inst = d.catalogue.by_epic[pos.epic]
        if pos.direction == "BUY":
            return max(pos.stop_level, round(bid - pos.trailing_distance, inst.decimals))
        return min(pos.stop_level, round(offer + pos.trailing_distance, inst.decimals))

    def _trail(self, start: float, end: float) -> None:
        """Move trailing stops along the prices of (start, end) before anything at ``end`` runs."""
        d = self.dealer
        trailing = [p for p in d.positions.values() if p.trailing and p.trailing_distance]
        first = (int(start) // MINUTE + 1) * MINUTE
        for pos in trailing:
            inst = d.catalogue.by_epic[pos.epic]
            t = first
            while t < end:
                if inst.is_open(t):
                    quote = d.feed.quote(pos.epic, t)
                    pos.stop_level = self._trail_stop(pos, quote.bid, quote.offer)
                t += MINUTE

    def _anything_hits(self, epic: str, inst: Instrument, t: float) -> bool:
        d = self.dealer
        quote = d.feed.quote(epic, t)
        for order in d.orders.values():
            if order.epic == epic and d.order_hit(order, quote.bid, quote.offer):
                return True
        for pos in d.positions.values():
            if pos.epic == epic and self._position_hit(pos, quote.bid, quote.offer) is not None:
                return True
        return False

    def _position_hit(self, pos: Position, bid: float, offer: float) -> str | None:
        """``"SL"`` or ``"TP"`` if the quote reaches the position's stop or profit level."""
        stop = self._trail_stop(pos, bid, offer)
        if pos.direction == "BUY":
            if stop is not None and bid <= stop + EPS:
                return "SL"
            if pos.profit_level is not None and bid >= pos.profit_level - EPS:
                return "TP"
        else:
            if stop is not None and offer >= stop - EPS:
                return "SL"
            if pos.profit_level is not None and offer <= pos.profit_level + EPS:
                return "TP"
        return None

    def _apply_minute(self, t: float) -> None:
        """Fill every order and close every position whose level the price of minute ``t`` reaches."""
        d = self.dealer
        for order in sorted(d.orders.values(), key=lambda o: o.created):
            inst = d.catalogue.by_epic[order.epic]
            if order.deal_id not in d.orders or not inst.is_open(t):
                continue
            quote = d.feed.quote(order.epic, t)
            if d.order_hit(order, quote.bid, quote.offer):
                d.fill_order(order, t)
        for pos in sorted(d.positions.values(), key=lambda p: p.created):
            inst = d.catalogue.by_epic[pos.epic]
            if pos.deal_id not in d.positions or not inst.is_open(t):
                continue
            quote = d.feed.quote(pos.epic, t)
            hit = self._position_hit(pos, quote.bid, quote.offer)
            if hit is None:
                continue
            market = quote.bid if pos.direction == "BUY" else quote.offer
            price = market
            if hit == "SL" and pos.guaranteed and pos.stop_level is not None:
                price = pos.stop_level
            d.close_part(pos, pos.size, price, d.new_reference("p_"), t, source=hit)

    def _margin_check(self, ts: float) -> None:
        """Stop-out: when equity falls below half the margin in use, the broker closes the worst
        losing position (on an open market) until the account is back above that line.

        Checked at every processed moment (clock moves, triggers, swaps) rather than every minute,
        which keeps long clock jumps cheap and the outcome deterministic.
        """
        d = self.dealer
        for account in d.accounts.values():
            while True:
                mine = [p for p in d.positions.values() if p.account_id == account.account_id]
                if not mine:
                    break
                values = d.account_values(account, ts)
                if values["margin"] <= 0 or values["balance"] >= STOP_OUT_LEVEL * values["margin"]:
                    break
                closable = [p for p in mine if d.catalogue.by_epic[p.epic].is_open(ts)]
                if not closable:
                    break
                worst = min(closable, key=lambda p: (d.to_account(d.upl(p, ts), d.catalogue.by_epic[p.epic].currency,
                                                                   account, ts), p.created))
                quote = d.feed.quote(worst.epic, ts)
                price = quote.bid if worst.direction == "BUY" else quote.offer
                d.close_part(worst, worst.size, price, d.new_reference("p_"), ts, source="SYSTEM")

    def _charge_swaps(self, ts: float) -> None:
        """Overnight funding for every open position, one SWAP transaction each."""
        d = self.dealer
        for pos in sorted(d.positions.values(), key=lambda p: p.created):
            inst = d.catalogue.by_epic[pos.epic]
            account = d.accounts[pos.account_id]
            rate = inst.overnight_long if pos.direction == "BUY" else inst.overnight_short
            notional = pos.size * inst.lot_size * d.feed.mid(pos.epic, ts)
            amount = money(d.to_account(notional * rate / 100, inst.currency, account, ts))
            if amount:
                account.book(Transaction(ts, "SWAP", amount, account.currency, inst.name,
                                         "Overnight funding", pos.deal_id))


def _next_swap(after: float) -> float:
    day = int(after) // 86_400 * 86_400
    swap = day + SWAP_SECOND_OF_DAY
    return swap if swap > after else swap + 86_400
