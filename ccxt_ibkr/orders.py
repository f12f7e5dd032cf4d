"""The order lifecycle of Interactive Brokers: from a checked request to IB's answer, journaled.

``exchange.py`` holds the ccxt surface; this mixin holds what happens to an order between the unified
call and IB's answer:

* argument checks and building the IB ``Order`` (and a bracket's children): nothing is sent there;
* placement through the journal (the intent first, never twice for one clientOrderId), and the wait
  for IB's acknowledgement (``_settle``);
* finding an order again by orderId, permId or clientOrderId;
* cancel and modify, and the order sync with IB after each (re)connect.

What keeps the journal in line with IB afterwards -- the writes deferred past the send, the hooks on
IB's events, reconciliation -- is its base, :class:`ccxt_ibkr.journaling.IBJournaling`. It is mixed into
``IBTrader`` before ``ccxt.async_support.Exchange`` (as ``IBParsing`` is) and declared against
:class:`OrderHost`, the part of the exchange it relies on.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import TYPE_CHECKING, Any, Protocol

import ccxt
import ccxt.async_support

from normalization import client_ids
from normalization.arguments import OrderRules, check_repeat
from normalization.errors import ib_exception
from normalization.orders import amount_on_grid, positive_number, price_on_grid, require_within
from normalization.runtime.journal import SENT_UNKNOWN, JournalOrder, OrderJournal
from normalization.runtime.latency import LatencyBook, Stamps
from normalization.runtime.settle import Placements, ReconciliationPending, placed_before, settle

from ._ib import Contract, Order, Trade
from .journaling import IBJournaling
from .parsing import IBParsing, commissions_in, is_acknowledged, is_done
from .transport import IBTransport

log = logging.getLogger("ccxt_ibkr")

TIME_IN_FORCE = ("GTC", "IOC", "FOK", "DAY")
JSON_SCALARS = (str, int, float, bool, type(None))
IB_ORDER_TYPES = {"market": "MKT", "limit": "LMT", "stop": "STP", "stop_limit": "STP LMT"}
#: ``Order`` attributes create_order's own arguments set: a param may not override them.
RESERVED_ORDER_FIELDS = frozenset({
    "orderId", "clientId", "permId", "action", "totalQuantity", "orderType", "lmtPrice", "auxPrice", "tif",
    "orderRef", "transmit", "parentId", "parentPermId", "ocaGroup", "ocaType", "account", "whatIf",
    "filledQuantity", "outsideRth", "triggerPrice",
})


def _order_fields() -> dict[str, tuple[type, ...]]:
    """IB ``Order`` attributes with a scalar value, by type: params of these names are set on the order."""
    sample = Order()
    fields: dict[str, tuple[type, ...]] = {}
    for name, value in vars(sample).items():
        if isinstance(value, bool):
            fields[name] = (bool,)
        elif isinstance(value, (int, float, str)):
            fields[name] = (type(value),)
    return fields


IB_ORDER_RULES = OrderRules(
    exchange_id="ibkr",
    extra_params={"goodTillDate": (str,), "outsideRth": (bool,), "transmit": (bool,), "algoParams": (dict,)},
    broker_fields=_order_fields(),
    reserved=RESERVED_ORDER_FIELDS,
    broker_name="IB Order",
)
IB_PASSTHROUGH = frozenset(IB_ORDER_RULES.broker_fields) - RESERVED_ORDER_FIELDS


class OrderHost(Protocol):
    """What the order lifecycle needs from the exchange it is mixed into (the rest is ccxt's ``Exchange`` and
    its own base, :class:`~ccxt_ibkr.journaling.IBJournaling`); :class:`~ccxt_ibkr.connection.IBConnection`
    provides the first four, :class:`~ccxt_ibkr.markets.IBMarkets` the rest."""

    _transport: IBTransport | None

    @property
    def transport(self) -> IBTransport: ...
    def _check_live(self, accounts: list[str] | None = None) -> None: ...
    async def _ready(self, kind: str = ...) -> IBTransport: ...
    async def _market(self, symbol: str) -> dict[str, Any]: ...
    def _market_by_con_id(self, con_id: int) -> dict[str, Any] | None: ...
    async def _market_for_contract(self, contract: Contract) -> dict[str, Any]: ...
    def _contract(self, market: dict[str, Any]) -> Contract: ...


if TYPE_CHECKING:
    class _Base(IBJournaling, IBParsing, ccxt.async_support.Exchange, OrderHost):
        pass
else:
    _Base = IBJournaling


class IBOrders(_Base):
    """The order lifecycle, mixed into ``IBTrader``."""

    def _init_orders(self) -> None:
        """The lifecycle's own state, and the journal's (journaling.py), set up by the exchange's ``__init__``."""
        self._init_journaling()
        self._cancel_requested: set[int] = set()
        self._reduce_only: set[str] = set()
        self._placing = Placements()  # clientOrderIds between journal intent and IB's answer
        self._bracket_legs: dict[int, list[Trade]] = {}  # parent orderId -> its children, until acknowledged
        self._spare_order: Order | None = None  # built off the send path: see _fresh_order
        self._completed: dict[int, Trade] = {}  # permId -> completed trade reported by reqCompletedOrders
        #: Stage stamps of the orders placed here (normalization.runtime.latency), for order['info']['latency'].
        self._latency = LatencyBook()

    # ------------------------------------------------------------------ orders: argument checks

    def _check_amount(self, market: dict[str, Any], amount: Any, what: str = "amount") -> float:
        """Truncated to the size increment (IB's rule, ccxt's amount_to_precision), then held to the minimum
        size; ``options['strictPrecision']`` refuses an amount off the increment instead."""
        number = positive_number(amount, what, self.id)
        quantity = amount_on_grid(number, market["precision"]["amount"], market["symbol"], self.id,
                                  bool(self.options.get("strictPrecision")), what)
        require_within(quantity, market["limits"]["amount"]["min"], None, what, market["symbol"], self.id)
        return quantity

    def _check_price(self, market: dict[str, Any], price: Any, what: str = "price") -> float:
        """Rounded to the tick as ccxt's price_to_precision does (TWS would reject an off-tick price with
        error 110); ``options['strictPrecision']`` refuses an off-tick price instead."""
        number = positive_number(price, what, self.id)
        return price_on_grid(number, market["precision"]["price"], market["symbol"], self.id,
                             bool(self.options.get("strictPrecision")), what)

    def _time_in_force(self, params: dict[str, Any], ib_type: str) -> str:
        tif = params.get("timeInForce") if params else None
        if params and (tif == "PO" or params.get("postOnly")):
            raise ccxt.InvalidOrder(f"{self.id} post-only orders are not supported at IB")
        if tif is None:
            return str(self.options.get("defaultTimeInForce", "GTC")).upper() if "LMT" in ib_type else "DAY"
        if tif not in TIME_IN_FORCE:
            raise ccxt.InvalidOrder(f"{self.id} timeInForce {tif!r} is not supported; use GTC, IOC, FOK or DAY")
        return tif

    def _build_order(
        self, market: dict[str, Any], type: Any, side: Any, amount: Any, price: Any, params: dict[str, Any]
    ) -> tuple[Order, list[Order], dict[str, Any]]:
        """Validate everything and build the IB order(s); nothing is sent here.

        This runs before every send, on the latency a bot measures, so a plain order (no params, the
        common case) skips every optional look-up instead of asking an empty dict for each.
        """
        quantity = self._check_amount(market, amount)
        trigger = stop_loss = take_profit = None
        if params:  # checked and given one meaning by check_create_order
            trigger = params.get("triggerPrice")
            stop_loss, take_profit = params.get("stopLoss"), params.get("takeProfit")
        ib_type = IB_ORDER_TYPES[type]
        lmt_price = self._check_price(market, price) if price is not None else None
        aux = self._check_price(market, trigger, "triggerPrice") if trigger is not None else None
        tif = self._time_in_force(params, ib_type)
        prefix = str(self.options.get("clientOrderPrefix", client_ids.DEFAULT_PREFIX))
        own = client_ids.supplied(params) if params else None
        cid = own or client_ids.generate(prefix)
        action = "BUY" if side == "buy" else "SELL"
        parent = self._fresh_order()
        parent.action, parent.totalQuantity, parent.orderType, parent.tif = action, quantity, ib_type, tif
        parent.orderRef = cid
        if lmt_price is not None:
            parent.lmtPrice = lmt_price
        if aux is not None:
            parent.auxPrice = aux
        account = self.transport.account
        if account:
            parent.account = account
        outside_rth = params.get("outsideRth") if params else None
        if outside_rth or (outside_rth is None and self.options.get("outsideRth")):
            parent.outsideRth = True
        if params:
            for name in IB_PASSTHROUGH & params.keys():  # IB's own Order fields (README)
                if params[name] is not None:
                    setattr(parent, name, params[name])
        children: list[Order] = []
        if take_profit is not None or stop_loss is not None:
            children = self._bracket(market, cid, action, quantity, parent.account, take_profit, stop_loss)
        meta = {
            "clientOrderId": cid,
            "generatedId": own is None,
            "reduceOnly": bool(params.get("reduceOnly")) if params else False,
            "price": lmt_price,
            "triggerPrice": aux,
            "amount": quantity,
        }
        if params:
            self._apply_controls(parent, children, market, type, params, meta)  # trailing, algos, staging
        return parent, children, meta

    def _fresh_order(self) -> Order:
        """An ``Order()`` for the next send. ib_async's Order fills in ~150 defaults (10-15 us on the send
        path), so one is built ahead, after the previous order's answer (see _flush_deferred)."""
        spare, self._spare_order = self._spare_order, None
        return spare if spare is not None else Order()

    def _bracket(self, market: dict[str, Any], cid: str, action: str, quantity: float, account: str,
                 take_profit: dict[str, Any] | None, stop_loss: dict[str, Any] | None) -> list[Order]:
        """The take-profit and stop-loss children of a native bracket: one OCA group, GTC."""
        children: list[Order] = []
        closing = "SELL" if action == "BUY" else "BUY"
        oca = f"{cid}-oca"
        if take_profit is not None:
            tp = self._check_price(market, self.safe_value_2(take_profit, "price", "triggerPrice"), "takeProfit price")
            size = self._check_amount(market, take_profit.get("amount", quantity), "takeProfit amount")
            children.append(Order(action=closing, totalQuantity=size, orderType="LMT", lmtPrice=tp, tif="GTC",
                                  orderRef=f"{cid}-tp", ocaGroup=oca, ocaType=1, account=account))
        if stop_loss is not None:
            sl_trigger = self._check_price(market, self.safe_value(stop_loss, "triggerPrice"), "stopLoss triggerPrice")
            size = self._check_amount(market, stop_loss.get("amount", quantity), "stopLoss amount")
            child = Order(action=closing, totalQuantity=size, orderType="STP", auxPrice=sl_trigger, tif="GTC",
                          orderRef=f"{cid}-sl", ocaGroup=oca, ocaType=1, account=account)
            if stop_loss.get("price") is not None:
                child.orderType = "STP LMT"
                child.lmtPrice = self._check_price(market, stop_loss["price"], "stopLoss price")
            children.append(child)
        return children

    async def _check_reduce_only(self, market: dict[str, Any], side: str, quantity: float) -> None:
        """IB has no reduceOnly flag: refuse an order that would open, increase or flip the position."""
        await self._ready()
        con_id = int(market["id"])
        held = sum(p.position for p in await self.transport.request_positions() if p.contract.conId == con_id)
        reduces = (held > 0 and side == "sell") or (held < 0 and side == "buy")
        if not reduces:
            raise ccxt.InvalidOrder(
                f"{self.id} reduceOnly {side} {quantity} {market['symbol']} would open or increase a position "
                f"(position {held:g})"
            )
        if quantity > abs(held) + 1e-12:
            raise ccxt.InvalidOrder(
                f"{self.id} reduceOnly {side} {quantity} {market['symbol']} exceeds the position {held:g} "
                "and would flip it"
            )

    # ------------------------------------------------------------------ placement

    async def _place(self, market: dict[str, Any], type: str, side: str, params: dict[str, Any], parent: Order,
                     children: list[Order], meta: dict[str, Any]) -> dict[str, Any]:
        """Send a built order through the journal (once per clientOrderId) and return IB's answer."""
        cid = meta["clientOrderId"]
        # While connected, journal.sending below answers "seen before?"; while disconnected, ask here so a
        # repeated clientOrderId still returns the first order instead of failing on the gate.
        journaled = self._journal is not None and not self.transport.connected
        known = self._journal.get(cid) if journaled else None  # type: ignore[union-attr]
        if known is not None:
            # The same clientOrderId again: the first order, never a second one (even while disconnected:
            # an unsettled one waits, bounded, for the reconnect's reconciliation).
            check_repeat(known, self._intent(market, type, side, meta), cid, self.id)
            if not known.unresolved and not known.never_received:
                return await self._journaled_order(known, market)
            return await self._placed_before(known, market, parent, children, meta, self.journal)
        if meta["reduceOnly"]:
            await self._check_reduce_only(market, side, meta["amount"])
        await self._ready()
        if not parent.account and self.transport.account:
            parent.account = self.transport.account
            for child in children:
                child.account = self.transport.account
        journal = self.journal
        params_kept = {k: v for k, v in params.items() if isinstance(v, JSON_SCALARS)} if params else None
        intent = self._intent(market, type, side, meta)
        intent["params"] = params_kept
        stamps = meta.get("latency") or Stamps.started()
        intent["latency"] = stamps
        if meta["generatedId"] and journal.defers_new_intents:
            # An id generated just now: nobody can repeat it before this call returns, and IB keeps it as
            # orderRef. The order is journaled once, with IB's answer, after the call returns (see
            # OrderJournal.defers_new_intents for why a crash in between loses nothing).
            intent["sent"] = journal.now_ms()
            self._latency.start(cid, stamps).mark("submit")
            try:
                trade = self._send(market, parent, children)
            except BaseException:
                journal.record_after_send(cid, **intent, state=SENT_UNKNOWN)  # it may have left: ask IB later
                raise
            deferred_intent: dict[str, Any] | None = intent
        else:
            if self._deferred:
                self._flush_deferred()  # a generated id journaled after its call could be the one repeated here
            # With journalSync="normal" the intent's write runs while the order travels (OrderJournal.sending)
            # when the id carries our prefix: reconciliation adopts such an order back from IB's orderRef. Any
            # other id is committed before it is sent: a bot that dies and comes back places every id it
            # attempted again, and an order at IB that neither the journal nor the adoption knows would be
            # sent twice. After a crash reconciliation asks IB, which lists the order by orderRef if it arrived.
            prefix = str(self.options.get("clientOrderPrefix", client_ids.DEFAULT_PREFIX))
            with journal.sending(cid, **intent, broker_keeps_id=client_ids.is_own(cid, prefix)) as (row, created):
                trade = None
                if created:
                    self._latency.start(cid, stamps).mark("submit")
                    trade = self._send(market, parent, children)
            if trade is None:
                check_repeat(row, intent, cid, self.id)
                return await self._placed_before(row, market, parent, children, meta, journal)
            deferred_intent = None
        if meta["reduceOnly"]:
            self._reduce_only.add(cid)
        if meta.get("staged"):
            return await self._staged_answer(trade, market, meta, journal, deferred_intent)
        return await self._answer(trade, market, meta, journal, deferred_intent)

    @staticmethod
    def _intent(market: dict[str, Any], kind: str, side: str, meta: dict[str, Any]) -> dict[str, Any]:
        """The order as the journal keeps it (and a repeated clientOrderId is compared with)."""
        return {"symbol": market["symbol"], "side": side, "type": kind, "amount": meta["amount"],
                "price": meta["price"], "trigger_price": meta["triggerPrice"]}

    async def _placed_before(self, row: JournalOrder, market: dict[str, Any], parent: Order, children: list[Order],
                             meta: dict[str, Any], journal: OrderJournal) -> dict[str, Any]:
        """A clientOrderId journaled before: that order, or -- if IB provably never received it -- placed now,
        exactly once (normalization.runtime.settle.placed_before)."""

        async def answer(settled: JournalOrder) -> dict[str, Any]:
            return await self._journaled_order(settled, market)

        async def place_again(claimed: JournalOrder) -> dict[str, Any]:
            await self._ready()
            trade = self._send(market, parent, children)
            return await self._answer(trade, market, meta, journal, None)

        return await placed_before(journal, row, settle_one=lambda cid: self._settle_journal([cid]), answer=answer,
                                   place_again=place_again, exchange_id=self.id)

    async def _settle_journal(self, cids: list[str] | None) -> None:
        """Every unresolved order among ``cids`` (None: all) settled by reconciliation, or
        ReconciliationPending after ``options['reconcileWait']`` seconds."""
        await settle(
            self.journal, cids, placements=self._placing, reconcile=self._resync,
            timeout=float(self.options.get("reconcileWait", 10.0)), exchange_id=self.id,
            grace_ms=int(self.options.get("reconcileGraceMs", 2000)), flush=self._flush_deferred,
        )

    async def _resync(self) -> None:
        await self._ready()
        await self._sync_orders(executions=False)

    def _send(self, market: dict[str, Any], parent: Order, children: list[Order]) -> Trade:
        """Hand the order (and its bracket children, transmitted with the last one unless staged) to IB."""
        contract = self._contract(market)
        if not children:
            return self.transport.place(contract, parent)
        trade, legs = self.transport.place_bracket(contract, parent, children)
        self._bracket_legs[parent.orderId] = legs
        return trade

    async def _answer(self, trade: Trade, market: dict[str, Any], meta: dict[str, Any], journal: OrderJournal,
                      intent: dict[str, Any] | None) -> dict[str, Any]:
        """IB's answer to an order just sent, with the order counted as in flight until it comes."""
        cid = meta["clientOrderId"]
        self._placing.add(cid)
        try:
            order = await self._settle(trade, market, meta, journal, intent)
        finally:
            self._placing.discard(cid)
        await self._await_bracket_legs(trade)
        return order

    async def _await_bracket_legs(self, trade: Trade) -> None:
        """A bracket is answered once its take-profit / stop-loss legs are acknowledged too.

        fetch_open_orders shows only what IB has confirmed, and the legs' confirmations trail the parent's:
        a bot that lists its orders right after create_order must find the legs it just placed.
        """
        legs = self._bracket_legs.pop(trade.order.orderId, [])
        timeout = float(self.options.get("orderTimeout", 10.0))
        for leg in legs:
            await self.transport.wait_trade(leg, is_acknowledged, timeout)

    async def _settle(self, trade: Trade, market: dict[str, Any], meta: dict[str, Any], journal: OrderJournal,
                      intent: dict[str, Any] | None) -> dict[str, Any]:
        """Wait for IB's answer to a sent order and return it as a ccxt order (or raise the rejection)."""
        cid = meta["clientOrderId"]
        # Parsed while IB works on it; the acknowledgement then only refreshes what it changed.
        early = self.parse_ib_order(trade, market, reduce_only=meta["reduceOnly"])
        timeout = float(self.options.get("orderTimeout", 10.0))
        await self.transport.wait_trade(trade, is_acknowledged, timeout)
        if trade.order.orderType == "MKT" and is_acknowledged(trade) and not is_done(trade):
            await self.transport.wait_trade(trade, is_done, float(self.options.get("marketOrderWait", 2.0)))
        if trade.fills and not commissions_in(trade):
            # IB sends each fill's commission report right after it: fold it into the returned order.
            await self.transport.wait_trade(trade, commissions_in, float(self.options.get("commissionWait", 1.0)))
        order = self.refresh_ib_order(early, trade, market, reduce_only=meta["reduceOnly"])
        # After the send the journal only learns ids and status (reconciliation can also match the
        # order by its orderRef), so these writes run right after this call returns, off its latency.
        self._deferred.append((journal, cid, trade, market, intent))
        asyncio.get_running_loop().call_soon(self._flush_deferred)
        if not is_acknowledged(trade) and not is_done(trade):
            # Sent, and IB has not said whether it has it: no status to show (issue #15), and never a
            # second send. The same clientOrderId later returns the order once IB answers.
            raise ccxt.RequestTimeout(
                f"{self.id} order {cid} was sent but IB did not answer within orderTimeout ({timeout:g} s); its "
                "outcome is unknown. It is never sent twice: create_order / fetch_order with the same "
                "clientOrderId return it once IB (or the reconciliation after a reconnect) settles it"
            )
        if order["status"] == "rejected" or (is_done(trade) and not order["filled"]
                                             and order["status"] != "canceled" and order["status"] != "expired"):
            raise self._rejection(trade)
        return order

    def _rejection(self, trade: Trade) -> ccxt.BaseError:
        entry = next((e for e in reversed(trade.log) if getattr(e, "errorCode", 0)), None)
        if entry is None:
            return ccxt.InvalidOrder(f"{self.id} order rejected: IB status {trade.orderStatus.status}")
        text = entry.message
        prefix = f"Error {entry.errorCode}, reqId {trade.order.orderId}: "
        if text.startswith(prefix):
            text = text[len(prefix):]
        return ib_exception(entry.errorCode, text, exchange_id=self.id)

    async def _journaled_order(self, row: JournalOrder, market: dict[str, Any]) -> dict[str, Any]:
        """The order a journal row stands for: IB's live view if IB knows it, else what the journal knows."""
        trade = self._find_trade_local(row.client_order_id) or (
            self._find_trade_local(row.perm_id) if row.perm_id else None
        )
        if trade is not None and (is_acknowledged(trade) or is_done(trade)):
            return self.parse_ib_order(trade, market)
        if row.unresolved:
            raise ReconciliationPending(
                f"{self.id} order {row.client_order_id}: IB has not confirmed whether it received it; ask again shortly"
            )
        if row.never_received:
            raise ccxt.OrderNotFound(
                f"{self.id} order {row.client_order_id} never reached IB ({row.reason}); placing the same "
                "clientOrderId again sends it once"
            )
        timestamp = row.created
        return self.safe_order(
            {
                "id": row.order_id or row.perm_id or row.client_order_id,
                "clientOrderId": row.client_order_id,
                "timestamp": timestamp,
                "datetime": self.iso8601(timestamp),
                "symbol": row.symbol,
                "type": row.type if row.type in ("market", "limit") else None,
                "side": row.side,
                "price": row.price,
                "triggerPrice": row.trigger_price,
                "amount": row.amount,
                "filled": row.filled,
                "remaining": row.remaining,
                "status": row.ccxt_status,
                "timeInForce": None,
                "postOnly": False,
                "fee": None,
                "trades": [],
                "info": {"journal": {"state": row.state, "orderId": row.order_id, "permId": row.perm_id},
                         "latency": self._latency.metrics(row.client_order_id, row.latency)},
            },
            market,
        )

    def _all_trades(self) -> list[Trade]:
        """This connection's trades plus completed ones IB listed that the library did not keep."""
        if self._transport is None:
            return []
        trades = self._transport.trades()
        live = {t.order.permId or t.orderStatus.permId for t in trades}
        trades.extend(t for perm, t in self._completed.items() if perm not in live)
        return trades

    def _find_trade_local(self, key: Any) -> Trade | None:
        """A trade by orderId, permId or clientOrderId (orderRef) among what this connection knows.

        Order ids are unique only per clientId (other clients' completed orders reuse them), so an
        orderId matches only this client's orders; a clientOrderId reused over time matches the
        newest order carrying it.
        """
        if key is None or self._transport is None:
            return None
        text = str(key)
        trades = self._all_trades()
        client_id = self._transport.client_id
        for trade in trades:
            if trade.order.orderId > 0 and trade.order.clientId == client_id and str(trade.order.orderId) == text:
                return trade
        for trade in trades:
            perm = trade.order.permId or trade.orderStatus.permId
            if perm and str(perm) == text:
                return trade
        named = [t for t in trades if t.order.orderRef and t.order.orderRef == text]
        if named:
            return max(named, key=lambda t: (t.order.clientId == client_id, t.order.permId or t.orderStatus.permId))
        return None

    async def _find_trade(self, id: Any, params: dict[str, Any]) -> Trade:
        await self._ready()
        cid = self.safe_string_2(params, "clientOrderId", "clientOid")
        key = cid if cid is not None and id is None else id
        trade = None
        if self._journal is not None and key is not None:
            # Our own clientOrderIds: the journal knows the stable permId they were given.
            row = self._journal.get(str(key))
            if row is not None and row.perm_id:
                trade = self._find_trade_local(row.perm_id)
        trade = trade or self._find_trade_local(key)
        if trade is None:
            # Orders of earlier sessions or other clients: ask IB once, then give up.
            await self._list_orders_at_ib(executions=False)
            trade = self._find_trade_local(key)
        if trade is None:
            raise ccxt.OrderNotFound(f"{self.id} order {key} not found")
        return trade

    async def _parse_trade_order(self, trade: Trade) -> dict[str, Any]:
        market = await self._market_for_contract(trade.contract)
        perm = trade.order.permId or trade.orderStatus.permId
        if not trade.fills and perm and self._transport is not None:
            # Orders rebuilt after a reconnect (or completed ones) come without their fills; IB's
            # executions carry the permId, so attach them for filled / average / fees.
            fills = [f for f in self._transport.fills() if f.execution.permId == perm]
            if fills:
                trade = copy.copy(trade)
                trade.fills = fills
        return self._mark_staged(self.parse_ib_order(
            trade,
            market,
            cancel_requested=trade.order.orderId in self._cancel_requested,
            reduce_only=(trade.order.orderRef in self._reduce_only) or None,
        ), trade)


    def _journal_row(self, id: Any, params: dict[str, Any]) -> JournalOrder | None:
        if self._journal is None:
            return None
        cid = self.safe_string_2(params, "clientOrderId", "clientOid")
        for key in (cid, id):
            if key is None:
                continue
            row = self._journal.get(str(key)) or self._journal.find_by(order_id=str(key)) or \
                self._journal.find_by(perm_id=str(key))
            if row is not None:
                return row
        return None


    async def _cancel_bracket_children(self, con_id: int, closing_action: str) -> None:
        """Cancel the working bracket children (orders with a parent, closing side) of one contract."""
        await self._ready()
        children = [
            t for t in self.transport.open_trades()
            if t.contract.conId == con_id and t.order.action == closing_action and not is_done(t)
            and (t.order.parentId or str(t.order.ocaGroup or "").endswith("-oca"))
        ]
        for trade in children:
            self._cancel_requested.add(trade.order.orderId)
            self.transport.cancel(trade.order)
        timeout = float(self.options.get("orderTimeout", 10.0))
        for trade in children:
            await self.transport.wait_trade(trade, is_done, timeout)
            if not is_done(trade):
                raise ccxt.RequestTimeout(f"{self.id} the bracket order {trade.order.orderRef or trade.order.orderId} "
                                          "was not confirmed cancelled; the position was not closed")

    # ------------------------------------------------------------------ cancel and modify

    async def _cancel(self, trade: Trade) -> None:
        """Ask IB to cancel the order and wait (bounded by ``orderTimeout``) for its confirmation."""
        await self._ready()
        self._cancel_requested.add(trade.order.orderId)
        self.transport.cancel(trade.order)
        await self.transport.wait_trade(trade, is_done, float(self.options.get("orderTimeout", 10.0)))

    def _edited_order(self, trade: Trade, market: dict[str, Any], id: str, amount: Any, price: Any,
                      params: dict[str, Any]) -> Order:
        """A copy of the order with the new amount / price / trigger (and IB's own fields), checked; not sent."""
        order = copy.copy(trade.order)
        for name in IB_PASSTHROUGH & params.keys():  # IB's own Order fields (README)
            setattr(order, name, params[name])
        if amount is not None:
            order.totalQuantity = self._check_amount(market, amount)
        trigger = self.safe_value_2(params, "triggerPrice", "stopPrice")
        if price is not None:
            if order.orderType not in ("LMT", "STP LMT"):
                raise ccxt.InvalidOrder(f"{self.id} order {id} is {order.orderType}; it has no limit price")
            order.lmtPrice = self._check_price(market, price)
        if trigger is not None:
            if order.orderType not in ("STP", "STP LMT"):
                raise ccxt.InvalidOrder(f"{self.id} order {id} is {order.orderType}; it has no trigger price")
            order.auxPrice = self._check_price(market, trigger, "triggerPrice")
        return order

    async def _modify(self, trade: Trade, order: Order) -> None:
        """Re-place ``order`` under its orderId and wait for IB to apply (or refuse) the change."""
        order.transmit = True
        await self._ready()
        before = len(trade.log)
        self.transport.place(trade.contract, order)
        wanted = (order.totalQuantity, order.lmtPrice, order.auxPrice)

        def applied(t: Trade) -> bool:
            # ib_async logs "Modified" when a Submitted order's modify is acknowledged; a held order
            # (PreSubmitted) only gets its openOrder echo, which updates the trade's own Order.
            echoed = (t.order.totalQuantity, t.order.lmtPrice, t.order.auxPrice) == wanted
            return is_done(t) or len(t.log) > before + 1 or (echoed and t.order is not order)

        await self.transport.wait_trade(
            trade, applied, float(self.options.get("orderTimeout", 10.0)), extra_events=["openOrderEvent"]
        )
        errors = [e for e in trade.log[before:] if getattr(e, "errorCode", 0)]
        if errors:
            entry = errors[-1]
            raise ib_exception(entry.errorCode, entry.message, exchange_id=self.id)
        trade.order.totalQuantity, trade.order.lmtPrice, trade.order.auxPrice = wanted

    # ------------------------------------------------------------------ sync with IB

    async def _sync_orders(self, *, executions: bool) -> None:
        """Ask IB for every order it knows (all clients' open ones, completed ones, optionally today's
        executions), then reconcile the journal. ib_async keeps completed orders only in the reply,
        so they are kept here (``_completed``, by permId) for fetch_order / fetch_orders."""
        if not self.transport.readonly:
            try:
                # The startup sync lists only this clientId's open orders; orders a bot placed under another
                # clientId before a restart must not look "absent at the broker" to reconciliation.
                await self._list_orders_at_ib(executions=executions)
            except ccxt.BaseError as exc:
                log.warning("%s: order sync failed, journal not reconciled: %s", self.id, exc)
                return
        self._reconcile_journal()

    async def _list_orders_at_ib(self, *, executions: bool) -> None:
        """IB lists every order it knows (transport.sync_orders); the completed ones are kept by permId."""
        for trade in await self.transport.sync_orders(executions=executions):
            perm = trade.order.permId or trade.orderStatus.permId
            if perm:
                self._completed[perm] = trade
