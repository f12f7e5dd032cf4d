"""FxConverter: broker quotes, cached with a TTL, inverted and triangulated, equity in base currency."""

from __future__ import annotations

import asyncio

import ccxt
import pytest

from normalization.runtime.fx import FxConverter, FxRateUnavailable


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Broker:
    """Quotes only the conventional direction, like a real FX venue."""

    def __init__(self, quotes: dict[tuple[str, str], float]) -> None:
        self.quotes = dict(quotes)
        self.asked: list[tuple[str, str]] = []

    async def quote(self, base: str, quote: str) -> float | None:
        self.asked.append((base, quote))
        await asyncio.sleep(0)  # let concurrent callers overlap
        return self.quotes.get((base, quote))


async def test_equity_in_aud_hand_computed() -> None:
    """AUD account holding USD 10,000 and AUD 5,000 at AUD/USD 0.6500:
    10,000 / 0.65 = 15,384.615384..., plus 5,000 = 20,384.615384... AUD."""
    broker = Broker({("AUD", "USD"): 0.65})
    fx = FxConverter(broker.quote, ttl_seconds=60, clock=Clock())
    equity = await fx.equity_in("AUD", {"USD": 10_000.0, "AUD": 5_000.0, "EUR": 0.0, "GBP": None})
    assert equity == pytest.approx(20_384.615384615, rel=1e-12)
    assert broker.asked == [("AUD", "USD")]  # conventional order asked first; zero balances not quoted
    assert await fx.convert(650.0, "AUD", "USD") == pytest.approx(422.5)


async def test_inverse_when_broker_lists_other_direction_and_ttl_cache() -> None:
    clock = Clock()
    broker = Broker({("USD", "JPY"): 150.0})
    fx = FxConverter(broker.quote, ttl_seconds=30, clock=clock)
    assert await fx.rate("JPY", "USD") == pytest.approx(1 / 150)
    assert await fx.rate("usd", "jpy") == 150.0
    assert broker.asked == [("USD", "JPY")]
    clock.t += 29.9
    await fx.rate("JPY", "USD")
    assert len(broker.asked) == 1
    clock.t += 0.2  # expired: asked again
    broker.quotes[("USD", "JPY")] = 151.0
    assert await fx.rate("USD", "JPY") == 151.0 and len(broker.asked) == 2


async def test_unconventional_direction_falls_back_and_misses_are_remembered() -> None:
    clock = Clock()
    broker = Broker({("USD", "AUD"): 1 / 0.65})  # a venue listing it the other way round
    fx = FxConverter(broker.quote, ttl_seconds=60, clock=clock)
    assert await fx.rate("AUD", "USD") == pytest.approx(0.65)
    assert broker.asked == [("AUD", "USD"), ("USD", "AUD")]
    await fx.rate("AUD", "USD")
    assert len(broker.asked) == 2  # the missing AUD/USD is not asked again within the TTL


async def test_triangulates_through_usd() -> None:
    """AUD->SEK with no AUD/SEK pair: AUD/USD 0.65 x USD/SEK 10.5 = 6.825."""
    broker = Broker({("AUD", "USD"): 0.65, ("USD", "SEK"): 10.5})
    fx = FxConverter(broker.quote, clock=Clock())
    assert await fx.rate("AUD", "SEK") == pytest.approx(6.825)
    assert await fx.rate("SEK", "AUD") == pytest.approx(1 / 6.825)


async def test_unavailable_and_bad_quotes() -> None:
    async def quote(base: str, quote: str) -> float | None:
        if (base, quote) == ("EUR", "USD"):
            raise ccxt.BadSymbol("no such pair")
        if (base, quote) == ("USD", "EUR"):
            return 0.0  # a broker without a quote
        raise LookupError(base + quote)

    fx = FxConverter(quote, clock=Clock())
    with pytest.raises(FxRateUnavailable, match="EUR/USD"):
        await fx.rate("EUR", "USD")
    assert isinstance(FxRateUnavailable("x"), ccxt.ExchangeError)
    assert await fx.rate("XAU", "XAU") == 1.0


async def test_network_errors_propagate_and_are_not_cached() -> None:
    calls = 0

    async def quote(base: str, quote: str) -> float:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ccxt.NetworkError("down")
        return 0.9

    fx = FxConverter(quote, clock=Clock())
    with pytest.raises(ccxt.NetworkError):
        await fx.rate("EUR", "USD")
    assert await fx.rate("EUR", "USD") == 0.9


async def test_concurrent_callers_share_one_request_and_refresh() -> None:
    broker = Broker({("EUR", "USD"): 1.08})
    fx = FxConverter(broker.quote, clock=Clock())
    rates = await asyncio.gather(*(fx.rate("EUR", "USD") for _ in range(5)))
    assert rates == [1.08] * 5 and broker.asked == [("EUR", "USD")]
    broker.quotes[("EUR", "USD")] = 1.09
    await fx.refresh()
    assert await fx.rate("USD", "EUR") == pytest.approx(1 / 1.09)
    assert fx.requests == 2
    fx.invalidate()
    await fx.rate("EUR", "USD")
    assert fx.requests == 3
