"""Equity in the base currency from a fake broker's own quotes: cash, holdings at mid, CFD PnL, FX caching."""

from __future__ import annotations

from typing import Any

import ccxt
import pytest

from normalization.runtime.equity import (
    BaseCurrencyMixin,
    account_equity,
    account_equity_sync,
    base_currency_of,
    enrich_balance,
    fx_for,
    mid_price,
    value_balance,
)


def spot(symbol: str, **extra: Any) -> dict[str, Any]:
    base, quote = symbol.split("/")
    return {"symbol": symbol, "id": symbol, "base": base, "quote": quote, "spot": True, "type": "spot", **extra}


class FakeBroker:
    """Markets, bid/ask quotes and a balance; counts every ticker request."""

    id = "fake"

    def __init__(self, balance: dict[str, Any], options: dict[str, Any] | None = None) -> None:
        self.options = options or {}
        self.has = {"fetchPositions": True}
        self.markets = {
            m["symbol"]: m
            for m in (spot("AAPL/USD"), spot("AUD/USD"), spot("EUR/USD"), spot("BHP/AUD"), spot("SAP/EUR"))
        }
        self.quotes = {
            "AAPL/USD": (199.9, 200.1),
            "AUD/USD": (0.6499, 0.6501),
            "EUR/USD": (1.0999, 1.1001),
            "BHP/AUD": (44.9, 45.1),
            "SAP/EUR": (None, None),  # listed, but no quote right now
        }
        self.balance = balance
        self.positions: list[dict[str, Any]] = []
        self.requests: list[str] = []

    async def fetch_ticker(self, symbol: str) -> dict[str, Any]:
        self.requests.append(symbol)
        if symbol not in self.quotes:
            raise ccxt.BadSymbol(f"{symbol} is not listed")
        bid, ask = self.quotes[symbol]
        return {"symbol": symbol, "bid": bid, "ask": ask, "last": None}

    async def fetch_balance(self, params: dict[str, Any] = {}) -> dict[str, Any]:
        return {k: (dict(v) if isinstance(v, dict) else v) for k, v in self.balance.items()}

    async def fetch_positions(self, symbols: Any = None, params: dict[str, Any] = {}) -> list[dict[str, Any]]:
        return list(self.positions)


def entry(total: float, debt: float = 0.0) -> dict[str, float]:
    return {"free": max(total, 0.0), "used": 0.0, "total": total, "debt": debt}


AUD_PER_USD = 1 / 0.65


def test_mid_price_prefers_the_mid_then_last_then_close() -> None:
    assert mid_price({"bid": 1.0, "ask": 3.0, "last": 9.0}) == 2.0
    assert mid_price({"bid": None, "ask": 3.0, "last": 9.0}) == 9.0
    assert mid_price({"bid": 0, "ask": 0, "last": None, "close": 4.0}) == 4.0
    assert mid_price({"bid": None, "ask": None}) is None and mid_price(None) is None


async def test_aud_account_with_usd_stock_and_usd_debt() -> None:
    # Bought 10 AAPL with money borrowed in USD: USD cash is a debt, AAPL a holding, AUD the base.
    broker = FakeBroker({"info": [], "AUD": entry(10_000.0), "USD": entry(0.0, debt=1_500.0), "AAPL": entry(10.0)})
    value = await value_balance(broker, await broker.fetch_balance(), "AUD")
    assert value.cash == pytest.approx(10_000.0 - 1_500.0 * AUD_PER_USD)
    assert value.holdings == pytest.approx(10 * 200.0 * AUD_PER_USD)
    assert value.equity == pytest.approx(10_000.0 + (2_000.0 - 1_500.0) * AUD_PER_USD)
    assert value.rates["USD"] == pytest.approx(AUD_PER_USD)
    # The broker lists AUD/USD, not USD/AUD: the converter asked the conventional pair once, and the
    # second valuation, inside the TTL, asks only for the stock's price.
    assert broker.requests.count("AUD/USD") == 1 and "USD/AUD" not in broker.requests
    broker.requests.clear()
    await value_balance(broker, await broker.fetch_balance(), "AUD")
    assert broker.requests == ["AAPL/USD"]


async def test_fx_rates_are_refreshed_after_the_ttl() -> None:
    broker = FakeBroker({"USD": entry(100.0)}, {"fxTtl": 0})
    await value_balance(broker, broker.balance, "AUD")
    broker.quotes["AUD/USD"] = (0.4999, 0.5001)
    value = await value_balance(broker, broker.balance, "AUD")
    assert value.equity == pytest.approx(200.0)
    assert broker.requests.count("AUD/USD") == 2


async def test_triangulates_through_usd_and_lists_unpriced_holdings() -> None:
    broker = FakeBroker({"AUD": entry(1_000.0), "SAP": entry(3.0), "XYZ": entry(1.0)})
    value = await value_balance(broker, broker.balance, "EUR")
    assert value.cash == pytest.approx(1_000.0 * 0.65 / 1.1)  # AUD -> USD -> EUR
    assert value.unvalued == ["SAP", "XYZ"]  # SAP/EUR has no quote; XYZ has no market at all


async def test_cfd_holdings_count_their_pnl_not_their_notional() -> None:
    broker = FakeBroker({"info": {"currency": "USD"}, "USD": entry(10_000.0), "AAPL": entry(5.0)})
    broker.positions = [{"symbol": "AAPL/USD", "unrealizedPnl": 12.5}, {"symbol": "BHP/AUD", "unrealizedPnl": -6.5}]
    value = await value_balance(broker, broker.balance, "USD", holdings="pnl", positions=broker.positions)
    assert value.holdings == 0.0
    assert value.unrealized_pnl == pytest.approx(12.5 - 6.5 * 0.65)
    assert value.equity == pytest.approx(10_000.0 + 12.5 - 6.5 * 0.65)


