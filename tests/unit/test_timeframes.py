from __future__ import annotations

import pytest
from ccxt.base.errors import BadRequest
from hypothesis import given
from hypothesis import strategies as st

from normalization import timeframes as tf


@pytest.mark.parametrize("timeframe", list(tf.IB_BAR_SIZES))
def test_ib_bar_sizes_round_trip(timeframe: str) -> None:
    assert tf.ib_timeframe(tf.ib_bar_size(timeframe)) == timeframe


@pytest.mark.parametrize("timeframe", list(tf.CAPITAL_RESOLUTIONS))
def test_capital_resolutions_round_trip(timeframe: str) -> None:
    assert tf.capital_timeframe(tf.capital_resolution(timeframe)) == timeframe


def test_unsupported_timeframes_are_bad_requests() -> None:
    with pytest.raises(BadRequest, match="not an IB bar size"):
        tf.ib_bar_size("7m")
    with pytest.raises(BadRequest, match="1M by resampling"):
        tf.capital_resolution("1M")
    with pytest.raises(BadRequest):
        tf.timeframe_seconds("1x")
    assert tf.resample_source("capitalcom", "1M") == "1d"
    assert tf.resample_source("capitalcom", "1h") is None


def test_ib_max_durations_follow_the_step_table() -> None:
    assert tf.IB_MAX_DURATION["1 min"] == "1 D"
    assert tf.IB_MAX_DURATION["5 mins"] == "1 W"
    assert tf.IB_MAX_DURATION["1 hour"] == "1 M"
    assert tf.IB_MAX_DURATION["1 day"] == "1 Y"
    assert tf.ib_min_duration_seconds("1 hour") == 3600


@given(st.sampled_from(list(tf.IB_BAR_SIZES.values())), st.integers(1, 10 * tf.YEAR))
def test_ib_duration_is_always_legal_for_its_bar_size(bar_size: str, span: int) -> None:
    duration = tf.ib_duration_for(span, bar_size)
    seconds = tf.duration_seconds(duration)
    assert tf.ib_min_duration_seconds(bar_size) <= seconds <= tf.ib_max_duration_seconds(bar_size)
    # it covers the span unless the span is beyond what one request may ask
    assert seconds >= min(span, tf.ib_max_duration_seconds(bar_size))


@given(st.integers(0, 10**12), st.integers(1, 10**10), st.integers(1, 10**9))
def test_paginate_covers_range_without_overlap(since: int, length: int, step: int) -> None:
    step = max(step, length // 1000)  # keep the window count small
    windows = tf.paginate(since, since + length, step)
    assert windows[0][0] == since and windows[-1][1] == since + length
    assert all(a[1] == b[0] for a, b in zip(windows, windows[1:], strict=False))
    assert all(0 < end - start <= step for start, end in windows)
    assert len(windows) == -(-length // step)


@given(st.sampled_from(["1m", "5m", "1h", "4h", "1d", "1w", "1M"]))
def test_timeframe_seconds_matches_ccxt(timeframe: str) -> None:
    import ccxt

    assert tf.timeframe_seconds(timeframe) == ccxt.Exchange.parse_timeframe(timeframe)
