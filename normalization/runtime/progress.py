"""Progress bars for long downloads, silent unless a human is watching.

A five-year hourly download takes minutes under IB's pacing rules, so a person at a terminal deserves
a bar; a bot under systemd or a CI log does not want carriage-return noise. The bar is therefore on
only when stderr is a TTY, and ``CCXT_BROKERS_PROGRESS=0/1`` forces it either way. Short jobs never
flash a bar: tqdm's ``delay`` keeps it hidden for the first half second.
"""

from __future__ import annotations

import os
import sys
from typing import IO, Any

from tqdm import tqdm

__all__ = ["PROGRESS_ENV", "progress_enabled", "progress_bar"]

PROGRESS_ENV = "CCXT_BROKERS_PROGRESS"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def progress_enabled(stream: IO[str] | None = None) -> bool:
    """Whether to draw a bar on ``stream`` (default stderr): env override first, else ``isatty()``."""
    forced = os.environ.get(PROGRESS_ENV, "").strip().lower()
    if forced in _TRUE:
        return True
    if forced in _FALSE:
        return False
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced stream
        return False


def progress_bar(
    total: float | None = None,
    desc: str | None = None,
    unit: str = "it",
    *,
    enabled: bool | None = None,
    stream: IO[str] | None = None,
    **kwargs: Any,
) -> tqdm:
    """A tqdm bar on stderr, disabled (a cheap no-op with the same API) when nobody is watching.

    Use as a context manager: ``with progress_bar(total=n, desc="AAPL 1h") as bar: bar.update(k)``.
    """
    stream = sys.stderr if stream is None else stream
    on = progress_enabled(stream) if enabled is None else enabled
    kwargs.setdefault("delay", 0.5)
    kwargs.setdefault("leave", False)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(total=total, desc=desc, unit=unit, file=stream, disable=not on, **kwargs)