async def test_enrich_balance_keeps_a_list_info_and_adds_base_totals() -> None:
    raw = [{"tag": "CashBalance", "value": "10000", "currency": "AUD"}]
    broker = FakeBroker({"info": raw, "AUD": entry(10_000.0), "AAPL": entry(1.0)}, {"baseCurrency": "aud"})
    balance = await enrich_balance(broker, await broker.fetch_balance())
    info = balance["info"]
    assert info["accountValues"] == raw
    assert info["baseCurrency"] == "AUD"
    assert info["equity"] == pytest.approx(10_000.0 + 200.0 * AUD_PER_USD)
    assert info["valuesInBase"]["AAPL"] == pytest.approx(200.0 * AUD_PER_USD)
    assert balance["AUD"]["total"] == 10_000.0  # the ccxt part is untouched


def test_base_currency_sources_in_order() -> None:
    assert base_currency_of(FakeBroker({}, {"baseCurrency": "gbp"}), {"info": {"currency": "EUR"}}) == "GBP"
    assert base_currency_of(FakeBroker({}), {"info": {"currency": "eur"}}) == "EUR"
    assert base_currency_of(FakeBroker({}), {"info": [], "AUD": entry(5.0), "AAPL": entry(1.0)}) == "AUD"
    assert base_currency_of(FakeBroker({}), {"AUD": entry(5.0), "USD": entry(1.0)}) == "USD"


async def test_account_equity_in_any_currency() -> None:
    broker = FakeBroker({"AUD": entry(1_000.0)}, {"baseCurrency": "AUD"})
    assert await account_equity(broker) == pytest.approx(1_000.0)
    assert await account_equity(broker, "usd") == pytest.approx(650.0)
    assert fx_for(broker) is fx_for(broker)


class _Base:
    """Stands in for an adapter: a plain fetch_balance below the mixin."""

    id = "fake"
    has = {"fetchPositions": True}

    def __init__(self) -> None:
        self.broker = FakeBroker({"info": [], "AUD": entry(2_000.0), "USD": entry(100.0)})
        self.options: dict[str, Any] = {}
        self.markets = self.broker.markets

    async def fetch_balance(self, params: dict[str, Any] = {}) -> dict[str, Any]:
        return await self.broker.fetch_balance()

    async def fetch_ticker(self, symbol: str) -> dict[str, Any]:
        return await self.broker.fetch_ticker(symbol)

    async def fetch_positions(self, symbols: Any = None, params: dict[str, Any] = {}) -> list[dict[str, Any]]:
        return [{"symbol": "AAPL/USD", "unrealizedPnl": 10.0}]

    async def account_base_currency(self) -> str:
        return "AUD"


class Adapter(BaseCurrencyMixin, _Base):
    pass


async def test_mixin_enriches_fetch_balance_and_adds_fetch_equity() -> None:
    ex = Adapter()
    balance = await ex.fetch_balance()
    assert balance["info"]["baseCurrency"] == "AUD"  # from the adapter's own hook
    assert balance["info"]["equity"] == pytest.approx(2_000.0 + 100.0 * AUD_PER_USD)
    assert balance["info"]["unrealizedPnl"] == pytest.approx(10.0 * AUD_PER_USD)  # reported, not added twice
    assert await ex.fetch_equity("USD") == pytest.approx(2_000.0 * 0.65 + 100.0)
    plain = await ex.fetch_balance({"equity": False})
    assert plain["info"] == []


def test_sync_helper_runs_its_own_loop() -> None:
    broker = FakeBroker({"AUD": entry(1_000.0)}, {"baseCurrency": "AUD"})
    assert account_equity_sync(broker, "USD") == pytest.approx(650.0)


async def test_cash_that_already_is_equity_is_not_topped_up_with_pnl() -> None:
    # Capital.com: balance = deposit + profitLoss, so the CFD positions add nothing on top.
    broker = FakeBroker({"info": {"currency": "USD"}, "USD": entry(10_012.5), "AAPL": entry(5.0)})
    broker.positions = [{"symbol": "AAPL/USD", "unrealizedPnl": 12.5}]
    value = await value_balance(broker, broker.balance, "USD", holdings="none", positions=broker.positions)
    assert value.equity == pytest.approx(10_012.5) and value.unrealized_pnl == pytest.approx(12.5)


async def test_holdings_use_the_brokers_position_mark_before_asking_for_a_ticker() -> None:
    broker = FakeBroker({"AUD": entry(0.0), "USD": entry(1.0), "AAPL": entry(10.0)})
    positions = [{"symbol": "AAPL/USD", "markPrice": 210.0, "unrealizedPnl": 100.0}]
    value = await value_balance(broker, broker.balance, "USD", positions=positions)
    assert value.holdings == pytest.approx(2_100.0) and "AAPL/USD" not in broker.requests


def test_runtime_modules_import_no_broker_library() -> None:
    """DESIGN §2: normalization never pulls in ib_async / httpx, also through the runner modules."""
    import subprocess
    import sys

    code = (
        "import sys, normalization.runtime.ohlcv_service, normalization.runtime.equity; "
        "sys.exit(1 if [m for m in ('ib_async', 'ib_insync', 'httpx', 'ccxt_ibkr', 'ccxt_capital') "
        "if m in sys.modules] else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
