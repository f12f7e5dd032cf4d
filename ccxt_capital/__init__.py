"""Capital.com for unmodified ccxt bots: ``ccxt_capital.CapitalTrader`` (ccxt id ``capitalcom``).

``import ccxt_capital`` registers ``ccxt.capitalcom`` (sync), ``ccxt.async_support.capitalcom`` and
``ccxt.pro.capitalcom`` (async with the ``watch_*`` streams of :mod:`ccxt_capital.pro`) and lists the
id in their ``exchanges``, so
``getattr(ccxt, 'capitalcom')(config)`` works. The sync class is generated from the async
implementation by the shared facade: one implementation, two faces. The simulator lives in
``ccxt_capital.sim``.

    exchange = ccxt_capital.CapitalTrader({"apiKey": ..., "login": ..., "password": ...})   # demo host
"""

from __future__ import annotations

import ccxt

from normalization.runtime.facade import SyncFacade
from normalization.runtime.registry import register_exchange
from normalization.runtime.resample import ohlcv_to_dataframe

from .async_support import CapitalTrader as AsyncCapitalTrader
from .pro import CapitalTraderPro
from .transport import DEMO_HOST, LIVE_HOST


class CapitalTrader(SyncFacade, ccxt.Exchange):
    """The sync ccxt exchange ``capitalcom``; every unified method runs the async twin on a private loop."""

    async_class = AsyncCapitalTrader


register_exchange("capitalcom", CapitalTrader, AsyncCapitalTrader, CapitalTraderPro)

from normalization.runtime.factory import create_exchange  # noqa: E402  (shared with ccxt_ibkr)

__all__ = [
    "DEMO_HOST", "LIVE_HOST", "AsyncCapitalTrader", "CapitalTrader", "CapitalTraderPro", "create_exchange",
    "ohlcv_to_dataframe",
]
