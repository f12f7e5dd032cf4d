"""A fake TWS / IB Gateway on loopback that unmodified ib_async / ib_insync clients trade against.

Why: the adapter must be tested against the real socket protocol (negotiated server version,
field layouts, message order, error codes) without an IB account, deterministically and fast.

Usage::

    with IBSimulator(port=0, seed=7) as sim:          # own thread + loop; sim.port is bound
        ib.connect("127.0.0.1", sim.port, clientId=1)
        sim.advance(60)                               # clock step: stops trigger, limits fill
        sim.set_liquidity(100)                        # each match fills at most 100 (partials)
        sim.drop_on_order("booked", order_ref="x")    # faults: see IBSimulator's control API
        sim.check_ledger()                            # cash + positions at cost == initial + PnL

    async with IBSimulator(port=0) as sim: ...        # on the current event loop
    python -m ccxt_ibkr.sim --port 7497 [--seed N] [--base-currency AUD] [--csv AAPL=bars.csv]

The clock (``sim.clock``, a ``SimClock``) starts frozen at Tue 2025-06-10 14:00 UTC unless
told otherwise; the CLI follows real time. Pytest fixtures ``ib_sim`` / ``ib_client`` live in
``ccxt_ibkr.sim.testing`` (re-exported by ``tests/ib/conftest.py``).

Modules: ``wire`` (framing, codec, version negotiation), ``session`` (one connection's
requests), ``handlers_*`` (requests by theme), ``server`` (shared state, threads, control API),
``messages`` (outgoing layouts per version), ``catalogue`` (contracts, sessions, matching rules,
market rules), ``calendars`` (exchange_calendars sessions), ``marketdata`` (quotes at the venue's
cadence, HMDS rules and pacing), ``sessionbars`` (bars cut along sessions), ``ticks`` (tick
history, histograms), ``pnl`` (reqPnL figures), ``scanner``, ``matching`` (orders), ``ledger``
(cash, positions, commissions), ``faults`` (armed faults).
"""

from .catalogue import Catalogue, ContractQuery, Instrument, default_instruments
from .faults import ACKED, BEFORE, BOOKED
from .ledger import Ledger, order_fee
from .server import DEFAULT_START, IBSimulator

__all__ = [
    "ACKED", "BEFORE", "BOOKED", "DEFAULT_START", "Catalogue", "ContractQuery", "IBSimulator", "Instrument",
    "Ledger", "default_instruments", "order_fee",
]
