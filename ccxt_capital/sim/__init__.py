"""A fake Capital.com REST API v1 (and its streaming WebSocket) on loopback, for tests and demos.

The simulator speaks the broker's HTTP dialect -- paths under ``/api/v1``, the ``X-CAP-API-KEY`` /
``CST`` / ``X-SECURITY-TOKEN`` headers, JSON bodies, ``{"errorCode": "error...."}`` refusals, rate
limits -- so any client, not only this project's adapter, can be pointed at it. Prices come from a
seeded synthetic path per epic (or a user's CSV) and are the same for quotes, bars and fills; money
and positions add up after every deal (:meth:`CapitalSimulator.check_books`).

Standalone (real-time clock, wall-clock limits)::

    python -m ccxt_capital.sim --port 8100 --seed 7 --currency USD

In-process, with a simulated clock that the test drives::

    with CapitalSimulator(port=0, seed=7) as sim:          # own thread and event loop
        client = httpx.Client(base_url=sim.base_url + "/api/v1")
        ...
        sim.advance(3600)            # working orders, stops, expiries and swaps run on the way
        sim.pin_price("AAPL", 95.0)  # hold a mid price from now on (exact triggers)
        sim.faults.too_many_requests(times=3)
        sim.positions(); sim.balances(); sim.check_books()

``async with CapitalSimulator(...)`` serves on the running loop instead. The pytest fixture
``capital_sim`` (:mod:`ccxt_capital.sim.testing`) yields a started simulator; default credentials
are ``demo-api-key`` / ``demo@example.com`` / ``demo-password``.

Modules: ``server`` (running it), ``app`` (HTTP plumbing), ``routes`` (the endpoints), ``inputs``
(request checking), ``session`` (logins), ``limits`` (rate limits), ``faults`` (fault injection),
``broker`` (state and lock), ``dealing`` (deals and confirms), ``clockwork`` (what runs as time
moves), ``account`` (ledger), ``catalogue`` (epics and hours), ``pricing`` (quotes and bars),
``views`` (JSON shapes), ``watchlists`` / ``watchlist_routes`` (watchlists), ``streaming`` (WebSocket),
``testing`` (fixtures). Fidelity target: every example of Capital.com's official Postman collection
(``tests/capital/test_sim_capital_official_examples.py``).
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
