"""Pytest fixtures for code that talks to the simulator (this package's tests and the adapter's).

``capital_sim`` yields a running :class:`CapitalSimulator` on a free port with a frozen clock at
:data:`DEFAULT_START`. Configure it per test or per module with a marker::

    @pytest.mark.capital_sim(rate_limits="wall", seed=7, currency="EUR")
    def test_something(capital_sim): ...

The fixture's default is ``rate_limits="sim"``: the broker's limits measured on the simulated clock,
deterministic -- with a frozen clock the 11th request of a session within one simulated second is
refused until the clock moves, so a client under test should throttle (sleep) on that same clock.
Pass ``rate_limits="wall"`` for a client that sleeps in real time, or ``"off"``.
:class:`SimClient` is a small logged-in httpx client for tests that speak HTTP directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .server import DEFAULT_API_KEY, DEFAULT_IDENTIFIER, DEFAULT_PASSWORD, CapitalSimulator


def _options(request: pytest.FixtureRequest) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers("capital_sim"))):
        options.update(marker.kwargs)
    return options


@pytest.fixture
def capital_sim(request: pytest.FixtureRequest) -> Iterator[CapitalSimulator]:
    """A running simulator (thread mode) for one test; stopped afterwards."""
    options = {"rate_limits": "sim", **_options(request)}
    sim = CapitalSimulator(port=0, **options)
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def capital_client(capital_sim: CapitalSimulator) -> Iterator[SimClient]:
    """A :class:`SimClient` logged in to ``capital_sim`` with the default credentials."""
    client = SimClient(capital_sim)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def capital_credentials() -> dict[str, str]:
    return {"api_key": DEFAULT_API_KEY, "identifier": DEFAULT_IDENTIFIER, "password": DEFAULT_PASSWORD}


def login_headers(sim: CapitalSimulator) -> dict[str, str]:
    """Log in with the default credentials over HTTP and return the CST / X-SECURITY-TOKEN headers."""
    response = httpx.post(
        sim.api_url + "/session",
        headers={"X-CAP-API-KEY": sim.api_key},
        json={"identifier": sim.identifier, "password": sim.password, "encryptedPassword": False},
    )
    response.raise_for_status()
    return {"CST": response.headers["CST"], "X-SECURITY-TOKEN": response.headers["X-SECURITY-TOKEN"]}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "capital_sim(**options): options for the capital_sim fixture")


class SimClient:
    """A plain httpx client logged in to a simulator, with a helper that deals and checks the books.

    It speaks the API exactly as documented (no adapter logic), so tests built on it exercise the
    simulator, not a client library.
    """

    def __init__(self, sim: CapitalSimulator, *, login: bool = True, timeout: float = 10.0) -> None:
        self.sim = sim
        self.http = httpx.Client(base_url=sim.api_url, timeout=timeout)
        if login:
            self.login()

    def login(self) -> httpx.Response:
        response = self.http.post(
            "/session", headers={"X-CAP-API-KEY": self.sim.api_key},
            json={"identifier": self.sim.identifier, "password": self.sim.password, "encryptedPassword": False},
        )
        if response.status_code == 200:
            self.http.headers["CST"] = response.headers["CST"]
            self.http.headers["X-SECURITY-TOKEN"] = response.headers["X-SECURITY-TOKEN"]
        return response

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        return self.http.post(path, json=body, **kwargs)

    def put(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        return self.http.put(path, json=body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.delete(path, **kwargs)

    def deal(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        """Send a dealing request, return its confirm, and assert that the books add up."""
        response = self.http.request(method, path, json=body)
        assert response.status_code == 200, response.text
        reference = response.json()["dealReference"]
        confirm = self.http.get(f"/confirms/{reference}")
        assert confirm.status_code == 200, confirm.text
        self.sim.check_books()
        return confirm.json()

    def close(self) -> None:
        self.http.close()
