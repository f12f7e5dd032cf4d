"""Settle before answering: an unresolved order is waited for, reconciled, or refused honestly."""

from __future__ import annotations

import asyncio

import pytest

from normalization.runtime.journal import ABSENT_AFTER_SYNC, SENT_UNKNOWN, OrderJournal
from normalization.runtime.settle import Placements, ReconciliationPending, placed_before, settle

INTENT = dict(symbol="AAPL/USD", side="buy", type="limit", amount=1, price=10.0)


@pytest.fixture
def journal() -> OrderJournal:
    j = OrderJournal(":memory:", exchange="x", account="a")
    yield j
    j.close()


async def test_reconciliation_settles_the_row_before_the_answer(journal: OrderJournal) -> None:
    journal.record_intent("c1", **INTENT, state=SENT_UNKNOWN)
    looks = []

    async def reconcile() -> None:
        looks.append(1)
        journal.update_status("c1", "rejected", reason=ABSENT_AFTER_SYNC)

    await settle(journal, ["c1"], placements=Placements(), reconcile=reconcile, timeout=1.0, exchange_id="x")
    assert looks == [1] and journal.get("c1").never_received


async def test_still_unresolved_at_the_deadline_is_reconciliation_pending(journal: OrderJournal) -> None:
    journal.record_intent("c1", **INTENT, state=SENT_UNKNOWN)
    looks = []

    async def reconcile() -> None:
        looks.append(1)

    with pytest.raises(ReconciliationPending, match="c1"):
        await settle(journal, ["c1"], placements=Placements(), reconcile=reconcile, timeout=0.12,
                     exchange_id="x", grace_ms=10_000)
    assert len(looks) >= 2  # it looked again before giving up


async def test_a_placement_in_this_process_is_waited_for_not_reconciled(journal: OrderJournal) -> None:
    journal.record_intent("c1", **INTENT, state=SENT_UNKNOWN)
    placements = Placements()
    placements.add("c1")

    async def reconcile() -> None:
        raise AssertionError("an order this process is placing is never reconciled as absent")

    async def answer() -> None:
        await asyncio.sleep(0)
        journal.update_status("c1", "open")
        placements.discard("c1")

    task = asyncio.ensure_future(answer())
    await settle(journal, ["c1"], placements=placements, reconcile=reconcile, timeout=1.0, exchange_id="x")
    await task
    assert journal.get("c1").state == "open"


async def test_a_repeat_answers_the_first_order_or_places_a_never_received_one_once(journal: OrderJournal) -> None:
    # Both brokers' repeated-clientOrderId path (normalization.runtime.settle.placed_before).
    async def settle_one(cid: str) -> None:
        return None

    async def answer(row) -> str:
        return f"answer {row.state}"

    sent: list[str] = []

    async def place_again(claimed) -> str:
        sent.append(claimed.client_order_id)
        return "placed"

    row, _ = journal.record_intent("open-1", **INTENT, state=SENT_UNKNOWN)
    journal.update_status("open-1", "open")
    assert await placed_before(journal, row, settle_one=settle_one, answer=answer, place_again=place_again,
                               exchange_id="x") == "answer open"
    row, _ = journal.record_intent("lost-1", **INTENT, state=SENT_UNKNOWN)
    journal.update_status("lost-1", "rejected", reason=ABSENT_AFTER_SYNC)
    assert await placed_before(journal, row, settle_one=settle_one, answer=answer, place_again=place_again,
                               exchange_id="x") == "placed"
    assert sent == ["lost-1"]
    # Claimed by another thread or process first: this repeat never sends; it answers with that placement.
    journal.update_status("lost-1", "rejected", reason=ABSENT_AFTER_SYNC)
    assert journal.claim_retry("lost-1") is not None
    assert await placed_before(journal, journal.get("lost-1"), settle_one=settle_one, answer=answer,
                               place_again=place_again, exchange_id="x") == f"answer {SENT_UNKNOWN}"
    assert sent == ["lost-1"]
