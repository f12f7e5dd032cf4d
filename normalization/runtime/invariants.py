"""Execution invariants: what must hold between the order journal and the broker after any fault.

Why a module and not test helpers: the same four checks are asserted by every scenario of the fault
matrix (both brokers, every fault), by the process-death test, and are worth running in production
as a self-check after reconciliation. Keeping them in one place keeps the definition of "we can be
trusted" from drifting between tests:

1. **No duplicate at the broker**: at most one broker order per clientOrderId.
2. **Every fill exactly once, with its fee**: each broker execution is in the journal once (the
   journal's primary key makes "twice" impossible, so the check is "not lost", "not invented",
   "tied to the right order"), carrying a fee once the broker has reported one.
3. **Journal and broker agree**: each journaled order the broker knows has the broker's status and
   filled amount; an order the journal resolved as "absent after full sync" is really absent.
4. **Nothing left unresolved**: after reconciliation no order is still ``pending_send`` /
   ``sent_unknown``.

Inputs are broker-agnostic: the caller converts the broker's (or a simulator's) view into
:class:`~normalization.runtime.reconcile.BrokerOrder` / :class:`~normalization.runtime.reconcile.BrokerFill`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .journal import TERMINAL_STATES, OrderJournal
from .reconcile import ABSENT_AFTER_SYNC, NEVER_SENT, BrokerFill, BrokerOrder

__all__ = ["InvariantReport", "check_invariants", "duplicate_client_ids"]

_TOLERANCE = 1e-9


def duplicate_client_ids(client_order_ids: Iterable[str | None]) -> dict[str, int]:
    """clientOrderIds that occur more than once (ignoring orders without one), with their count."""
    counts = Counter(cid for cid in client_order_ids if cid)
    return {cid: n for cid, n in sorted(counts.items()) if n > 1}


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return True  # unknown on one side is not a disagreement
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=_TOLERANCE)


@dataclass
class InvariantReport:
    """Every violation found; empty lists mean the invariant holds."""

    duplicates: dict[str, int] = field(default_factory=dict)  # clientOrderId -> broker orders
    lost_fills: list[str] = field(default_factory=list)  # broker exec ids missing from the journal
    invented_fills: list[str] = field(default_factory=list)  # journal exec ids the broker never reported
    misattributed_fills: list[str] = field(default_factory=list)  # tied to another order than the broker's
    fill_mismatches: list[str] = field(default_factory=list)  # amount / price differ
    missing_fees: list[str] = field(default_factory=list)  # broker reported a fee, journal has none
    fee_mismatches: list[str] = field(default_factory=list)
    state_mismatches: list[str] = field(default_factory=list)  # "cid: journal X, broker Y"
    absent_but_present: list[str] = field(default_factory=list)  # resolved as absent, but the broker has it
    unresolved: list[str] = field(default_factory=list)  # still pending_send / sent_unknown
    checked_orders: int = 0
    checked_fills: int = 0

    @property
    def duplicate_orders(self) -> int:
        """How many extra broker orders exist (0 when every clientOrderId is placed at most once)."""
        return sum(n - 1 for n in self.duplicates.values())

    @property
    def ok(self) -> bool:
        return not self.violations()

    def violations(self) -> list[str]:
        out: list[str] = []
        for name in (
            "duplicates",
            "lost_fills",
            "invented_fills",
            "misattributed_fills",
            "fill_mismatches",
            "missing_fees",
            "fee_mismatches",
            "state_mismatches",
            "absent_but_present",
            "unresolved",
        ):
            value = getattr(self, name)
            if value:
                out.append(f"{name}: {value}")
        return out

    def assert_ok(self, context: str = "") -> None:
        """Raise ``AssertionError`` listing every violation (readable in a pytest failure)."""
        problems = self.violations()
        if problems:
            where = f" ({context})" if context else ""
            raise AssertionError(f"execution invariants violated{where}:\n  " + "\n  ".join(problems))


def check_invariants(
    journal: OrderJournal,
    broker_orders: Sequence[BrokerOrder],
    broker_fills: Sequence[BrokerFill],
    *,
    fees_required: bool = True,
    allow_unresolved: bool = False,
    client_order_ids: Iterable[str] | None = None,
) -> InvariantReport:
    """Compare ``journal`` with the broker's complete view; returns every violation.

    ``broker_orders`` must list every order the broker has for the account (open and completed),
    each with its clientOrderId when the broker carries one (IB ``orderRef``) or with the ids the
    journal stores (Capital ``deal_reference`` / ``deal_id``). ``broker_fills`` must carry
    ``client_order_id`` (or ids) so ownership can be checked. ``fees_required``: a broker fill
    reporting a fee must have it in the journal. ``client_order_ids`` limits the journal side to
    these orders (a test's own), the broker side is always checked for duplicates.
    """
    report = InvariantReport()
    report.duplicates = duplicate_client_ids(o.client_order_id for o in broker_orders)

    scope = None if client_order_ids is None else set(client_order_ids)
    journal_orders = [o for o in journal.orders() if scope is None or o.client_order_id in scope]
    report.checked_orders = len(journal_orders)

    def owner(order: BrokerOrder) -> str | None:
        if order.client_order_id and journal.get(order.client_order_id) is not None:
            return order.client_order_id
        for name, value in order.ids().items():
            found = journal.find_by(**{name: value})
            if found is not None:
                return found.client_order_id
        return None

    by_cid: dict[str, list[BrokerOrder]] = {}
    for order in broker_orders:
        cid = owner(order)
        if cid is not None:
            by_cid.setdefault(cid, []).append(order)

    for jo in journal_orders:
        cid = jo.client_order_id
        if jo.unresolved and not allow_unresolved:
            report.unresolved.append(cid)
        matches = by_cid.get(cid, [])
        if not matches:
            continue
        # IB lists an order both open and completed across calls; the terminal one is the truth.
        broker = sorted(matches, key=lambda o: o.status in TERMINAL_STATES)[-1]
        if jo.state == "rejected" and jo.reason in (ABSENT_AFTER_SYNC, NEVER_SENT):
            report.absent_but_present.append(f"{cid}: journal says {jo.reason!r}, broker has it {broker.status}")
            continue
        if jo.unresolved:
            continue
        if jo.ccxt_status != broker.status:
            report.state_mismatches.append(f"{cid}: journal {jo.state}, broker {broker.status}")
        elif not _close(jo.filled, broker.filled):
            report.state_mismatches.append(f"{cid}: journal filled {jo.filled}, broker filled {broker.filled}")

    journal_fills = {f.exec_id: f for f in journal.fills()}
    broker_exec_ids: set[str] = set()
    for bf in broker_fills:
        broker_exec_ids.add(bf.exec_id)
        expected_owner = None
        if bf.client_order_id and journal.get(bf.client_order_id) is not None:
            expected_owner = bf.client_order_id
        else:
            for name in ("perm_id", "deal_id", "order_id"):
                value = getattr(bf, name)
                if value is not None and (found := journal.find_by(**{name: value})) is not None:
                    expected_owner = found.client_order_id
                    break
        if scope is not None and expected_owner not in scope:
            continue
        report.checked_fills += 1
        jf = journal_fills.get(bf.exec_id)
        if jf is None:
            report.lost_fills.append(bf.exec_id)
            continue
        if expected_owner is not None and jf.client_order_id != expected_owner:
            report.misattributed_fills.append(f"{bf.exec_id}: journal {jf.client_order_id}, broker {expected_owner}")
        if not (_close(jf.amount, bf.amount) and _close(jf.price, bf.price)):
            report.fill_mismatches.append(
                f"{bf.exec_id}: journal {jf.amount}@{jf.price}, broker {bf.amount}@{bf.price}"
            )
        if fees_required and bf.fee_cost is not None:
            if jf.fee_cost is None:
                report.missing_fees.append(bf.exec_id)
            elif not _close(jf.fee_cost, bf.fee_cost):
                report.fee_mismatches.append(f"{bf.exec_id}: journal {jf.fee_cost}, broker {bf.fee_cost}")

    for exec_id, jf in journal_fills.items():
        if exec_id in broker_exec_ids:
            continue
        if scope is not None and jf.client_order_id not in scope:
            continue
        report.invented_fills.append(exec_id)

    # The journal's per-order fill total must equal what the broker says was filled.
    for cid, matches in by_cid.items():
        if scope is not None and cid not in scope:
            continue
        broker = sorted(matches, key=lambda o: o.status in TERMINAL_STATES)[-1]
        if broker.filled is None:
            continue
        total = sum(f.amount for f in journal.fills(cid))
        if not _close(total, broker.filled):
            report.fill_mismatches.append(f"{cid}: journal fills total {total}, broker filled {broker.filled}")
    return report

