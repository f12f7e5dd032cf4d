"""The markets a command line last loaded, kept on disk so ``validate`` works with no connection.

Why: checking an order's symbol, size step, tick and limits needs only the market tables, and an
operator validating an order (or a bot's output) should not need TWS running or a Capital.com login
to do it. Every connected command saves the markets it loaded; IB loads its universe plus what was
asked for, so the file is merged, not replaced: symbols resolved by earlier commands stay.

Where: ``$CCXT_BROKERS_MARKETS_CACHE`` (a directory), else ``markets/`` beside the bar cache's
directory (``~/.cache/ccxt-brokers/markets`` on Linux), one ``<exchange id>.json`` per exchange.
The file holds market structures only (no credentials, no account data).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .ohlcv_cache import default_cache_root

__all__ = ["MARKETS_CACHE_ENV", "load_markets_file", "markets_cache_path", "save_markets"]

MARKETS_CACHE_ENV = "CCXT_BROKERS_MARKETS_CACHE"


def markets_cache_path(exchange_id: str) -> Path:
    override = os.environ.get(MARKETS_CACHE_ENV)
    root = Path(override).expanduser() if override else default_cache_root().parent / "markets"
    return root / f"{exchange_id}.json"


def load_markets_file(path: Path) -> dict[str, Any] | None:
    """``{symbol: market}`` from a cache file, or None when there is none (or it is unreadable)."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    markets = document.get("markets") if isinstance(document, dict) else None
    return markets if isinstance(markets, dict) and markets else None


def save_markets(exchange_id: str, markets: Mapping[str, Any], path: Path | None = None) -> Path:
    """Merge ``markets`` into the exchange's cache file (atomically: written aside, then renamed)."""
    path = path or markets_cache_path(exchange_id)
    merged = dict(load_markets_file(path) or {})
    merged.update(markets)
    path.parent.mkdir(parents=True, exist_ok=True)
    spare = path.with_suffix(f".{os.getpid()}.tmp")
    spare.write_text(json.dumps({"exchange": exchange_id, "saved": int(time.time() * 1000), "markets": merged},
                                default=str))
    spare.replace(path)
    return path
