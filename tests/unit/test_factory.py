"""create_exchange: ACTIVE_EXCHANGE routing, strict env parsing, errors that name the variable."""

from __future__ import annotations

import subprocess
import sys

import ccxt
import ccxt.async_support
import pytest

from normalization.runtime.factory import (
    ConfigError,
    capital_config_from_env,
    create_async_exchange,
    create_exchange,
    ib_config_from_env,
    normalize_exchange_name,
    parse_bool,
    resolve_exchange_class,
)


class StubSync:
    def __init__(self, config: dict) -> None:
        self.config = config


class StubAsync(StubSync):
    pass


REGISTRY = {"IB": (StubSync, StubAsync), "CAPITAL": (StubSync, StubAsync)}
CAPITAL_ENV = {"CAPITAL_API_KEY": "key", "CAPITAL_LOGIN": "me@example.com", "CAPITAL_PASSWORD": "pw"}


def make(env: dict, **kw):
    return create_exchange(env=env, registry=REGISTRY, **kw)


def test_ib_from_env_full_mapping() -> None:
    env = {
        "ACTIVE_EXCHANGE": "IB",
        "IB_HOST": "10.0.0.5",
        "IB_PORT": "4002",
        "IB_CLIENT_ID": "0",
        "IB_ACCOUNT_ID": "DU123456",
        "IB_PAPER": "yes",
        "IB_BASE_CURRENCY": "aud",
        "IB_EXCHANGE": "smart",
        "CLIENT_ORDER_PREFIX": "bot-",
    }
    ex = make(env)
    assert isinstance(ex, StubSync) and not isinstance(ex, StubAsync)
    assert ex.config == {
        "options": {
            "host": "10.0.0.5",
            "port": 4002,
            "clientId": 0,
            "account": "DU123456",
            "baseCurrency": "AUD",
            "defaultExchange": "SMART",
            "clientOrderPrefix": "bot-",
            "live": False,
        }
    }


def test_defaults_are_paper_and_only_set_values_are_passed() -> None:
    assert ib_config_from_env({}) == {"options": {"live": False}}
    assert make({"ACTIVE_EXCHANGE": "ibkr", "IB_PAPER": "0"}).config == {"options": {"live": True}}


