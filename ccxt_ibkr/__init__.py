"""Interactive Brokers for unmodified ccxt bots: ``ccxt_ibkr.IBTrader`` (ccxt id ``ibkr``).

``import ccxt_ibkr`` registers ``ccxt.ibkr`` (sync), ``ccxt.async_support.ibkr`` (async) and
``ccxt.pro.ibkr`` (async with the ``watch_*`` streams of :mod:`ccxt_ibkr.pro`), so
``getattr(ccxt, 'ibkr')(config)`` works. The sync class is generated
from the async implementation by the shared facade: one implementation, two faces.
"""

from __future__ import annotations

from typing import Any

import ccxt

from normalization.runtime.facade import SyncFacade
from normalization.runtime.home import hop_to_home
from normalization.runtime.registry import register_exchange
from normalization.runtime.resample import ohlcv_to_dataframe

from ._ib import IB_LIBRARY_NAME
from .async_support import IBTrader as AsyncIBTrader
from .pro import IBTraderPro

# The watch_* coroutines too run on the loop of the connection they share (normalization.runtime.home).
hop_to_home(IBTraderPro)


class IBTrader(SyncFacade, ccxt.Exchange):
    """The sync ccxt exchange ``ibkr``; every unified method runs the async twin on a private loop."""

    async_class = AsyncIBTrader

    def connect(self) -> None:
        """Connect now instead of on first use."""
        self._call("connect")

    @property
    def supervisor(self) -> Any:
        """The async twin's connection state machine (read-only use from this thread)."""
        return self.impl.supervisor


register_exchange("ibkr", IBTrader, AsyncIBTrader, IBTraderPro)

from normalization.runtime.factory import create_exchange  # noqa: E402  (shared with ccxt_capital)

__all__ = ["IB_LIBRARY_NAME", "AsyncIBTrader", "IBTrader", "IBTraderPro", "create_exchange", "ohlcv_to_dataframe"]
