"""One import point for the IB client library: ib_async if installed, else ib_insync.

The two are name-identical for everything used here; code and tests import through this
shim so the same suite runs in an ib_async venv and in an ib_insync venv.
"""

from __future__ import annotations

try:
    import ib_async as ib_lib

    IB_LIBRARY_NAME = "ib_async"
except ImportError:  # pragma: no cover - exercised in the ib_insync venv
    import ib_insync as ib_lib  # type: ignore[no-redef]

    IB_LIBRARY_NAME = "ib_insync"

IB = ib_lib.IB
Contract = ib_lib.Contract
Stock = ib_lib.Stock
Forex = ib_lib.Forex
Future = ib_lib.Future
Crypto = ib_lib.Crypto
Order = ib_lib.Order
LimitOrder = ib_lib.LimitOrder
MarketOrder = ib_lib.MarketOrder
StopOrder = ib_lib.StopOrder
StopLimitOrder = ib_lib.StopLimitOrder
util = ib_lib.util

__all__ = [
    "IB", "IB_LIBRARY_NAME", "Contract", "Crypto", "Forex", "Future", "LimitOrder", "MarketOrder", "Order",
    "Stock", "StopLimitOrder", "StopOrder", "ib_lib", "util",
]
