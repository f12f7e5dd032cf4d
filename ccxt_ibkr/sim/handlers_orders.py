"""Order requests: place (incl. what-if and order faults), cancel, open/completed orders, executions."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from . import messages as M
from .catalogue import ContractQuery
from .connection import SessionBase
from .faults import ACKED, BEFORE, BOOKED
from .marketdata import HistoricalError, parse_end
from .matching import OrderRequest, Reject
from .wire import Fields, ProtocolError

log = logging.getLogger("ccxt_ibkr.sim")


@dataclass
class OrderTail:
    """The fields of placeOrder after the ones ``place_order`` reads in line."""

    trail_stop_price: float | None = None
    trailing_percent: float | None = None
    lmt_price_offset: float | None = None
    algo_strategy: str = ""
    algo_params: list[tuple[str, str]] = field(default_factory=list)
    what_if: bool = False


class OrderHandlers(SessionBase):
    """Translate order messages into ``OrderEngine`` calls and TWS replies."""

    # -- orders ----------------------------------------------------------------------------
    def place_order(self, f: Fields) -> None:
        order_id = f.int()
        q = self.read_contract(f)
        if q.sec_type == "BAG":
            self.error(order_id, 201, "Order rejected - reason:Combination orders are not supported by the simulator")
            self.send([3, order_id, "Cancelled", 0, 0, 0, 0, 0, 0, self.client_id, "", ""])
            return
        f.str()
        f.str()  # secIdType, secId
        action = f.str().upper()
        total_qty = f.float() or 0.0
        order_type = f.str().upper()
        lmt_price = f.float()
        aux_price = f.float()
        tif = f.str().upper()
        oca_group = f.str()
        account = f.str()
        f.str()
        f.str()  # openClose, origin
        order_ref = f.str()
        transmit = f.bool() if f.remaining else True
        parent_id = f.int()
        f.skip(4)  # blockOrder sweepToFill displaySize triggerMethod
        outside_rth = f.bool()
        f.bool()  # hidden
        f.str()  # sharesAllocation
        f.str()  # discretionaryAmt
        f.str()  # goodAfterTime
        good_till_date = f.str()
        f.skip(3)  # faGroup faMethod faPercentage
        if self.version < 177:
            f.skip(1)  # faProfile
        f.skip(4)  # modelCode shortSaleSlot designatedLocation exemptCode
        oca_type = f.int(0)
        tail = self._read_tail(f)
        if order_type == "STPLMT":
            order_type = "STP LMT"
        req = OrderRequest(
            order_id=order_id, action=action, total_qty=total_qty, order_type=order_type, lmt_price=lmt_price,
            aux_price=aux_price, tif=tif, oca_group=oca_group, account=account, order_ref=order_ref,
            transmit=transmit, parent_id=parent_id, outside_rth=outside_rth, good_till_date=good_till_date,
            oca_type=oca_type, exchange=q.exchange, trail_stop_price=tail.trail_stop_price,
            trailing_percent=tail.trailing_percent, lmt_price_offset=tail.lmt_price_offset,
            algo_strategy=tail.algo_strategy, algo_params=tail.algo_params,
        )
        if tail.what_if:
            self._what_if(req, q)
            return
        drop = self.sim.faults.take_order_drop(self.client_id or 0, order_ref)
        if drop is not None and drop.stage == BEFORE:
            log.info("fault: dropping client %s before booking order %s", self.client_id, order_id)
            self.abort()
            return
        if drop is not None and drop.stage == BOOKED:
            self.muted = True
        try:
            self._place(req, q)
        finally:
            self.muted = False
        if drop is not None:
            log.info("fault: dropping client %s after order %s (%s)", self.client_id, order_id, drop.stage)
            if drop.stage == ACKED:
                self.sim.loop_call_soon(self.abort)
            else:
                self.abort()

    def _read_tail(self, f: Fields) -> OrderTail:
        """Walk the rest of placeOrder (ib_async's layout) for the fields the simulator acts on: trailing
        stop (trailStopPrice, trailingPercent, lmtPriceOffset), algo (algoStrategy + algoParams), whatIf.
        A layout it cannot walk (conditions, PEG BENCH) leaves the rest at its defaults."""
        tail = OrderTail()
        try:
            f.skip(17)  # rule80A .. volatilityType
            if f.str():  # deltaNeutralOrderType
                f.skip(9)
            else:
                f.skip(1)
            f.skip(2)  # continuousUpdate referencePriceType
            tail.trail_stop_price = f.float()
            tail.trailing_percent = f.float()
            f.skip(2)  # scaleInitLevelSize scaleSubsLevelSize
            increment = f.float()
            if increment is not None and 0 < increment:
                f.skip(7)
            f.skip(3)  # scaleTable activeStartTime activeStopTime
            if f.str():  # hedgeType
                f.skip(1)
            f.skip(4)  # optOutSmartRouting clearingAccount clearingIntent notHeld
            if f.bool():  # delta-neutral contract
                f.skip(3)
            tail.algo_strategy = f.str()
            if tail.algo_strategy:
                tail.algo_params = [(f.str(), f.str()) for _ in range(f.int())]
            f.skip(1)  # algoId
            tail.what_if = f.bool()
            f.skip(4)  # orderMiscOptions solicited randomizeSize randomizePrice
            if f.int():  # conditions: not modelled
                return tail
            f.skip(2)  # adjustedOrderType triggerPrice
            tail.lmt_price_offset = f.float()
        except ProtocolError:
            pass
        return tail

    def _what_if(self, req: OrderRequest, q: ContractQuery) -> None:
        """Answer a what-if order with margin and commission estimates; nothing is booked."""
        inst, why = self.sim.catalogue.resolve(q, self.sim.clock.now())
        if inst is None:
            self.error(req.order_id, 200, why)
            return
        now = self.sim.clock.now()
        engine = self.sim.engine
        try:
            engine._validate(req, inst, now)
        except Reject as exc:
            self.error(req.order_id, exc.code, exc.text)
            return
        bid, ask, _ = self.sim.market.touch(inst, now)
        price = req.lmt_price or (ask if req.action == "BUY" else bid)
        summary = self.sim.ledger.summary(self.sim.mark)
        change = self.sim.ledger.margin_for(inst, req.action, req.total_qty, price)
        fee = M.estimate_fee(inst, req.total_qty, price, self.sim.ledger)
        state = {
            "init": (summary["InitMarginReq"], change),
            "maint": (summary["MaintMarginReq"], change * 0.8),
            "equity": (summary["EquityWithLoanValue"], -fee),
            "commission": fee,
            "currency": inst.currency,
        }
        order = engine.preview(self.client_id or 0, req, inst, now)
        self.send(M.open_order(order, self.version, self.account, what_if=state))

    def _place(self, req: OrderRequest, q: ContractQuery) -> None:
        inst, why = self.sim.catalogue.resolve(q, self.sim.clock.now())
        if inst is None:
            self.error(req.order_id, 200, why)
            self._cancelled_status(req.order_id)
            return
        if self.sim.faults.outage:
            self.error(req.order_id, 201, "Order rejected - reason:Not connected to IB (connectivity lost)")
            self._cancelled_status(req.order_id)
            return
        try:
            self.sim.engine.place(self.client_id or 0, req, inst, self.sim.clock.now())
        except Reject as exc:
            self.error(req.order_id, exc.code, exc.text)
            if exc.cancel:
                self._cancelled_status(req.order_id)
        else:
            warning = self.sim.faults.take_order_warning()
            if warning is not None:
                self.error(req.order_id, *warning)
        self.sim.after_activity()

    def _cancelled_status(self, order_id: int) -> None:
        self.send([3, order_id, "Cancelled", 0, 0, 0, 0, 0, 0, self.client_id, "", ""])

    def cancel_order(self, f: Fields) -> None:
        f.int()
        order_id = f.int()
        try:
            self.sim.engine.cancel(self.client_id or 0, order_id, self.sim.clock.now())
        except Reject as exc:
            self.error(order_id, exc.code, exc.text)
        self.sim.after_activity()

    def req_global_cancel(self, f: Fields) -> None:
        self.sim.engine.cancel_all(self.sim.clock.now())
        self.sim.after_activity()

    def req_open_orders(self, f: Fields) -> None:
        self._send_open_orders(None if self.client_id == 0 else self.client_id)

    def req_all_open_orders(self, f: Fields) -> None:
        self._send_open_orders(None)

    def req_auto_open_orders(self, f: Fields) -> None:
        f.int()
        bind = f.bool()
        if self.client_id != 0:
            self.error(-1, 327, "Only the client with id 0 can set auto bind.")
            return
        self.auto_bind = bind

    def _send_open_orders(self, client_id: int | None) -> None:
        for order in self.sim.engine.open_orders(client_id):
            self.send(M.open_order(order, self.version, self.account))
            self.send(M.order_status(order, self.version))
        self.send([53, 1])

    def req_completed_orders(self, f: Fields) -> None:
        for order in self.sim.engine.completed_orders():
            self.send(M.completed_order(order, self.version, self.account))
        self.send([102])

    def req_executions(self, f: Fields) -> None:
        f.int()
        req_id = f.int()
        client_filter = f.int(0)
        account = f.str()
        since = f.str()
        symbol = f.str().upper()
        sec_type = f.str().upper()
        exchange = f.str().upper()
        side = f.str().upper()
        now = self.sim.clock.now()
        floor = now - now % 86400
        if since.strip():
            try:
                floor = max(floor, parse_end(since.replace("-", " ") if "-" in since else since, 1e12))
            except HistoricalError:
                pass
        for ex in self.sim.engine.executions:
            order = ex.order
            if ex.time < floor:
                continue
            if client_filter and order.client_id != client_filter:
                continue
            if account and account != self.account:
                continue
            if symbol and symbol != order.inst.symbol:
                continue
            if sec_type and sec_type != order.inst.sec_type:
                continue
            if exchange and exchange not in (order.exchange, ex.venue):
                continue
            if side and side[:1] != ex.side[:1]:
                continue
            self.send(M.exec_details(req_id, ex, self.version, self.account))
            self.send(M.commission_report(ex))
        self.send([55, 1, req_id])

