"""The kill switch, written once for every adapter: cancel everything, then close every position.

Why here: the sequence is the same at every broker and its safety rests on properties no adapter
should have to re-derive:

* **Order.** Working orders go first, each cancel confirmed: a stop or a take-profit left working on
  a position being flattened could fill afterwards and open a new one.
* **From the broker's book.** Positions are fetched fresh after the cancels, and each close is the
  adapter's own ``close_position`` (journaled like any order under a new clientOrderId, a reduce-only
  market order sized from the broker's position).
* **Idempotent.** A second run finds the positions flat and sends nothing. Runs are serialized per
  broker account, in one process (one lock per exchange object) and across processes (a lock where the
  order journal lives, :mod:`normalization.runtime.account_lock`), so two at once -- two bots, a bot and
  an operator's ``panic`` -- cannot both see the same position open: the second waits for the first
  (``params['wait']`` / ``options['killSwitchWait']`` seconds, default 60), then reads the positions
  afresh and finds nothing left to close. The lock is held until each closing order has ended (filled
  or refused), not only sent: a close still working when it is released would be read as an open
  position by the next run, and closed twice. A clientOrderId derived from the position was tried and
  dropped: a later position of the same size at the same price would get the same id, and the journal
  would silently answer its close with the earlier one -- a kill switch that does nothing.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import weakref
from collections.abc import Mapping
from typing import Any

from normalization.runtime.account_lock import account_lock

__all__ = ["KillSwitch", "kill_switch"]

_locks: weakref.WeakKeyDictionary[Any, asyncio.Lock] = weakref.WeakKeyDictionary()
DEFAULT_WAIT = 60.0  # seconds a run waits for another one on the same account, and for its closes to end
LOCK_NAME = "kill-switch"
log = logging.getLogger("normalization.controls")


def _open(positions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for p in positions if float(p.get("contracts") or 0.0) != 0.0]


def _to_close(positions: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    """One ``(symbol, side)`` per open holding: ``close_position(symbol, side)`` closes every position of
    that symbol and side, and a broker listing each deal apart (Capital.com: two bots' buys are two
    positions) would otherwise be asked to close the second after the first call had closed both."""
    return list(dict.fromkeys((p["symbol"], p.get("side")) for p in _open(positions)))


async def _call(method: Any, *args: Any) -> Any:
    """Await an async exchange's method; a sync exchange's (a plain ccxt class) answers at once."""
    result = method(*args)
    return await result if inspect.isawaitable(result) else result


async def _journal(exchange: Any) -> Any:
    """The adapter's order journal (where the cross-process lock lives), or None for a plain exchange."""
    ready = getattr(exchange, "_journal_ready", None)
    if ready is not None:
        return await ready()
    return getattr(exchange, "journal", None)


async def _ended(exchange: Any, order: dict[str, Any], deadline: float) -> dict[str, Any]:
    """``order`` once the broker says it ended (a market close normally has when it is returned)."""
    poll = 0.05
    while order.get("status") == "open" and order.get("id") is not None and time.monotonic() < deadline:
        await asyncio.sleep(poll)  # the broker is asked again; nothing pushes this to a plain exchange
        poll = min(poll * 2, 0.5)
        order = await _call(exchange.fetch_order, order["id"], order.get("symbol"))
    return order


async def kill_switch(exchange: Any, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Cancel every working order (``cancel_all_orders``; ``params['allClients']`` passes through), then
    close every open position; returns ``{"canceled": [...], "closed": [...], "remaining": [...]}``
    (``remaining``: positions still open afterwards, fetched again: empty when all went flat).

    ``params['wait']`` (seconds; default ``options['killSwitchWait']``, else 60): how long to wait for a
    run already going on the same account, in this process or another; past it ``OperationRejected``."""
    params = dict(params or {})
    cancel_params = {"allClients": True} if params.pop("allClients", False) else {}
    options = getattr(exchange, "options", None) or {}
    wait = float(params.pop("wait", options.get("killSwitchWait", DEFAULT_WAIT)))
    lock = _locks.setdefault(exchange, asyncio.Lock())
    name = getattr(exchange, "id", "exchange")
    async with lock, account_lock(await _journal(exchange), LOCK_NAME, wait=wait):
        log.info("kill switch %s: cancelling every working order", name)
        canceled = await _call(exchange.cancel_all_orders, None, cancel_params)
        closed = []
        for symbol, side in _to_close(await _call(exchange.fetch_positions)):
            log.info("kill switch %s: closing %s %s", name, symbol, side or "")
            closed.append(await _call(exchange.close_position, symbol, side, dict(params)))
        deadline = time.monotonic() + wait
        closed = [await _ended(exchange, order, deadline) for order in closed]
        remaining = _open(await _call(exchange.fetch_positions)) if closed else []
        log.info("kill switch %s: %d cancelled, %d closed, %d still open", name, len(canceled), len(closed),
                 len(remaining))
    return {"canceled": canceled, "closed": closed, "remaining": remaining}


class KillSwitch:
    """``close_all_positions`` for an adapter (mixed in before ccxt's ``Exchange``); the adapter brings
    ``cancel_all_orders``, ``fetch_positions`` and ``close_position``."""

    async def close_all_positions(self, params: dict[str, Any] = {}) -> list[dict[str, Any]]:
        """The kill switch: cancel_all_orders, then close_position for every open position (journaled
        reduce-only market orders), safe to run twice (see :mod:`normalization.runtime.controls`).
        Returns the closing orders."""
        return (await kill_switch(self, params))["closed"]
