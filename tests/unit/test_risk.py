"""Pre-trade limits: configuration (options and environment) and each rule's verdict and message."""

from __future__ import annotations

import asyncio
from typing import Any

import ccxt
import pytest

from normalization.risk import OrderFacts, instrument_kinds
from normalization.runtime.risk import RiskGate, risk_limits

STOCK = {"symbol": "AAPL/USD", "type": "spot", "quote": "USD", "contractSize": None,
         "info": {"secType": "STK", "conId": 265598}}
CFD = {"symbol": "GOLD/USD", "type": "spot", "quote": "USD", "info": {"instrument": {"type": "COMMODITIES"}}}


class Sources:
    """The adapter's answers, counted: a rule that is not configured must not ask."""

    def __init__(self, quote: float | None = 100.0, position: float = 0.0, open_orders: int = 0,
                 today: int = 0, rates: dict[tuple[str, str], float] | None = None) -> None:
        self.quote, self.position, self.open_orders, self.today = quote, position, open_orders, today
        self.rates = rates or {}
        self.asked: list[str] = []

    async def risk_fx_rate(self, base: str, quote: str) -> float | None:
        self.asked.append(f"fx {base}/{quote}")
        return self.rates.get((base, quote))

    async def risk_quote(self, market: Any) -> float | None:
        self.asked.append("quote")
        return self.quote

    async def risk_position(self, market: Any) -> float:
        self.asked.append("position")
        return self.position

    async def risk_open_orders(self) -> int:
        self.asked.append("open_orders")
        return self.open_orders

    async def risk_orders_today(self) -> int:
        self.asked.append("orders_today")
        return self.today


def check(risk: dict[str, Any], sources: Sources, *, side: str = "buy", amount: float = 10, price: float | None = None,
          limit: float | None = None, reduce_only: bool = False, market: dict[str, Any] = STOCK) -> None:
    gate = RiskGate("ibkr", risk_limits("ibkr", risk, env={}))
    asyncio.run(gate.check(sources, market, side, amount, price, limit, reduce_only))


def refused(risk: dict[str, Any], sources: Sources | None = None, **kw: Any) -> str:
    with pytest.raises(ccxt.InvalidOrder) as info:
        check(risk, sources or Sources(), **kw)
    return str(info.value)


# ---------------------------------------------------------------------------------------- config


def test_no_limits_ask_nothing() -> None:
    sources = Sources()
    check({}, sources, amount=1e9)
    assert sources.asked == []


def test_env_json_and_per_key_variables_merge_under_options() -> None:
    env = {"CCXT_BROKERS_RISK": '{"maxOrderAmount": 5, "denySymbols": ["GME/USD"]}',
           "CCXT_BROKERS_RISK_MAX_ORDER_NOTIONAL": "50000",
           "CCXT_BROKERS_RISK_ALLOW_TYPES": "stock, forex",
           "CCXT_BROKERS_RISK_MAX_POSITION_AMOUNT": '{"AAPL/USD": 100, "*": 10}'}
    limits = risk_limits("ibkr", {"maxOrderAmount": 7}, env)
    assert limits.max_order_amount is not None and limits.max_order_amount.get("X/USD") == 7
    assert limits.max_order_notional is not None and limits.max_order_notional.get("X/USD") == 50000
    assert limits.deny_symbols == {"GME/USD"}
    assert limits.allow_types == {"stock", "forex"}
    assert limits.max_position_amount is not None
    assert limits.max_position_amount.get("AAPL/USD") == 100 and limits.max_position_amount.get("MSFT/USD") == 10


@pytest.mark.parametrize(("risk", "env", "words"), [
    ({"maxOrderNotionl": 1}, {}, "'maxOrderNotionl' is unknown"),
    ({"maxOrderAmount": -1}, {}, "maxOrderAmount must be a positive finite number"),
    ({"maxOrderAmount": {"AAPL/USD": "lots"}}, {}, "maxOrderAmount['AAPL/USD'] must be a positive finite number"),
    ({"maxOpenOrders": 2.5}, {}, "maxOpenOrders must be a whole number"),
    ({"priceCollarPct": 150}, {}, "percentage below 100"),
    ({"allowTypes": ["stocks"]}, {}, "unknown instrument kind 'stocks'"),
    ({"allowSymbols": ["A/USD"], "denySymbols": ["A/USD"]}, {}, "both allowed"),
    ("tight", {}, "options['risk'] must be a dict"),
    (None, {"CCXT_BROKERS_RISK": "{not json"}, "CCXT_BROKERS_RISK is not JSON"),
    (None, {"CCXT_BROKERS_RISK_MAX_ORDERS": "3"}, "CCXT_BROKERS_RISK_MAX_ORDERS is not a risk limit"),
])
def test_bad_configuration_fails_naming_the_key(risk: Any, env: dict[str, str], words: str) -> None:
    with pytest.raises(ccxt.BadRequest) as info:
        risk_limits("ibkr", risk, env)
    assert words in str(info.value)


