"""A fake TWS / IB Gateway on loopback that unmodified ib_async / ib_insync clients trade against.

``IBSimulator`` is the entry point (context manager, async context manager, or
``python -m ccxt_ibkr.sim``); ``ccxt_ibkr.sim.testing`` has the pytest fixture.
"""

from .catalogue import Catalogue, ContractQuery, Instrument, default_instruments
from .faults import ACKED, BEFORE, BOOKED
from .ledger import Ledger, order_fee
from .server import DEFAULT_START, IBSimulator

__all__ = [
    "ACKED", "BEFORE", "BOOKED", "DEFAULT_START", "Catalogue", "ContractQuery", "IBSimulator", "Instrument",
    "Ledger", "default_instruments", "order_fee",
]
