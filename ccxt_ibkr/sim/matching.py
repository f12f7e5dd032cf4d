"""Order engine: validation, brackets, OCA groups, matching against quotes, expiry.

It knows nothing about sockets. Every visible consequence is an ``Event`` handed to the
``emit`` callback, which the server turns into openOrder / orderStatus / execDetails /
commissionReport / error messages for the owning client. Matching happens at placement and
at each step of the simulated clock, so a test decides exactly when a resting order can
fill. ``max_fill_per_match`` (global or per symbol) caps each match, which makes partial
fills deterministic: a capped market order fills one slice now and one per clock step.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from .catalogue import Instrument
from .ledger import Ledger, order_fee
from .marketdata import MarketData

ORDER_TYPES = {"MKT", "LMT", "STP", "STP LMT", "TRAIL", "TRAIL LIMIT"}
TRAILING = {"TRAIL", "TRAIL LIMIT"}
STOPS = {"STP", "STP LMT", "TRAIL", "TRAIL LIMIT"}
TIFS = {"DAY", "GTC", "IOC", "FOK", "GTD"}
DONE = {"Filled", "Cancelled", "ApiCancelled", "Inactive"}


@dataclass
class OrderRequest:
    """The fields of a placeOrder message the simulator acts on."""

    order_id: int
    action: str
    total_qty: float
    order_type: str
    lmt_price: float | None
    aux_price: float | None
    tif: str
    oca_group: str
    account: str
    order_ref: str
    transmit: bool
    parent_id: int
    outside_rth: bool
    good_till_date: str = ""
    oca_type: int = 0
    exchange: str = ""
    trail_stop_price: float | None = None  # TRAIL / TRAIL LIMIT: the initial stop (else set from the market)
    trailing_percent: float | None = None  # TRAIL by percent instead of by amount (aux_price)
    lmt_price_offset: float | None = None  # TRAIL LIMIT: the limit's distance from the moving stop
    algo_strategy: str = ""
    algo_params: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class SimOrder:
    req: OrderRequest
    client_id: int
    perm_id: int
    inst: Instrument
    placed_at: float
    status: str = "PendingSubmit"
    filled: float = 0.0
    fill_value: float = 0.0
    last_fill_price: float = 0.0
    commission_paid: float = 0.0
    triggered: bool = False
    transmitted: bool = False
    expires_at: float | None = None
    completed_at: float | None = None
    why_held: str = ""
    cancel_requested: bool = False
    trail_stop: float | None = None  # a trailing stop's current stop price

    @property
    def order_id(self) -> int:
        return self.req.order_id

    @property
    def remaining(self) -> float:
        return max(self.req.total_qty - self.filled, 0.0)

    @property
    def avg_fill_price(self) -> float:
        return self.fill_value / self.filled if self.filled else 0.0

    @property
    def done(self) -> bool:
        return self.status in DONE

    @property
    def exchange(self) -> str:
        return self.req.exchange or self.inst.exchange


@dataclass
class Execution:
    exec_id: str
    order: SimOrder
    time: float
    side: str
    shares: float
    price: float
    cum_qty: float
    avg_price: float
    commission: float
    realized: float | None
    venue: str


@dataclass
class Event:
    """kind: open | status | exec | error | account."""

    kind: str
    client_id: int
    order: SimOrder | None = None
    execution: Execution | None = None
    code: int = 0
    text: str = ""
    req_id: int = -1


class Reject(Exception):
    def __init__(self, code: int, text: str, cancel: bool = True) -> None:
        super().__init__(text)
        self.code = code
        self.text = text
        self.cancel = cancel


def _on_tick(price: float, tick: float) -> bool:
    steps = price / tick
    return math.isclose(steps, round(steps), rel_tol=0, abs_tol=1e-6)


@dataclass
class Liquidity:
    """Caps on how much one match may fill; None means unlimited."""

    max_fill_per_match: float | None = None
    per_symbol: dict[str, float] = field(default_factory=dict)

    def cap(self, inst: Instrument) -> float:
        value = self.per_symbol.get(inst.local_symbol, self.per_symbol.get(inst.symbol))
        if value is None:
            value = self.max_fill_per_match
        return math.inf if value is None else value


class OrderEngine:
    """All orders of the simulated account; called only on the simulator's loop thread."""

    def __init__(
        self,
        market: MarketData,
        ledger: Ledger,
        emit: Callable[[Event], None],
        perm_start: int = 1_100_000_000,
    ) -> None:
        self.market = market
        self.ledger = ledger
        self.emit = emit
        self.orders: dict[int, SimOrder] = {}
        self.by_key: dict[tuple[int, int], SimOrder] = {}
        self.max_order_id: dict[int, int] = {}
        self.executions: list[Execution] = []
        self.liquidity = Liquidity()
        self._perm = itertools.count(perm_start)
        self._exec_seq = itertools.count(1)
        self.reject_next: list[str] = []
        self.check_funds = True
        #: Fault: cancels stop at PendingCancel (the order can still fill) until released.
        self.hold_cancels = False
        self._children_of: dict[tuple[int, int], list[SimOrder]] = {}

    # -- ids -------------------------------------------------------------------------------
    def next_valid_id(self, client_id: int) -> int:
        return self.max_order_id.get(client_id, 0) + 1

    def _exec_id(self, order: SimOrder) -> str:
        return f"0000{order.client_id & 0xFFFF:04x}.{next(self._exec_seq):08x}.01.01"

    # -- placement ---------------------------------------------------------------------------
    def place(self, client_id: int, req: OrderRequest, inst: Instrument, now: float) -> SimOrder | None:
        """Place or modify; raises Reject for TWS-style rejections."""
        existing = self.by_key.get((client_id, req.order_id))
        if existing is not None:
            if existing.status == "Filled":
                raise Reject(104, "Cannot modify a filled order.", cancel=False)
            if existing.done:
                raise Reject(103, f"Duplicate order id {req.order_id}.", cancel=False)
            return self._modify(existing, req, inst, now)
        if req.order_id <= self.max_order_id.get(client_id, 0):
            raise Reject(103, f"Duplicate order id {req.order_id}.", cancel=False)
        self._validate(req, inst, now)
        parent: SimOrder | None = None
        if req.parent_id:
            parent = self.by_key.get((client_id, req.parent_id))
            if parent is None or parent.done:
                raise Reject(10006, "Missing parent order.")
        self.max_order_id[client_id] = req.order_id
        order = SimOrder(req=req, client_id=client_id, perm_id=next(self._perm), inst=inst, placed_at=now)
        order.expires_at = self._expiry(order, now)
        self.orders[order.perm_id] = order
        self.by_key[(client_id, req.order_id)] = order
        if req.parent_id:
            self._children_of.setdefault((client_id, req.parent_id), []).append(order)
        if not req.transmit:
            return order  # held until a later order of the family is transmitted
        return self._release(order, now)

    def preview(self, client_id: int, req: OrderRequest, inst: Instrument, now: float) -> SimOrder:
        """An unbooked order object for what-if answers."""
        return SimOrder(req=req, client_id=client_id, perm_id=0, inst=inst, placed_at=now, status="PreSubmitted")

    def _release(self, order: SimOrder, now: float) -> SimOrder:
        """Transmit ``order`` with its held family: acknowledge, then match at once."""
        family = self._family(order)
        for member in family:
            member.transmitted = True
            member.status = self._resting_status(member, now)
            self.emit(Event("open", member.client_id, member))
            if (member.req.tif or "DAY") not in {"IOC", "FOK"}:
                # IOC/FOK are decided at once: the first status the client sees is final.
                self.emit(Event("status", member.client_id, member))
            if member.status == "PreSubmitted" and not self._market_open(member, now):
                self._warn_held(member, now)
        for member in family:
            self._match(member, now, placement=True)
        return order

    def _family(self, order: SimOrder) -> list[SimOrder]:
        """The untransmitted parent and siblings released together with ``order``."""
        root = order
        while root.req.parent_id:
            parent = self.by_key.get((root.client_id, root.req.parent_id))
            if parent is None:
                break
            root = parent
        members = [root] + self._children(root)
        return [m for m in members if not m.transmitted]

    def _validate(self, req: OrderRequest, inst: Instrument, now: float) -> None:
        if self.reject_next:
            raise Reject(201, f"Order rejected - reason:{self.reject_next.pop(0)}")
        if req.order_type not in ORDER_TYPES:
            raise Reject(387, f"Unsupported order type {req.order_type} for this exchange and security type.")
        if req.tif and req.tif not in TIFS:
            raise Reject(201, f"Order rejected - reason:Unsupported time in force {req.tif}")
        if req.action not in {"BUY", "SELL"}:
            raise Reject(321, f"Error validating request.-'bO' : cause - Invalid action {req.action!r}")
        if not req.total_qty:
            raise Reject(434, "The order size cannot be zero.")
        if req.total_qty < 0:
            raise Reject(201, "Order rejected - reason:Order quantity must be positive")
        if req.total_qty < inst.min_size - 1e-12:
            raise Reject(
                388,
                f"Order size {req.total_qty:g} is smaller than the minimum required size of {inst.min_size:g}.",
            )
        steps = req.total_qty / inst.size_increment
        if not math.isclose(steps, round(steps), rel_tol=0, abs_tol=1e-6):
            raise Reject(
                355, f"Order size does not conform to market rule: increment {inst.size_increment:g}."
            )
        if req.order_type in {"LMT", "STP LMT"} and req.lmt_price is None:
            raise Reject(321, "Error validating request.-'bO' : cause - Limit price is missing")
        if req.order_type in {"STP", "STP LMT"} and req.aux_price is None:
            raise Reject(321, "Error validating request.-'bO' : cause - Stop price is missing")
        if req.order_type in TRAILING:
            self._validate_trailing(req)
        for price in (req.lmt_price, req.aux_price):
            if price is not None and req.order_type != "MKT" and not _on_tick(price, inst.min_tick):
                raise Reject(110, "The price does not conform to the minimum price variation for this contract.")
        if inst.sec_type == "CRYPTO" and req.action == "SELL":
            with self.ledger.lock:
                pos = self.ledger.positions.get(inst.con_id)
                held = pos.qty if pos else 0.0
            if req.total_qty > held + 1e-12:
                raise Reject(201, "Order rejected - reason:Short selling of cryptocurrency is not allowed.")
        if self.check_funds:
            bid, ask, _ = self.market.touch(inst, now)
            price = req.lmt_price or req.aux_price or (ask if req.action == "BUY" else bid)
            needed = self.ledger.margin_for(inst, req.action, req.total_qty, price)
            if needed > 0:
                summary = self.ledger.summary(lambda i: self.market.mid(i, now))
                available = summary["AvailableFunds"]
                equity = summary["EquityWithLoanValue"]
                if needed > available:
                    base = self.ledger.base_currency
                    raise Reject(
                        201,
                        "Order rejected - reason:YOUR ORDER IS NOT ACCEPTED. IN ORDER TO OBTAIN THE DESIRED "
                        f"POSITION YOUR EQUITY WITH LOAN VALUE [{equity:.2f} {base}] MUST EXCEED THE "
                        f"INITIAL MARGIN [{needed + summary['InitMarginReq']:.2f} {base}]",
                    )

    @staticmethod
    def _validate_trailing(req: OrderRequest) -> None:
        """A trailing stop trails by an amount (auxPrice) or a percentage, never both; a TRAIL LIMIT's limit
        follows the stop at lmtPriceOffset, or at the distance lmtPrice keeps from trailStopPrice."""
        amount, percent = req.aux_price, req.trailing_percent
        if (amount is None) == (percent is None):
            raise Reject(321, "Error validating request.-'bO' : cause - A trailing stop order needs either a "
                              "trailing amount (auxPrice) or a trailing percent, not both")
        if (amount is not None and amount <= 0) or (percent is not None and not 0 < percent < 100):
            raise Reject(321, "Error validating request.-'bO' : cause - Invalid trailing amount")
        if req.order_type == "TRAIL LIMIT" and req.lmt_price_offset is None and (
                req.lmt_price is None or req.trail_stop_price is None):
            raise Reject(321, "Error validating request.-'bO' : cause - A TRAIL LIMIT order needs lmtPriceOffset "
                              "(or lmtPrice with trailStopPrice)")

    def _modify(self, order: SimOrder, req: OrderRequest, inst: Instrument, now: float) -> SimOrder:
        if inst.con_id != order.inst.con_id or req.action != order.req.action:
            raise Reject(105, "Order being modified does not match original order.", cancel=False)
        try:
            self._validate_modify(req, inst)
        except Reject as exc:
            exc.cancel = False
            raise
        if req.total_qty < order.filled:
            raise Reject(201, "Order rejected - reason:Quantity is below the filled quantity", cancel=False)
        req.parent_id = order.req.parent_id
        order.req = req
        order.expires_at = self._expiry(order, now)
        if order.transmitted:
            order.status = self._resting_status(order, now)
            self.emit(Event("open", order.client_id, order))
            self.emit(Event("status", order.client_id, order))
            self._match(order, now, placement=True)
        elif req.transmit:
            return self._release(order, now)
        return order

    def _validate_modify(self, req: OrderRequest, inst: Instrument) -> None:
        if not req.total_qty:
            raise Reject(434, "The order size cannot be zero.")
        for price in (req.lmt_price, req.aux_price):
            if price is not None and req.order_type != "MKT" and not _on_tick(price, inst.min_tick):
                raise Reject(110, "The price does not conform to the minimum price variation for this contract.")

    def _expiry(self, order: SimOrder, now: float) -> float | None:
        tif = order.req.tif or "DAY"
        if tif == "GTD" and order.req.good_till_date:
            text = order.req.good_till_date.strip().replace("-", " ")
            parts = text.split()
            try:
                when = dt.datetime.strptime(" ".join(parts[:2]), "%Y%m%d %H:%M:%S")
                zone = ZoneInfo(parts[2]) if len(parts) > 2 else dt.timezone.utc
                return when.replace(tzinfo=zone).timestamp()
            except (ValueError, KeyError):
                return None
        if tif == "DAY":
            return order.inst.hours.current_or_next(now, liquid=not order.req.outside_rth)[1]
        return None

    def _resting_status(self, order: SimOrder, now: float) -> str:
        if order.req.parent_id:
            parent = self.by_key.get((order.client_id, order.req.parent_id))
            if parent is not None and parent.status != "Filled":
                return "PreSubmitted"
        if order.req.order_type in STOPS and not order.triggered:
            return "PreSubmitted"
        if not self._market_open(order, now):
            return "PreSubmitted"
        return "Submitted"

    def _warn_held(self, order: SimOrder, now: float) -> None:
        """TWS's warning 399 for an order that waits for its session to open."""
        inst = order.inst
        opens = inst.hours.current_or_next(now, liquid=not order.req.outside_rth)[0]
        when = dt.datetime.fromtimestamp(opens, ZoneInfo(inst.hours.tz))
        venue = inst.primary_exchange or inst.exchange
        qty = f"{order.req.total_qty:g}"
        text = (
            f"Order Message:\n{order.req.action} {qty} {inst.local_symbol} {venue}\n"
            f"Warning: your order will not be placed at the exchange until {when:%Y-%m-%d %H:%M:%S} {inst.hours.tz}"
        )
        self.emit(Event("error", order.client_id, order, code=399, text=text, req_id=order.order_id))

    def _market_open(self, order: SimOrder, now: float) -> bool:
        return order.inst.hours.is_open(now, liquid=not order.req.outside_rth)

    # -- cancel ----------------------------------------------------------------------------
    def cancel(self, client_id: int, order_id: int, now: float) -> None:
        order = self.by_key.get((client_id, order_id))
        if order is None:
            raise Reject(10147, f"OrderId {order_id} that needs to be cancelled is not found.", cancel=False)
        if order.done or order.status == "PendingCancel":
            raise Reject(
                10148,
                f"OrderId {order_id} that needs to be cancelled cannot be cancelled, state: {order.status}.",
                cancel=False,
            )
        if self.hold_cancels:
            order.status = "PendingCancel"
            order.cancel_requested = True
            self.emit(Event("status", order.client_id, order))
            return
        self._cancel(order, now, reason="", user=True)

    def release_cancels(self, now: float) -> None:
        """Complete every held cancel (fault ``hold_cancels``)."""
        for order in list(self.orders.values()):
            if order.status == "PendingCancel":
                self._cancel(order, now, reason="", user=True)

    def cancel_all(self, now: float) -> None:
        for order in list(self.orders.values()):
            if not order.done:
                self._cancel(order, now, reason="", user=True)

    def _cancel(self, order: SimOrder, now: float, reason: str, user: bool) -> None:
        if order.done:
            return
        if not order.transmitted:
            # TWS never announced a staged order (no openOrder / orderStatus): cancelling discards it,
            # answered with error 202 alone (a live paper Gateway adds 161).
            order.status = "Cancelled"
            order.completed_at = now
            self.emit(Event("error", order.client_id, order, code=202,
                            text="Order Canceled - reason:Order was discarded", req_id=order.order_id))
            return
        order.status = "Cancelled"
        order.completed_at = now
        order.cancel_requested = user
        self.emit(Event("status", order.client_id, order))
        if user:
            self.emit(Event("error", order.client_id, order, code=202, text=f"Order Canceled - reason:{reason}",
                            req_id=order.order_id))
        for child in self._children(order):
            self._cancel(child, now, reason, user=user)

    def _children(self, order: SimOrder) -> list[SimOrder]:
        return [o for o in self._children_of.get((order.client_id, order.order_id), []) if not o.done]

    # -- matching --------------------------------------------------------------------------
    def step(self, now: float) -> None:
        """One clock step: expire, trigger and match every working order."""
        for order in list(self.orders.values()):
            if order.done or not order.transmitted:
                continue
            if order.expires_at is not None and now >= order.expires_at:
                self._cancel(order, now, reason="", user=False)
                continue
            self._match(order, now, placement=False)

    def _match(self, order: SimOrder, now: float, placement: bool) -> None:
        if order.done or not order.transmitted:
            return
        if order.req.parent_id:
            parent = self.by_key.get((order.client_id, order.req.parent_id))
            if parent is not None and parent.status != "Filled":
                return
        tif = order.req.tif or "DAY"
        if not self._market_open(order, now):
            if tif in {"IOC", "FOK"}:
                self._cancel(order, now, reason="", user=False)
            return
        bid, ask, last = self.market.touch(order.inst, now)
        buy = order.req.action == "BUY"
        if order.req.order_type in TRAILING and not order.triggered:
            self._trail(order, last)
        if order.req.order_type in STOPS and not order.triggered:
            stop = order.trail_stop if order.req.order_type in TRAILING else order.req.aux_price or 0.0
            if (buy and last >= stop) or (not buy and last <= stop):
                order.triggered = True
                if order.status != "Submitted":
                    order.status = "Submitted"
                    self.emit(Event("status", order.client_id, order))
            else:
                return
        if order.status == "PreSubmitted":
            order.status = "Submitted"
            self.emit(Event("status", order.client_id, order))
        price = self._fill_price(order, bid, ask)
        if price is None:
            if tif in {"IOC", "FOK"}:
                self._cancel(order, now, reason="", user=False)
            return
        cap = self.market_cap(order)
        qty = min(order.remaining, cap)
        if tif == "FOK" and qty < order.remaining:
            self._cancel(order, now, reason="", user=False)
            return
        if qty > 0:
            self._fill(order, qty, price, now)
        if tif == "IOC" and not order.done:
            self._cancel(order, now, reason="", user=False)

    @staticmethod
    def _trail(order: SimOrder, last: float) -> None:
        """Move a trailing stop with the market: a sell stop rises with the price and never falls, a buy
        stop falls with it and never rises; it starts at trailStopPrice, else one trail from the market."""
        req = order.req
        distance = req.aux_price if req.aux_price is not None else last * (req.trailing_percent or 0.0) / 100
        step = order.inst.min_tick
        if req.action == "SELL":
            level = math.floor((last - distance) / step + 1e-9) * step
            start = req.trail_stop_price if req.trail_stop_price is not None else level
            order.trail_stop = max(order.trail_stop if order.trail_stop is not None else start, level)
        else:
            level = math.ceil((last + distance) / step - 1e-9) * step
            start = req.trail_stop_price if req.trail_stop_price is not None else level
            order.trail_stop = min(order.trail_stop if order.trail_stop is not None else start, level)
        order.trail_stop = round(order.trail_stop, 10)

    def trail_limit(self, order: SimOrder) -> float | None:
        """A TRAIL LIMIT's limit price now: the stop minus (sell) / plus (buy) the limit offset."""
        req = order.req
        if order.trail_stop is None:
            return req.lmt_price
        offset = req.lmt_price_offset
        if offset is None:
            offset = abs((req.trail_stop_price or 0.0) - (req.lmt_price or 0.0))
        return order.trail_stop - offset if req.action == "SELL" else order.trail_stop + offset

    def market_cap(self, order: SimOrder) -> float:
        cap = self.liquidity.cap(order.inst)
        if math.isinf(cap):
            return cap
        increment = order.inst.size_increment
        return max(math.floor(cap / increment + 1e-9) * increment, increment)

    def _fill_price(self, order: SimOrder, bid: float, ask: float) -> float | None:
        buy = order.req.action == "BUY"
        touch = ask if buy else bid
        kind = order.req.order_type
        if kind in {"MKT", "STP", "TRAIL"}:
            return touch
        limit = (self.trail_limit(order) if kind == "TRAIL LIMIT" else order.req.lmt_price) or 0.0
        if buy and touch <= limit + 1e-12:
            return touch
        if not buy and touch >= limit - 1e-12:
            return touch
        return None

    def _fill(self, order: SimOrder, qty: float, price: float, now: float) -> None:
        inst = order.inst
        side = "BOT" if order.req.action == "BUY" else "SLD"
        new_filled = order.filled + qty
        new_value = order.fill_value + qty * price
        usd_to_ccy = 1.0 / max(self.ledger.rate(inst.currency), 1e-12) * self.ledger.rate("USD")
        total_fee = order_fee(inst, new_filled, new_value * inst.mult, usd_to_ccy)
        commission = round(max(total_fee - order.commission_paid, 0.0), 8)
        result = self.ledger.apply_fill(inst, side, qty, price, commission)
        order.filled = new_filled
        order.fill_value = new_value
        order.last_fill_price = price
        order.commission_paid += commission
        if order.remaining <= 1e-12:
            order.status = "Filled"
            order.completed_at = now
        elif order.status != "PendingCancel":
            order.status = "Submitted"
        closing = abs(result.realized) > 0 or result.position.qty == 0
        execution = Execution(
            exec_id=self._exec_id(order), order=order, time=now, side=side, shares=qty, price=price,
            cum_qty=order.filled, avg_price=order.avg_fill_price, commission=commission,
            realized=result.realized if closing else None,
            venue=inst.primary_exchange or inst.exchange,
        )
        self.executions.append(execution)
        self.emit(Event("exec", order.client_id, order, execution))
        self.emit(Event("account", order.client_id, order))
        if order.status == "Filled":
            self._on_filled(order, now)

    def _on_filled(self, order: SimOrder, now: float) -> None:
        # Bracket children become live once the parent is filled.
        for child in self._children(order):
            child.status = self._resting_status(child, now)
            self.emit(Event("status", child.client_id, child))
            self._match(child, now, placement=False)
        # Siblings under one parent behave as a one-cancels-all group, as IB brackets do.
        if order.req.parent_id:
            for sibling in self.orders.values():
                if (
                    sibling is not order and not sibling.done and sibling.client_id == order.client_id
                    and sibling.req.parent_id == order.req.parent_id
                ):
                    self._cancel(sibling, now, reason="", user=False)
        group = order.req.oca_group
        if group:
            for other in list(self.orders.values()):
                if other is order or other.done or other.req.oca_group != group:
                    continue
                if order.req.oca_type in (2, 3):
                    other.req.total_qty = max(other.req.total_qty - order.filled, other.filled)
                    if other.remaining <= 1e-12:
                        self._cancel(other, now, reason="", user=False)
                    else:
                        self.emit(Event("open", other.client_id, other))
                        self.emit(Event("status", other.client_id, other))
                else:
                    self._cancel(other, now, reason="", user=False)

    # -- queries ---------------------------------------------------------------------------
    def open_orders(self, client_id: int | None) -> list[SimOrder]:
        return [
            o for o in self.orders.values()
            if not o.done and o.transmitted and (client_id is None or o.client_id == client_id)
        ]

    def completed_orders(self) -> list[SimOrder]:
        return [o for o in self.orders.values() if o.done]
