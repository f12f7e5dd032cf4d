"""A fake Capital.com REST API v1 on loopback, for tests, demos and backtests.

The simulator speaks the broker's HTTP dialect (paths, headers, JSON bodies, error codes,
rate limits) so that any client, not only this project's adapter, can be pointed at it.
State lives in :class:`~ccxt_capital.sim.broker.Broker`; time comes from a
:class:`~normalization.runtime.simclock.SimClock` that tests drive.

    with CapitalSimulator(port=0, seed=7) as sim:
        httpx.get(sim.base_url + "/api/v1/time")
"""

from .broker import Broker
from .server import DEFAULT_API_KEY, DEFAULT_IDENTIFIER, DEFAULT_PASSWORD, DEFAULT_START, CapitalSimulator

__all__ = [
    "Broker",
    "CapitalSimulator",
    "DEFAULT_API_KEY",
    "DEFAULT_IDENTIFIER",
    "DEFAULT_PASSWORD",
    "DEFAULT_START",
]
