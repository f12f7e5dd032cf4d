from __future__ import annotations

import pytest
from ccxt.base.errors import BadSymbol
from hypothesis import given
from hypothesis import strategies as st

from normalization.symbols import (
    SymbolParts,
    as_swap,
    build_symbol,
    capital_epic_to_symbol,
    ib_contract_to_symbol,
    parse_symbol,
    symbol_to_capital_epic,
    symbol_to_ib_contract,
)

codes = st.from_regex(r"[A-Z][A-Z0-9]{0,5}", fullmatch=True)
currencies = st.sampled_from(["USD", "EUR", "AUD", "GBP", "JPY"])
expiries = st.builds(
    lambda y, m, d: f"{y:02d}{m:02d}{d:02d}",
    st.integers(0, 99), st.integers(1, 12), st.integers(1, 28),
)


@pytest.mark.parametrize(
    "symbol, parts",
    [
        ("AAPL/USD", SymbolParts("AAPL", "USD")),
        ("BHP/AUD", SymbolParts("BHP", "AUD")),
        ("EUR/USD", SymbolParts("EUR", "USD")),
        ("BRK.B/USD", SymbolParts("BRK.B", "USD")),
        ("AAPL/USD:USD", SymbolParts("AAPL", "USD", "USD")),
        ("ES/USD:USD-251219", SymbolParts("ES", "USD", "USD", "251219")),
        ("AAPL/USD:USD-251219-200-C", SymbolParts("AAPL", "USD", "USD", "251219", "200", "C")),
    ],
)
def test_parse_known_symbols(symbol: str, parts: SymbolParts) -> None:
    assert parse_symbol(symbol) == parts
    assert build_symbol(parts) == symbol


@pytest.mark.parametrize(
    "bad, why",
    [
        ("AAPL", "BASE/QUOTE"),
        ("aapl/usd", "upper case"),
        ("AAPL/", "quote is empty"),
        ("/USD", "base is empty"),
        ("AAPL/USD/EUR", "more than one '/'"),
        ("ES/USD:USD-2512", "YYMMDD"),
        ("ES/USD:USD-251319", "calendar date"),
        ("AAPL/USD:USD-251219-200-X", "C or P"),
        ("AAPL /USD", "spaces"),
        (None, "expected a string"),
        ("A$PL/USD", "characters"),
    ],
)
def test_malformed_symbols_say_what_is_wrong(bad: object, why: str) -> None:
    with pytest.raises(BadSymbol, match=why.replace("(", r"\(").replace("'", ".")):
        parse_symbol(bad)


@given(codes, currencies)
def test_cash_symbols_round_trip(base: str, quote: str) -> None:
    symbol = f"{base}/{quote}"
    assert build_symbol(parse_symbol(symbol)) == symbol


@given(codes, currencies, expiries)
def test_future_symbols_round_trip_through_ib_contracts(base: str, quote: str, expiry: str) -> None:
    symbol = f"{base}/{quote}:{quote}-{expiry}"
    spec = symbol_to_ib_contract(symbol)
    assert spec.sec_type == "FUT" and spec.last_trade_date == "20" + expiry
    back = ib_contract_to_symbol(spec.sec_type, spec.symbol, spec.currency, last_trade_date=spec.last_trade_date)
    assert back == symbol


@given(codes, currencies, expiries, st.integers(1, 5000), st.sampled_from(["C", "P"]))
def test_option_symbols_round_trip_through_ib_contracts(
    base: str, quote: str, expiry: str, strike: int, right: str
) -> None:
    symbol = f"{base}/{quote}:{quote}-{expiry}-{strike}-{right}"
    spec = symbol_to_ib_contract(symbol)
    back = ib_contract_to_symbol(
        spec.sec_type, spec.symbol, spec.currency,
        last_trade_date=spec.last_trade_date, strike=spec.strike, right=spec.right,
    )
    assert back == symbol


@given(codes.filter(lambda c: c not in ("EUR", "USD", "AUD", "GBP", "JPY", "BTC", "ETH")), currencies)
def test_stock_symbols_round_trip_through_ib_contracts(base: str, quote: str) -> None:
    symbol = f"{base}/{quote}"
    spec = symbol_to_ib_contract(symbol)
    assert spec.sec_type == "STK" and spec.exchange == "SMART"
    assert ib_contract_to_symbol(spec.sec_type, spec.symbol, spec.currency) == symbol


def test_ib_contract_kinds() -> None:
    assert symbol_to_ib_contract("EUR/USD").sec_type == "CASH"
    assert symbol_to_ib_contract("EUR/USD").exchange == "IDEALPRO"
    assert symbol_to_ib_contract("BTC/USD").sec_type == "CRYPTO"
    assert symbol_to_ib_contract("BTC/USD").exchange == "PAXOS"
    assert symbol_to_ib_contract("BHP/AUD", default_exchange="ASX").exchange == "ASX"
    assert symbol_to_ib_contract("AAPL/USD:USD").sec_type == "CFD"
    override = symbol_to_ib_contract("SAP/EUR", overrides={"SAP/EUR": {"exchange": "IBIS"}})
    assert override.exchange == "IBIS"
    assert ib_contract_to_symbol("CASH", "EUR", "USD") == "EUR/USD"
    assert ib_contract_to_symbol("STK", "BRK B", "USD") == "BRK.B/USD"


@pytest.mark.parametrize(
    "epic, kind, ccy, spot, swap",
    [
        ("AAPL", "SHARES", "USD", "AAPL/USD", "AAPL/USD:USD"),
        ("EURUSD", "CURRENCIES", "USD", "EUR/USD", "EUR/USD:USD"),
        ("GOLD", "COMMODITIES", "USD", "GOLD/USD", "GOLD/USD:USD"),
        ("US100", "INDICES", "USD", "US100/USD", "US100/USD:USD"),
        ("BTCUSD", "CRYPTOCURRENCIES", "USD", "BTC/USD", "BTC/USD:USD"),
        ("BHP", "SHARES", "AUD", "BHP/AUD", "BHP/AUD:AUD"),
    ],
)
def test_capital_epics_round_trip(epic: str, kind: str, ccy: str, spot: str, swap: str) -> None:
    assert capital_epic_to_symbol(epic, kind, ccy) == spot
    assert capital_epic_to_symbol(epic, kind, ccy, swap=True) == swap
    assert symbol_to_capital_epic(spot, kind) == epic
    assert symbol_to_capital_epic(swap, kind) == epic
    assert as_swap(spot) == swap


@given(st.from_regex(r"[A-Z]{3}", fullmatch=True), currencies)
def test_capital_pairs_round_trip(base: str, quote: str) -> None:
    epic = base + quote
    symbol = capital_epic_to_symbol(epic, "CURRENCIES", quote)
    assert symbol == f"{base}/{quote}"
    assert symbol_to_capital_epic(symbol, "CURRENCIES") == epic


def test_capital_has_no_expiries() -> None:
    with pytest.raises(BadSymbol, match="no expiry"):
        symbol_to_capital_epic("ES/USD:USD-251219")
