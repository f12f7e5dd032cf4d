"""IBTrader as ccxt sees it: registration, describe(), capability flags, configuration and safety."""

from __future__ import annotations

import ccxt
import ccxt.async_support
import ccxt.pro
import pytest

import ccxt_ibkr
from ccxt_ibkr.async_support import IBTrader as AsyncIBTrader
from normalization.timeframes import IB_BAR_SIZES


def test_registered_with_ccxt() -> None:
    assert ccxt.ibkr is ccxt_ibkr.IBTrader
    assert ccxt.async_support.ibkr is AsyncIBTrader and ccxt.pro.ibkr is ccxt_ibkr.IBTraderPro
    assert issubclass(ccxt_ibkr.IBTraderPro, AsyncIBTrader) and ccxt_ibkr.IBTraderPro().has["watchTicker"]
    assert "ibkr" in ccxt.exchanges and "ibkr" in ccxt.async_support.exchanges
    ex = getattr(ccxt, "ibkr")({"options": {"journal": None}})  # noqa: B009 - how bots look it up
    try:
        assert ex.id == "ibkr" and isinstance(ex, ccxt.Exchange)
    finally:
        ex.close()


def test_describe_is_shared_and_declarative() -> None:
    ex = ccxt_ibkr.IBTrader({"options": {"journal": None}})
    try:
        twin = ex.impl
        for key in ("id", "has", "timeframes", "precisionMode", "features", "rateLimit"):
            assert getattr(ex, key) == getattr(twin, key), key
        assert ex.timeframes == IB_BAR_SIZES and ex.precisionMode == ccxt.TICK_SIZE
        for capability in ("fetchMarkets", "fetchTicker", "fetchTickers", "fetchOrderBook", "fetchOHLCV",
                           "fetchTime", "fetchStatus", "createOrder", "createStopLossOrder",
                           "createTakeProfitOrder", "createReduceOnlyOrder", "cancelOrder", "editOrder",
                           "fetchOrder", "fetchOrders", "fetchOpenOrders", "fetchClosedOrders", "fetchMyTrades",
                           "fetchPositions", "fetchBalance", "closePosition", "cancelAllOrders", "closeAllPositions",
                           "fetchTradingFees"):
            assert ex.has[capability] is True, capability
        for missing in ("withdraw", "fetchDeposits", "transfer", "setLeverage", "fetchTrades", "watchTicker",
                        "createOrders"):
            assert not ex.has[missing], missing
        create = ex.features["spot"]["createOrder"]
        assert create["triggerPrice"] and create["timeInForce"]["IOC"] and create["timeInForce"]["FOK"]
        assert create["attachedStopLossTakeProfit"]
        assert ex.requiredCredentials["apiKey"] is False
        assert ex.exceptions["exact"]["201"] is ccxt.InvalidOrder
    finally:
        ex.close()


def test_paper_by_default_and_live_needs_both_switches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CCXT_BROKERS_ALLOW_LIVE", raising=False)
    paper = AsyncIBTrader({"options": {"journal": None}})
    assert paper.transport.port == 7497 and paper.live is False
    with pytest.raises(ccxt.PermissionDenied, match="CCXT_BROKERS_ALLOW_LIVE"):
        AsyncIBTrader({"options": {"live": True, "journal": None}})
    with pytest.raises(ccxt.PermissionDenied, match="live"):
        AsyncIBTrader({"options": {"port": 7496, "journal": None}})
    with pytest.raises(ccxt.PermissionDenied):
        paper.set_sandbox_mode(False)
    paper.set_sandbox_mode(True)
    monkeypatch.setenv("CCXT_BROKERS_ALLOW_LIVE", "1")
    live = AsyncIBTrader({"options": {"live": True, "journal": None}})
    assert live.transport.port == 7496 and live.live is True


def test_sandbox_config_flag_is_accepted() -> None:
    ex = ccxt_ibkr.IBTrader({"sandbox": True, "options": {"journal": None}})
    try:
        assert ex.impl.transport.port == 7497
    finally:
        ex.close()


def test_shim_names_the_library() -> None:
    from ccxt_ibkr._ib import IB_LIBRARY_NAME

    assert IB_LIBRARY_NAME in ("ib_async", "ib_insync") and ccxt_ibkr.IB_LIBRARY_NAME == IB_LIBRARY_NAME


def test_transport_settings_are_the_options_typed_once() -> None:
    """options stay the user's surface; the transport reads them once into a frozen IBSettings."""
    import dataclasses

    from ccxt_ibkr.transport import IBSettings

    default = IBSettings.from_options({}, default_port=7497)
    assert (default.host, default.port, default.client_id, default.account) == ("127.0.0.1", 7497, 1, "")
    assert (default.connect_timeout, default.request_timeout, default.breaker_failures) == (10.0, 30.0, 5)
    ex = AsyncIBTrader({"options": {"journal": None, "clientId": "7", "requestTimeout": 4, "readonly": True,
                                    "reconnect": {"initialDelay": 0.1, "maxDelay": 3}, "autoReconnect": False,
                                    "breaker": {"failureThreshold": 2, "resetTimeout": 9}}})
    settings = ex.transport.settings
    assert (settings.port, settings.client_id, settings.request_timeout, settings.readonly) == (7497, 7, 4.0, True)
    assert (settings.backoff.initial, settings.backoff.maximum, settings.auto_reconnect) == (0.1, 3.0, False)
    assert ex.transport.breakers.execution.failure_threshold == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.port = 7496  # type: ignore[misc]
