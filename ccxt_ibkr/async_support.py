"""``from ccxt_ibkr.async_support import IBTrader``: the async twin, as ``ccxt.async_support`` bots expect.

The implementation lives in :mod:`ccxt_ibkr.exchange`; this module only gives it ccxt's import path.
"""

from __future__ import annotations

from .exchange import IBTrader

__all__ = ["IBTrader"]
