"""GET /prices bars -> ccxt rows: the fast mid rounding equals ``round(mid, 10)`` on prices, the time of
day comes out as the general parser reads it, and the broken bars still go the lenient way."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ccxt_capital.parsing import _utc_ms, parse_capital_bars

#: A broker price: a whole number of 10**-places, up to beyond the fast path's bound (~900,719).
PRICES = st.builds(lambda units, places: units / 10**places, st.integers(-10**12, 10**13), st.integers(0, 8))


def bar(stamp: str, prices: list[float], volume: Any = 7) -> dict[str, Any]:
    names = ("openPrice", "highPrice", "lowPrice", "closePrice")
    sides = [{"bid": prices[2 * i], "ask": prices[2 * i + 1]} for i in range(4)]
    return {"snapshotTimeUTC": stamp, **dict(zip(names, sides, strict=True)), "lastTradedVolume": volume}


@settings(max_examples=400)
@given(prices=st.lists(PRICES, min_size=8, max_size=8), hour=st.integers(0, 23), minute=st.integers(0, 59))
def test_mid_bars_equal_round_to_ten_decimals(prices: list[float], hour: int, minute: int) -> None:
    # high and low as the broker sends them: the extremes of the bar
    mids = [(prices[2 * i] + prices[2 * i + 1]) * 0.5 for i in range(4)]
    order = sorted(range(4), key=lambda i: mids[i])
    pairs = [prices[2 * i: 2 * i + 2] for i in range(4)]
    o, low, c, h = pairs[order[1]], pairs[order[0]], pairs[order[2]], pairs[order[3]]
    stamp = f"2024-03-05T{hour:02d}:{minute:02d}:00"
    [row] = parse_capital_bars([bar(stamp, [*o, *h, *low, *c])])
    expected = [round((side[0] + side[1]) * 0.5, 10) for side in (o, h, low, c)]
    assert row == [_utc_ms(stamp), *expected, 7.0]


def test_times_and_sides() -> None:
    stamps = ["2024-03-05T00:00:00", "2024-03-05T23:59:00.000", "2024-03-06T09:30:00Z", "2024-03-06T09:30:00.250"]
    rows = parse_capital_bars([bar(s, [1.0, 1.2, 1.1, 1.3, 0.9, 1.1, 1.0, 1.2]) for s in stamps], "ask")
    assert [r[0] for r in rows] == [_utc_ms(s.removesuffix("Z")) for s in stamps]
    assert rows[0][1:] == [1.2, 1.3, 1.1, 1.2, 7.0]


def test_broken_bars_take_the_lenient_path_or_are_skipped() -> None:
    one_sided = bar("2024-03-05T10:00:00", [1.0, 1.2, 1.1, 1.3, 0.9, 1.1, 1.0, 1.2], volume=None)
    one_sided["openPrice"] = {"bid": 1.0}
    rows = parse_capital_bars([one_sided, {"snapshotTimeUTC": "2024-03-05T10:01:00"}, "junk",
                               bar("2024-03-05T1x:02:00", [1.0] * 8)])
    assert rows == [[_utc_ms("2024-03-05T10:00:00"), 1.0, 1.2, 1.0, 1.1, None]]
