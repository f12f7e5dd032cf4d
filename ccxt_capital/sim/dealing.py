"""Dealing: market deals, working orders, stops and limits, netting, overnight funding.

Everything that changes positions or cash happens here, at a moment of the simulated clock:
requests deal at "now"; what becomes due as the clock moves (working orders, stop losses, take
profits, expiries, overnight funding) is run by :class:`~.clockwork.ClockWork` through the same
booking methods.

Validation follows what clients observe at the broker: malformed sizes and stop/profit distances
are refused at once with HTTP 400 (``error.invalid.size.minvalue: 1``); a closed market or missing
margin is a deal that was booked as REJECTED, seen on the confirm (``rejectReason``).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .account import Account, Transaction, money
from .catalogue import Catalogue, Instrument
from .clockwork import ClockWork
from .errors import bad_request, not_found
from .models import Activity, Confirm, Position, WorkingOrder
from .pricing import PriceFeed
from .timefmt import fmt

EPS = 1e-9
#: A goodTillDate that is not in the future (the official example's code).
NOT_IN_FUTURE = "error.not-in-future.goodTillDate"


@dataclass
class DealRequest:
    """A validated open request (market or working order), sizes and levels as floats."""

    epic: str
    direction: str
    size: float
    stop_level: float | None = None
    stop_distance: float | None = None
    stop_amount: float | None = None
    profit_level: float | None = None
    profit_distance: float | None = None
    profit_amount: float | None = None
    guaranteed: bool = False
    trailing: bool = False
    level: float | None = None  # working orders only
    order_type: str | None = None
    good_till: float | None = None


class Rejected(Exception):
    """A deal that reached the book and was refused there: it gets a REJECTED confirm."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _opposite(direction: str) -> str:
    return "SELL" if direction == "BUY" else "BUY"


def _on_step(value: float, step: float) -> bool:
    ratio = value / step
    return abs(ratio - round(ratio)) < 1e-6


