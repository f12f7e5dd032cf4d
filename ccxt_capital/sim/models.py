"""The records the broker keeps: positions, working orders, confirms and activity entries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Position:
    """An open CFD position; with hedging on, an epic may have several in both directions."""

    deal_id: str
    deal_reference: str
    account_id: str
    epic: str
    direction: str  # BUY | SELL
    size: float
    level: float
    created: float
    stop_level: float | None = None
    profit_level: float | None = None
    guaranteed: bool = False
    trailing: bool = False
    trailing_distance: float | None = None
    working_order_id: str | None = None


@dataclass
class WorkingOrder:
    """A resting LIMIT or STOP order; it becomes a position when the price reaches ``level``."""

    deal_id: str
    deal_reference: str
    account_id: str
    epic: str
    direction: str
    size: float
    level: float
    order_type: str  # LIMIT | STOP
    created: float
    good_till: float | None = None
    stop_distance: float | None = None
    profit_distance: float | None = None
    guaranteed: bool = False
    trailing: bool = False


@dataclass
class Confirm:
    """The outcome of one deal, readable by its dealReference once ``ready_at`` has passed."""

    reference: str
    account_id: str
    payload: dict[str, Any]
    ready_at: float = 0.0
    polls_left: int = 0


@dataclass
class Activity:
    """One line of GET /history/activity."""

    ts: float
    account_id: str
    epic: str
    deal_id: str
    source: str  # USER | SL | TP | SYSTEM | DEALER
    type: str  # POSITION | WORKING_ORDER | EDIT_STOP_AND_LIMIT | SYSTEM
    status: str  # ACCEPTED | REJECTED | UNKNOWN
    details: dict[str, Any] = field(default_factory=dict)
