from __future__ import annotations

import ccxt
import ccxt.async_support
import ccxt.pro
import pytest

from normalization.runtime.registry import register_exchange
from normalization.runtime.safety import ALLOW_LIVE_VARIABLE, check_sandbox_switch, resolve_live


def test_paper_is_the_default() -> None:
    assert resolve_live("ibkr", None, {}) is False
    assert resolve_live("ibkr", False, {ALLOW_LIVE_VARIABLE: "1"}) is False


def test_live_needs_both_halves() -> None:
    assert resolve_live("ibkr", True, {ALLOW_LIVE_VARIABLE: "1"}) is True
    with pytest.raises(ccxt.PermissionDenied, match=ALLOW_LIVE_VARIABLE):
        resolve_live("ibkr", True, {})
    with pytest.raises(ccxt.PermissionDenied, match="options\\['live'\\]"):
        check_sandbox_switch("ibkr", False, {})
    check_sandbox_switch("ibkr", True, {})


def test_registration_reaches_all_three_namespaces() -> None:
    class Dummy(ccxt.Exchange):
        pass

    class DummyAsync(ccxt.async_support.Exchange):
        pass

    register_exchange("dummybroker", Dummy, DummyAsync)
    assert ccxt.dummybroker is Dummy and "dummybroker" in ccxt.exchanges
    assert ccxt.async_support.dummybroker is DummyAsync and "dummybroker" in ccxt.async_support.exchanges
    assert ccxt.pro.dummybroker is DummyAsync
    register_exchange("dummybroker", Dummy, DummyAsync)
    assert ccxt.exchanges.count("dummybroker") == 1
