"""The journal's side of Interactive Brokers: opened on connect, written after each send, kept in line with IB.

A mixin of the order lifecycle (:class:`ccxt_ibkr.orders.IBOrders` derives from it, as Capital's orders
derive from :mod:`ccxt_capital.journaling`). The intent of every order is committed before the send, by
the lifecycle itself; what is here is the rest of the journal's life:

* **the journal** itself, opened on the account TWS names once connected (or lazily, with no account,
  if asked before), and closed with the exchange (:meth:`IBJournaling._attach_journal`);
* **the writes after a send** -- ids and state of an order just placed -- queued by ``_settle`` and run
  right after create_order returns, off its latency (:meth:`IBJournaling._flush_deferred`);
* **the hooks on IB's events** (order status, executions, commission reports), wired through the
  transport, which keep the rows of this process's orders current; a failed write logs and leaves the
  row to reconciliation, never breaking the event loop;
* **reconciliation** after each (re)connect's order sync: IB's orders and executions as a
  :class:`~normalization.runtime.reconcile.BrokerSnapshot` matched against the journal, never sending
  (:meth:`IBJournaling._reconcile_journal`); and each order's ``info['latency']`` from the stamps kept here
  or in the journal.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

import ccxt
import ccxt.async_support

from normalization import client_ids
from normalization.runtime.journal import SENT_UNKNOWN, USE_DEFAULT, OrderJournal, open_journal, sync_option
from normalization.runtime.latency import LatencyBook, Stamps, metrics
from normalization.runtime.reconcile import BrokerFill, BrokerOrder, BrokerSnapshot, reconcile
from normalization.runtime.settle import Placements
from normalization.statuses import ib_order_status

from ._ib import Order, OrderStatus, Trade
from .parsing import IBParsing, effective_status, finite, is_acknowledged, is_done, to_ms
from .transport import IBTransport

__all__ = ["IBJournaling", "JournalHost"]

log = logging.getLogger("ccxt_ibkr")


class JournalHost(Protocol):
    """What the journal's side needs from the exchange beyond ccxt's ``Exchange`` and ``IBParsing``
    (:mod:`ccxt_ibkr.connection`, :mod:`ccxt_ibkr.markets` and the order lifecycle provide it)."""

    _transport: IBTransport | None
    _placing: Placements
    _latency: LatencyBook
    _spare_order: Order | None

    @property
    def transport(self) -> IBTransport: ...
    def _market_by_con_id(self, con_id: int) -> dict[str, Any] | None: ...
    def _rejection(self, trade: Trade) -> ccxt.BaseError: ...
    def _all_trades(self) -> list[Trade]: ...


if TYPE_CHECKING:
    class _Base(IBParsing, ccxt.async_support.Exchange, JournalHost):
        pass
else:
    _Base = object


class IBJournaling(_Base):
    """The journal, its deferred writes, its hooks on IB's events and reconciliation; the base of
    :class:`ccxt_ibkr.orders.IBOrders`."""

    def _init_journaling(self) -> None:
        """Opened on connect (see _attach_journal); set up by the lifecycle's ``_init_orders``."""
        self._journal: OrderJournal | None = None
        self._events_wired = False  # the hooks below listen on the transport
        self._live_refs: dict[str, str] = {}  # clientOrderId -> last ccxt status journaled
        # journal, cid, trade, market, the intent if not journaled yet: see _journal_sent
        self._deferred: list[tuple[OrderJournal, str, Trade, dict[str, Any], dict[str, Any] | None]] = []

    @property
    def journal(self) -> OrderJournal:
        if self._journal is None:
            self._journal = open_journal(self.options.get("journal", USE_DEFAULT), exchange=self.id,
                                         sync=sync_option(self.id, self.options))
        return self._journal

    def _attach_journal(self, transport: IBTransport) -> None:
        """On connect: the journal on the account TWS names (unless already open), and the hooks on IB's events."""
        if self._journal is None:
            self._journal = open_journal(
                self.options.get("journal", USE_DEFAULT), exchange=self.id, account=transport.account or None,
                sync=sync_option(self.id, self.options),
            )
        if not self._events_wired:
            for event, handler in self._journal_hooks():
                transport.listen(event, handler)
            self._events_wired = True

    def _detach_journal(self, transport: IBTransport) -> None:
        """The hooks off the transport this object leaves (the journal stays open until _close_journal)."""
        if self._events_wired:
            for event, handler in self._journal_hooks():
                transport.unlisten(event, handler)
            self._events_wired = False

    def _close_journal(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    # ------------------------------------------------------------------ the writes after a send

    def _flush_deferred(self) -> None:
        """Run the post-send journal writes still pending (also on close, before the journal closes),
        and build the next order's ``Order()`` while nothing waits for it."""
        while self._deferred:
            self._journal_sent(*self._deferred.pop(0))
        if self._spare_order is None:
            self._spare_order = Order()

    def _journal_sent(self, journal: OrderJournal, cid: str, trade: Trade, market: dict[str, Any],
                      intent: dict[str, Any] | None) -> None:
        """The journal learns a placed order's ids and state (and, for an ``intent`` not journaled yet, the
        order itself). Read from the trade as it is now, not as it was returned: it may have filled since,
        and the returned order belongs to the caller."""
        try:
            ids = {"order_id": trade.order.orderId, "perm_id": trade.order.permId or trade.orderStatus.permId or None}
            stamps = self._latency.get(cid)  # a journaled intent's stamps: the row has the intent's only
            if is_acknowledged(trade):
                order = self.parse_ib_order(trade, market)
                if intent is not None:
                    journal.record_after_send(cid, **intent, state=order["status"], filled=order["filled"],
                                              remaining=order["remaining"], ids=ids)
                    if order["status"] == "rejected":
                        journal.update_status(cid, "rejected", self._trade_payload(trade),
                                              reason=self._reject_reason(trade))
                elif order["status"] == "rejected":
                    journal.update_status(cid, "rejected", self._trade_payload(trade),
                                          reason=self._reject_reason(trade), filled=order["filled"],
                                          remaining=order["remaining"], ids=ids, latency=stamps)
                else:
                    journal.update_status(cid, order["status"], filled=order["filled"],
                                          remaining=order["remaining"], ids=ids, latency=stamps)
                if order["status"] == "open":
                    self._live_refs[cid] = "open"
            else:
                if intent is not None:
                    journal.record_after_send(cid, **intent, state=SENT_UNKNOWN, ids=ids)
                else:
                    journal.attach_ids(cid, **ids)
                    if stamps is not None:
                        journal.record_latency(cid, stamps)
                self._live_refs[cid] = "sent_unknown"  # IB's late answer lands in the journal when it comes
        except Exception:  # noqa: BLE001 - the order is placed; reconciliation settles the row from IB
            log.warning("%s: journal write after placing %s failed; reconciliation will settle it", self.id, cid,
                        exc_info=True)

    def _reject_reason(self, trade: Trade) -> str:
        """A rejection as the journal keeps it: ``<ccxt class>: <IB's message>``."""
        error = self._rejection(trade)
        return f"{type(error).__name__}: {error}"

    @staticmethod
    def _trade_payload(trade: Trade) -> dict[str, Any]:
        """IB's own words about an order, JSON-ready, for the journal's ``info``."""
        status = trade.orderStatus
        return {
            "orderId": trade.order.orderId, "permId": trade.order.permId or status.permId,
            "orderRef": trade.order.orderRef, "status": status.status, "filled": status.filled,
            "remaining": status.remaining, "whyHeld": status.whyHeld,
            "log": [{"time": str(e.time), "status": e.status, "message": e.message,
                     "errorCode": getattr(e, "errorCode", 0)} for e in trade.log],
        }

    # ------------------------------------------------------------------ hooks on IB's events

    def _order_latency(self, trade: Trade) -> dict[str, Any]:
        """``info['latency']`` of an order: this object's stamps, else (an order of an earlier process) the
        journal's, kept here from then on. A parse may see IB's answer before the journal's handler of the
        same message ran (the handlers' order is the client library's): it stamps the ack or fill then."""
        cid = trade.order.orderRef
        if not cid:
            return metrics(None)
        known = self._latency.get(cid)
        if known is None:
            row = self._journal.get(cid) if self._journal is not None else None
            if row is None or row.latency is None:
                return metrics(None)
            known = self._latency.start(cid, row.latency)
        elif known.ack is None and is_acknowledged(trade):
            known.mark("ack")
        if known.first_fill is None and trade.fills and known.intent is not None:
            known.fill()
        return metrics(known)

    def _journal_hooks(self) -> tuple[tuple[str, Any], ...]:
        """The IB events the journal follows, with their handlers (wired through the transport)."""
        return (("orderStatusEvent", self._on_order_status), ("execDetailsEvent", self._on_exec),
                ("commissionReportEvent", self._on_commission))

    def _on_order_status(self, trade: Trade) -> None:
        """Keep the journal's state of this process's orders current as IB reports changes.

        Only orders this process placed are tracked (``_live_refs``), and only a change of ccxt status
        is written, so the hot path costs a dict lookup.
        """
        ref = trade.order.orderRef
        stamps = self._latency.get(ref) if ref else None
        if stamps is not None and stamps.ack is None and is_acknowledged(trade):
            stamps.mark("ack")  # IB's first word on the order (an acknowledgement, or its refusal)
        last = self._live_refs.get(ref) if ref else None
        if last is None or self._journal is None:
            return
        status = trade.orderStatus.status
        if status == OrderStatus.PendingSubmit:
            return
        try:
            market = self._market_by_con_id(trade.contract.conId)
            if market is None:
                return
            ccxt_status = self.parse_ib_order(trade, market)["status"]
            if ccxt_status == last:
                return
            self._live_refs[ref] = ccxt_status
            rejected = ccxt_status == "rejected"
            self._journal.update_status(
                ref, ccxt_status, self._trade_payload(trade) if rejected else None,
                reason=self._reject_reason(trade) if rejected else None,
                filled=trade.orderStatus.filled, remaining=trade.orderStatus.remaining, latency=stamps,
            )
            if ccxt_status != "open":
                self._live_refs.pop(ref, None)
        except Exception:  # noqa: BLE001 - bookkeeping must never break the event loop
            log.warning("%s: journal status of %s (%s) not written; reconciliation will settle it", self.id, ref,
                        status, exc_info=True)

    def _on_exec(self, trade: Trade, fill: Any) -> None:
        execution = fill.execution
        ref = execution.orderRef or None
        stamps = self._latency.get(ref)
        if stamps is None and ref is not None:
            stamps = Stamps()  # an order of an earlier process: the journal merges the fill into its stamps
        if stamps is not None:
            stamps.fill()
        if self._journal is None:
            return
        try:
            market = self._market_by_con_id(fill.contract.conId)
            self._journal.record_fill(
                execution.execId,
                amount=execution.shares,
                price=execution.price,
                client_order_id=ref,
                order_id=execution.orderId,
                symbol=market["symbol"] if market is not None else None,
                side="buy" if execution.side == "BOT" else "sell",
                timestamp=to_ms(execution.time),
                info=self._execution_payload(fill),
                latency=stamps,
            )
        except Exception:  # noqa: BLE001 - bookkeeping must never break the event loop
            log.warning("%s: fill %s not journaled; reconciliation will record it", self.id, execution.execId,
                        exc_info=True)

    @staticmethod
    def _execution_payload(fill: Any) -> dict[str, Any]:
        """IB's execution, JSON-ready, kept as the journaled fill's raw payload."""
        execution, contract = fill.execution, fill.contract
        return {
            "execId": execution.execId, "orderId": execution.orderId, "permId": execution.permId,
            "clientId": execution.clientId, "orderRef": execution.orderRef, "time": str(execution.time),
            "acctNumber": execution.acctNumber, "exchange": execution.exchange, "side": execution.side,
            "shares": execution.shares, "price": execution.price, "cumQty": execution.cumQty,
            "avgPrice": execution.avgPrice, "conId": contract.conId, "secType": contract.secType,
            "symbol": contract.symbol, "currency": contract.currency,
        }

    def _on_commission(self, trade: Trade, fill: Any, report: Any) -> None:
        if self._journal is None:
            return
        try:
            self._journal.record_fee(report.execId, report.commission, report.currency)
        except Exception:  # noqa: BLE001 - bookkeeping must never break the event loop
            log.warning("%s: commission of fill %s not journaled", self.id, report.execId, exc_info=True)

    # ------------------------------------------------------------------ reconciliation

    def _reconcile_journal(self) -> None:
        """After each (re)connect, bring the journal in line with what IB reports (never sending).

        Runs once ib_async's startup sync (open orders, completed orders, executions) is in, which is
        when ``connectAsync`` returns. Orders are matched by orderRef (= clientOrderId), then permId;
        IB order ids repeat across sessions and are not used for matching.
        """
        journal = self._journal
        if journal is None:
            return
        transport = self.transport
        client_id = transport.client_id
        fills_by_perm: dict[int, float] = {}
        ib_fills = transport.fills()
        for fill in ib_fills:
            fills_by_perm[fill.execution.permId] = fills_by_perm.get(fill.execution.permId, 0.0) + fill.execution.shares
        orders = []
        in_flight = set(self._placing)
        for trade in self._all_trades():
            order, status = trade.order, trade.orderStatus
            if not (order.permId or status.permId) and not is_acknowledged(trade) and not is_done(trade):
                # Sent by this process, not acknowledged yet: a local echo, not IB's word. Its row stays
                # unresolved until IB answers (never called open, never called absent).
                if order.orderRef:
                    in_flight.add(order.orderRef)
                continue
            perm = order.permId or status.permId
            # Completed orders arrive without fill quantities; executions and "Filled" tell them.
            filled = max(finite(status.filled) or 0.0, fills_by_perm.get(perm, 0.0))
            if effective_status(trade) == "Filled":
                filled = max(filled, finite(order.totalQuantity) or 0.0)
            amount = finite(order.totalQuantity)
            codes = [e.errorCode for e in trade.log if getattr(e, "errorCode", 0)]
            market = self._market_by_con_id(trade.contract.conId)
            orders.append(BrokerOrder(
                status=ib_order_status(effective_status(trade), filled=filled, remaining=status.remaining,
                                       error_codes=codes, why_held=status.whyHeld or "", tif=order.tif or ""),
                client_order_id=order.orderRef or None,
                order_id=order.orderId if order.orderId > 0 and order.clientId == client_id else None,
                perm_id=perm or None,
                symbol=market["symbol"] if market else None,
                side=order.action.lower() if order.action else None,
                amount=amount,
                filled=filled,
                remaining=max((amount or 0.0) - filled, 0.0) if amount is not None else None,
            ))
        fills = [
            BrokerFill(
                exec_id=f.execution.execId, amount=f.execution.shares, price=f.execution.price,
                client_order_id=f.execution.orderRef or None, perm_id=f.execution.permId or None,
                side="buy" if f.execution.side == "BOT" else "sell", timestamp=to_ms(f.execution.time),
                fee_cost=f.commissionReport.commission if f.commissionReport.currency else None,
                fee_currency=f.commissionReport.currency or None,
            )
            for f in ib_fills
        ]
        prefix = str(self.options.get("clientOrderPrefix", client_ids.DEFAULT_PREFIX))
        try:
            report = reconcile(
                journal,
                BrokerSnapshot(orders=orders, fills=fills, complete=transport.connected),
                in_flight=in_flight,
                grace_ms=int(self.options.get("reconcileGraceMs", 2000)),
                adopt_unknown=lambda o: client_ids.is_own(o.client_order_id, prefix),
                match_on=("perm_id",),
            )
        except ccxt.BaseError as exc:  # an incomplete snapshot: try again on the next connect
            log.warning("%s: journal not reconciled: %s", self.id, exc)
            return
        for discrepancy in report.discrepancies:
            # Orders of other clients / TWS users are normal at IB: only our own disagreements warn.
            level = logging.DEBUG if discrepancy.kind == "unknown_at_journal" else logging.WARNING
            log.log(level, "%s journal: %s %s: %s", self.id, discrepancy.kind, discrepancy.client_order_id,
                    discrepancy.detail)
