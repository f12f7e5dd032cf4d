"""Settle before answering: an unresolved order is waited for, reconciled, or refused honestly."""

from __future__ import annotations

import asyncio

import pytest

from normalization.runtime.journal import ABSENT_AFTER_SYNC, SENT_UNKNOWN, OrderJournal
from normalization.runtime.settle import Placements, ReconciliationPending, settle

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
