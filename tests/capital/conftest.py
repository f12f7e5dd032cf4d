"""Shared fixtures for the Capital.com tests: the simulator (``capital_sim``) and its helpers.

The fixtures live in :mod:`ccxt_capital.sim.testing` so that other test trees can import them too.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:  # the project may be run from a checkout without being installed
    sys.path.insert(0, str(_ROOT))

from ccxt_capital.sim.testing import (  # noqa: E402,F401
    capital_client,
    capital_credentials,
    capital_sim,
    login_headers,
    pytest_configure,
)
