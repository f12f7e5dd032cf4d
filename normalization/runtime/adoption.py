"""Tie broker orders that carry none of our ids to the journal orders that caused them.

Why: Capital.com has no client order id field (capital-api.md §4). When the connection drops after
``POST /positions`` left the process, the deal may be booked while its ``dealReference`` never
reached us; the journal then holds a ``sent_unknown`` order with no broker id, and
:func:`~normalization.runtime.reconcile.reconcile` (which matches by ids only) would wrongly resolve
it as "absent after full sync" -- and a bot that re-places it would double its position.

:func:`claim_by_fingerprint` closes that gap before reconciliation: each ``sent_unknown`` journal
order that has no broker id yet claims the broker order with the same fingerprint (symbol, side,
amount, type and price) that no journal order owns. Claiming is deterministic: journal orders in
creation order take the *most recent* unowned candidates, because an order we just sent is the
newest the broker has. The claimed broker orders come back with ``client_order_id`` set, so
``reconcile`` adopts them like any other.

It is a heuristic, used only where the broker gives us nothing better; every claim is reported so
the adapter logs it. IB never needs it: ``orderRef`` carries our clientOrderId.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .journal import SENT_UNKNOWN, JournalOrder, OrderJournal
from .reconcile import BrokerOrder

__all__ = ["Claim", "claim_by_fingerprint", "default_fingerprint"]

Fingerprint = tuple[object, ...]


def _num(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 9)


def default_fingerprint(symbol: str | None, side: str | None, amount: float | None, type_: str | None,
                        price: float | None) -> Fingerprint:
    """(symbol, side, amount, kind, price): market orders ignore the price (it is the fill price)."""
    kind = "market" if (type_ or "market") == "market" else "priced"
    return (symbol, (side or "").lower(), _num(amount), kind, None if kind == "market" else _num(price))


@dataclass(frozen=True)
class Claim:
    """One journal order tied to one broker order by fingerprint."""

    client_order_id: str
    broker: BrokerOrder


def _journal_key(order: JournalOrder) -> Fingerprint:
    return default_fingerprint(order.symbol, order.side, order.amount, order.type, order.price)


def _broker_key(order: BrokerOrder) -> Fingerprint:
    return default_fingerprint(order.symbol, order.side, order.amount, order.type, order.price)


def claim_by_fingerprint(
    journal: OrderJournal,
    broker_orders: Sequence[BrokerOrder],
    *,
    journal_key: Callable[[JournalOrder], Fingerprint] = _journal_key,
    broker_key: Callable[[BrokerOrder], Fingerprint] = _broker_key,
) -> tuple[list[BrokerOrder], list[Claim]]:
    """Return ``(orders, claims)``: ``broker_orders`` with claimed ones carrying our clientOrderId.

    ``broker_orders`` should be in chronological order (oldest first). Only broker orders with no
    clientOrderId and no id the journal already knows are candidates; only ``sent_unknown`` journal
    orders with no broker id claim (a ``pending_send`` order provably never left).
    """
    claimants = [
        o for o in journal.orders(frozenset({SENT_UNKNOWN}))
        if not (o.order_id or o.perm_id or o.deal_reference or o.deal_id)
    ]
    if not claimants:
        return list(broker_orders), []
    free: dict[Fingerprint, list[int]] = {}
    for index, order in enumerate(broker_orders):
        if order.client_order_id and journal.get(order.client_order_id) is not None:
            continue
        if any(journal.find_by(**{name: value}) is not None for name, value in order.ids().items()):
            continue
        free.setdefault(broker_key(order), []).append(index)
    out = list(broker_orders)
    claims: list[Claim] = []
    wanted: dict[Fingerprint, list[JournalOrder]] = {}
    for order in claimants:  # oldest first (journal.orders sorts by creation)
        wanted.setdefault(journal_key(order), []).append(order)
    for key, orders in wanted.items():
        candidates = free.get(key, [])
        chosen = candidates[-len(orders):] if candidates else []  # the newest candidates
        for jo, index in zip(orders[-len(chosen):] if chosen else [], chosen, strict=True):
            out[index] = dataclasses.replace(out[index], client_order_id=jo.client_order_id)
            claims.append(Claim(jo.client_order_id, out[index]))
    return out, claims
