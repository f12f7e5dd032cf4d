"""Settle before answering: an order whose placement outcome is unknown is never shown with a status.

Why: a bot killed between "send" and "acknowledged" restarts with journal rows in ``sent_unknown``.
Showing such a row as ``open`` makes the bot believe it holds an order the broker may never have
received (issue #15); re-sending it blindly may double it. So before ``create_order``,
``fetch_order`` or ``fetch_open_orders`` answer for such an order, the adapter settles it:

1. a placement of the same clientOrderId still running in *this* process is waited for
   (:class:`Placements`): two threads or tasks placing one id get one broker order and one answer;
2. otherwise the adapter's reconciliation (a fresh look at the broker's books) runs, again and again
   while the row stays unresolved -- it stays so while it is younger than the reconciliation grace,
   which covers a send still travelling to the broker -- until ``timeout`` seconds have passed;
3. still unresolved then: :class:`ReconciliationPending` (an ``ExchangeNotAvailable``, so retryable)
   instead of a guess.

Reconciliation ends an unresolved row one of two ways: adopted with the broker's own status, or
``rejected`` with a never-received reason (:attr:`JournalOrder.never_received`), after which the same
clientOrderId may be placed again exactly once (:meth:`OrderJournal.claim_retry`).

Nothing here knows a broker: each adapter passes its reconciliation as a coroutine function.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import TypeVar

import ccxt

from .journal import JournalOrder, OrderJournal

__all__ = ["Placements", "ReconciliationPending", "placed_before", "settle"]

T = TypeVar("T")

#: How often a still-unresolved order is looked up again at the broker (seconds), at most / at least.
POLL_MAX = 0.5
POLL_MIN = 0.05


class ReconciliationPending(ccxt.ExchangeNotAvailable):
    """The broker has not yet told whether an order sent earlier reached it; ask again shortly."""


class Placements:
    """The clientOrderIds this process is placing right now, each with an event set when it is done.

    Used like the set it replaces (``in``, iteration, ``add`` / ``discard``), plus :meth:`wait`.
    """

    def __init__(self) -> None:
        self._done: dict[str, asyncio.Event] = {}

    def __contains__(self, cid: object) -> bool:
        return cid in self._done

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._done))

    def __len__(self) -> int:
        return len(self._done)

    def add(self, cid: str) -> None:
        self._done.setdefault(cid, asyncio.Event())

    def discard(self, cid: str) -> None:
        event = self._done.pop(cid, None)
        if event is not None:
            event.set()

    async def wait(self, cid: str, timeout: float) -> bool:
        """Wait until the placement of ``cid`` in this process is over; False on timeout."""
        event = self._done.get(cid)
        if event is None:
            return True
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True


def _pending(journal: OrderJournal, cids: Iterable[str] | None) -> list[JournalOrder]:
    if cids is None:
        return journal.unresolved()
    rows = (journal.get(cid) for cid in cids)
    return [row for row in rows if row is not None and row.unresolved]


async def settle(
    journal: OrderJournal,
    cids: Iterable[str] | None,
    *,
    placements: Placements,
    reconcile: Callable[[], Awaitable[object]],
    timeout: float,
    exchange_id: str,
    grace_ms: int = 0,
    flush: Callable[[], None] | None = None,
) -> None:
    """Return once none of ``cids`` (``None``: every order of the journal) is unresolved, or raise
    :class:`ReconciliationPending` after ``timeout`` seconds.

    ``reconcile`` re-reads the broker's books into the journal; ``grace_ms`` is its grace (an
    unresolved row younger than that is left alone by it), used only to wait no longer than needed
    between two looks. ``flush`` runs the adapter's deferred journal writes first.
    """
    cids = None if cids is None else list(cids)
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        if flush is not None:
            flush()
        pending = _pending(journal, cids)
        if not pending:
            return
        ours = [row.client_order_id for row in pending if row.client_order_id in placements]
        if ours:  # placed by this process right now: its own answer settles it
            for cid in ours:
                await placements.wait(cid, max(deadline - time.monotonic(), 0.0))
            if time.monotonic() >= deadline:
                break
            continue
        others = [row.client_order_id for row in pending]
        try:
            await reconcile()
        except ccxt.NetworkError as error:  # reconnecting, a slow answer: look again until the deadline
            last_error = error
        if flush is not None:
            flush()
        still = _pending(journal, others)
        if not still:
            continue
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        # The next look is worth taking when the youngest row leaves the grace (or a little later); the
        # last one comes at the deadline.
        due = max((row.updated + grace_ms - journal.now_ms()) / 1000 for row in still)
        await asyncio.sleep(min(max(due, POLL_MIN), POLL_MAX, remaining))
    names = ", ".join(sorted(row.client_order_id for row in _pending(journal, cids))[:5])
    raise ReconciliationPending(
        f"{exchange_id}: reconciliation pending for clientOrderId {names}: an earlier send's outcome is not "
        f"known yet (the broker has not listed it, and it may still be on its way); nothing was sent. "
        f"Ask again shortly: the same clientOrderId then returns the order, or places it once if the "
        f"broker never received it" + (f" (last look failed: {last_error})" if last_error is not None else "")
    )


async def placed_before(
    journal: OrderJournal,
    row: JournalOrder,
    *,
    settle_one: Callable[[str], Awaitable[None]],
    answer: Callable[[JournalOrder], Awaitable[T]],
    place_again: Callable[[JournalOrder], Awaitable[T]],
    exchange_id: str,
) -> T:
    """A clientOrderId journaled before, placed again: settle what became of the first placement, then
    ``answer`` with that order -- or, if the broker provably never received it (its row is rejected with a
    never-received reason), ``place_again`` with the row :meth:`OrderJournal.claim_retry` hands back.

    ``claim_retry`` is a compare-and-set, so of two threads or processes repeating one clientOrderId only
    one sends; the other settles again and answers with that placement (three rounds, then
    :class:`ReconciliationPending`). ``settle_one`` is the adapter's :func:`settle` of one clientOrderId.
    """
    cid = row.client_order_id
    for _ in range(3):
        await settle_one(cid)
        row = journal.get(cid) or row
        if not row.never_received:
            return await answer(row)
        claimed = journal.claim_retry(cid)
        if claimed is None:
            continue  # another thread or process claimed it first: its placement settles it
        return await place_again(claimed)
    raise ReconciliationPending(f"{exchange_id}: clientOrderId {cid} is being placed elsewhere; ask again shortly")
