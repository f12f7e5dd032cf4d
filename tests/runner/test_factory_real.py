"""``create_exchange()`` with the real adapter classes: what a strategy runner gets from the environment.

The unit tests (tests/unit/test_factory.py) cover every variable and bad value with an injected
registry; these check the same settings arrive in the real ``IBTrader`` / ``CapitalTrader``, that both
packages re-export the one factory, and that the result actually talks to the simulators.
"""

from __future__ import annotations

from typing import Any

import ccxt
import pytest

import ccxt_capital
import ccxt_ibkr
from normalization.runtime import factory
from normalization.runtime.factory import ConfigError, config_from_env, create_exchange


def test_both_packages_reexport_the_one_factory() -> None:
    assert ccxt_ibkr.create_exchange is factory.create_exchange
    assert ccxt_capital.create_exchange is factory.create_exchange
    # looked up by name, the way a ccxt bot does it
    assert getattr(ccxt, "ibkr") is ccxt_ibkr.IBTrader  # noqa: B009
    assert getattr(ccxt, "capitalcom") is ccxt_capital.CapitalTrader  # noqa: B009


def test_ib_settings_reach_the_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "ACTIVE_EXCHANGE": "IB",
        "IB_HOST": "10.1.2.3",
        "IB_PORT": "4002",
        "IB_CLIENT_ID": "17",
        "IB_ACCOUNT_ID": "DU7654321",
        "IB_BASE_CURRENCY": "aud",
        "IB_EXCHANGE": "arca",
        "CLIENT_ORDER_PREFIX": "ma-",
    }.items():
        monkeypatch.setenv(name, value)
    sync = create_exchange()
    try:
        assert isinstance(sync, ccxt_ibkr.IBTrader) and sync.id == "ibkr"
        options = sync.options
        assert (options["host"], options["port"], options["clientId"]) == ("10.1.2.3", 4002, 17)
        assert options["account"] == "DU7654321" and options["baseCurrency"] == "AUD"
        assert options["defaultExchange"] == "ARCA" and options["clientOrderPrefix"] == "ma-"
        assert options["live"] is False
    finally:
        sync.close()
    twin = create_exchange(async_=True)
    assert isinstance(twin, ccxt_ibkr.AsyncIBTrader) and twin.options["port"] == 4002


def test_capital_settings_reach_the_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTIVE_EXCHANGE", "capital.com")
    monkeypatch.setenv("CAPITAL_API_KEY", "key-123456")
    monkeypatch.setenv("CAPITAL_LOGIN", "me@example.com")
    with pytest.raises(ConfigError, match="CAPITAL_PASSWORD"):
        create_exchange()
    monkeypatch.setenv("CAPITAL_PASSWORD", "pass-123456")
    sync = create_exchange()
    try:
        assert isinstance(sync, ccxt_capital.CapitalTrader) and sync.id == "capitalcom"
        assert (sync.apiKey, sync.login, sync.password) == ("key-123456", "me@example.com", "pass-123456")
        assert sync.options["live"] is False
    finally:
        sync.close()
    assert isinstance(create_exchange(async_=True), ccxt_capital.AsyncCapitalTrader)


def test_live_needs_both_keys_at_the_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTIVE_EXCHANGE", "IB")
    monkeypatch.setenv("IB_PAPER", "0")
    monkeypatch.setenv("IB_PORT", "7496")
    with pytest.raises(ccxt.PermissionDenied, match="CCXT_BROKERS_ALLOW_LIVE"):
        create_exchange(async_=True)
    monkeypatch.setenv("IB_PAPER", "1")
    with pytest.raises(ConfigError, match="IB_PORT=7496"):
        create_exchange(async_=True)


def test_any_other_ccxt_id_is_a_plain_ccxt_exchange(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTIVE_EXCHANGE", "gemini")
    monkeypatch.setenv("GEMINI_API_KEY", "abc")
    exchange = create_exchange()
    assert isinstance(exchange, ccxt.gemini) and exchange.apiKey == "abc"


def test_factory_exchange_talks_to_the_ib_simulator(ib_sim: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTIVE_EXCHANGE", "ibkr")
    monkeypatch.setenv("IB_PORT", str(ib_sim.port))
    monkeypatch.setenv("IB_CLIENT_ID", "23")
    exchange = create_exchange()
    try:
        assert exchange.fetch_time() == int(ib_sim.now() * 1000)
        assert exchange.fetch_balance()["USD"]["total"] == pytest.approx(1_000_000.0)
    finally:
        exchange.close()


@pytest.mark.capital_sim(rate_limits="off")
def test_factory_exchange_talks_to_the_capital_simulator(capital_sim: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "CAPITAL_API_KEY": capital_sim.api_key,
        "CAPITAL_LOGIN": capital_sim.identifier,
        "CAPITAL_PASSWORD": capital_sim.password,
    }
    config = config_from_env("CAPITAL", env)
    config["options"].update({"baseUrl": capital_sim.base_url, "journal": None, "symbols": ["EUR/USD"]})
    exchange = create_exchange("CAPITAL", config)
    try:
        assert exchange.fetch_time() == int(capital_sim.clock.now() * 1000)
        assert exchange.fetch_balance()["USD"]["total"] == pytest.approx(10_000.0)
    finally:
        exchange.close()
