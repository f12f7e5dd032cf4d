"""Per-order latency: when an order's stages happened, and the metrics a bot reads from them.

Every order placed through an adapter collects five stamps, each the moment *this library* saw the
stage happen:

* ``intent``: ``create_order`` was called (the bot decided);
* ``submit``: the order was handed to the broker's client library (``ib.placeOrder``, the deal's POST);
* ``ack``: the broker's first word about it -- its acknowledgement, its rejection or, failing both, a
  fill (an execution implies the broker had the order by then);
* ``first_fill`` / ``last_fill``: the first and the latest execution seen.

``order['info']['latency']`` holds the metrics derived from them (:func:`metrics`), in milliseconds,
``None`` for a stage not reached: ``intent_to_submit_ms``, ``submit_to_ack_ms``,
``ack_to_first_fill_ms``, ``ack_to_last_fill_ms``, ``total_ms`` (intent to the last fill, or to the
ack for an order with none yet).

**The clock.** A stamp is :func:`now`: ``time.monotonic_ns()`` moved onto the wall-clock scale by one
offset taken when this module is imported (``anchor_wall_ns - anchor_monotonic_ns``). Within a process
the differences between stamps are therefore exact monotonic differences (an NTP step or a DST change
does not move them), while the stamps themselves read as epoch nanoseconds. That is what makes them
storable: a raw monotonic value means nothing to another process (each boot, and on some systems each
process, has its own origin), but an anchored stamp does. The price is stated plainly: a stage seen
by another process than the one that placed the order (a fill learned after a restart) is compared
across two anchors, i.e. with wall-clock accuracy (the two processes' clocks as they stood when each
started). :class:`Stamps` keeps the stages in order whatever happens (a later stage never reads
earlier than the one before it), so such a metric can come out too small, never negative.

**Where they live.** In memory per exchange (:class:`LatencyBook`, bounded, for the hot path) and in
the order journal (one column per stamp, written with the writes the journal makes anyway: the intent,
the status changes, the fills), so the metrics of an order survive a restart.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

__all__ = ["METRICS", "STAGES", "LatencyBook", "Stamps", "metrics", "now"]

#: The stages in the order they happen; also the journal's column names (``lat_<stage>``).
STAGES = ("intent", "submit", "ack", "first_fill", "last_fill")
COLUMNS = tuple(f"lat_{stage}" for stage in STAGES)
METRICS = ("intent_to_submit_ms", "submit_to_ack_ms", "ack_to_first_fill_ms", "ack_to_last_fill_ms", "total_ms")

_OFFSET = time.time_ns() - time.monotonic_ns()
_monotonic_ns = time.monotonic_ns


def now() -> int:
    """A stamp: this process's monotonic clock in epoch nanoseconds (see the module docstring)."""
    return _monotonic_ns() + _OFFSET


class Stamps:
    """The five stamps of one order (epoch ns on the anchored monotonic clock, ``None`` until reached).

    Stages only move forward: ``intent`` / ``submit`` / ``ack`` keep the first value given, the fills
    keep the earliest and the latest, and each stage is held at or after the one before it.
    """

    __slots__ = STAGES

    def __init__(self, intent: int | None = None, submit: int | None = None, ack: int | None = None,
                 first_fill: int | None = None, last_fill: int | None = None) -> None:
        self.intent = intent
        self.submit = submit
        self.ack = ack
        self.first_fill = first_fill
        self.last_fill = last_fill

    @classmethod
    def started(cls) -> Stamps:
        """Stamps of an order whose intent is now."""
        return cls(now())

    def mark(self, stage: str, at: int | None = None) -> bool:
        """Record ``stage`` (``now()`` unless ``at``); True if that changed anything."""
        t = now() if at is None else at
        if stage == "first_fill" or stage == "last_fill" or stage == "fill":
            return self.fill(t)
        if getattr(self, stage) is not None:
            return False
        setattr(self, stage, t)
        self._order()
        return True

    def fill(self, at: int | None = None) -> bool:
        """An execution seen at ``at`` (``now()``): the first and latest fills, and the ack if none yet."""
        t = now() if at is None else at
        changed = False
        if self.ack is None:
            self.ack, changed = t, True
        if self.first_fill is None or t < self.first_fill:
            self.first_fill, changed = t, True
        if self.last_fill is None or t > self.last_fill:
            self.last_fill, changed = t, True
        if changed:
            self._order()
        return changed

    def merge(self, other: Stamps | None) -> bool:
        """Take in what ``other`` knows (another process's write, the journal's row); True if changed."""
        if other is None:
            return False
        changed = False
        for stage in ("intent", "submit", "ack"):
            mine, theirs = getattr(self, stage), getattr(other, stage)
            if theirs is not None and (mine is None or theirs < mine):
                setattr(self, stage, theirs)
                changed = True
        if other.first_fill is not None and (self.first_fill is None or other.first_fill < self.first_fill):
            self.first_fill, changed = other.first_fill, True
        if other.last_fill is not None and (self.last_fill is None or other.last_fill > self.last_fill):
            self.last_fill, changed = other.last_fill, True
        if changed:
            self._order()
        return changed

    def _order(self) -> None:
        """Hold every stage at or after the one before it (stamps of two processes' clocks, an ack
        reported after a fill): a metric may then read 0, never negative."""
        floor = None
        for stage in STAGES:
            value = getattr(self, stage)
            if value is None:
                continue
            if floor is not None and value < floor:
                setattr(self, stage, floor)
            else:
                floor = value

    def values(self) -> tuple[int | None, ...]:
        """The stamps in :data:`STAGES` order (the journal's columns)."""
        return (self.intent, self.submit, self.ack, self.first_fill, self.last_fill)

    def copy(self) -> Stamps:
        return Stamps(*self.values())

    def metrics(self) -> dict[str, float | None]:
        return metrics(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Stamps) and self.values() == other.values()

    def __repr__(self) -> str:
        return f"Stamps({', '.join(f'{s}={getattr(self, s)}' for s in STAGES)})"


