"""What the fault matrix needs from each broker: an exchange on the simulator, and the broker's truth.

The "truth" is read from the simulator's own books (not through the adapter), converted into the
broker-agnostic :class:`~normalization.runtime.reconcile.BrokerOrder` / ``BrokerFill`` that
:func:`~normalization.runtime.invariants.check_invariants` compares with the journal.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from pathlib import Path
from typing import Any

import ccxt

from ccxt_capital.sim import CapitalSimulator
from ccxt_ibkr.sim import IBSimulator
from ccxt_ibkr.sim.testing import eventually  # noqa: F401 - re-exported for the fault tests
from normalization.runtime.invariants import InvariantReport, check_invariants
from normalization.runtime.journal import OrderJournal
from normalization.runtime.reconcile import BrokerFill, BrokerOrder
from normalization.statuses import CCXT_STATUSES

IB_ACCOUNT = "DU1234567"
IB_STATUS = {
    "Filled": "closed",
    "Cancelled": "canceled",
    "ApiCancelled": "canceled",
    "Inactive": "rejected",
}
#: Fast, seeded reconnects so a scenario waits milliseconds, the same ones every run.
RECONNECT = {"initialDelay": 0.02, "factor": 2.0, "maxDelay": 0.2, "jitter": 0.0, "seed": 7}


# ------------------------------------------------------------------------------------------ IB


def ib_options(sim: IBSimulator, journal: Path, client_id: int = 7, **extra: Any) -> dict[str, Any]:
    """The ``options`` a bot would pass, pointed at the simulator, with tight timeouts."""
    options: dict[str, Any] = {
        "host": sim.host,
        "port": sim.port,
        "clientId": client_id,
        "journal": str(journal),
        "symbols": ["AAPL/USD", "MSFT/USD"],
        "connectTimeout": 5.0,
        "requestTimeout": 5.0,
        "orderTimeout": 3.0,
        "commissionWait": 2.0,
        "marketOrderWait": 0.2,
        "reconnect": dict(RECONNECT),
        "reconcileGraceMs": 0,
    }
    options.update(extra)
    return options


def ib_truth(sim: IBSimulator) -> tuple[list[BrokerOrder], list[BrokerFill]]:
    """Every order and execution the fake TWS holds, as the broker would report them."""
    orders = [
        BrokerOrder(
            status=IB_STATUS.get(o.status, "open"),
            client_order_id=o.req.order_ref or None,
            order_id=o.req.order_id,
            perm_id=o.perm_id,
            symbol=o.inst.symbol,
            amount=o.req.total_qty,
            filled=o.filled,
        )
        for o in sim.orders()
    ]
    fills = [
        BrokerFill(
            exec_id=e.exec_id,
            amount=e.shares,
            price=e.price,
            client_order_id=e.order.req.order_ref or None,
            perm_id=e.order.perm_id,
            fee_cost=e.commission,
            fee_currency=e.order.inst.currency,
        )
        for e in sim.executions()
    ]
    return orders, fills


def ib_orders_with_ref(sim: IBSimulator, client_order_id: str) -> list[Any]:
    return [o for o in sim.orders() if o.req.order_ref == client_order_id]


# ------------------------------------------------------------------------------------ Capital

CAPITAL_FILL_ACTIONS = ("POSITION_OPENED", "POSITION_CLOSED", "POSITION_PARTIALLY_CLOSED")


def capital_config(sim: CapitalSimulator, journal: Path, **extra: Any) -> dict[str, Any]:
    options: dict[str, Any] = {
        "baseUrl": sim.base_url,
        "journal": str(journal),
        "symbols": ["AAPL/USD", "EUR/USD"],
        "clock": sim.clock.now,
        "confirmTimeout": 2.0,
        "reconcileGraceMs": 0,
        "reconnect": dict(RECONNECT),
    }
    options.update(extra)
    return {"apiKey": sim.api_key, "login": sim.identifier, "password": sim.password, "timeout": 5000,
            "options": options}


def _activities(sim: CapitalSimulator) -> list[Any]:
    # No public accessor for the activity log yet (see the report); read it under the books' lock.
    with sim.broker.lock:
        return list(sim.broker.dealer.activities)


def capital_placements(sim: CapitalSimulator) -> dict[str, list[Any]]:
    """dealReference -> activity entries, for every deal a client *placed* (market deals and working
    orders; ``p_`` references are closes and amends of existing positions)."""
    out: dict[str, list[Any]] = {}
    for activity in _activities(sim):
        reference = (activity.details or {}).get("dealReference")
        if activity.source != "USER" or not reference or not str(reference).startswith("o_"):
            continue
        if activity.status != "ACCEPTED":
            continue
        out.setdefault(str(reference), []).append(activity)
    return out


def capital_truth(sim: CapitalSimulator, journal: OrderJournal) -> tuple[list[BrokerOrder], list[BrokerFill]]:
    """The simulator's deals as broker orders (tied to journal orders by dealReference) and fills.

    A deal no journal order owns keeps ``client_order_id`` None; :func:`capital_unowned` lists them.
    Capital is spread-only: every fill's fee is 0 in the account currency, and the journal must say so.
    """
    with sim.broker.lock:
        working = {o.deal_reference for o in sim.broker.dealer.orders.values()}
    orders: list[BrokerOrder] = []
    fills: list[BrokerFill] = []
    for reference, entries in capital_placements(sim).items():
        owner = journal.find_by(deal_reference=reference)
        actions = [a.get("actionType") for e in entries for a in (e.details or {}).get("actions") or []]
        position_fills = [
            e for e in entries
            if e.type == "POSITION" and any(a.get("actionType") in CAPITAL_FILL_ACTIONS
                                            for a in (e.details or {}).get("actions") or [])
        ]
        filled = sum(float(e.details.get("size") or 0) for e in position_fills)
        if reference in working:
            status = "open"
        elif "WORKING_ORDER_DELETED" in actions and not position_fills:
            status = "canceled"
        else:
            status = "closed"
        orders.append(BrokerOrder(status=status, client_order_id=owner.client_order_id if owner else None,
                                  deal_reference=reference, filled=filled))
        for e in position_fills:
            fills.append(BrokerFill(exec_id=f"{reference}:{e.deal_id}", amount=float(e.details["size"]),
                                    price=float(e.details["level"]), deal_id=e.deal_id,
                                    client_order_id=owner.client_order_id if owner else None, fee_cost=0.0))
    return orders, fills


def capital_unowned(sim: CapitalSimulator, journal: OrderJournal) -> list[str]:
    """Deals at the broker that no journal order owns: an untracked (possibly duplicate) placement."""
    return [ref for ref in capital_placements(sim) if journal.find_by(deal_reference=ref) is None]


# ---------------------------------------------------------------------------------- assertions


def assert_invariants(
    tally: Any,
    broker: str,
    scenario: str,
    journal: OrderJournal,
    orders: list[BrokerOrder],
    fills: list[BrokerFill],
    *,
    client_order_ids: Iterable[str] | None = None,
    extra_duplicates: int = 0,
) -> InvariantReport:
    """Check the four invariants, record the scenario in the tally, and fail loudly on a violation."""
    report = check_invariants(journal, orders, fills, client_order_ids=client_order_ids)
    tally.record(broker, scenario, duplicates=report.duplicate_orders + extra_duplicates,
                 lost_fills=len(report.lost_fills), fills=report.checked_fills, orders=report.checked_orders)
    report.assert_ok(f"{broker} {scenario}")
    assert extra_duplicates == 0, f"{broker} {scenario}: {extra_duplicates} untracked deal(s) at the broker"
    return report



async def outcome(call: Awaitable[Any]) -> Any:
    """The order a call returned, or the ccxt exception it raised (anything else fails the test)."""
    try:
        return await call
    except ccxt.BaseError as error:
        return error


def assert_bot_saw_a_correct_order_or_an_exception(result: Any, cid: str, truth_status: str | None) -> None:
    if isinstance(result, ccxt.BaseError):
        return
    assert isinstance(result, dict), result
    assert result["clientOrderId"] == cid and result["status"] in CCXT_STATUSES
    if result["status"] != "open":
        # A terminal status must be the truth; "open" is the honest answer while the outcome is unknown.
        assert result["status"] == truth_status, (result["status"], truth_status)
