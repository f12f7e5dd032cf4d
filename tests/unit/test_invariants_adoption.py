"""The execution invariants every fault scenario asserts, and fingerprint adoption for Capital.com.

Each invariant is shown to *fail* on a crafted violation, so a green fault matrix means something.
"""

from __future__ import annotations

import pytest

from normalization.runtime.adoption import claim_by_fingerprint
from normalization.runtime.invariants import check_invariants, duplicate_client_ids
from normalization.runtime.journal import OrderJournal
from normalization.runtime.reconcile import ABSENT_AFTER_SYNC, BrokerFill, BrokerOrder, BrokerSnapshot, reconcile


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


def test_fingerprint_claims_the_deal_whose_reference_never_arrived(journal: OrderJournal) -> None:
    journal.record_intent("lost", symbol="AAPL/USD", side="buy", type="market", amount=5)
    journal.mark_sent("lost")  # the POST left; the connection dropped before the dealReference came back
    journal.record_intent("known", symbol="AAPL/USD", side="buy", type="market", amount=5)
    journal.mark_sent("known")
    journal.attach_ids("known", deal_reference="o_1")
    broker = [
        BrokerOrder("closed", deal_reference="o_0", symbol="AAPL/USD", side="buy", type="market", amount=5),
        BrokerOrder("closed", deal_reference="o_1", symbol="AAPL/USD", side="buy", type="market", amount=5),
        BrokerOrder("closed", deal_reference="o_2", symbol="AAPL/USD", side="buy", type="market", amount=5),
        BrokerOrder("closed", deal_reference="o_3", symbol="EUR/USD", side="buy", type="market", amount=5),
    ]
    orders, claims = claim_by_fingerprint(journal, broker)
    assert [(c.client_order_id, c.broker.deal_reference) for c in claims] == [("lost", "o_2")]
    report = reconcile(journal, BrokerSnapshot(orders, (), complete=True))
    assert "lost" in report.adopted
    lost = journal.get("lost")
    assert lost is not None and lost.state == "closed" and lost.deal_reference == "o_2"


def test_fingerprint_never_claims_for_unsent_or_mismatched(journal: OrderJournal) -> None:
    journal.record_intent("unsent", symbol="AAPL/USD", side="buy", type="market", amount=5)  # pending_send
    journal.record_intent("limit", symbol="AAPL/USD", side="buy", type="limit", amount=5, price=101)
    journal.mark_sent("limit")
    broker = [
        BrokerOrder("closed", deal_reference="o_9", symbol="AAPL/USD", side="buy", type="market", amount=5),
        BrokerOrder("open", deal_reference="o_8", symbol="AAPL/USD", side="buy", type="limit", amount=5, price=100),
    ]
    orders, claims = claim_by_fingerprint(journal, broker)
    assert claims == [] and orders == broker
    reconcile(journal, BrokerSnapshot(orders, (), complete=True))
    assert journal.get("unsent").state == "rejected"  # type: ignore[union-attr]
    assert journal.get("limit").reason == ABSENT_AFTER_SYNC  # type: ignore[union-attr]
