"""Operator controls at Interactive Brokers: pre-trade limits, dry runs, staging, trailing stops, algos.

What a person running a bot with real money relies on, around the order lifecycle of ``orders.py``:

* **pre-trade limits** (``options['risk']``, :mod:`normalization.runtime.risk`): checked after the order
  is built and before it is journaled or sent; this mixin answers the facts a rule asks for (the quote,
  the position, the open orders, today's orders from the journal);
* **dry run** (``options['dryRun']`` / ``CCXT_BROKERS_DRY_RUN=1``, :mod:`normalization.runtime.dryrun`):
  the built order priced and journaled, never sent;
* **staging** (``params['transmit'] = False``): the order goes to TWS with ``Order.transmit = False``;
  TWS keeps it (shown in its order window with a Transmit button) without sending it to the exchange
  and announces nothing over the API -- no openOrder, no orderStatus, absent from reqOpenOrders /
  reqAllOpenOrders -- so create_order answers at once with the order ``open`` and ``info['staged']``
  True, journaled as staged. ``edit_order(..., params={'transmit': True})`` transmits it (then IB's
  acknowledgement is awaited as for any order); an edit without ``transmit`` keeps it staged; a
  cancel discards it. IB order ids live per API session: a staged order can only be transmitted by
  the session that staged it (after a reconnect, from TWS itself);
* **trailing stops** (ccxt's ``trailingAmount`` / ``trailingPercent``): IB ``TRAIL`` (market or stop
  type: ``triggerPrice`` is the initial stop, ``trailStopPrice``) and ``TRAIL LIMIT`` (stop-limit type:
  the limit follows the stop at ``lmtPriceOffset`` = the distance of ``price`` from ``triggerPrice``);
* **algos**: ``algoStrategy`` (Adaptive, Twap, Vwap, ...; case-insensitive) with ``algoParams`` (a dict,
  sent as IB TagValues).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import ccxt

from normalization.risk import last_quote, touch_price
from normalization.runtime.dryrun import dry_run_enabled, dry_run_journal, dry_run_order
from normalization.runtime.journal import OrderJournal
from normalization.runtime.risk import RiskGate, start_of_day_ms

from ._ib import Order, TagValue, Trade
from .parsing import finite

if TYPE_CHECKING:
    from .orders import IBOrders as _Base
else:
    _Base = object

#: IB's algo names, by their lower-case spelling (a name not listed is passed as given: IB decides).
IB_ALGOS = {name.lower(): name for name in (
    "Adaptive", "ArrivalPx", "ClosePx", "DarkIce", "PctVol", "Twap", "Vwap", "MinImpact", "BalanceImpactRisk",
    "AD", "Jefferies", "CSFB", "PctVolTm", "PctVolSz")}
STAGED = "staged: in TWS, not transmitted"
TRANSMITTED = "transmitted after staging"


def _is_trailing(params: dict[str, Any]) -> bool:
    return params.get("trailingAmount") is not None or params.get("trailingPercent") is not None


class IBControls(_Base):
    """Operator controls, mixed into ``IBTrader`` next to the order lifecycle."""

    def _init_controls(self) -> None:
        """Read at construction: a bad limit or flag fails before anything is sent."""
        self._risk = RiskGate.from_options(self.id, self.options)
        self._dry_run = dry_run_enabled(self.id, self.options)
        self._staged: set[int] = set()  # orderIds this session staged and has not transmitted

    # ------------------------------------------------------------------ building: trailing stops, algos, staging

    def _apply_controls(self, parent: Order, children: list[Order], market: dict[str, Any], kind: str,
                        params: dict[str, Any], meta: dict[str, Any]) -> None:
        """Turn the controls' params into IB order fields (runs at the end of ``_build_order``)."""
        if _is_trailing(params):
            self._trailing(parent, market, kind, params)
        if params.get("algoParams") is not None and not params.get("algoStrategy"):
            raise ccxt.InvalidOrder(f"{self.id} params['algoParams'] needs params['algoStrategy'] (Adaptive, Twap, "
                                    "Vwap, ...)")
        if params.get("algoStrategy"):
            parent.algoStrategy = IB_ALGOS.get(str(params["algoStrategy"]).lower(), str(params["algoStrategy"]))
            parent.algoParams = [TagValue(str(k), _tag(v)) for k, v in (params.get("algoParams") or {}).items()]
        if params.get("transmit") is False:
            parent.transmit = False  # _send keeps the whole bracket untransmitted too
            meta["staged"] = True

    def _trailing(self, parent: Order, market: dict[str, Any], kind: str, params: dict[str, Any]) -> None:
        if params.get("trailingTriggerPrice") is not None:
            raise ccxt.NotSupported(f"{self.id} IB trailing stops have no activation price (trailingTriggerPrice); "
                                    "give triggerPrice as the initial stop (IB trailStopPrice) instead")
        if kind == "limit":
            raise ccxt.InvalidOrder(f"{self.id} a trailing limit order (IB TRAIL LIMIT) needs triggerPrice, the "
                                    "initial stop, with price, the initial limit (type 'stop_limit'); or use a "
                                    "market trailing stop")
        amount, percent = params.get("trailingAmount"), params.get("trailingPercent")
        stop = parent.auxPrice if kind in ("stop", "stop_limit") else None
        if amount is not None:
            parent.auxPrice = self._check_price(market, amount, "trailingAmount")
        else:
            parent.auxPrice = Order().auxPrice  # unset: the percentage trails
            parent.trailingPercent = percent
        if stop is not None:
            parent.trailStopPrice = stop
        if kind == "stop_limit":
            offset = stop - parent.lmtPrice if parent.action == "SELL" else parent.lmtPrice - stop
            if offset < 0:
                side = "below" if parent.action == "SELL" else "above"
                raise ccxt.InvalidOrder(f"{self.id} a trailing stop-limit {parent.action.lower()} needs its price "
                                        f"{side} (or at) the triggerPrice {stop:g}, got {parent.lmtPrice:g}")
            parent.orderType = "TRAIL LIMIT"
            parent.lmtPriceOffset = round(offset, 10)
            parent.lmtPrice = Order().lmtPrice  # the limit follows the stop at the offset
        else:
            parent.orderType = "TRAIL"

    # ------------------------------------------------------------------ pre-trade limits

    async def _pre_trade(self, market: dict[str, Any], side: str, meta: dict[str, Any]) -> None:
        """The configured limits, before the journal and the send (a repeat of a journaled clientOrderId
        returns the first order and is not checked again)."""
        if not self._risk.active or self.journal.get(meta["clientOrderId"]) is not None:
            return
        price, trigger = meta["price"], meta["triggerPrice"]
        await self._risk.check(self, market, side, meta["amount"], price if price is not None else trigger, price,
                               meta["reduceOnly"])

    async def _pre_edit(self, market: dict[str, Any], order: Order) -> None:
        """An edit's new size and price against the exposure limits and the collar."""
        if not self._risk.active:
            return
        limit = finite(order.lmtPrice) if order.orderType in ("LMT", "STP LMT") else None
        trigger = finite(order.auxPrice) if order.orderType in ("STP", "STP LMT") else None
        await self._risk.check(self, market, order.action.lower(), float(order.totalQuantity),
                               limit if limit is not None else trigger, limit, order.orderRef in self._reduce_only,
                               edit=True)

    async def risk_quote(self, market: dict[str, Any]) -> float | None:
        ticker = await self.fetch_ticker(market["symbol"])
        return last_quote(ticker)

    async def risk_position(self, market: dict[str, Any]) -> float:
        await self._ready()
        con_id = int(market["id"])
        return float(sum(p.position for p in await self.transport.request_positions() if p.contract.conId == con_id))

    async def risk_open_orders(self) -> int:
        await self._ready()
        return len(self.transport.open_trades())  # staged orders count: they can be transmitted at any moment

    async def risk_orders_today(self) -> int:
        self._flush_deferred()  # orders with generated ids are journaled just after their call returns
        journal = self.journal
        return journal.count_since(start_of_day_ms(journal.now_ms()))

    # ------------------------------------------------------------------ dry run

    async def _dry_run_answer(self, market: dict[str, Any], kind: str, side: str, params: dict[str, Any],
                              parent: Order, children: list[Order], meta: dict[str, Any]) -> dict[str, Any]:
        """Validated, checked and priced like a real order, journaled as a dry run, never sent."""
        reference = meta["price"] if meta["price"] is not None else meta["triggerPrice"]
        if reference is None:  # a market order: priced at the touch it would take
            reference = touch_price(await self.fetch_ticker(market["symbol"]), side)
        fee = None
        if reference:
            fee = self.calculate_fee(market["symbol"], kind, side, meta["amount"], reference, "taker")
        intent = self._intent(market, kind, side, meta)
        request = {"contract": {"conId": int(market["id"]), "symbol": market["symbol"]},
                   "order": _order_request(parent), "children": [_order_request(c) for c in children]}
        return dry_run_order(self, dry_run_journal(self.journal), meta["clientOrderId"], intent, market,
                             reference_price=reference, fee=fee, request=request, reduce_only=meta["reduceOnly"])

    # ------------------------------------------------------------------ staging

    async def _staged_answer(self, trade: Trade, market: dict[str, Any], meta: dict[str, Any],
                             journal: OrderJournal, intent: dict[str, Any] | None) -> dict[str, Any]:
        """A staged order: TWS keeps it and announces nothing, so there is no acknowledgement to wait for."""
        cid = meta["clientOrderId"]
        self._bracket_legs.pop(trade.order.orderId, None)
        self._staged.add(trade.order.orderId)
        ids = {"order_id": trade.order.orderId}
        if intent is not None:
            journal.record_after_send(cid, **intent, state="open", ids=ids)
        journal.update_status(cid, "open", {"staged": True, "transmit": False}, reason=STAGED, ids=ids)
        return self._mark_staged(self.parse_ib_order(trade, market, reduce_only=meta["reduceOnly"]), trade)

    def _mark_staged(self, order: dict[str, Any], trade: Trade) -> dict[str, Any]:
        """``info['staged']`` on an order this session staged (``open``: it sits in TWS)."""
        if trade.order.orderId in self._staged and trade.orderStatus.status == "PendingSubmit":
            order["status"] = "open"
            order["info"] = {**(order.get("info") or {}), "staged": True, "transmit": False}
        return order

    def _is_staged(self, trade: Trade) -> bool:
        return trade.order.orderId in self._staged and trade.orderStatus.status == "PendingSubmit"

    async def _edit_staged(self, trade: Trade, order: Order, market: dict[str, Any],
                           params: dict[str, Any]) -> dict[str, Any]:
        """Edit a staged order: ``transmit=True`` sends it (and waits for IB's acknowledgement as any
        order does); otherwise TWS updates the staged order silently and it stays staged."""
        await self._ready()
        transmit = params.get("transmit") is True
        order.transmit = transmit
        self.transport.place(trade.contract, order)
        cid = trade.order.orderRef
        journal = self.journal
        if not transmit:
            trade.order = copy.copy(order)
            if cid and journal.get(cid) is not None:
                journal.update_status(cid, "open", {"staged": True, "transmit": False}, reason=STAGED)
            return self._mark_staged(await self._parse_trade_order(trade), trade)
        self._staged.discard(trade.order.orderId)
        trade.order.transmit = True
        from .parsing import is_acknowledged, is_done

        await self.transport.wait_trade(trade, is_acknowledged, float(self.options.get("orderTimeout", 10.0)))
        if trade.order.orderType == "MKT" and is_acknowledged(trade) and not is_done(trade):
            # As create_order answers a market order: with its fill when it comes within marketOrderWait.
            await self.transport.wait_trade(trade, is_done, float(self.options.get("marketOrderWait", 2.0)))
        if cid and journal.get(cid) is not None:
            perm = trade.order.permId or trade.orderStatus.permId or None
            journal.update_status(cid, "open", {"staged": False, "transmit": True}, reason=TRANSMITTED,
                                  ids={"perm_id": perm})
        if not is_acknowledged(trade):
            raise ccxt.RequestTimeout(f"{self.id} order {trade.order.orderId} was transmitted but IB did not answer "
                                      "within orderTimeout; fetch_order shows it once IB does")
        return await self._parse_trade_order(trade)


def _tag(value: Any) -> str:
    """An algo param as IB's TagValue carries it: booleans as 1 / 0, numbers as written."""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _order_request(order: Order) -> dict[str, Any]:
    """The IB order fields a dry run would have sent (those that differ from ib_async's defaults)."""
    blank = vars(Order())
    out: dict[str, Any] = {}
    for name, value in vars(order).items():
        if value == blank.get(name) or name in ("softDollarTier", "conditions"):
            continue
        if isinstance(value, (str, int, float, bool)):
            out[name] = value
        elif name == "algoParams":
            out[name] = {tv.tag: tv.value for tv in value}
    return out
