from __future__ import annotations

from decimal import Decimal

import ccxt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from normalization.orders import is_on_step, positive_number, require_on_step, require_within, truncate_to_step


@pytest.mark.parametrize("bad", [None, True, 0, -1, float("nan"), float("inf"), "ten", [1]])
def test_positive_number_refuses_what_no_broker_accepts(bad: object) -> None:
    with pytest.raises(ccxt.InvalidOrder, match="amount must be a positive finite number"):
        positive_number(bad, "amount", "ibkr")


def test_positive_number_accepts_numbers_and_numeric_strings() -> None:
    assert positive_number(10, "amount", "x") == 10.0
    assert positive_number("2.5", "amount", "x") == 2.5


@given(st.integers(1, 10**6), st.sampled_from([0.01, 0.25, 0.1, 1.0, 0.00001]))
def test_whole_steps_are_on_step(n: int, step: float) -> None:
    assert is_on_step(float(f"{n * step:.10g}"), step)


def test_off_step_and_limits() -> None:
    assert not is_on_step(190.123, 0.01)
    assert is_on_step(0.3, 0.1)
    with pytest.raises(ccxt.InvalidOrder, match="not a multiple of 0.01"):
        require_on_step(190.123, 0.01, "price", "AAPL/USD", "ibkr", "round it")
    with pytest.raises(ccxt.InvalidOrder, match="below the minimum 1"):
        require_within(0.5, 1.0, None, "amount", "AAPL/USD", "ibkr")
    with pytest.raises(ccxt.InvalidOrder, match="above the maximum 100"):
        require_within(101, 1.0, 100.0, "amount", "AAPL/USD", "ibkr")
    require_within(1.0, 1.0, 100.0, "amount", "AAPL/USD", "ibkr")


def _decimal_on_step(value: float, step: float) -> bool:
    steps = Decimal(repr(value)) / Decimal(repr(step))
    return steps == steps.to_integral_value()


STEPS = st.sampled_from([0.01, 0.05, 0.25, 0.1, 1.0, 5.0, 0.00001, 0.0001, 0.5, 1e-8, 25.0, 0.005, 100.0])
PRICES = st.one_of(
    st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("1000000"), places=8).map(float),
    st.floats(min_value=1e-9, max_value=1e9, allow_nan=False, allow_infinity=False),  # messy binary floats
    st.integers(1, 10**12).map(float),
)


@given(PRICES, STEPS)
def test_is_on_step_agrees_with_decimal_arithmetic(value: float, step: float) -> None:
    """The integer fast path decides exactly what decimal arithmetic decides, messy floats included."""
    assert is_on_step(value, step) == _decimal_on_step(value, step)


@given(PRICES, STEPS)
def test_truncate_to_step_agrees_with_decimal_arithmetic(value: float, step: float) -> None:
    unit = Decimal(repr(step))
    assert truncate_to_step(value, step) == float((Decimal(repr(value)) // unit) * unit)
