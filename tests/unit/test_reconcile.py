"""Reconciliation: adopt what the broker has, resolve what it lacks, record each fill once."""

from __future__ import annotations

import ccxt
import pytest

from normalization.runtime.journal import NullJournal, OrderJournal
from normalization.runtime.reconcile import (
    ABSENT_AFTER_SYNC,
    NEVER_SENT,
    BrokerFill,
    BrokerOrder,
    BrokerSnapshot,
    SnapshotIncomplete,
    reconcile,
)


class Clock:
    def __init__(self) -> None:
        self.ms = 1_000_000

    def __call__(self) -> int:
        return self.ms


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def journal(clock: Clock) -> OrderJournal:
    return NullJournal(exchange="ibkr", account="DU1", now_ms=clock)


def place(j: OrderJournal, cid: str, *, sent: bool = True, **ids) -> None:
    j.record_intent(cid, symbol="AAPL/USD", side="buy", type="limit", amount=10, price=100)
    if sent:
        j.mark_sent(cid)
    if ids:
        j.attach_ids(cid, **ids)


def test_refuses_incomplete_snapshot(journal: OrderJournal) -> None:
    place(journal, "a")
    with pytest.raises(SnapshotIncomplete) as info:
        reconcile(journal, BrokerSnapshot(orders=[], complete=False))
    assert isinstance(info.value, ccxt.ExchangeNotAvailable)
    assert journal.get("a").state == "sent_unknown"  # untouched


def test_unknown_outcome_found_at_broker_is_adopted_with_true_state(journal: OrderJournal) -> None:
    place(journal, "a")
    snap = BrokerSnapshot(
        orders=[BrokerOrder("open", client_order_id="a", order_id=5, perm_id=99, filled=3, remaining=7)],
        fills=[BrokerFill("e1", 3, 100.0, perm_id=99, fee_cost=1.0, fee_currency="USD")],
        complete=True,
    )
    report = reconcile(journal, snap)
    order = journal.get("a")
    assert report.adopted == ["a"] and report.resolved == []
    assert (order.state, order.perm_id, order.order_id, order.filled, order.remaining) == (
        "open",
        "99",
        "5",
        3,
        7,
    )
    assert report.new_fills == ["e1"]
    assert journal.fills("a")[0].fee_cost == 1.0  # matched to the order through permId
    # a second reconciliation changes nothing and records no fill twice
    again = reconcile(journal, snap)
    assert not again.changed and len(journal.fills()) == 1


def test_absent_orders_are_resolved_never_resent(journal: OrderJournal) -> None:
    place(journal, "never", sent=False)
    place(journal, "lost")
    report = reconcile(journal, BrokerSnapshot(complete=True))
    assert sorted(report.resolved) == [("lost", ABSENT_AFTER_SYNC), ("never", NEVER_SENT)]
    assert journal.get("never").state == "rejected" and journal.get("never").reason == NEVER_SENT
    assert journal.get("lost").reason == ABSENT_AFTER_SYNC
    assert journal.unresolved() == []
    # the original sender, late, learns it must not send now
    assert journal.mark_sent("never") is False


def test_in_flight_and_recent_orders_are_left_for_later(journal: OrderJournal, clock: Clock) -> None:
    place(journal, "mine")
    clock.ms += 10_000
    place(journal, "other-process")
    report = reconcile(journal, BrokerSnapshot(complete=True), in_flight={"mine"}, grace_ms=5_000)
    assert sorted(report.still_unresolved) == ["mine", "other-process"]
    assert report.resolved == []
    clock.ms += 6_000
    report = reconcile(journal, BrokerSnapshot(complete=True), in_flight={"mine"}, grace_ms=5_000)
    assert report.resolved == [("other-process", ABSENT_AFTER_SYNC)]


def test_match_by_broker_ids_when_client_id_missing(journal: OrderJournal) -> None:
    place(journal, "cap", deal_reference="o_ref1")
    place(journal, "ib", perm_id=42)
    snap = BrokerSnapshot(
        orders=[
            BrokerOrder("closed", deal_reference="o_ref1", deal_id="D1", filled=10, remaining=0),
            BrokerOrder("canceled", perm_id=42),
        ],
        fills=[BrokerFill("deal-fill", 10, 101.0, deal_id="D1")],
        complete=True,
    )
    report = reconcile(journal, snap)
    assert sorted(report.adopted) == ["cap", "ib"]
    assert journal.get("cap").state == "closed" and journal.get("cap").deal_id == "D1"
    assert journal.get("ib").state == "canceled"
    assert journal.fills("cap")[0].exec_id == "deal-fill"


