"""``from ccxt_capital.async_support import CapitalTrader``: the async twin, as ``ccxt.async_support`` bots expect.

The implementation lives in :mod:`ccxt_capital.exchange`; the public class is that implementation with
the shared runtime composed in front of it (``with_runner_mixins``): the on-disk OHLCV cache and
resampling around ``fetch_ohlcv``, and base-currency equity figures in ``fetch_balance()['info']`` plus
``fetch_equity()``. The sync ``ccxt_capital.CapitalTrader`` runs it on a private event loop.
"""

from __future__ import annotations

from normalization.runtime.ohlcv_service import with_runner_mixins

from .exchange import CapitalTrader as _CapitalTraderImplementation

#: Capital's balance already is equity (deposit + profitLoss): open CFD positions add nothing to it.
CapitalTrader = with_runner_mixins(_CapitalTraderImplementation, equity_holdings="pnl")

__all__ = ["CapitalTrader"]
