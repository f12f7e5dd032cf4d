"""The async twin's import path: ``from ccxt_capital.async_support import CapitalTrader``.

Mirrors ``ccxt.async_support``: the class here *is* the implementation (``ccxt_capital.exchange``);
the sync ``ccxt_capital.CapitalTrader`` runs it on a private event loop.
"""

from __future__ import annotations

from .exchange import CapitalTrader

__all__ = ["CapitalTrader"]
