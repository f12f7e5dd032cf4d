"""Make our exchanges resolvable the way bots look exchanges up.

ccxt has no plugin mechanism: bots do ``getattr(ccxt, exchange_id)(config)`` and check
``exchange_id in ccxt.exchanges``. Registering means setting the attribute and extending the
``exchanges`` lists of ``ccxt``, ``ccxt.async_support`` and ``ccxt.pro``. Written once for both
brokers.
"""

from __future__ import annotations

from types import ModuleType

import ccxt
import ccxt.async_support
import ccxt.pro


def _register(module: ModuleType, exchange_id: str, cls: type) -> None:
    setattr(module, exchange_id, cls)
    exchanges = getattr(module, "exchanges", None)
    if isinstance(exchanges, list) and exchange_id not in exchanges:
        exchanges.append(exchange_id)
    names = getattr(module, "__all__", None)
    if isinstance(names, list) and exchange_id not in names:
        names.append(exchange_id)


def register_exchange(exchange_id: str, sync_class: type, async_class: type, pro_class: type | None = None) -> None:
    """``ccxt.<id>`` -> the sync class; ``ccxt.async_support.<id>`` -> the async one; ``ccxt.pro.<id>`` ->
    the streaming subclass (``pro.py``), else the async class."""
    _register(ccxt, exchange_id, sync_class)
    _register(ccxt.async_support, exchange_id, async_class)
    _register(ccxt.pro, exchange_id, pro_class or async_class)