def test_capital_mapping_and_async_twin() -> None:
    env = {"ACTIVE_EXCHANGE": "capital", **CAPITAL_ENV, "CAPITAL_DEMO": "false", "CLIENT_ORDER_PREFIX": "x"}
    ex = make(env, async_=True)
    assert isinstance(ex, StubAsync)
    assert ex.config == {
        "apiKey": "key",
        "login": "me@example.com",
        "password": "pw",
        "options": {"live": True, "clientOrderPrefix": "x"},
    }
    assert isinstance(
        create_async_exchange(env={"ACTIVE_EXCHANGE": "CAPITALCOM", **CAPITAL_ENV}, registry=REGISTRY), StubAsync
    )
    assert capital_config_from_env(CAPITAL_ENV)["options"] == {"live": False}


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({}, ["ACTIVE_EXCHANGE"]),
        ({"ACTIVE_EXCHANGE": "IB", "IB_PORT": "seven"}, ["IB_PORT"]),
        ({"ACTIVE_EXCHANGE": "IB", "IB_PORT": "70000"}, ["IB_PORT"]),
        ({"ACTIVE_EXCHANGE": "IB", "IB_PORT": "0"}, ["IB_PORT"]),
        ({"ACTIVE_EXCHANGE": "IB", "IB_CLIENT_ID": "-1"}, ["IB_CLIENT_ID"]),
        ({"ACTIVE_EXCHANGE": "IB", "IB_PAPER": "maybe"}, ["IB_PAPER"]),
        ({"ACTIVE_EXCHANGE": "IB", "IB_BASE_CURRENCY": "AUDX"}, ["IB_BASE_CURRENCY"]),
        ({"ACTIVE_EXCHANGE": "IB", "CLIENT_ORDER_PREFIX": "has space"}, ["CLIENT_ORDER_PREFIX"]),
        ({"ACTIVE_EXCHANGE": "IB", "IB_PORT": "7496"}, ["IB_PORT", "IB_PAPER"]),  # live port, paper mode
        ({"ACTIVE_EXCHANGE": "IB", "IB_PAPER": "0", "IB_PORT": "4002"}, ["IB_PORT", "IB_PAPER"]),
        ({"ACTIVE_EXCHANGE": "IB", "IB_PAPER": "0", "IB_ACCOUNT_ID": "DU1"}, ["IB_ACCOUNT_ID", "IB_PAPER"]),
        ({"ACTIVE_EXCHANGE": "IB", "IB_ACCOUNT_ID": "U1234567"}, ["IB_ACCOUNT_ID", "IB_PAPER"]),
        ({"ACTIVE_EXCHANGE": "CAPITAL", "CAPITAL_LOGIN": "me"}, ["CAPITAL_API_KEY", "CAPITAL_PASSWORD"]),
        ({"ACTIVE_EXCHANGE": "CAPITAL", **CAPITAL_ENV, "CAPITAL_DEMO": "nah"}, ["CAPITAL_DEMO"]),
        ({"ACTIVE_EXCHANGE": "nosuchexchange"}, ["ACTIVE_EXCHANGE"]),
    ],
)
def test_bad_settings_fail_at_start_naming_the_variable(env: dict, names: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        make(env)
    assert isinstance(info.value, ccxt.BadRequest)
    for name in names:
        assert name in str(info.value)


def test_parse_bool_is_strict() -> None:
    assert [parse_bool("X", v, False) for v in ("1", "TRUE", "Yes", " no ", "0", "false")] == [
        True,
        True,
        True,
        False,
        False,
        False,
    ]
    assert parse_bool("X", None, True) is True and parse_bool("X", "", False) is False
    with pytest.raises(ConfigError, match="X='on'"):
        parse_bool("X", "on", False)


def test_any_ccxt_id_keeps_working_sync_and_async() -> None:
    env = {"ACTIVE_EXCHANGE": "gemini", "GEMINI_API_KEY": "k1", "GEMINI_SECRET": "s1"}
    ex = create_exchange(env=env)
    assert isinstance(ex, ccxt.gemini) and ex.apiKey == "k1" and ex.secret == "s1"
    aex = create_exchange("Gemini", {"enableRateLimit": False}, async_=True)
    assert isinstance(aex, ccxt.async_support.gemini) and aex.enableRateLimit is False
    assert resolve_exchange_class("GEMINI") is ccxt.gemini


def test_explicit_config_is_passed_as_is_and_env_ignored() -> None:
    ex = make({"ACTIVE_EXCHANGE": "IB", "IB_PORT": "bogus"}, config={"options": {"port": 1}})
    assert ex.config == {"options": {"port": 1}}
    assert make({}, name="ib", config={}).config == {}


def test_names_and_missing_adapter_message() -> None:
    assert normalize_exchange_name(" Interactivebrokers ") == "IB"
    assert normalize_exchange_name("capital.com") == "CAPITAL"
    assert normalize_exchange_name("Binance") == "binance"
    # Without a registry the real adapter is imported lazily; if it is absent the error says which.
    try:
        cls = resolve_exchange_class("IB")
    except ConfigError as exc:
        assert "ccxt_ibkr" in str(exc) and "ACTIVE_EXCHANGE" in str(exc)
    else:
        assert cls.__name__ == "IBTrader"


def test_importing_runtime_modules_pulls_in_no_broker_library() -> None:
    code = (
        "import sys, normalization, normalization.runtime.factory, normalization.runtime.cli, "
        "normalization.runtime.fx, normalization.runtime.ohlcv_cache, normalization.runtime.resample, "
        "normalization.runtime.progress; "
        "bad = [m for m in ('ib_async', 'ib_insync', 'httpx') if m in sys.modules]; "
        "sys.exit(1 if bad else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
