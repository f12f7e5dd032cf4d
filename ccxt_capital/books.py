"""The broker's books as Capital.com shows them, and the journal reconciled against them.

A mixin of the exchange class next to the order lifecycle (:mod:`ccxt_capital.orders`), which reads the
books through it as the unified methods do:

* **working orders** (``GET /workingorders``) and each one's **dealReference** -- the list names them by
  dealId only, and an order's one id is its dealReference, so it comes from the confirms this object
  read or, once, from the activity history line that created the order (:meth:`CapitalBooks._reference_of`);
* **open positions** (``GET /positions``) and **the activity history** from a date, one request per day,
  the API's widest window (:meth:`CapitalBooks._activity_window`);
* **reconciliation** after a restart or a reconnect: unanswered deals looked up and adopted, then the
  books as a :class:`~normalization.runtime.reconcile.BrokerSnapshot` matched against the journal;
  nothing is ever re-sent (:meth:`CapitalBooks.reconcile_journal`).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

import ccxt

from normalization.runtime.journal import OrderJournal
from normalization.runtime.reconcile import BrokerFill, BrokerOrder, BrokerSnapshot, ReconcileReport, reconcile

from . import activity
from .orders import DAY_MS
from .parsing import FILL_ACTIONS, capital_time

__all__ = ["CapitalBooks"]

log = logging.getLogger("ccxt_capital")

if TYPE_CHECKING:
    from .orders import CapitalOrders as _Base  # the lifecycle settles the deals reconciliation finds
else:
    _Base = object


class CapitalBooks(_Base):
    """Reads of the broker's books and reconciliation, mixed into ``CapitalTrader``."""


    def _remember_reference(self, deal_id: str | None, reference: str | None) -> None:
        if deal_id and reference:
            if len(self._references) >= 10_000:
                self._references.clear()  # a cache: what leaves it is asked of the activity history again
            self._references[deal_id] = reference

    async def _reference_of(self, entry: dict[str, Any]) -> str | None:
        """The dealReference of a working order (``GET /workingorders`` lists it by dealId only).

        An order's id is its dealReference -- what create_order returns, and what the activity history
        groups a filled or cancelled order under -- so a resting order must be shown under it too, or a
        bot (and watch_orders) would see one order under two ids. Known from the confirms this object
        read; otherwise read once from the activity history around the order's creation, and kept."""
        data = entry.get("workingOrderData") or {}
        deal_id = data.get("dealId")
        if not deal_id:
            return None
        known = self._references.get(deal_id)
        if known is not None:
            return known
        created = self.parse_capital_date(data.get("createdDateUTC") or data.get("createdDate"))
        query: dict[str, Any] = {"dealId": deal_id, "detailed": "true"}
        if created is None:
            query["lastPeriod"] = 86_400
        else:  # the creation's line: the history's windows are at most a day, and it may be older than that
            query.update({"from": capital_time(created - 1000), "to": capital_time(created + 60_000)})
        try:
            body = await self._call("GET", "/history/activity", params=query)
        except ccxt.BaseError as error:
            log.info("%s: dealReference of working order %s not found now (%s)", self.id, deal_id, error)
            return None
        lines = [e for e in self.safe_list(body, "activities", []) or []
                 if isinstance(e, dict) and e.get("dealId") == deal_id and e.get("type") == "WORKING_ORDER"]
        created_lines = [e for e in lines if any(a.get("actionType") == "WORKING_ORDER_CREATED"
                                                 for a in (e.get("details") or {}).get("actions") or [])]
        for line in created_lines or lines:
            reference = (line.get("details") or {}).get("dealReference")
            if reference:
                self._remember_reference(deal_id, reference)
                return str(reference)
        return None

    async def _working_orders(self) -> list[dict[str, Any]]:
        body = await self._call("GET", "/workingorders")
        return [w for w in self.safe_list(body, "workingOrders", []) or [] if isinstance(w, dict)]

    async def _positions_raw(self) -> list[dict[str, Any]]:
        body = await self._call("GET", "/positions")
        return [p for p in self.safe_list(body, "positions", []) or [] if isinstance(p, dict)]

    async def _activity_window(self, since: int | None, until: int | None = None) -> list[dict[str, Any]]:
        """Activity entries from ``since`` (default: the last 24 h), one request per day (the API's maximum)."""
        if since is None:
            body = await self._call("GET", "/history/activity", params={"lastPeriod": 86_400, "detailed": "true"})
            return activity.link([e for e in self.safe_list(body, "activities", []) or [] if isinstance(e, dict)])
        now = until or self._now_ms()
        earliest = now - int(self.safe_integer(self.options, "historyDays", 30)) * DAY_MS
        start = max(int(since), earliest)
        out: list[dict[str, Any]] = []
        start = start // 1000 * 1000  # the API takes whole seconds: from rounds down ...
        last = -(-now // 1000) * 1000  # ... and the last window's end rounds up, so nothing is cut off
        while start <= last:
            end = min(start + DAY_MS - 1000, last)
            body = await self._call("GET", "/history/activity", params={
                "from": capital_time(start), "to": capital_time(end + 999), "detailed": "true"})
            out.extend(e for e in self.safe_list(body, "activities", []) or [] if isinstance(e, dict))
            start = end + 1000
        seen: set[tuple[Any, ...]] = set()
        unique = []
        for entry in out:  # a line on a window boundary may come twice
            key = (entry.get("dateUTC"), entry.get("dealId"), entry.get("type"), json.dumps(entry.get("details"),
                                                                                         sort_keys=True))
            if key not in seen:
                seen.add(key)
                unique.append(entry)
        return activity.link(unique)

    async def reconcile_journal(self) -> ReconcileReport:
        """Match the journal with the broker (working orders + the last 24 h of activity) after a restart
        or a reconnect. Unanswered placements are first looked up in the activity history and adopted;
        those still absent after ``options['reconcileGraceMs']`` are marked rejected. Nothing is re-sent."""
        await self.load_markets()
        journal = await self._journal_ready()
        for row in journal.unresolved():
            if row.client_order_id in self._placing or row.deal_reference is not None:
                continue
            reference = await self._find_lost_deal(row)
            if reference is not None:
                journal.attach_ids(row.client_order_id, deal_reference=reference)
                market = self.markets.get(row.symbol)
                if market is not None:
                    await self._settle(row.client_order_id, reference, market, row.type,
                                       bool(row.params.get("reduceOnly")), raise_rejected=False)
        snapshot = await self._broker_snapshot(journal)
        grace = int(self.safe_integer(self.options, "reconcileGraceMs", 60_000))
        report = reconcile(journal, snapshot, grace_ms=grace, in_flight=set(self._placing),
                           match_on=("deal_reference", "deal_id"))
        for item in report.discrepancies:
            log.info("%s reconcile: %s %s %s", self.id, item.kind, item.client_order_id, item.detail)
        return report

    async def _broker_snapshot(self, journal: OrderJournal) -> BrokerSnapshot:
        """The broker's side of reconciliation: working orders, the deals of the last 24 h of activity and
        their fills (each tied to the journaled order that owns its dealReference)."""
        broker_orders: list[BrokerOrder] = []
        for entry in await self._working_orders():
            data = entry.get("workingOrderData") or {}
            broker_orders.append(BrokerOrder(status="open", deal_id=data.get("dealId"),
                                             amount=data.get("orderSize"), price=data.get("orderLevel"),
                                             info=entry))
        entries = await self._activity_window(None)
        groups: dict[str, list[dict[str, Any]]] = {}
        for entry in entries:
            reference = (entry.get("details") or {}).get("dealReference")
            if reference and entry.get("source") not in ("SL", "TP"):
                groups.setdefault(reference, []).append(entry)
        fills: list[BrokerFill] = []
        for reference, group in groups.items():
            order = self.parse_order({"activities": group})
            deal_ids = {e.get("dealId") for e in group if e.get("type") == "WORKING_ORDER"} - {None}
            broker_orders.append(BrokerOrder(status=order["status"], deal_reference=reference,
                                             deal_id=next(iter(deal_ids), None), filled=order["filled"],
                                             remaining=order["remaining"], amount=order["amount"]))
        for entry in entries:
            details = entry.get("details") or {}
            actions = [a.get("actionType") for a in details.get("actions") or [] if isinstance(a, dict)]
            if entry.get("type") == "POSITION" and any(a in FILL_ACTIONS for a in actions):
                trade = self.parse_trade(entry)
                # Tied by dealReference: a closing fill carries the *closed* position's dealId, which
                # belongs to the order that opened it.
                owner = journal.find_by(deal_reference=details.get("dealReference"))
                fills.append(BrokerFill(exec_id=trade["id"], amount=trade["amount"], price=trade["price"],
                                        client_order_id=owner.client_order_id if owner else None,
                                        symbol=trade["symbol"], side=trade["side"], timestamp=trade["timestamp"],
                                        fee_cost=0.0, fee_currency=self._account_currency()))
        return BrokerSnapshot(orders=broker_orders, fills=fills, complete=True)
