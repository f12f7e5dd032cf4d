"""The exchange's order journal: opened after the first login, and the writes that follow a deal's answer
run off the caller's latency.

A mixin of the order lifecycle (:class:`ccxt_capital.orders.CapitalOrders` derives from it). The intent of
every deal is committed before the send, by the lifecycle itself; what is here is the other half: the
journal a placement writes to (:meth:`CapitalJournaling._journal_ready`) and the one transaction written
after the broker's answer -- the deal's ids, fills and final status -- which :meth:`CapitalJournaling._defer`
runs while the broker works on the bot's next request, riding on the transport's ``on_wire`` /
``on_idle`` hooks instead of delaying either answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from normalization.runtime.journal import USE_DEFAULT, OrderJournal, open_journal, sync_option

__all__ = ["CapitalJournaling"]

log = logging.getLogger("ccxt_capital")

if TYPE_CHECKING:
    from .connection import CapitalConnection as _Base
else:
    _Base = object


class CapitalJournaling(_Base):
    """The journal and its deferred writes; the base of :class:`ccxt_capital.orders.CapitalOrders`."""

    def _init_journal(self) -> None:
        """Opened lazily, on the account the first login names (see _journal_ready)."""
        self._journal: OrderJournal | None = None
        self._journal_owned = False
        #: Journal writes that follow a settled deal, run after create_order returns (see _defer).
        self._deferred: list[Callable[[], None]] = []
        self._fallback_due = False

    def _close_journal(self) -> None:
        """On close: the deferred writes done, then the journal closed if this object opened it."""
        self._flush_deferred()
        if self._journal is not None and self._journal_owned:
            self._journal.close()
        self._journal = None

    async def _journal_ready(self, flush: bool = True) -> OrderJournal:
        """The order journal of the logged-in account (opened after the first login).

        ``flush`` (every caller but the placement path) first runs the deferred post-send writes, so
        whatever reads the journal through here sees every order this object has returned, settled.
        """
        if self._journal is None:
            wire = self._wire()
            await wire.ensure_session()
            account = wire.session.account_id if wire.session else None
            option = self.options.get("journal", USE_DEFAULT)
            sync = sync_option(self.id, self.options)
            self._journal = open_journal(option, exchange=self.id, account=account, sync=sync)
            self._journal_owned = not isinstance(option, OrderJournal)
            if self._journal_owned:
                self._journal.now_ms = self._now_ms  # journal times on the same clock as the broker's
        elif flush and self._deferred:
            self._flush_deferred()
        return self._journal

    def _defer(self, *writes: Callable[[], None]) -> None:
        """Run journal writes that follow the broker's answer off the caller's latency.

        Only the write that comes *after* the answer is deferred -- the deal's ids, fills and final status,
        one transaction -- never the intent, which is committed before the send. It runs while the broker
        works on the bot's next request: when that request is on the wire (the transport's ``on_wire``),
        so it rides on the next deal's POST instead of delaying either answer (run inline, or at the
        loop's next turn -- which comes before httpx writes the next request -- its cost came straight
        back). With no request in flight it runs at once, at the loop's next turn (the sync face's caller
        already has its answer then). It also runs before any read of the journal through this object
        (``_journal_ready``) and on ``close()``; a caller that reads the journal file directly lets the
        exchange's loop turn once first.

        If the process dies before it runs, the row is ``sent_unknown`` without its deal reference:
        exactly the state of a deal whose answer was lost, which reconciliation resolves from the broker's
        activity history (``_find_lost_deal``: same epic, direction and size, booked after the intent, owned
        by no other row). Every earlier deal is owned by its row by then, so only this one is left to match;
        with ``journalSync`` "full" or "behind" the intent itself reached the disk, so that holds after a
        power cut too (with "behind", unless the cut came within a disk flush of the send).
        """
        self._deferred.extend(writes)
        wire = self._wire()
        wire.on_wire = self._write_one
        self._fallback_soon()

    def _write_one(self) -> None:
        """A request is on the wire: run the oldest deferred write while the broker answers it."""
        if self._deferred:
            self._run_deferred(self._deferred.pop(0))
        if self._deferred and self._transport is not None:
            self._transport.on_wire = self._write_one

    def _fallback_soon(self) -> None:
        if not self._fallback_due:
            self._fallback_due = True
            asyncio.get_running_loop().call_soon(self._fallback)

    def _fallback(self) -> None:
        """The loop's next turn: with no request in flight (none to ride on), run what is left now."""
        self._fallback_due = False
        if not self._deferred:
            return
        wire = self._transport
        if wire is not None and wire.in_flight:
            wire.on_idle = self._fallback_soon  # look again when the requests in flight are answered
            return
        self._flush_deferred()

    def _flush_deferred(self) -> None:
        """Every deferred journal write done, oldest first."""
        if self._transport is not None:
            self._transport.on_wire = None
        while self._deferred:
            self._run_deferred(self._deferred.pop(0))

    def _run_deferred(self, write: Callable[[], None]) -> None:
        try:
            write()
        except Exception:  # the row stays unresolved, and reconciliation settles it from the broker
            log.warning("%s: a journal write after a settled deal failed; reconciliation will settle the order",
                        self.id, exc_info=True)
