"""Capital.com's activity history read as orders: which lines belong to which order.

A deal request answers with a dealReference (``o_...``), and the lines of that request carry it: a
working order's own lines (created, amended, filled, deleted) and a market deal's. A position has a
reference of its own, though, ``p_`` + its dealId (``GET /positions``, the official collection's history
by dealId), and the position a working order's fill opens is listed under that one, next to the order's
fill line. Read naively, an order placed as a working order and filled later is two orders (its ``o_``
lines, and the position's ``p_`` line) and its fill belongs to neither: fetch_order, fetch_my_trades and
reconciliation would disagree about its id.

:func:`link` files such a position line under the order whose fill opened it, so every reader of the
history (they all group by ``details.dealReference``) sees one order under one id. The fill line names
the position (``affectedDealId``) where the broker says so; otherwise the match is the fill line booked
with it: same epic and direction, within a second (the broker books both at once). The broker's own
reference is kept in ``details["positionReference"]``. Pure: no I/O.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

FILLED = frozenset({"LIMIT_ORDER_FILLED", "STOP_ORDER_FILLED"})
#: How far apart (ms) a fill line and the position line it opened may be booked.
SAME_BOOKING_MS = 1_000


def link(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``entries`` with each position line a working order's fill opened re-filed under that order's
    dealReference (a copy of the line; the others are returned as they are, in the same order)."""
    fills = [e for e in entries if e.get("type") == "WORKING_ORDER" and e.get("status") == "ACCEPTED"
             and _actions(e) & FILLED and _reference(e)]
    if not fills:
        return entries
    used: set[int] = set()
    out = []
    for entry in entries:
        fill = _opening_fill(entry, fills, used) if _own_position_line(entry) else None
        if fill is None:
            out.append(entry)
            continue
        used.add(id(fill))
        details = dict(entry.get("details") or {})
        details["positionReference"] = details.get("dealReference")
        details["dealReference"] = _reference(fill)
        out.append({**entry, "details": details})
    return out


def _own_position_line(entry: dict[str, Any]) -> bool:
    """A position's opening line listed under the position's own reference (``p_`` + its dealId)."""
    deal_id = entry.get("dealId")
    return (entry.get("type") == "POSITION" and bool(deal_id) and "POSITION_OPENED" in _actions(entry)
            and _reference(entry) == f"p_{deal_id}")


def _opening_fill(line: dict[str, Any], fills: list[dict[str, Any]], used: set[int]) -> dict[str, Any] | None:
    deal_id = line.get("dealId")
    for fill in fills:
        affected = {a.get("affectedDealId") for a in (fill.get("details") or {}).get("actions") or []
                    if isinstance(a, dict)}
        if deal_id in affected:
            return fill
    details = line.get("details") or {}
    when = _ms(line)
    candidates = [f for f in fills if id(f) not in used and f.get("epic") == line.get("epic")
                  and (f.get("details") or {}).get("direction") == details.get("direction")
                  and when is not None and (at := _ms(f)) is not None and abs(at - when) <= SAME_BOOKING_MS]
    # Orders filled together on one market: the one of the position's size (two of the same size, side,
    # market and moment are interchangeable: either way each order gets one such fill). A smaller position
    # (the fill netted an opposite one first) is matched only when one order could have opened it.
    same_size = [f for f in candidates if _size(f) == _size(line)]
    if same_size:
        return same_size[0]
    return candidates[0] if len(candidates) == 1 else None


def _actions(entry: dict[str, Any]) -> set[str]:
    return {a.get("actionType") for a in (entry.get("details") or {}).get("actions") or [] if isinstance(a, dict)}


def _size(entry: dict[str, Any]) -> float | None:
    try:
        return float((entry.get("details") or {}).get("size"))
    except (TypeError, ValueError):
        return None


def _reference(entry: dict[str, Any]) -> str | None:
    reference = (entry.get("details") or {}).get("dealReference")
    return str(reference) if reference else None


def _ms(entry: dict[str, Any]) -> int | None:
    text = entry.get("dateUTC") or entry.get("date")
    if not isinstance(text, str):
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:  # dateUTC carries no zone: it is UTC
        parsed = parsed.replace(tzinfo=timezone.utc)
    return int(parsed.timestamp() * 1000)
