from __future__ import annotations

import ccxt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from normalization import client_ids, errors, fees, statuses


@pytest.mark.parametrize(
    "status, kwargs, expected",
    [
        ("PendingSubmit", {}, "open"),
        ("PreSubmitted", {}, "open"),
        ("Submitted", {"filled": 3, "remaining": 7}, "open"),
        ("PendingCancel", {}, "open"),
        ("Filled", {"filled": 10, "remaining": 0}, "closed"),
        ("ApiCancelled", {}, "canceled"),
        ("Cancelled", {"cancel_requested": True}, "canceled"),
        ("Cancelled", {"error_codes": [201]}, "rejected"),
        ("Cancelled", {"error_codes": [434]}, "rejected"),
        ("Cancelled", {"error_codes": [201], "filled": 2}, "canceled"),
        ("Cancelled", {"tif": "DAY"}, "expired"),
        ("Cancelled", {"tif": "IOC", "filled": 2, "remaining": 8}, "expired"),
        ("Cancelled", {"tif": "GTC"}, "canceled"),
        ("Inactive", {}, "rejected"),
        ("Inactive", {"why_held": "locate"}, "open"),
        ("ValidationError", {"error_codes": [110]}, "open"),
    ],
)
def test_ib_status_map(status: str, kwargs: dict, expected: str) -> None:
    assert statuses.ib_order_status(status, **kwargs) == expected


@pytest.mark.parametrize(
    "deal, status, working, expected",
    [
        ("ACCEPTED", "OPEN", False, "closed"),
        ("REJECTED", "OPEN", False, "rejected"),
        ("ACCEPTED", "OPEN", True, "open"),
        ("ACCEPTED", "DELETED", True, "canceled"),
        ("REJECTED", None, True, "rejected"),
        (None, None, False, "open"),
        ("ACCEPTED", "EXPIRED", True, "expired"),
    ],
)
def test_capital_status_map(deal: str, status: str, working: bool, expected: str) -> None:
    assert statuses.capital_order_status(deal, status, working_order=working) == expected


@pytest.mark.parametrize(
    "shares, price, expected",
    [
        (100, 50.0, 1.00),  # 0.50 -> minimum 1.00
        (1000, 50.0, 5.00),  # 0.005 x 1000
        (10, 5.0, 0.50),  # minimum 1.00 capped at 1% of 50
        (1, 187.5, 1.00),
        (0, 100.0, 0.0),
    ],
)
def test_ib_fixed_commission(shares: float, price: float, expected: float) -> None:
    assert fees.IB_FIXED.commission(shares, price) == pytest.approx(expected)
    assert fees.ib_fixed_fee(shares, price) == {"cost": pytest.approx(expected), "currency": "USD"}


@given(st.integers(1, 10**6), st.floats(0.01, 5000))
def test_ib_fixed_commission_bounds(shares: int, price: float) -> None:
    cost = fees.IB_FIXED.commission(shares, price)
    assert cost <= shares * price * 0.01 + 1e-7
    assert cost >= min(1.0, shares * price * 0.01) - 1e-7


def test_tiered_and_other_schedules() -> None:
    assert fees.IB_TIERED.commission(1000, 50.0) == pytest.approx(3.5)
    assert fees.IB_TIERED.commission(1000, 50.0, monthly_volume=5_000_000) == pytest.approx(1.5)
    assert fees.IB_TIERED.commission(10, 50.0) == pytest.approx(0.35)
    assert fees.ib_schedule("CASH").commission(20_000, 1.1) == pytest.approx(2.0)
    assert fees.ib_schedule("FUT").commission(2, 5000) == pytest.approx(1.7)
    assert fees.capital_fee("USD") == {"cost": 0.0, "currency": "USD", "rate": 0.0}


def test_client_order_ids() -> None:
    generated = client_ids.generate("bot-")
    assert generated.startswith("bot-") and len(generated) == 36
    assert client_ids.is_own(generated, "bot-")
    assert not client_ids.is_own("manual-1", "bot-")
    assert not client_ids.is_own(generated, "")
    assert client_ids.take_or_generate({"clientOrderId": "bot-42"}) == "bot-42"
    assert client_ids.take_or_generate({}, "x-").startswith("x-")
    assert client_ids.generate() != client_ids.generate()
    for bad in ("", "x" * 65, "has space", 42):
        with pytest.raises(ccxt.InvalidOrder):
            client_ids.validate(bad)
    with pytest.raises(ccxt.InvalidOrder):
        client_ids.validate_prefix("bad prefix")