# ---------------------------------------------------------------------------------------- rules


def test_max_order_notional_values_a_market_order_at_the_quote() -> None:
    message = refused({"maxOrderNotional": 900}, Sources(quote=100.0), amount=10)
    assert "maxOrderNotional: notional 1,000.00 USD (10 x 100) exceeds the limit 900.00 USD for AAPL/USD" in message
    check({"maxOrderNotional": 1000}, Sources(quote=100.0), amount=10)


def test_max_order_notional_per_symbol_and_limit_price() -> None:
    risk = {"maxOrderNotional": {"AAPL/USD": 500, "*": 10_000}}
    sources = Sources()
    assert "limit 500.00 USD" in refused(risk, sources, amount=10, price=60.0, limit=60.0)
    assert "quote" not in sources.asked  # the limit price values it: no quote asked
    check(risk, Sources(), amount=10, price=60.0, limit=60.0, market={**STOCK, "symbol": "MSFT/USD"})


def test_max_order_notional_fails_closed_without_a_quote() -> None:
    assert "no price or quote for AAPL/USD" in refused({"maxOrderNotional": 1e6}, Sources(quote=None))


def test_max_order_notional_in_a_named_currency_is_converted_at_the_broker_rate() -> None:
    risk = {"maxOrderNotional": 1000, "notionalCurrency": "EUR"}
    sources = Sources(rates={("USD", "EUR"): 0.9})
    message = refused(risk, sources, amount=10, price=120.0, limit=120.0)  # 1,200 USD = 1,080 EUR
    assert "maxOrderNotional: notional 1,080.00 EUR (10 x 120 USD at 0.9 EUR/USD) exceeds the limit 1,000.00 EUR" \
        in message
    assert sources.asked[0] == "fx USD/EUR" and "quote" not in sources.asked  # the limit price values it
    check(risk, Sources(rates={("USD", "EUR"): 0.9}), amount=10, price=110.0, limit=110.0)  # 990 EUR
    same = Sources()
    check({"maxOrderNotional": 1000, "notionalCurrency": "usd"}, same, amount=10, price=100.0, limit=100.0)
    assert same.asked == []  # the market's own currency: no rate asked


def test_max_order_notional_in_a_named_currency_refuses_without_a_rate() -> None:
    message = refused({"maxOrderNotional": 1e9, "notionalCurrency": "SEK"}, Sources(), amount=1, price=1.0, limit=1.0)
    assert "maxOrderNotional 1e+09 SEK: no FX rate from USD to SEK known to value the order with" in message


@pytest.mark.parametrize(("risk", "words"), [
    ({"notionalCurrency": "EUR"}, "notionalCurrency names the currency of maxOrderNotional"),
    ({"maxOrderNotional": 5, "notionalCurrency": "euro!"}, "notionalCurrency must be a currency code"),
    ({"maxOrderNotional": 5, "notionalCurrency": 5}, "notionalCurrency must be a currency code"),
])
def test_notional_currency_configuration(risk: dict[str, Any], words: str) -> None:
    with pytest.raises(ccxt.BadRequest, match=words):
        risk_limits("ibkr", risk, env={})
    assert risk_limits("ibkr", None, env={"CCXT_BROKERS_RISK_NOTIONAL_CURRENCY": "eur",
                                         "CCXT_BROKERS_RISK_MAX_ORDER_NOTIONAL": "100"}).notional_currency == "EUR"


def test_max_order_amount() -> None:
    assert "maxOrderAmount: amount 11 AAPL/USD exceeds the limit 10" in refused({"maxOrderAmount": 10}, amount=11)
    check({"maxOrderAmount": 10}, Sources(), amount=10)