def test_open_then_completed_listing_ends_terminal(journal: OrderJournal) -> None:
    place(journal, "a")
    snap = BrokerSnapshot(
        orders=[BrokerOrder("closed", client_order_id="a"), BrokerOrder("open", client_order_id="a")],
        complete=True,
    )
    reconcile(journal, snap)
    assert journal.get("a").state == "closed"


def test_discrepancies_are_reported_broker_wins(journal: OrderJournal) -> None:
    place(journal, "was-rejected")
    reconcile(journal, BrokerSnapshot(complete=True))  # resolved as absent
    place(journal, "live")
    journal.update_status("live", "open")
    snap = BrokerSnapshot(
        orders=[
            BrokerOrder("open", client_order_id="was-rejected", perm_id=1),  # appeared after all
            BrokerOrder("open", client_order_id="stranger", perm_id=2),
        ],
        fills=[BrokerFill("orphan", 1, 1.0, order_id=999)],
        complete=True,
    )
    report = reconcile(journal, snap)
    kinds = sorted(d.kind for d in report.discrepancies)
    assert kinds == ["missing_at_broker", "state_conflict", "unknown_at_journal", "unmatched_fill"]
    assert journal.get("was-rejected").state == "open" and report.updated == ["was-rejected"]
    assert journal.get("live").state == "open"  # absence of a live order proves nothing: not touched
    assert journal.get("stranger") is None
    assert journal.get_fill("orphan").client_order_id is None  # recorded anyway, exactly once


def test_adopt_unknown_imports_our_prefixed_orders(journal: OrderJournal) -> None:
    snap = BrokerSnapshot(
        orders=[
            BrokerOrder(
                "open",
                client_order_id="ccxt-1",
                perm_id=7,
                symbol="AAPL/USD",
                side="sell",
                type="limit",
                amount=5,
                price=200,
                filled=0,
                remaining=5,
            ),
            BrokerOrder("open", client_order_id="manual", perm_id=8),
        ],
        fills=[BrokerFill("f", 1, 200.0, perm_id=7)],
        complete=True,
    )
    report = reconcile(journal, snap, adopt_unknown=lambda o: o.client_order_id.startswith("ccxt-"))
    assert report.imported == ["ccxt-1"]
    order = journal.get("ccxt-1")
    assert (order.state, order.perm_id, order.side, order.amount) == ("open", "7", "sell", 5)
    assert journal.get("manual") is None
    assert journal.fills("ccxt-1")[0].exec_id == "f"


def test_late_fee_and_late_link_from_a_later_snapshot(journal: OrderJournal) -> None:
    place(journal, "a", perm_id=3)
    reconcile(journal, BrokerSnapshot(fills=[BrokerFill("e", 1, 1.0, order_id=77)], complete=True))
    assert journal.get_fill("e").client_order_id is None
    snap = BrokerSnapshot(
        orders=[BrokerOrder("closed", client_order_id="a", perm_id=3, order_id=77)],
        fills=[BrokerFill("e", 1, 1.0, order_id=77, fee_cost=0.25, fee_currency="USD")],
        complete=True,
    )
    report = reconcile(journal, snap)
    assert report.new_fills == []
    fill = journal.get_fill("e")
    assert (fill.client_order_id, fill.fee_cost) == ("a", 0.25)


def test_bad_broker_status_is_refused(journal: OrderJournal) -> None:
    with pytest.raises(ValueError):
        reconcile(journal, BrokerSnapshot(orders=[BrokerOrder("Filled", client_order_id="x")], complete=True))


def test_match_on_can_exclude_session_scoped_order_ids(journal: OrderJournal) -> None:
    place(journal, "old-session", order_id=5)
    snap = BrokerSnapshot(orders=[BrokerOrder("open", order_id=5)], complete=True)
    report = reconcile(journal, snap, match_on=("perm_id",))
    assert report.adopted == [] and report.discrepancies[0].kind == "unknown_at_journal"
    assert report.resolved == [("old-session", ABSENT_AFTER_SYNC)]
