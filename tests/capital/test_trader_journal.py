"""CapitalTrader's order journal end to end against the simulator: ``options['journalSync']`` (``full``
by default, ``normal`` accepted, anything else refused before a byte is sent), the intent recorded with
its send mark in one commit, and the post-answer writes that run after create_order returns -- settled
for any reader once the loop has turned, and recovered from the broker when they never ran."""

from __future__ import annotations

from pathlib import Path

import ccxt
import pytest

from ccxt_capital.async_support import CapitalTrader as AsyncCapitalTrader
from normalization.runtime.journal import OrderJournal

from .trader_fixtures import (  # noqa: F401
    Face,
    booked,
    build_face,
    face_fixture,
    face_kind_fixture,
    make_face_fixture,
    trader_config,
)

pytestmark = pytest.mark.capital_sim(rate_limits="sim")


def view(tmp_path: Path, sim) -> OrderJournal:
    """The journal file as another process sees it (its own connection, no help from the exchange)."""
    return OrderJournal(tmp_path / "journal.sqlite", exchange="capitalcom", account=sim.accounts[0])


async def test_journal_sync_is_behind_by_default(face: Face, capital_sim) -> None:
    assert face.impl.options["journalSync"] == "behind"
    await face.call("create_order", "EUR/USD", "market", "buy", 1000, None, {"clientOrderId": "sync-default"})
    journal = await face.journal()
    assert journal.sync == "behind" and journal.get("sync-default").state == "closed"
    assert journal.wait_durable(10)  # the intent's background fsync came through


async def test_journal_sync_normal_is_accepted_and_keeps_orders_idempotent(face_kind: str, make_face,
                                                                           capital_sim) -> None:
    face = make_face(face_kind, journalSync="normal")
    await face.call("load_markets")
    first = await face.call("create_order", "EUR/USD", "market", "buy", 1000, None, {"clientOrderId": "norm-1"})
    journal = await face.journal()
    assert journal.sync == "normal" and journal.get("norm-1").deal_reference == first["id"]
    await face.close()
    restarted = make_face(face_kind, journalSync="normal")  # same file, a new process's state
    await restarted.call("load_markets")
    again = await restarted.call("create_order", "EUR/USD", "market", "buy", 1000, None, {"clientOrderId": "norm-1"})
    assert again["id"] == first["id"] and len(capital_sim.positions()) == 1
    await restarted.close()


@pytest.mark.parametrize("value", ["fast", "FULL", None, 1, True])
async def test_a_bad_journal_sync_is_refused_before_anything_is_sent(face_kind: str, capital_sim, tmp_path: Path,
                                                                     value: object) -> None:
    with pytest.raises(ccxt.BadRequest, match=r"options\['journalSync'\] must be one of"):
        build_face(face_kind, trader_config(capital_sim, tmp_path, journalSync=value))
    assert booked(capital_sim) == {"positions": 0, "orders": 0, "activities": 0, "confirms": 0}
    assert not (tmp_path / "journal.sqlite").exists()


async def test_a_journal_sync_changed_to_a_bad_value_is_refused_before_the_journal_opens(face: Face,
                                                                                        capital_sim) -> None:
    face.impl.options["journalSync"] = "sometimes"
    with pytest.raises(ccxt.BadRequest, match="sometimes"):
        await face.call("create_order", "EUR/USD", "market", "buy", 1000)
    assert booked(capital_sim)["positions"] == 0


async def test_intent_and_send_mark_are_one_commit_and_the_outcome_is_journaled_after_the_return(
        face: Face, capital_sim, tmp_path: Path) -> None:
    order = await face.call("create_order", "EUR/USD", "market", "buy", 1000, None, {"clientOrderId": "one-commit"})
    await face.settled()  # the post-answer writes run at the loop's next turn (no request in flight)
    with view(tmp_path, capital_sim) as other:
        row = other.get("one-commit")
        assert row is not None and row.state == "closed"
        assert (row.deal_reference, row.deal_id) == (order["id"], order["info"]["dealId"])
        assert [f.amount for f in other.fills("one-commit")] == [1000]
        assert [h.state for h in other.history("one-commit")] == ["sent_unknown", "closed"]


async def test_a_retry_after_a_429_is_claimed_by_compare_and_set(face: Face, capital_sim) -> None:
    # 429s past orderTimeout: the bot sees RateLimitExceeded and nothing is booked.
    rule = capital_sim.faults.too_many_requests(1000, method="POST", path="/positions")
    with pytest.raises(ccxt.RateLimitExceeded):
        await face.call("create_order", "AAPL/USD", "market", "buy", 1, None, {"clientOrderId": "cas-1"})
    rule.times = 0
    order = await face.call("create_order", "AAPL/USD", "market", "buy", 1, None, {"clientOrderId": "cas-1"})
    assert order["status"] == "closed"
    journal = await face.journal()
    assert [h.state for h in journal.history("cas-1")] == [
        "sent_unknown", "rejected", "sent_unknown", "closed"]


async def test_deferred_writes_ride_on_the_next_requests_and_are_flushed_before_reads(make_face,
                                                                                      capital_sim) -> None:
    face = make_face("async")
    ex = face.impl
    await ex.load_markets()
    first = await ex.create_order("EUR/USD", "market", "buy", 1000, None, {"clientOrderId": "ride-1"})
    assert len(ex._deferred) == 1  # ids, fills and status: not run before the return
    second = await ex.create_order("EUR/USD", "market", "sell", 1000, None, {"clientOrderId": "ride-2"})
    assert second["status"] == "closed"
    assert len(ex._deferred) == 1  # the first deal's write ran on the second deal's POST
    journal = ex._journal
    assert journal is not None and journal.get("ride-1").deal_reference == first["id"]
    fetched = await ex.fetch_order("ride-2")  # a read through the exchange flushes first
    assert fetched["id"] == second["id"] and not ex._deferred
    assert journal.get("ride-2").state == "closed"


async def test_a_deal_whose_post_answer_writes_never_ran_is_settled_by_reconciliation(make_face, capital_sim,
                                                                                       tmp_path: Path) -> None:
    face = make_face("async")
    ex = face.impl
    await ex.load_markets()
    ex._defer = lambda *writes: None  # the process "dies" right after create_order returned
    order = await ex.create_order("EUR/USD", "market", "buy", 1000, None, {"clientOrderId": "lost-writes"})
    with view(tmp_path, capital_sim) as other:
        row = other.get("lost-writes")
        assert row is not None and row.state == "sent_unknown" and row.deal_reference is None
    restarted = make_face("async")  # same journal file
    assert isinstance(restarted.impl, AsyncCapitalTrader)
    await restarted.impl.load_markets()
    await restarted.impl.reconcile_journal()
    journal = await restarted.impl._journal_ready()
    row = journal.get("lost-writes")
    assert row.state == "closed" and row.deal_reference == order["id"]
    assert [f.amount for f in journal.fills("lost-writes")] == [1000]
    again = await restarted.impl.create_order("EUR/USD", "market", "buy", 1000, None,
                                              {"clientOrderId": "lost-writes"})
    assert again["id"] == order["id"] and len(capital_sim.positions()) == 1
    await restarted.close()
    await face.close()


