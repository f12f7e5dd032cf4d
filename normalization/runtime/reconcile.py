"""Reconcile the order journal with the broker's own view, on every connect and reconnect.

Why: after a crash or a dropped connection the journal may hold orders whose placement outcome is
unknown (``pending_send`` / ``sent_unknown``), orders that filled or were cancelled while we were away,
and fills we never saw. The broker is the source of truth for what exists; the journal is the source
of truth for what *we* asked for. This module matches the two -- by clientOrderId (IB ``orderRef``),
then IB ``permId``, Capital ``dealReference`` / ``dealId``, then the broker order id -- and never sends
anything: an order is never re-sent blindly.

Decisions, per journal order:

* found at the broker -> adopted with the broker's state, ids, filled and remaining;
* ``pending_send`` and not found -> ``rejected``, reason "never sent" (nothing left the process);
* ``sent_unknown`` and not found -> ``rejected``, reason "absent at broker after full sync";
* open in the journal but not found -> left alone and reported as a discrepancy (the broker's
  completed-orders list is not complete history, so absence proves nothing about a live order).

The adapters build a :class:`BrokerSnapshot` from the broker (IB: ``openOrders`` +
``reqCompletedOrders`` + ``reqExecutions`` after the startup sync; Capital: working orders, positions,
confirms and activity history) and call :func:`reconcile`. It refuses an incomplete snapshot:
reconciling while disconnected would invent discrepancies.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import ccxt

from .journal import (
    ABSENT_AFTER_SYNC,
    BROKER_ID_FIELDS,
    NEVER_SENT,
    PENDING_SEND,
    SENT_UNKNOWN,
    STATES,
    TERMINAL_STATES,
    JournalOrder,
    OrderJournal,
)

__all__ = [
    "ABSENT_AFTER_SYNC",
    "NEVER_SENT",
    "BrokerFill",
    "BrokerOrder",
    "BrokerSnapshot",
    "Discrepancy",
    "ReconcileReport",
    "SnapshotIncomplete",
    "MATCH_ORDER",
    "reconcile",
]

# Matching order: clientOrderId is ours and unique; permId / dealReference / dealId are stable broker
# ids; the broker order id last, because IB order ids repeat across client sessions.
MATCH_ORDER = ("perm_id", "deal_reference", "deal_id", "order_id")


class SnapshotIncomplete(ccxt.ExchangeNotAvailable):
    """Raised when asked to reconcile against a snapshot the broker has not finished sending."""


@dataclass(frozen=True)
class BrokerOrder:
    """An order as the broker reports it (open or completed), already in ccxt terms.

    ``status`` is a ccxt status (``open``/``closed``/``canceled``/``rejected``/``expired``).
    ``client_order_id`` is IB's ``orderRef`` or our reference on the Capital deal, when present.
    """

    status: str
    client_order_id: str | None = None
    order_id: Any = None
    perm_id: Any = None
    deal_reference: Any = None
    deal_id: Any = None
    symbol: str | None = None
    side: str | None = None
    type: str | None = None
    amount: float | None = None
    price: float | None = None
    trigger_price: float | None = None
    filled: float | None = None
    remaining: float | None = None
    info: Any = None

    def ids(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in BROKER_ID_FIELDS if getattr(self, k) is not None}


@dataclass(frozen=True)
class BrokerFill:
    """An execution as the broker reports it; ``exec_id`` is its unique key."""

    exec_id: str
    amount: float
    price: float
    client_order_id: str | None = None
    order_id: Any = None
    perm_id: Any = None
    deal_id: Any = None
    symbol: str | None = None
    side: str | None = None
    timestamp: int | None = None
    fee_cost: float | None = None
    fee_currency: str | None = None
    info: Any = None


@dataclass(frozen=True)
class BrokerSnapshot:
    """Everything the broker knows about this account's orders and executions.

    ``complete`` must be True only once the broker's full startup sync has arrived (IB: after
    ``openOrderEnd``, ``completedOrdersEnd`` and ``execDetailsEnd`` on a live connection).
    """

    orders: Sequence[BrokerOrder] = ()
    fills: Sequence[BrokerFill] = ()
    complete: bool = False


@dataclass(frozen=True)
class Discrepancy:
    """Something the journal and the broker disagree on; reported, and logged by the adapter."""

    kind: str  # "state_conflict" | "missing_at_broker" | "unknown_at_journal" | "unmatched_fill" | ...
    client_order_id: str | None
    detail: str


@dataclass
class ReconcileReport:
    """What one reconciliation changed. Lists hold clientOrderIds (or exec ids for fills)."""

    adopted: list[str] = field(default_factory=list)  # unresolved orders found at the broker
    updated: list[str] = field(default_factory=list)  # known orders whose state/ids changed
    resolved: list[tuple[str, str]] = field(default_factory=list)  # (clientOrderId, reason) -> rejected
    imported: list[str] = field(default_factory=list)  # broker orders new to the journal, adopted
    still_unresolved: list[str] = field(default_factory=list)  # skipped (in flight / too recent)
    new_fills: list[str] = field(default_factory=list)
    discrepancies: list[Discrepancy] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.adopted or self.updated or self.resolved or self.imported or self.new_fills)


def _match(journal: OrderJournal, order: BrokerOrder, match_on: Sequence[str]) -> JournalOrder | None:
    if order.client_order_id:
        found = journal.get(order.client_order_id)
        if found is not None:
            return found
    for name in match_on:
        value = getattr(order, name)
        if value is not None:
            found = journal.find_by(**{name: value})
            if found is not None:
                return found
    return None


def reconcile(
    journal: OrderJournal,
    snapshot: BrokerSnapshot,
    *,
    in_flight: Collection[str] = (),
    grace_ms: int = 0,
    now_ms: int | None = None,
    adopt_unknown: Callable[[BrokerOrder], bool] | None = None,
    match_on: Sequence[str] = MATCH_ORDER,
) -> ReconcileReport:
    """Bring ``journal`` in line with ``snapshot``; returns what changed. Sends nothing.

    ``in_flight``: clientOrderIds this process is placing right now; never resolved as absent (their
    send may simply not have reached the broker's snapshot yet). ``grace_ms``: unresolved orders
    updated less than this long ago are left for the next reconciliation, which protects other
    processes sharing the journal file (the ``pending_send`` case is already safe without it:
    :meth:`OrderJournal.mark_sent` is a compare-and-set). ``adopt_unknown``: broker orders absent
    from the journal (e.g. placed by an earlier run with the journal off) for which this returns True
    (say, clientOrderId carries our prefix) are written into the journal; others are only reported.
    ``match_on``: broker ids tried, in order, after the clientOrderId; the IB adapter may drop
    ``"order_id"`` when its orders always carry ``orderRef`` (IB order ids repeat across sessions).
    """
    if not snapshot.complete:
        raise SnapshotIncomplete(
            "refusing to reconcile the order journal before the broker's full order/execution sync; "
            "reconciling while disconnected would invent discrepancies"
        )
    report = ReconcileReport()
    now = journal.now_ms() if now_ms is None else now_ms
    in_flight = set(in_flight)
    seen: set[str] = set()
    # Broker order id / permId / dealId -> clientOrderId, so fills without a clientOrderId can be tied.
    by_broker_id: dict[tuple[str, str], str] = {}

    # An order listed twice (IB: open, then completed) must end in its terminal state.
    ordered = sorted(snapshot.orders, key=lambda o: o.status in TERMINAL_STATES)
    for order in ordered:
        if order.status not in STATES:
            raise ValueError(f"broker order status must be a ccxt status, got {order.status!r}")
        found = _match(journal, order, match_on)
        if found is None:
            cid = order.client_order_id
            if cid and adopt_unknown is not None and adopt_unknown(order):
                journal.record_intent(
                    cid,
                    symbol=order.symbol or "",
                    side=order.side or "",
                    type=order.type or "",
                    amount=order.amount or 0.0,
                    price=order.price,
                    trigger_price=order.trigger_price,
                    state=order.status,
                )
                journal.attach_ids(cid, **order.ids())
                journal.update_status(
                    cid, order.status, order.info, filled=order.filled, remaining=order.remaining, force=True
                )
                report.imported.append(cid)
                found = journal.get(cid)
            else:
                report.discrepancies.append(
                    Discrepancy("unknown_at_journal", cid, f"broker order {order.ids()} is not in the journal")
                )
                continue
        assert found is not None
        cid = found.client_order_id
        seen.add(cid)
        for name, value in order.ids().items():
            by_broker_id[(name, str(value))] = cid
        if cid in report.imported:
            continue
        ids_before = {k: getattr(found, k) for k in BROKER_ID_FIELDS}
        after_ids = journal.attach_ids(cid, **order.ids())
        ids_changed = ids_before != {k: getattr(after_ids, k) for k in BROKER_ID_FIELDS}
        if found.unresolved:
            if found.state == PENDING_SEND:
                report.discrepancies.append(
                    Discrepancy("state_conflict", cid, "order marked never sent was found at the broker")
                )
            journal.update_status(
                cid, order.status, order.info, filled=order.filled, remaining=order.remaining, force=True
            )
            report.adopted.append(cid)
            continue
        if found.is_terminal and order.status != found.state:
            report.discrepancies.append(
                Discrepancy(
                    "state_conflict",
                    cid,
                    f"journal said {found.state!r} ({found.reason or 'no reason'}), broker says "
                    f"{order.status!r}; broker wins",
                )
            )
        changed = journal.update_status(
            cid, order.status, order.info, filled=order.filled, remaining=order.remaining, force=True
        )
        if changed or ids_changed or (order.filled is not None and order.filled != found.filled):
            report.updated.append(cid)

    for order in journal.unresolved():
        cid = order.client_order_id
        if cid in seen:
            continue
        if cid in in_flight or now - order.updated < grace_ms:
            report.still_unresolved.append(cid)
            continue
        reason = NEVER_SENT if order.state == PENDING_SEND else ABSENT_AFTER_SYNC
        assert order.state in (PENDING_SEND, SENT_UNKNOWN)
        if journal.update_status(cid, "rejected", reason=reason):
            report.resolved.append((cid, reason))

    for order in journal.open_orders():
        if order.client_order_id not in seen:
            report.discrepancies.append(
                Discrepancy(
                    "missing_at_broker",
                    order.client_order_id,
                    "journal has it open; the broker's open and completed orders do not list it",
                )
            )

    for fill in snapshot.fills:
        cid = _fill_owner(journal, fill, by_broker_id)
        if cid is None:
            report.discrepancies.append(
                Discrepancy("unmatched_fill", None, f"execution {fill.exec_id} matches no journaled order")
            )
        new = journal.record_fill(
            fill.exec_id,
            amount=fill.amount,
            price=fill.price,
            client_order_id=cid,
            order_id=fill.order_id if fill.order_id is not None else fill.deal_id,
            symbol=fill.symbol,
            side=fill.side,
            timestamp=fill.timestamp,
            fee_cost=fill.fee_cost,
            fee_currency=fill.fee_currency,
            info=fill.info,
        )
        if new:
            report.new_fills.append(fill.exec_id)
        else:
            if cid is not None:
                journal.link_fill(fill.exec_id, cid)
            if fill.fee_cost is not None:
                existing = journal.get_fill(fill.exec_id)
                if existing is not None and existing.fee_cost is None:
                    journal.record_fee(fill.exec_id, fill.fee_cost, fill.fee_currency)
    return report


def _fill_owner(journal: OrderJournal, fill: BrokerFill, by_broker_id: dict[tuple[str, str], str]) -> str | None:
    if fill.client_order_id and journal.get(fill.client_order_id) is not None:
        return fill.client_order_id
    for name in ("perm_id", "deal_id", "order_id"):
        value = getattr(fill, name)
        if value is None:
            continue
        cid = by_broker_id.get((name, str(value)))
        if cid is not None:
            return cid
        found = journal.find_by(**{name: value})
        if found is not None:
            return found.client_order_id
    return None
