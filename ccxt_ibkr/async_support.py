"""``from ccxt_ibkr.async_support import IBTrader``: the async twin, as ``ccxt.async_support`` bots expect.

The implementation lives in :mod:`ccxt_ibkr.exchange`; the public class is that implementation with the
shared runtime composed in front of it (``with_runner_mixins``): the on-disk OHLCV cache and resampling
around ``fetch_ohlcv``, and base-currency equity figures in ``fetch_balance()['info']`` plus
``fetch_equity()``. Both are written once in ``normalization.runtime`` for every broker.
"""

from __future__ import annotations

from normalization.runtime.home import hop_to_home
from normalization.runtime.ohlcv_service import with_runner_mixins

from .exchange import IBTrader as _IBTraderImplementation

#: IB cash equities are bought with cash: holdings count at market value in the equity figure.
#: Every public coroutine runs on the loop of the process-wide connection it shares with other instances
#: of the same clientId (``hop_to_home``): a sync and an async face, or two bots, use one IB connection.
IBTrader = hop_to_home(with_runner_mixins(_IBTraderImplementation, equity_holdings="market"))

__all__ = ["IBTrader"]