class Dealer:
    """The books of all accounts and the rules that change them."""

    def __init__(self, catalogue: Catalogue, feed: PriceFeed, accounts: dict[str, Account],
                 rng: random.Random, now: Callable[[], float], *, rejects_on_confirm: bool = False,
                 tz_offset: float = 0.0) -> None:
        self.catalogue = catalogue
        self.feed = feed
        self.accounts = accounts
        self.rng = rng
        self.now = now
        self.rejects_on_confirm = rejects_on_confirm
        self.tz_offset = tz_offset
        self.positions: dict[str, Position] = {}
        self.orders: dict[str, WorkingOrder] = {}
        self.confirms: dict[str, Confirm] = {}
        self.activities: list[Activity] = []
        self.processed_at = now()
        #: Set by fault injection: the next deals' confirms stay hidden for a while.
        self.pending_plan: list[tuple[float, int]] = []
        self.clockwork = ClockWork(self)

    def process_until(self, target: float) -> None:
        """Run everything that became due between the last processed moment and ``target``."""
        self.clockwork.process_until(target)

    # -- ids ---------------------------------------------------------------------------
    def new_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def new_reference(self, prefix: str = "o_") -> str:
        return prefix + self.new_id()

    # -- money -------------------------------------------------------------------------
    def fx_rate(self, source: str, target: str, ts: float) -> float:
        """Units of ``target`` per unit of ``source`` at ``ts``, from the FX mids (via USD)."""
        if source == target:
            return 1.0
        direct = self.catalogue.get(source + target)
        if direct is not None:
            return self.feed.mid(direct.epic, ts)
        inverse = self.catalogue.get(target + source)
        if inverse is not None:
            return 1.0 / self.feed.mid(inverse.epic, ts)
        if "USD" in (source, target):
            raise ValueError(f"no FX path {source}->{target}")
        return self.fx_rate(source, "USD", ts) * self.fx_rate("USD", target, ts)

    def to_account(self, amount: float, currency: str, account: Account, ts: float) -> float:
        return amount * self.fx_rate(currency, account.currency, ts)

    def upl(self, pos: Position, ts: float) -> float:
        """Unrealized P&L in the instrument's currency, valued at the closing side of the quote."""
        inst = self.catalogue.by_epic[pos.epic]
        quote = self.feed.quote(pos.epic, ts)
        if pos.direction == "BUY":
            return (quote.bid - pos.level) * pos.size * inst.lot_size
        return (pos.level - quote.offer) * pos.size * inst.lot_size

    def margin_rate(self, account: Account, inst: Instrument) -> float:
        return 1.0 / account.leverages.get(inst.type, inst.max_leverage)

    def position_margin(self, pos: Position, ts: float) -> float:
        inst = self.catalogue.by_epic[pos.epic]
        account = self.accounts[pos.account_id]
        notional = pos.size * inst.lot_size * self.feed.mid(pos.epic, ts)
        return self.to_account(notional * self.margin_rate(account, inst), inst.currency, account, ts)

    def account_values(self, account: Account, ts: float) -> dict[str, float]:
        """balance / deposit / profitLoss / available as the broker reports them."""
        positions = [p for p in self.positions.values() if p.account_id == account.account_id]
        pnl = money(sum(self.to_account(self.upl(p, ts), self.catalogue.by_epic[p.epic].currency,
                                        account, ts) for p in positions))
        margin = money(sum(self.position_margin(p, ts) for p in positions))
        balance = money(account.cash + pnl)
        return {
            "balance": balance,
            "deposit": account.cash,
            "profitLoss": pnl,
            "available": money(max(balance - margin, 0.0)),
            "margin": margin,
        }

    # -- validation ----------------------------------------------------------------------
    def instrument(self, epic: str) -> Instrument:
        inst = self.catalogue.get(epic)
        if inst is None:
            raise not_found("error.not-found.epic")
        return inst

    def check_size(self, inst: Instrument, size: float) -> None:
        if size < inst.min_size - EPS:
            self._invalid(f"error.invalid.size.minvalue: {_num(inst.min_size)}")
        if size > inst.max_size + EPS:
            self._invalid(f"error.invalid.size.maxvalue: {_num(inst.max_size)}")
        if not _on_step(size, inst.size_increment):
            self._invalid(f"error.invalid.size.increment: {_num(inst.size_increment)}")

    def _invalid(self, code: str) -> None:
        if self.rejects_on_confirm:
            raise Rejected(code)
        raise bad_request(code)

    def resolve_levels(self, inst: Instrument, req: DealRequest, entry: float, account: Account,
                       ts: float) -> tuple[float | None, float | None]:
        """Absolute stop and profit levels from level / distance / amount, checked for distance."""
        sign = 1 if req.direction == "BUY" else -1
        per_point = req.size * inst.lot_size * self.fx_rate(inst.currency, account.currency, ts)
        stop = req.stop_level
        if stop is None and req.stop_distance is not None:
            stop = entry - sign * req.stop_distance
        if stop is None and req.stop_amount is not None:
            stop = entry - sign * req.stop_amount / per_point
        profit = req.profit_level
        if profit is None and req.profit_distance is not None:
            profit = entry + sign * req.profit_distance
        if profit is None and req.profit_amount is not None:
            profit = entry + sign * req.profit_amount / per_point
        if req.trailing and stop is None:
            self._invalid("error.invalid.trailingstop")
        if req.guaranteed and stop is None:
            self._invalid("error.invalid.guaranteedstop")
        if stop is not None:
            stop = round(stop, inst.decimals)
            min_pct = inst.guaranteed_stop_pct if req.guaranteed else inst.min_stop_pct
            self._check_distance(inst, "stoploss", entry, stop, -sign, min_pct)
        if profit is not None:
            profit = round(profit, inst.decimals)
            self._check_distance(inst, "takeprofit", entry, profit, sign, inst.min_stop_pct)
        return stop, profit

    def _check_distance(self, inst: Instrument, name: str, ref: float, level: float, side: int,
                        min_pct: float) -> None:
        """``level`` must lie on ``side`` of ``ref`` by at least the minimum, at most the maximum.

        The refusal names the bound of the *level* that was crossed, and gives that bound: a level
        below the lowest allowed one is ``<name>.minvalue: <lowest level>``, above the highest one
        ``<name>.maxvalue: <highest level>`` -- whichever side of the price the level belongs on (a
        BUY's stop far below the price is ``stoploss.minvalue``), as in the official examples."""
        near = ref + side * ref * min_pct / 100
        far = ref + side * ref * inst.max_stop_pct / 100
        lowest, highest = (round(min(near, far), inst.decimals), round(max(near, far), inst.decimals))
        if level < min(near, far) - EPS:
            self._invalid(f"error.invalid.{name}.minvalue: {_num(lowest)}")
        if level > max(near, far) + EPS:
            self._invalid(f"error.invalid.{name}.maxvalue: {_num(highest)}")

    # -- confirms and activity -----------------------------------------------------------
    def add_confirm(self, account: Account, reference: str, payload: dict[str, Any]) -> None:
        ts = self.now()
        payload = {"date": fmt(ts, self.tz_offset, millis=True), "dateUTC": fmt(ts, millis=True),
                   "dealReference": reference, **payload}
        # Documented confirms carry a ``reason``: SUCCESS for an accepted deal, else why it was not.
        payload.setdefault("reason", "SUCCESS" if payload.get("dealStatus") == "ACCEPTED"
                           else payload.get("rejectReason") or "UNKNOWN")
        confirm = Confirm(reference, account.account_id, payload, ready_at=ts)
        if self.pending_plan:
            seconds, polls = self.pending_plan.pop(0)
            confirm.ready_at = ts + seconds
            confirm.polls_left = polls
        self.confirms[reference] = confirm

    def read_confirm(self, account: Account, reference: str) -> dict[str, Any]:
        confirm = self.confirms.get(reference)
        if confirm is None or confirm.account_id != account.account_id:
            raise not_found("error.not-found.dealReference")
        if confirm.polls_left > 0 or self.now() < confirm.ready_at:
            confirm.polls_left = max(confirm.polls_left - 1, 0)
            raise not_found("error.not-found.dealReference")
        return confirm.payload

    def log(self, account_id: str, epic: str, deal_id: str, source: str, kind: str, status: str,
            details: dict[str, Any], ts: float | None = None) -> None:
        self.activities.append(Activity(self.now() if ts is None else ts, account_id, epic, deal_id,
                                        source, kind, status, details))

    def _position_details(self, pos: Position, reference: str, level: float, size: float,
                          direction: str, actions: list[dict[str, str]]) -> dict[str, Any]:
        inst = self.catalogue.by_epic[pos.epic]
        return {
            "dealReference": reference, "marketName": inst.name, "currency": inst.currency,
            "size": size, "direction": direction, "level": level, "stopLevel": pos.stop_level,
            "profitLevel": pos.profit_level, "guaranteedStop": pos.guaranteed,
            "trailingStop": pos.trailing, "actions": actions,
        }

    # -- market deals ----------------------------------------------------------------------
    def open_market(self, account: Account, req: DealRequest) -> str:
        """POST /positions: deal at the current quote; returns the dealReference."""
        inst = self.instrument(req.epic)
        reference = self.new_reference()
        ts = self.now()
        try:
            self.check_size(inst, req.size)
            if not inst.is_open(ts):
                raise Rejected("MARKET_CLOSED")
            quote = self.feed.quote(inst.epic, ts)
            price = quote.offer if req.direction == "BUY" else quote.bid
            payload = self.execute(account, inst, req, price, reference, ts, source="USER")
        except Rejected as rejected:
            self._reject(account, inst, req, reference, rejected.reason, "POSITION")
            return reference
        self.add_confirm(account, reference, payload)
        return reference

    def _reject(self, account: Account, inst: Instrument, req: DealRequest, reference: str, reason: str,
                kind: str) -> None:
        self.add_confirm(account, reference, {
            "status": "REJECTED", "dealStatus": "REJECTED", "epic": inst.epic, "dealId": None,
            "affectedDeals": [], "level": req.level, "size": req.size, "direction": req.direction,
            "guaranteedStop": req.guaranteed, "trailingStop": req.trailing, "rejectReason": reason,
        })
        self.log(account.account_id, inst.epic, "", "USER", kind, "REJECTED", {
            "dealReference": reference, "marketName": inst.name, "currency": inst.currency,
            "size": req.size, "direction": req.direction, "level": req.level, "actions": [],
            "rejectReason": reason,
        })

    def execute(self, account: Account, inst: Instrument, req: DealRequest, price: float, reference: str,
                ts: float, *, source: str, working_order_id: str | None = None,
                preset: tuple[float | None, float | None] | None = None) -> dict[str, Any]:
        """Book a fill of ``req`` at ``price``: net against opposite positions, open the rest.

        Raises :class:`Rejected` (nothing booked) when the margin for the new exposure is missing.
        """
        remaining = req.size
        to_close: list[tuple[Position, float]] = []
        if not account.hedging:
            opposite = sorted(
                (p for p in self.positions.values()
                 if p.account_id == account.account_id and p.epic == inst.epic
                 and p.direction == _opposite(req.direction)),
                key=lambda p: p.created,
            )
            for pos in opposite:
                if remaining <= EPS:
                    break
                part = min(pos.size, remaining)
                to_close.append((pos, part))
                remaining = round(remaining - part, 10)
        stop = profit = None
        if remaining > EPS:
            opening = DealRequest(**{**req.__dict__, "size": remaining})
            if preset is not None:
                stop, profit = preset
            else:
                stop, profit = self.resolve_levels(inst, opening, price, account, ts)
            realized = sum(self._pnl(pos, part, price) for pos, part in to_close)
            values = self.account_values(account, ts)
            need = self.to_account(remaining * inst.lot_size * self.feed.mid(inst.epic, ts)
                                   * self.margin_rate(account, inst), inst.currency, account, ts)
            freed = sum(self.position_margin(pos, ts) * part / pos.size for pos, part in to_close)
            gain = self.to_account(realized, inst.currency, account, ts)
            if need > values["available"] + freed + min(gain, 0.0) + EPS:
                raise Rejected("INSUFFICIENT_FUNDS")
        affected: list[dict[str, str]] = []
        for pos, part in to_close:
            status = self.close_part(pos, part, price, reference, ts, source=source)
            affected.append({"dealId": pos.deal_id, "status": status})
        # As at the broker, the deal itself has an id of its own: the confirm's top-level dealId is
        # the order's, while the position opened or closed is in affectedDeals (and a new position
        # points back to the order through workingOrderId). Clients must close by affectedDeals.
        order_id = working_order_id or self.new_id()
        payload: dict[str, Any] = {
            "epic": inst.epic, "dealStatus": "ACCEPTED", "level": price, "size": req.size,
            "direction": req.direction, "guaranteedStop": req.guaranteed, "trailingStop": req.trailing,
            "stopLevel": None, "profitLevel": None,
        }
        if remaining > EPS:
            # A position's own dealReference is ``p_`` + its dealId (the official examples). A position
            # opened by a working order's fill is listed in the activity history under that reference,
            # not the order's ``o_`` one (the official collection's history: the order's lines, then the
            # position's under its own id); clients tie it to the order by the fill line beside it. A
            # market deal's opening line keeps the deal's ``o_`` reference here.
            deal_id = self.new_id()
            pos = Position(
                deal_id=deal_id, deal_reference="p_" + deal_id, account_id=account.account_id,
                epic=inst.epic, direction=req.direction, size=remaining, level=price, created=ts,
                stop_level=stop, profit_level=profit, guaranteed=req.guaranteed, trailing=req.trailing,
                trailing_distance=(abs(price - stop) if req.trailing and stop is not None else None),
                working_order_id=order_id,
            )
            self.positions[pos.deal_id] = pos
            affected.append({"dealId": pos.deal_id, "status": "OPENED"})
            opened_as = pos.deal_reference if working_order_id is not None else reference
            self.log(account.account_id, inst.epic, pos.deal_id, source, "POSITION", "ACCEPTED",
                     self._position_details(pos, opened_as, price, remaining, req.direction,
                                            [{"actionType": "POSITION_OPENED", "affectedDealId": pos.deal_id}]),
                     ts)
            payload.update(status="OPEN", dealId=order_id, stopLevel=stop, profitLevel=profit)
        else:
            payload.update(status="CLOSED", dealId=order_id)
        payload["affectedDeals"] = affected
        return payload

    def _pnl(self, pos: Position, size: float, price: float) -> float:
        inst = self.catalogue.by_epic[pos.epic]
        sign = 1 if pos.direction == "BUY" else -1
        return (price - pos.level) * sign * size * inst.lot_size

    def close_part(self, pos: Position, size: float, price: float, reference: str, ts: float, *,
                   source: str) -> str:
        """Close ``size`` of ``pos`` at ``price``, book the realized P&L; returns the affected status."""
        inst = self.catalogue.by_epic[pos.epic]
        account = self.accounts[pos.account_id]
        pnl = self._pnl(pos, size, price)
        full = size >= pos.size - EPS
        action = "POSITION_CLOSED" if full else "POSITION_PARTIALLY_CLOSED"
        self.log(account.account_id, pos.epic, pos.deal_id, source, "POSITION", "ACCEPTED",
                 self._position_details(pos, reference, price, size, _opposite(pos.direction),
                                        [{"actionType": action, "affectedDealId": pos.deal_id}]), ts)
        account.book(Transaction(ts, "TRADE", self.to_account(pnl, inst.currency, account, ts),
                                 account.currency, inst.name,
                                 "Trade closed" if full else "Trade partially closed", pos.deal_id))
        if full:
            del self.positions[pos.deal_id]
            return "FULLY_CLOSED"
        pos.size = round(pos.size - size, 10)
        return "PARTIALLY_CLOSED"

    def close_position(self, account: Account, deal_id: str, size: float | None = None) -> str:
        """DELETE /positions/{dealId}: close it (all of it) at the current quote."""
        pos = self.own_position(account, deal_id)
        inst = self.catalogue.by_epic[pos.epic]
        reference = self.new_reference("p_")
        ts = self.now()
        direction = _opposite(pos.direction)
        if not inst.is_open(ts):
            self._reject(account, inst, DealRequest(pos.epic, direction, pos.size), reference,
                         "MARKET_CLOSED", "POSITION")
            return reference
        quote = self.feed.quote(pos.epic, ts)
        price = quote.bid if pos.direction == "BUY" else quote.offer
        part = pos.size if size is None else size
        pnl = self.to_account(self._pnl(pos, part, price), inst.currency, account, ts)
        status = self.close_part(pos, part, price, reference, ts, source="USER")
        self.add_confirm(account, reference, {
            "status": "CLOSED", "dealStatus": "ACCEPTED", "epic": pos.epic, "dealId": self.new_id(),
            "affectedDeals": [{"dealId": pos.deal_id, "status": status}], "level": price, "size": part,
            "direction": direction, "guaranteedStop": pos.guaranteed, "trailingStop": pos.trailing,
            "profit": money(pnl), "profitCurrency": account.currency,
        })
        return reference

    def own_position(self, account: Account, deal_id: str) -> Position:
        pos = self.positions.get(deal_id)
        if pos is None or pos.account_id != account.account_id:
            raise not_found("error.not-found.dealId")
        return pos

    def amend_position(self, account: Account, deal_id: str, req: DealRequest) -> str:
        """PUT /positions/{dealId}: replace stop and profit (absent ones are removed)."""
        pos = self.own_position(account, deal_id)
        inst = self.catalogue.by_epic[pos.epic]
        ts = self.now()
        quote = self.feed.quote(pos.epic, ts)
        ref_price = quote.bid if pos.direction == "BUY" else quote.offer
        probe = DealRequest(pos.epic, pos.direction, pos.size, stop_level=req.stop_level,
                            stop_distance=req.stop_distance, stop_amount=req.stop_amount,
                            profit_level=req.profit_level, profit_distance=req.profit_distance,
                            profit_amount=req.profit_amount, guaranteed=req.guaranteed or pos.guaranteed,
                            trailing=req.trailing)
        reference = self.new_reference("p_")
        try:
            stop, profit = self.resolve_levels(inst, probe, ref_price, account, ts)
        except Rejected as rejected:
            self._reject(account, inst, probe, reference, rejected.reason, "EDIT_STOP_AND_LIMIT")
            return reference
        pos.stop_level, pos.profit_level = stop, profit
        pos.trailing = req.trailing
        pos.trailing_distance = abs(ref_price - stop) if req.trailing and stop is not None else None
        self.log(account.account_id, pos.epic, pos.deal_id, "USER", "EDIT_STOP_AND_LIMIT", "ACCEPTED",
                 self._position_details(pos, reference, pos.level, pos.size, pos.direction,
                                        [{"actionType": "STOP_LIMIT_AMENDED", "affectedDealId": pos.deal_id}]))
        self.add_confirm(account, reference, {
            "status": "AMENDED", "dealStatus": "ACCEPTED", "epic": pos.epic, "dealId": pos.deal_id,
            "affectedDeals": [{"dealId": pos.deal_id, "status": "AMENDED"}], "level": pos.level,
            "size": pos.size, "direction": pos.direction, "stopLevel": stop, "profitLevel": profit,
            "guaranteedStop": pos.guaranteed, "trailingStop": pos.trailing,
        })
        return reference

    # -- working orders ----------------------------------------------------------------------
    def create_order(self, account: Account, req: DealRequest) -> str:
        """POST /workingorders: rest a LIMIT/STOP order; marketable ones fill at once."""
        inst = self.instrument(req.epic)
        reference = self.new_reference()
        ts = self.now()
        assert req.level is not None and req.order_type is not None
        try:
            self.check_size(inst, req.size)
            level = round(req.level, inst.decimals)
            stop, profit = self.resolve_levels(inst, req, level, account, ts)
        except Rejected as rejected:
            self._reject(account, inst, req, reference, rejected.reason, "WORKING_ORDER")
            return reference
        if req.good_till is not None and req.good_till <= ts:
            raise bad_request(NOT_IN_FUTURE)
        order = WorkingOrder(
            deal_id=self.new_id(), deal_reference=reference, account_id=account.account_id,
            epic=inst.epic, direction=req.direction, size=req.size, level=level,
            order_type=req.order_type, created=ts, good_till=req.good_till,
            guaranteed=req.guaranteed, trailing=req.trailing,
        )
        self.orders[order.deal_id] = order
        self._publish_working_order(account, inst, order, reference, level, stop, profit, ts, amended=False)
        return reference

    def _publish_working_order(self, account: Account, inst: Instrument, order: WorkingOrder, reference: str,
                               level: float, stop: float | None, profit: float | None, ts: float, *,
                               amended: bool) -> None:
        """A created or amended working order at ``level``: its protection distances, the activity entry,
        the confirm, and a fill right away if the market is open and already through the level."""
        order.level = level
        order.stop_distance = None if stop is None else round(abs(level - stop), inst.decimals)
        order.profit_distance = None if profit is None else round(abs(profit - level), inst.decimals)
        action, status, affected = ("AMENDED", "AMENDED", "AMENDED") if amended else ("CREATED", "OPEN", "OPENED")
        self.log(account.account_id, order.epic, order.deal_id, "USER", "WORKING_ORDER", "ACCEPTED",
                 self._order_details(order, [{"actionType": f"WORKING_ORDER_{action}",
                                              "affectedDealId": order.deal_id}]))
        self.add_confirm(account, reference, {
            "status": status, "dealStatus": "ACCEPTED", "epic": order.epic, "dealId": order.deal_id,
            "affectedDeals": [{"dealId": order.deal_id, "status": affected}], "level": level,
            "size": order.size, "direction": order.direction, "guaranteedStop": order.guaranteed,
            "trailingStop": order.trailing, "stopLevel": stop, "profitLevel": profit,
        })
        if inst.is_open(ts):
            quote = self.feed.quote(order.epic, ts)
            if self.order_hit(order, quote.bid, quote.offer):
                self.fill_order(order, ts)

    def _order_details(self, order: WorkingOrder, actions: list[dict[str, str]]) -> dict[str, Any]:
        inst = self.catalogue.by_epic[order.epic]
        sign = 1 if order.direction == "BUY" else -1
        return {
            "dealReference": order.deal_reference, "marketName": inst.name, "currency": inst.currency,
            "size": order.size, "direction": order.direction, "level": order.level,
            "stopLevel": None if order.stop_distance is None else round(order.level - sign * order.stop_distance,
                                                                        inst.decimals),
            "profitLevel": None if order.profit_distance is None else round(
                order.level + sign * order.profit_distance, inst.decimals),
            "goodTillDate": None if order.good_till is None else fmt(order.good_till, self.tz_offset),
            "guaranteedStop": order.guaranteed, "trailingStop": order.trailing, "actions": actions,
        }

    def own_order(self, account: Account, deal_id: str) -> WorkingOrder:
        order = self.orders.get(deal_id)
        if order is None or order.account_id != account.account_id:
            raise not_found("error.not-found.dealId")
        return order

    def amend_order(self, account: Account, deal_id: str, req: DealRequest, fields: set[str]) -> str:
        """PUT /workingorders/{dealId}: new level, good-till and stop/profit (sent fields only)."""
        order = self.own_order(account, deal_id)
        inst = self.catalogue.by_epic[order.epic]
        ts = self.now()
        level = round(req.level, inst.decimals) if req.level is not None else order.level
        probe = DealRequest(order.epic, order.direction, order.size, level=level,
                            stop_level=req.stop_level, stop_distance=req.stop_distance,
                            profit_level=req.profit_level, profit_distance=req.profit_distance,
                            guaranteed=order.guaranteed)
        if not (fields & {"stopLevel", "stopDistance"}) and order.stop_distance is not None:
            probe.stop_distance = order.stop_distance
        if not (fields & {"profitLevel", "profitDistance"}) and order.profit_distance is not None:
            probe.profit_distance = order.profit_distance
        reference = self.new_reference()
        try:
            stop, profit = self.resolve_levels(inst, probe, level, account, ts)
        except Rejected as rejected:
            self._reject(account, inst, probe, reference, rejected.reason, "WORKING_ORDER")
            return reference
        if "goodTillDate" in fields:
            if req.good_till is not None and req.good_till <= ts:
                raise bad_request(NOT_IN_FUTURE)
            order.good_till = req.good_till
        self._publish_working_order(account, inst, order, reference, level, stop, profit, ts, amended=True)
        return reference

    def delete_order(self, account: Account, deal_id: str, *, source: str = "USER") -> str:
        order = self.own_order(account, deal_id)
        reference = self.new_reference()
        self.remove_order(order, source, self.now())
        self.add_confirm(account, reference, {
            "status": "DELETED", "dealStatus": "ACCEPTED", "epic": order.epic, "dealId": order.deal_id,
            "affectedDeals": [{"dealId": order.deal_id, "status": "DELETED"}], "level": order.level,
            "size": order.size, "direction": order.direction, "guaranteedStop": order.guaranteed,
            "trailingStop": order.trailing,
        })
        return reference

    def remove_order(self, order: WorkingOrder, source: str, ts: float) -> None:
        self.orders.pop(order.deal_id, None)
        self.log(order.account_id, order.epic, order.deal_id, source, "WORKING_ORDER", "ACCEPTED",
                 self._order_details(order, [{"actionType": "WORKING_ORDER_DELETED",
                                              "affectedDealId": order.deal_id}]), ts)

    @staticmethod
    def order_hit(order: WorkingOrder, bid: float, offer: float) -> bool:
        if order.direction == "BUY":
            price = offer
            return price <= order.level + EPS if order.order_type == "LIMIT" else price >= order.level - EPS
        price = bid
        return price >= order.level - EPS if order.order_type == "LIMIT" else price <= order.level + EPS

    def fill_order(self, order: WorkingOrder, ts: float) -> None:
        """A triggered working order becomes a deal at the market price of that minute."""
        inst = self.catalogue.by_epic[order.epic]
        account = self.accounts[order.account_id]
        quote = self.feed.quote(order.epic, ts)
        price = quote.offer if order.direction == "BUY" else quote.bid
        sign = 1 if order.direction == "BUY" else -1
        stop = None if order.stop_distance is None else round(order.level - sign * order.stop_distance,
                                                              inst.decimals)
        profit = None if order.profit_distance is None else round(order.level + sign * order.profit_distance,
                                                                  inst.decimals)
        req = DealRequest(order.epic, order.direction, order.size, guaranteed=order.guaranteed,
                          trailing=order.trailing)
        self.orders.pop(order.deal_id, None)
        action = "LIMIT_ORDER_FILLED" if order.order_type == "LIMIT" else "STOP_ORDER_FILLED"
        try:
            self.execute(account, inst, req, price, order.deal_reference, ts, source="SYSTEM",
                         working_order_id=order.deal_id, preset=(stop, profit))
        except Rejected as rejected:
            details = self._order_details(order, [{"actionType": "WORKING_ORDER_DELETED",
                                                   "affectedDealId": order.deal_id}])
            details["rejectReason"] = rejected.reason
            self.log(order.account_id, order.epic, order.deal_id, "SYSTEM", "WORKING_ORDER", "REJECTED",
                     details, ts)
            return
        details = self._order_details(order, [{"actionType": action, "affectedDealId": order.deal_id}])
        details["level"] = price
        self.log(order.account_id, order.epic, order.deal_id, "SYSTEM", "WORKING_ORDER", "ACCEPTED",
                 details, ts)

    # -- inspection --------------------------------------------------------------------------
    def check_books(self, ts: float) -> list[str]:
        """Invariants that must hold after every deal; returns the violations (empty = fine)."""
        problems = []
        for account in self.accounts.values():
            if abs(account.cash - account.ledger_total()) > 0.005:
                problems.append(f"{account.account_id}: cash {account.cash} != ledger {account.ledger_total()}")
            values = self.account_values(account, ts)
            if abs(values["balance"] - values["deposit"] - values["profitLoss"]) > 0.011:
                problems.append(f"{account.account_id}: balance != deposit + profitLoss ({values})")
            mine = [p for p in self.positions.values() if p.account_id == account.account_id]
            for pos in mine:
                if pos.size <= EPS:
                    problems.append(f"{pos.deal_id}: non-positive size {pos.size}")
            if not account.hedging:
                for epic in {p.epic for p in mine}:
                    sides = {p.direction for p in mine if p.epic == epic}
                    if len(sides) > 1:
                        problems.append(f"{account.account_id}: both directions open on {epic} without hedging")
        return problems


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
