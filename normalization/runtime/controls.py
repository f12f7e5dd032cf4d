"""The kill switch, written once for every adapter: cancel everything, then close every position.

Why here: the sequence is the same at every broker and its safety rests on properties no adapter
should have to re-derive:

* **Order.** Working orders go first, each cancel confirmed: a stop or a take-profit left working on
  a position being flattened could fill afterwards and open a new one.
* **From the broker's book.** Positions are fetched fresh after the cancels, and each close is the
  adapter's own ``close_position`` (journaled like any order under a new clientOrderId, a reduce-only
  market order sized from the broker's position).
* **Idempotent.** A second run finds the positions flat and sends nothing. Runs in one process are
  serialized (one lock per exchange object), so two at once cannot both see the same
  position open. A clientOrderId derived from the position was tried and dropped: a later position of
  the same size at the same price would get the same id, and the journal would silently answer its
  close with the earlier one -- a kill switch that does nothing.
"""

from __future__ import annotations

import asyncio
import inspect
import weakref
from collections.abc import Mapping
from typing import Any

__all__ = ["KillSwitch", "kill_switch"]

_locks: weakref.WeakKeyDictionary[Any, asyncio.Lock] = weakref.WeakKeyDictionary()


def _open(positions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for p in positions if float(p.get("contracts") or 0.0) != 0.0]


async def _call(method: Any, *args: Any) -> Any:
    """Await an async exchange's method; a sync exchange's (a plain ccxt class) answers at once."""
    result = method(*args)
    return await result if inspect.isawaitable(result) else result


async def kill_switch(exchange: Any, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Cancel every working order (``cancel_all_orders``; ``params['allClients']`` passes through), then
    close every open position; returns ``{"canceled": [...], "closed": [...], "remaining": [...]}``
    (``remaining``: positions still open afterwards, fetched again: empty when all went flat)."""
    params = dict(params or {})
    cancel_params = {"allClients": True} if params.pop("allClients", False) else {}
    lock = _locks.setdefault(exchange, asyncio.Lock())
    async with lock:
        canceled = await _call(exchange.cancel_all_orders, None, cancel_params)
        closed = [await _call(exchange.close_position, p["symbol"], p.get("side"), dict(params))
                  for p in _open(await _call(exchange.fetch_positions))]
        remaining = _open(await _call(exchange.fetch_positions)) if closed else []
    return {"canceled": canceled, "closed": closed, "remaining": remaining}


class KillSwitch:
    """``close_all_positions`` for an adapter (mixed in before ccxt's ``Exchange``); the adapter brings
    ``cancel_all_orders``, ``fetch_positions`` and ``close_position``."""

    async def close_all_positions(self, params: dict[str, Any] = {}) -> list[dict[str, Any]]:
        """The kill switch: cancel_all_orders, then close_position for every open position (journaled
        reduce-only market orders), safe to run twice (see :mod:`normalization.runtime.controls`).
        Returns the closing orders."""
        return (await kill_switch(self, params))["closed"]
