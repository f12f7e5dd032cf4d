"""The one import of the IB client library: ib_async first, ib_insync as a legacy fallback.

Their public APIs are name-identical (ib-protocol.md §7), so the adapter imports every IB name
from here and never from either library directly. Semantic differences (Inactive is not "done"
in ib_insync, 202 is a warning there, only ib_async knows ``raiseSyncErrors``) are handled by
the adapter through ``IB_LIBRARY_NAME``.
"""

from __future__ import annotations

try:
    import ib_async as ib_lib
    from ib_async import util
    from ib_async.wrapper import RequestError

    IB_LIBRARY_NAME = "ib_async"
except ImportError:  # pragma: no cover - exercised in the ib_insync venv
    import ib_insync as ib_lib  # type: ignore[no-redef]
    from ib_insync import util  # type: ignore[no-redef]
    from ib_insync.wrapper import RequestError  # type: ignore[no-redef]

    IB_LIBRARY_NAME = "ib_insync"

IB = ib_lib.IB
Contract = ib_lib.Contract
ContractDetails = ib_lib.ContractDetails
Order = ib_lib.Order
Trade = ib_lib.Trade
Fill = ib_lib.Fill
OrderStatus = ib_lib.OrderStatus
Ticker = ib_lib.Ticker
BarData = ib_lib.BarData
ExecutionFilter = ib_lib.ExecutionFilter
# Contract and order builders, for callers (and tests) that speak ib_async's vocabulary directly.
Stock = ib_lib.Stock
Forex = ib_lib.Forex
Future = ib_lib.Future
Crypto = ib_lib.Crypto
LimitOrder = ib_lib.LimitOrder
MarketOrder = ib_lib.MarketOrder
StopOrder = ib_lib.StopOrder
StopLimitOrder = ib_lib.StopLimitOrder
TagValue = ib_lib.TagValue  # algoParams entries

__all__ = [
    "IB",
    "IB_LIBRARY_NAME",
    "BarData",
    "Crypto",
    "Forex",
    "Future",
    "LimitOrder",
    "MarketOrder",
    "Stock",
    "StopLimitOrder",
    "StopOrder",
    "TagValue",
    "Contract",
    "ContractDetails",
    "ExecutionFilter",
    "Fill",
    "Order",
    "OrderStatus",
    "RequestError",
    "Ticker",
    "Trade",
    "ib_lib",
    "util",
]
