"""The direct confirm -> order builder must equal ccxt's ``safe_order`` for every confirm it accepts.

``parse_confirm_order`` builds a well-formed confirm itself (every create_order ends there, and
``safe_order``'s generic machinery was a third of the adapter's own time) and hands anything unusual
to the ``safe_order`` path. These tests pin the two together: for any confirm, the fast builder either
declines (``None``) or returns a dict equal to the generic one, key for key; and it does not decline
the shapes the broker really sends, so the speed-up cannot silently vanish.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ccxt_capital
from ccxt_capital.async_support import CapitalTrader as AsyncCapitalTrader
from ccxt_capital.sim import CapitalSimulator
from tests import conformance

SYMBOLS = ["EUR/USD", "AAPL/USD", "GOLD/USD", "BTC/USD"]


@pytest.fixture(scope="module")
def traders() -> Iterator[dict[str, AsyncCapitalTrader]]:
    """Markets loaded from the simulator once: a spot-style and a swap-style exchange (contract sizes)."""
    sim = CapitalSimulator(port=0, rate_limits="off").start()
    faces = []
    try:
        out: dict[str, AsyncCapitalTrader] = {}
        for kind in ("spot", "swap"):
            face = ccxt_capital.CapitalTrader({
                "apiKey": sim.api_key, "login": sim.identifier, "password": sim.password,
                "options": {"baseUrl": sim.base_url, "journal": None, "symbols": SYMBOLS, "defaultType": kind,
                            "clock": sim.clock.now, "pacing": False},
            })
            faces.append(face)
            face.load_markets()
            face.fetch_time()  # logged in: the account currency is known to the fee
            out[kind] = face.impl
        yield out
    finally:
        for face in faces:
            face.close()
        sim.stop()


def canonical(**changes: Any) -> dict[str, Any]:
    confirm = {
        "date": "2024-03-05T15:00:00.000", "dateUTC": "2024-03-05T15:00:00.000",
        "dealReference": "o_6c1f", "epic": "EURUSD", "dealStatus": "ACCEPTED", "level": 1.0852, "size": 1000.0,
        "direction": "BUY", "guaranteedStop": False, "trailingStop": False, "stopLevel": None, "profitLevel": None,
        "status": "OPEN", "dealId": "e443df78", "affectedDeals": [{"dealId": "e443df78", "status": "OPENED"}],
    }
    confirm.update(changes)
    return confirm


CANONICAL = [
    ("market buy filled", canonical(), None),
    ("market sell closing", canonical(direction="SELL", status="CLOSED"), None),
    ("market with stop and profit", canonical(stopLevel=1.08, profitLevel=1.09), None),
    ("market rejected", canonical(dealStatus="REJECTED", rejectReason="INSUFFICIENT_FUNDS", level=None), None),
    ("integer sizes and levels", canonical(epic="AAPL", size=10, level=184), None),
    ("limit resting", canonical(epic="AAPL", size=2, level=150.0), "limit"),
    ("stop resting", canonical(epic="AAPL", size=1, level=140.5), "stop"),
    ("working order deleted", canonical(epic="AAPL", size=1, level=140.5, status="DELETED"), "limit"),
    ("unknown epic", canonical(epic="NOPE"), None),
]


@pytest.mark.parametrize("kind", ["spot", "swap"])
@pytest.mark.parametrize("name, confirm, working", CANONICAL, ids=[c[0] for c in CANONICAL])
def test_real_confirms_take_the_fast_path_and_equal_safe_order(traders: dict[str, AsyncCapitalTrader], kind: str,
                                                               name: str, confirm: dict[str, Any],
                                                               working: str | None) -> None:
    ex = traders[kind]
    market = ex.market_by_epic(confirm["epic"])
    for given_market in (market, None):
        fast = ex._confirm_order_fast(confirm, given_market, working)
        assert fast is not None, name
        assert fast == ex._confirm_order_generic(confirm, given_market, working)
        assert ex.parse_confirm_order(confirm, given_market, working) == fast
    if market is not None:
        conformance.check_order(ex, fast, market["symbol"])


NUMBERS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 10**7),
    st.builds(lambda units, places: units / 10**places, st.integers(0, 10**9), st.integers(0, 8)),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["1.5", "", "abc"]),
)
CONFIRMS = st.fixed_dictionaries(
    {},
    optional={
        "dateUTC": st.sampled_from([None, "", "2024-03-05T15:00:00.000", "2024-03-05T15:00:00",
                                    "2024-03-05T15:00:00.123Z", "2024-03-05T15:00:00.5", "2024-03-05 15:00",
                                    "garbage", "1969-12-31T23:59:59.999"]),
        "date": st.sampled_from([None, "2024-03-05T16:00:00.000"]),
        "dealReference": st.sampled_from([None, "", "o_abc", 7]),
        "epic": st.sampled_from([None, "", "EURUSD", "AAPL", "BTCUSD", "GOLD", "NOPE"]),
        "dealStatus": st.sampled_from([None, "ACCEPTED", "REJECTED", "PENDING", "accepted", 5]),
        "status": st.sampled_from([None, "OPEN", "OPENED", "AMENDED", "DELETED", "CLOSED", "PARTIALLY_CLOSED",
                                   "FULLY_CLOSED", "EXPIRED", "weird"]),
        "direction": st.sampled_from([None, "BUY", "SELL", "HOLD", ""]),
        "size": NUMBERS,
        "level": NUMBERS,
        "stopLevel": NUMBERS,
        "profitLevel": NUMBERS,
        "dealId": st.sampled_from([None, "d1"]),
    },
)


@settings(max_examples=400)
@given(confirm=CONFIRMS, working=st.sampled_from([None, "market", "limit", "stop"]), with_market=st.booleans(),
       kind=st.sampled_from(["spot", "swap"]))
def test_the_fast_builder_declines_or_equals_safe_order(traders: dict[str, AsyncCapitalTrader],
                                                         confirm: dict[str, Any], working: str | None,
                                                         with_market: bool, kind: str) -> None:
    ex = traders[kind]
    market = ex.market_by_epic(confirm.get("epic")) if with_market else None
    fast = ex._confirm_order_fast(confirm, market, working)
    if fast is not None:
        assert fast == ex._confirm_order_generic(confirm, market, working)


PRICES = st.one_of(st.integers(0, 10**6),
                   st.builds(lambda units, places: units / 10**places, st.integers(0, 10**9), st.integers(0, 8)))
WELL_FORMED = st.fixed_dictionaries({
    "dateUTC": st.sampled_from(["2024-03-05T15:00:00.000", "2024-03-05T15:00:00", "2024-12-31T23:59:59.999"]),
    "dealReference": st.just("o_abc"),
    "epic": st.sampled_from(["EURUSD", "AAPL", "BTCUSD", "GOLD"]),
    "dealStatus": st.sampled_from(["ACCEPTED", "REJECTED"]),
    "status": st.sampled_from(["OPEN", "OPENED", "DELETED", "CLOSED", "AMENDED"]),
    "direction": st.sampled_from(["BUY", "SELL"]),
    "size": PRICES.filter(lambda size: size > 0),
    "level": st.one_of(st.none(), PRICES),
    "stopLevel": st.one_of(st.none(), PRICES),
    "profitLevel": st.one_of(st.none(), PRICES),
})


@settings(max_examples=300)
@given(confirm=WELL_FORMED, working=st.sampled_from([None, "limit", "stop"]), with_market=st.booleans(),
       kind=st.sampled_from(["spot", "swap"]))
def test_well_formed_confirms_are_built_directly_and_equal_safe_order(
        traders: dict[str, AsyncCapitalTrader], confirm: dict[str, Any], working: str | None, with_market: bool,
        kind: str) -> None:
    ex = traders[kind]
    market = ex.market_by_epic(confirm["epic"]) if with_market else None
    fast = ex._confirm_order_fast(confirm, market, working)
    assert fast is not None
    assert fast == ex._confirm_order_generic(confirm, market, working)
