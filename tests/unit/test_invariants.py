"""The execution invariants every fault scenario asserts.

Each invariant is shown to *fail* on a crafted violation, so a green fault matrix means something.
"""

from __future__ import annotations

import pytest

from normalization.runtime.invariants import check_invariants, duplicate_client_ids
from normalization.runtime.journal import OrderJournal
from normalization.runtime.reconcile import ABSENT_AFTER_SYNC, BrokerFill, BrokerOrder


@pytest.fixture
def journal() -> OrderJournal:
    return OrderJournal(":memory:", exchange="test", account="A1")


def placed(journal: OrderJournal, cid: str, *, amount: float = 10, state: str = "open", filled: float = 0) -> None:
    journal.record_intent(cid, symbol="AAPL/USD", side="buy", type="limit", amount=amount, price=100.0)
    journal.mark_sent(cid)
    journal.attach_ids(cid, order_id=cid[-1], perm_id=f"p{cid}")
    journal.update_status(cid, state, filled=filled, remaining=amount - filled)


def test_clean_state_passes(journal: OrderJournal) -> None:
    placed(journal, "c1", state="closed", filled=10)
    journal.record_fill("e1", amount=4, price=100, client_order_id="c1", fee_cost=1.0, fee_currency="USD")
    journal.record_fill("e2", amount=6, price=100, client_order_id="c1", fee_cost=1.0, fee_currency="USD")
    orders = [BrokerOrder("closed", "c1", perm_id="pc1", filled=10, remaining=0)]
    fills = [BrokerFill("e1", 4, 100, "c1", fee_cost=1.0), BrokerFill("e2", 6, 100, "c1", fee_cost=1.0)]
    report = check_invariants(journal, orders, fills)
    report.assert_ok()
    assert report.duplicate_orders == 0 and report.checked_fills == 2


def test_each_violation_is_caught(journal: OrderJournal) -> None:
    placed(journal, "c1", state="open", filled=4)
    journal.record_fill("e1", amount=4, price=100, client_order_id="c1")  # fee never arrived
    journal.record_fill("ghost", amount=1, price=100, client_order_id="c1", fee_cost=0.0)
    placed(journal, "c2")
    journal.update_status("c2", "rejected", reason=ABSENT_AFTER_SYNC, force=True)
    journal.record_intent("c3", symbol="AAPL/USD", side="buy", type="market", amount=1)
    journal.mark_sent("c3")
    orders = [
        BrokerOrder("closed", "c1", filled=10),
        BrokerOrder("open", "c2"),
        BrokerOrder("open", "dup"),
        BrokerOrder("open", "dup"),
    ]
    fills = [BrokerFill("e1", 4, 100, "c1", fee_cost=1.0), BrokerFill("e2", 6, 100, "c1", fee_cost=1.0)]
    report = check_invariants(journal, orders, fills)
    assert report.duplicates == {"dup": 2} and report.duplicate_orders == 1
    assert report.lost_fills == ["e2"]
    assert report.invented_fills == ["ghost"]
    assert report.missing_fees == ["e1"]
    assert any(s.startswith("c1: journal open") for s in report.state_mismatches)
    assert report.absent_but_present and report.absent_but_present[0].startswith("c2")
    assert report.unresolved == ["c3"]
    with pytest.raises(AssertionError, match="lost_fills"):
        report.assert_ok("unit")


def test_scope_limits_the_journal_side(journal: OrderJournal) -> None:
    placed(journal, "mine", state="closed", filled=10)
    journal.record_fill("e1", amount=10, price=100, client_order_id="mine", fee_cost=1.0)
    placed(journal, "other")  # someone else's stale state is not this test's business
    orders = [BrokerOrder("closed", "mine", filled=10)]
    fills = [BrokerFill("e1", 10, 100, "mine", fee_cost=1.0)]
    check_invariants(journal, orders, fills, client_order_ids=["mine"]).assert_ok()


def test_duplicates_ignore_orders_without_client_id() -> None:
    assert duplicate_client_ids([None, None, "a", "b", "a"]) == {"a": 2}
