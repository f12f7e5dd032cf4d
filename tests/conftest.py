"""Suite-wide settings: deterministic property tests, bounded in time."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

# derandomize: the same examples every run, so CI is deterministic (the standards ask for seeded tests).
settings.register_profile(
    "ci", max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("ci")


@pytest.fixture(scope="session")
def pg_server():
    """One throwaway PostgreSQL server for the session, started on first use (see tests/pgserver.py)."""
    from tests.pgserver import PgServer

    server = PgServer()
    with server:
        yield server
