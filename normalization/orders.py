"""Order arguments checked before anything reaches a broker.

Both adapters refuse bad input with the same words and the same ccxt class (``InvalidOrder``),
so a bot's error handling does not depend on the venue. Pure functions: the adapters pass in the
market's step sizes and limits.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache

from ccxt.base.errors import InvalidOrder


def positive_number(value: object, what: str, exchange_id: str) -> float:
    """``value`` as a finite float > 0; ``None``, booleans, NaN, inf, zero and negatives are refused."""
    if value.__class__ is float or value.__class__ is int:  # the hot path: one check, no conversion
        number = float(value)  # type: ignore[arg-type]
    elif isinstance(value, bool) or value is None:
        raise InvalidOrder(_not_positive(value, what, exchange_id))
    else:
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise InvalidOrder(_not_positive(value, what, exchange_id)) from None
    if not math.isfinite(number) or number <= 0:
        raise InvalidOrder(_not_positive(value, what, exchange_id))
    return number


def _not_positive(value: object, what: str, exchange_id: str) -> str:
    return f"{exchange_id} {what} must be a positive finite number, got {value!r}"


def is_on_step(value: float, step: float) -> bool:
    """True when ``value`` is a whole number of ``step`` in decimal terms (0.3 is on 0.1).

    Decimal arithmetic is the reference, but it runs before every send, so the usual case is decided in
    integers: ``step`` is ``m / 10**d`` exactly, and ``value`` is on it iff the multiple nearest to it,
    ``k * m / 10**d`` (a correctly rounded division of integers), is ``value`` itself. That is exact
    while ``k * m`` has at most 15 digits -- two decimals that short are never the same double -- and
    beyond that the decimal reference decides.
    """
    if not step:
        return True
    m, scale = _step_fraction(step)
    k = round(value * scale / m)
    if abs(k) * m < _EXACT_DIGITS:
        return (k * m) / scale == value
    return _is_on_step_decimal(value, step)


_EXACT_DIGITS = 10**15


@lru_cache(maxsize=1024)
def _step_fraction(step: float) -> tuple[int, int]:
    """``step`` as ``(m, 10**d)`` with ``step == m / 10**d`` in decimal (its shortest repr)."""
    sign, digits, exponent = Decimal(repr(step)).as_tuple()
    m = int("".join(map(str, digits)) or "0") * (-1 if sign else 1)
    assert isinstance(exponent, int)  # a finite step
    if exponent >= 0:
        return m * 10**exponent, 1
    return m, 10**-exponent


def _is_on_step_decimal(value: float, step: float) -> bool:
    try:
        steps = Decimal(repr(value)) / Decimal(repr(step))
    except InvalidOperation:  # pragma: no cover - finite numbers always divide
        return False
    return steps == steps.to_integral_value()


def truncate_to_step(value: float, step: float | None) -> float:
    """``value`` cut down to a whole number of ``step``, in decimal arithmetic (0.3 on 0.1 stays 0.3).

    What ccxt's ``amount_to_precision`` does for TICK_SIZE markets, without its string machinery: this
    runs on every order, before the send, and an amount already on the step (the usual case) is
    returned as it is.
    """
    if not step or is_on_step(value, step):
        return value
    unit = Decimal(repr(step))
    return float((Decimal(repr(value)) // unit) * unit)


def require_on_step(value: float, step: float | None, what: str, symbol: str, exchange_id: str, hint: str) -> None:
    if step and not is_on_step(value, step):
        raise InvalidOrder(f"{exchange_id} {what} {value:g} is not a multiple of {step:g} for {symbol}; {hint}")


def require_within(
    value: float, minimum: float | None, maximum: float | None, what: str, symbol: str, exchange_id: str
) -> None:
    if minimum is not None and value < minimum and not math.isclose(value, minimum, rel_tol=1e-9):
        raise InvalidOrder(f"{exchange_id} {what} {value:g} is below the minimum {minimum:g} for {symbol}")
    if maximum is not None and value > maximum and not math.isclose(value, maximum, rel_tol=1e-9):
        raise InvalidOrder(f"{exchange_id} {what} {value:g} is above the maximum {maximum:g} for {symbol}")


def round_to_step(value: float, step: float | None) -> float:
    """``value`` rounded to the nearest whole number of ``step`` (halves away from zero), in decimal terms:
    ccxt's ``price_to_precision`` (ROUND, TICK_SIZE). A price already on the tick comes back as it is."""
    if not step or is_on_step(value, step):
        return value
    unit = Decimal(repr(step))
    steps = (Decimal(repr(value)) / unit).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return float(steps * unit)


def amount_on_grid(value: float, step: float | None, symbol: str, exchange_id: str, strict: bool,
                   what: str = "amount") -> float:
    """An amount on the market's size increment, as ccxt exchanges send it: truncated (ccxt's
    ``amount_to_precision``), or refused when ``strict`` (``options['strictPrecision']``)."""
    if strict:
        require_on_step(value, step, what, symbol, exchange_id, "use amount_to_precision() to truncate it")
        return value
    quantity = truncate_to_step(value, step)
    if quantity <= 0:
        raise InvalidOrder(f"{exchange_id} {what} {value:g} is less than one size increment ({step:g}) of {symbol}")
    return quantity


def price_on_grid(value: float, tick: float | None, symbol: str, exchange_id: str, strict: bool,
                  what: str = "price") -> float:
    """A price on the market's tick, as ccxt exchanges send it: rounded to the nearest tick (ccxt's
    ``price_to_precision``), or refused when ``strict`` (``options['strictPrecision']``)."""
    if strict:
        require_on_step(value, tick, what, symbol, exchange_id, "use price_to_precision() to round it")
        return value
    rounded = round_to_step(value, tick)
    if rounded <= 0:
        raise InvalidOrder(f"{exchange_id} {what} {value:g} rounds to 0 on the tick {tick:g} of {symbol}")
    return rounded
