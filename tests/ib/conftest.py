"""Shared IB fixtures: ``ib_sim`` (a running fake TWS) and ``ib_client`` (a connected IB)."""

from ccxt_ibkr.sim.testing import ib_client, ib_sim  # noqa: F401
