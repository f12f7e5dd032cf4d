"""Fault plans a test can arm; the server consults them at well-defined points.

Each fault models something a real TWS / IB Gateway does to a client: a socket that dies
mid-conversation (after N messages, or around a given order so the test can check that the
adapter never places twice), slow replies, an IB-side outage announced with 1100 and ended
with 1101 (subscriptions lost) or 1102 (kept), a clientId that is still taken (326), an
order rejected for a reason the test picks, a pacing violation, and a nightly gateway restart
that drops every connection but keeps the account's state.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

#: Stages for ``drop_on_order``.
BEFORE = "before"  # the order never reaches the book
BOOKED = "booked"  # the order is working but the client hears nothing
ACKED = "acked"  # the client sees openOrder/orderStatus, then the socket dies


@dataclass
class OrderDrop:
    stage: str
    order_ref: str | None = None
    client_id: int | None = None


@dataclass
class MessageDrop:
    remaining: int
    client_id: int | None = None
    direction: str = "out"  # "out": server->client messages; "in": client->server


@dataclass
class FaultState:
    """Armed faults; mutated from test threads, read on the server loop, hence the lock."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    message_drops: list[MessageDrop] = field(default_factory=list)
    order_drops: list[OrderDrop] = field(default_factory=list)
    reply_delay: float = 0.0
    reply_delay_client: int | None = None
    busy_client_ids: set[int] = field(default_factory=set)
    dropped_commission_reports: int = 0
    outage: bool = False
    #: (code, text) informational errors sent right after the next orders are acknowledged.
    order_warnings: list[tuple[int, str]] = field(default_factory=list)

    def take_order_warning(self) -> tuple[int, str] | None:
        with self.lock:
            return self.order_warnings.pop(0) if self.order_warnings else None

    def take_order_drop(self, client_id: int, order_ref: str) -> OrderDrop | None:
        with self.lock:
            for i, drop in enumerate(self.order_drops):
                if drop.client_id is not None and drop.client_id != client_id:
                    continue
                if drop.order_ref is not None and drop.order_ref != order_ref:
                    continue
                return self.order_drops.pop(i)
        return None

    def count_message(self, client_id: int, direction: str) -> bool:
        """Count one message; True when a drop fault fires for this connection."""
        with self.lock:
            for i, drop in enumerate(self.message_drops):
                if drop.direction != direction:
                    continue
                if drop.client_id is not None and drop.client_id != client_id:
                    continue
                drop.remaining -= 1
                if drop.remaining <= 0:
                    self.message_drops.pop(i)
                    return True
                return False
        return False

    def delay_for(self, client_id: int) -> float:
        with self.lock:
            if self.reply_delay_client is None or self.reply_delay_client == client_id:
                return self.reply_delay
            return 0.0

    def take_commission_drop(self) -> bool:
        with self.lock:
            if self.dropped_commission_reports > 0:
                self.dropped_commission_reports -= 1
                return True
            return False