def test_max_position_amount_counts_the_position_after_the_fill() -> None:
    message = refused({"maxPositionAmount": 100}, Sources(position=95), amount=10)
    assert "maxPositionAmount: position 95 AAPL/USD would become 105, beyond the limit 100" in message
    check({"maxPositionAmount": 100}, Sources(position=-95), amount=10)  # buying back a short


def test_symbols_and_kinds() -> None:
    assert "allowSymbols: AAPL/USD is not in the allowed symbols (MSFT/USD)" in refused({"allowSymbols": ["MSFT/USD"]})
    assert "denySymbols: AAPL/USD is denied" in refused({"denySymbols": ["AAPL/USD"]})
    kinds = refused({"allowTypes": ["forex"]})
    assert "allowTypes: AAPL/USD is spot/stock, not one of the allowed kinds (forex)" in kinds
    check({"allowTypes": ["stock"]}, Sources())
    check({"allowTypes": ["cfd"]}, Sources(), market=CFD)
    assert instrument_kinds(CFD) == {"spot", "cfd", "commodity"}


def test_counts() -> None:
    assert "maxOpenOrders: 3 open orders, one more would exceed the limit 3" in refused(
        {"maxOpenOrders": 3}, Sources(open_orders=3))
    check({"maxOpenOrders": 3}, Sources(open_orders=2))
    assert "maxOrdersPerDay: 5 orders placed today (UTC), one more would exceed the limit 5" in refused(
        {"maxOrdersPerDay": 5}, Sources(today=5))


def test_price_collar() -> None:
    message = refused({"priceCollarPct": 5}, Sources(quote=100.0), price=110.0, limit=110.0)
    assert "priceCollarPct: limit price 110 is 10.00% from the last quote 100 for AAPL/USD, more than 5%" in message
    check({"priceCollarPct": 5}, Sources(quote=100.0), price=104.0, limit=104.0)
    sources = Sources()
    check({"priceCollarPct": 5}, sources)  # a market order has no limit price to collar
    assert sources.asked == []


def test_every_breach_is_named_once() -> None:
    message = refused({"maxOrderAmount": 1, "denySymbols": ["AAPL/USD"]}, amount=2)
    assert message.startswith("ibkr risk limit refused buy 2 AAPL/USD: ")
    assert "denySymbols" in message and "maxOrderAmount" in message


# ---------------------------------------------------------------------------------------- closing orders


CLOSED_OFF = {"maxOrderNotional": 1, "maxOrderAmount": 1, "maxPositionAmount": 1, "denySymbols": ["AAPL/USD"],
              "allowTypes": ["forex"], "maxOpenOrders": 1, "maxOrdersPerDay": 1}


@pytest.mark.parametrize(("held", "side"), [(50.0, "sell"), (-50.0, "buy")])
def test_a_closing_order_passes_every_exposure_limit(held: float, side: str) -> None:
    check(CLOSED_OFF, Sources(position=held, open_orders=9, today=99), side=side, amount=50)


def test_reduce_only_passes_without_asking_the_position() -> None:
    sources = Sources(position=0, open_orders=9, today=99)
    check({k: v for k, v in CLOSED_OFF.items() if k != "maxPositionAmount"}, sources, side="sell", reduce_only=True)
    assert "position" not in sources.asked


def test_an_order_that_flips_the_position_is_not_closing() -> None:
    assert "maxOrderAmount" in refused({"maxOrderAmount": 60}, Sources(position=50), side="sell", amount=120)


def test_the_collar_still_applies_to_a_closing_order() -> None:
    message = refused({"priceCollarPct": 5, "maxOrderAmount": 1}, Sources(quote=100.0, position=50), side="sell",
                      amount=50, price=50.0, limit=50.0)
    assert "priceCollarPct" in message and "maxOrderAmount" not in message


def test_position_asked_only_when_a_limit_is_breached() -> None:
    sources = Sources()
    check({"maxOrderAmount": 100}, sources, amount=10)
    assert sources.asked == []
    refused({"maxOrderAmount": 1}, sources, amount=10)
    assert sources.asked == ["position"]


def test_facts_default_to_unknown() -> None:
    facts = OrderFacts(symbol="A/USD", kinds=frozenset({"spot"}), side="buy", amount=1)
    assert facts.position is None and facts.quote is None