def _ms(start: int | None, end: int | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start) // 1000 / 1000  # whole microseconds: all a bot or a benchmark needs


def metrics(stamps: Stamps | None) -> dict[str, float | None]:
    """``order['info']['latency']``: the stages' durations in ms, ``None`` where a stage is missing."""
    if stamps is None:
        return dict.fromkeys(METRICS)
    intent, submit, ack, last = stamps.intent, stamps.submit, stamps.ack, stamps.last_fill
    return {
        "intent_to_submit_ms": _ms(intent, submit),
        "submit_to_ack_ms": _ms(submit, ack),
        "ack_to_first_fill_ms": _ms(ack, stamps.first_fill),
        "ack_to_last_fill_ms": _ms(ack, last),
        "total_ms": _ms(intent, ack if last is None else last),
    }


def from_row(values: Any) -> Stamps | None:
    """The journal's five ``lat_*`` values as :class:`Stamps` (``None`` for a row without any)."""
    stamps = Stamps(*(None if v is None else int(v) for v in values))
    if stamps.values() == (None,) * len(STAGES):
        return None
    stamps._order()  # the database merges each column alone (two processes' stamps): order them here
    return stamps


class LatencyBook:
    """The stamps of the orders one exchange object placed recently, by clientOrderId.

    Bounded (the oldest orders leave first): the journal keeps every order's stamps; this only saves
    the hot path a read. ``get`` on an order placed by another process, or one that has left, is None.
    """

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self._stamps: OrderedDict[str, Stamps] = OrderedDict()

    def start(self, client_order_id: str, stamps: Stamps | None = None) -> Stamps:
        """Track ``client_order_id`` from ``stamps`` (or an intent now) and return its stamps."""
        stamps = stamps if stamps is not None else Stamps.started()
        self._stamps[client_order_id] = stamps
        if len(self._stamps) > self.limit:
            self._stamps.popitem(last=False)
        return stamps

    def get(self, client_order_id: str | None) -> Stamps | None:
        return None if client_order_id is None else self._stamps.get(client_order_id)

    def mark(self, client_order_id: str | None, stage: str, at: int | None = None) -> Stamps | None:
        """Record ``stage`` of a tracked order; the stamps if that changed them, else None."""
        stamps = self.get(client_order_id)
        if stamps is not None and stamps.mark(stage, at):
            return stamps
        return None

    def known(self, client_order_id: str, stored: Stamps | None) -> Stamps | None:
        """What this object and the journal (``stored``: the row's stamps) know of an order, together."""
        live = self._stamps.get(client_order_id)
        if live is None:
            return stored
        live.merge(stored)
        return live

    def metrics(self, client_order_id: str | None, stored: Stamps | None) -> dict[str, float | None]:
        """``order['info']['latency']`` of an order (all ``None`` for one placed without stamps)."""
        return metrics(stored if client_order_id is None else self.known(client_order_id, stored))

    def fill_seen(self, client_order_id: str, stored: Stamps | None) -> Stamps | None:
        """A read of the broker's books showed the order (partly) filled: the stamps to journal if that
        is its first fill known, else None. Stamped now, i.e. when this library learned of it (a polled
        broker tells it no sooner); never for an order placed without stamps (older rows, other tools):
        a fill seen hours late would read as hours of latency."""
        known = self.known(client_order_id, stored)
        if known is None or known.first_fill is not None:
            return None
        if client_order_id not in self._stamps:
            known = known.copy()  # the row's stamps: not tracked here, the journal keeps them
        known.fill()
        return known

    def __len__(self) -> int:
        return len(self._stamps)