@pytest.mark.parametrize(
    "code, text, cls",
    [
        (200, "No security definition has been found for the request", ccxt.BadSymbol),
        (
            201,
            "Order rejected - reason:YOUR ORDER IS NOT ACCEPTED. IN ORDER TO OBTAIN THE DESIRED POSITION "
            "YOUR EQUITY WITH LOAN VALUE [100 USD] MUST EXCEED THE INITIAL MARGIN",
            ccxt.InsufficientFunds,
        ),
        (201, "Order rejected - reason:Invalid order type", ccxt.InvalidOrder),
        (162, "Historical Market Data Service error message:Historical data request pacing violation",
         ccxt.RateLimitExceeded),
        (162, "Historical Market Data Service error message:HMDS query returned no data", ccxt.BadRequest),
        (110, "The price does not conform to the minimum price variation for this contract.", ccxt.InvalidOrder),
        (434, "The order size cannot be zero", ccxt.InvalidOrder),
        (10147, "OrderId 5 that needs to be cancelled is not found.", ccxt.OrderNotFound),
        (103, "Duplicate order id", ccxt.DuplicateOrderId),
        (504, "Not connected", ccxt.NetworkError),
        (1100, "Connectivity between IB and Trader Workstation has been lost.",
         ccxt.ExchangeNotAvailable),
        (326, "Unable to connect as the client id is already in use.", ccxt.AuthenticationError),
        (99999, "something new", ccxt.ExchangeError),
    ],
)
def test_ib_error_map_keeps_code_and_text(code: int, text: str, cls: type) -> None:
    exc = errors.ib_exception(code, text)
    assert type(exc) is cls
    assert str(code) in str(exc) and text in str(exc)


def test_ib_warnings_and_cancel_state() -> None:
    assert errors.ib_is_warning(2104) and errors.ib_is_warning(10349) and not errors.ib_is_warning(201)
    text = "OrderId 5 that needs to be cancelled cannot be cancelled, state: Filled."
    assert errors.ib_cancel_state(text) == "closed"
    assert errors.ib_cancel_state("... state: Cancelled.") == "canceled"


@pytest.mark.parametrize(
    "status, code, cls",
    [
        (401, "error.invalid.api.key", ccxt.AuthenticationError),
        (401, "error.invalid.session.token", ccxt.AuthenticationError),
        (429, "error.too-many.requests", ccxt.RateLimitExceeded),
        (500, None, ccxt.ExchangeNotAvailable),
        (503, "error.service.unavailable", ccxt.ExchangeNotAvailable),
        (400, "error.invalid.size.minvalue: 0.1", ccxt.InvalidOrder),
        (404, "error.not-found.dealId", ccxt.OrderNotFound),
        (400, "error.invalid.epic", ccxt.BadSymbol),
        (400, "error.something.new", ccxt.BadRequest),
    ],
)
def test_capital_error_map(status: int, code: str | None, cls: type) -> None:
    exc = errors.capital_exception(status, code)
    assert type(exc) is cls
    assert str(status) in str(exc)
    if code:
        assert code in str(exc)


@pytest.mark.parametrize(
    "reason, cls",
    [
        ("INSUFFICIENT_FUNDS", ccxt.InsufficientFunds),
        ("MARKET_CLOSED", ccxt.MarketClosed),
        ("MINIMUM_ORDER_SIZE_ERROR", ccxt.InvalidOrder),
        ("ATTACHED_ORDER_LEVEL_ERROR", ccxt.InvalidOrder),
        (None, ccxt.InvalidOrder),
    ],
)
def test_capital_reject_reasons(reason: str | None, cls: type) -> None:
    assert type(errors.capital_reject_exception(reason)) is cls


def test_generated_ids_are_unique_and_a_forked_child_draws_its_own() -> None:
    import os

    ids = {client_ids.generate() for _ in range(10_000)}
    assert len(ids) == 10_000 and all(len(i) == len("ccxt-") + 32 for i in ids)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave without running pytest's teardown
        os.write(write, client_ids.generate().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 100).decode()
    os.close(read)
    parent = client_ids.generate()
    assert child != parent and child[5:25] != parent[5:25]  # different 80-bit stems


def test_both_exchanges_show_the_error_table_they_map_with() -> None:
    # describe()['exceptions'] is what a bot (or ccxt tooling) reads to know the broker's codes; it must be
    # the table the adapters map with, not an empty placeholder nor a copy that could drift.
    from ccxt_capital.async_support import CapitalTrader
    from ccxt_ibkr.async_support import IBTrader

    capital = CapitalTrader.description()["exceptions"]
    assert capital["exact"] == errors.CAPITAL_EXACT and list(capital["broad"].items()) == list(errors.CAPITAL_BROAD)
    for code, cls in capital["exact"].items():
        assert errors.capital_error_class(400, code) is cls
    ib = IBTrader.description()["exceptions"]
    assert ib["exact"] == {str(code): cls for code, cls in errors.IB_EXACT.items()}
    assert list(ib["broad"].items()) == list(errors.IB_BROAD)
