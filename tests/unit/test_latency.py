"""Per-order latency stamps and metrics (normalization.runtime.latency): pure functions, no clock waits."""

from __future__ import annotations

import time

from normalization.runtime.latency import METRICS, LatencyBook, Stamps, metrics, now


def test_stamps_read_as_epoch_nanoseconds_on_a_monotonic_clock() -> None:
    first, second = now(), now()
    assert second >= first
    assert abs(first - time.time_ns()) < 5_000_000_000  # the wall-clock scale (anchored once per process)


def test_metrics_of_every_stage_and_of_none() -> None:
    ms = 1_000_000
    assert metrics(Stamps(0, 1 * ms, 3 * ms, 6 * ms, 10 * ms)) == {
        "intent_to_submit_ms": 1.0, "submit_to_ack_ms": 2.0, "ack_to_first_fill_ms": 3.0,
        "ack_to_last_fill_ms": 7.0, "total_ms": 10.0}
    assert metrics(None) == dict.fromkeys(METRICS)
    rejected = metrics(Stamps(0, ms, 2 * ms))  # acknowledged (refused), never filled
    assert rejected == {"intent_to_submit_ms": 1.0, "submit_to_ack_ms": 1.0, "ack_to_first_fill_ms": None,
                        "ack_to_last_fill_ms": None, "total_ms": 2.0}
    assert metrics(Stamps(5))["total_ms"] is None


def test_stages_keep_their_first_value_and_fills_their_ends() -> None:
    stamps = Stamps(10)
    assert stamps.mark("submit", 20) and not stamps.mark("submit", 25)
    assert stamps.fill(40)  # a fill before any ack: the broker had the order by then
    assert stamps.values() == (10, 20, 40, 40, 40)
    assert not stamps.mark("ack", 30)  # the ack came with the fill already
    assert stamps.fill(60) and not stamps.fill(50)
    assert stamps.values() == (10, 20, 40, 40, 60)


def test_stages_never_read_earlier_than_the_one_before() -> None:
    merged = Stamps(100, 200)
    assert merged.merge(Stamps(ack=150, first_fill=90, last_fill=90))  # another process's clock, behind
    intent, submit, ack, first, last = merged.values()
    assert intent <= submit <= ack <= first <= last
    assert all(v >= 0 for v in merged.metrics().values() if v is not None)
    assert not merged.merge(None)


def test_the_book_is_bounded_and_marks_only_what_it_tracks() -> None:
    book = LatencyBook(limit=2)
    book.start("a")
    book.start("b", Stamps(1))
    book.start("c")
    assert book.get("a") is None and len(book) == 2
    assert book.mark("b", "submit", 2) is not None and book.mark("b", "submit", 3) is None
    assert book.mark("zzz", "ack") is None and book.get(None) is None
