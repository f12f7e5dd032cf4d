"""ccxt's own per-method tests from the installed wheel, against both adapters, sync and async.

Run against the simulator processes on the wall clock (ccxt's tests compare timestamps with their
own clock). Every failure must be one listed in ``ACCEPTED`` with its reason; the summary with the
passed / total figures is printed (``-s``) and appended to ``ccxt-method-tests.txt`` in pytest's
base temporary directory.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import ccxt
import ccxt.async_support
import pytest

import ccxt_capital  # noqa: F401 - registers ccxt.capitalcom
import ccxt_ibkr  # noqa: F401 - registers ccxt.ibkr

from . import ccxt_method_tests as harness
from .conftest import SimProcess
from .test_client_patterns import capital_config, ib_config

pytestmark = pytest.mark.long

#: (exchange id, method) -> why its failure is accepted. A listed test may also pass.
ACCEPTED: dict[tuple[str, str], str] = {
    ("ibkr", "fetchMarkets"): "the shipped test asserts fetch_markets() returns a dict, then indexes it as a "
                              "list; ccxt's unified fetch_markets returns a list, so it fails for every ccxt exchange",
    ("capitalcom", "fetchMarkets"): "as for ibkr: the shipped test contradicts ccxt's own fetch_markets contract",
    ("capitalcom", "createOrder"): "scenario 2 buys with a limit 4.5% through the market and expects it filled at "
                                   "once; a Capital.com working order is triggered by the broker's next price "
                                   "update, not at placement, so the test's immediate cancel finds it unfilled",
    ("ibkr", "createOrder"): "scenario 2 wants its marketable limit returned already closed: create_order returns "
                             "on IB's acknowledgement (Submitted), which can precede the fill, and outside the "
                             "stock's trading hours the limit rests until the open; it closes with a market order, "
                             "which IB books with timeInForce DAY (the validator knows only GTC/GTK/IOC/FOK/PO)",
    ("ibkr", "fetchOrders"): "lists the market orders above: timeInForce DAY, unknown to ccxt's validator",
    ("ibkr", "fetchClosedOrders"): "as fetchOrders: IB market orders carry timeInForce DAY",
    ("ibkr", "fetchOpenOrders"): "as fetchOrders: an IB order may carry timeInForce DAY",
}


def _symbols() -> list[str]:
    """FX and a US stock on weekdays; on weekends only crypto trades (at both brokers)."""
    weekend = dt.datetime.now(dt.timezone.utc).weekday() >= 5
    return ["BTC/USD"] if weekend else ["EUR/USD", "AAPL/USD"]


def _check(report: harness.Report, tmp_path_factory: pytest.TempPathFactory) -> None:
    print("\n" + report.summary())
    with (tmp_path_factory.getbasetemp() / "ccxt-method-tests.txt").open("a") as handle:
        handle.write(report.summary() + "\n")
    unexpected = {label: error for label, error in report.failures().items()
                  if (report.exchange, label.split("(")[0]) not in ACCEPTED}
    assert not unexpected, unexpected


@pytest.mark.parametrize("broker", ["ibkr", "capitalcom"])
def test_ccxt_method_tests_sync(broker: str, ib_process: SimProcess, capital_process: SimProcess,
                                tmp_path_factory: pytest.TempPathFactory) -> None:
    config = ib_config(ib_process, 21) if broker == "ibkr" else capital_config(capital_process)
    exchange = getattr(ccxt, broker)(config)
    try:
        report = harness.run_sync(exchange, _symbols(), "USD")
    finally:
        exchange.close()
    _check(report, tmp_path_factory)


@pytest.mark.parametrize("broker", ["ibkr", "capitalcom"])
def test_ccxt_method_tests_async(broker: str, ib_process: SimProcess, capital_process: SimProcess,
                                 tmp_path_factory: pytest.TempPathFactory) -> None:
    config = ib_config(ib_process, 22) if broker == "ibkr" else capital_config(capital_process)

    async def run() -> Any:
        exchange = getattr(ccxt.async_support, broker)(config)
        try:
            return await harness.run_async(exchange, _symbols(), "USD")
        finally:
            await exchange.close()

    _check(asyncio.run(run()), tmp_path_factory)
