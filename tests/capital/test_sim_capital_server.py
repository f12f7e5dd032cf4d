"""Running the simulator: standalone command line, async mode on the caller's loop, thread mode."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from ccxt_capital.sim import CapitalSimulator
from ccxt_capital.sim.testing import SimClient

ROOT = Path(__file__).resolve().parents[2]


def test_command_line_serves_until_stopped():
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    process = subprocess.Popen(
        [sys.executable, "-m", "ccxt_capital.sim", "--port", "0", "--seed", "5", "--currency", "EUR"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "listening on 127.0.0.1:" in line
        port = int(line.split("127.0.0.1:")[1].split()[0])
        credentials = process.stdout.readline()
        assert "demo-api-key" in credentials and "demo@example.com" in credentials
        assert "demo-password" in credentials
        base = f"http://127.0.0.1:{port}/api/v1"
        login = httpx.post(base + "/session", headers={"X-CAP-API-KEY": "demo-api-key"},
                           json={"identifier": "demo@example.com", "password": "demo-password"})
        assert login.status_code == 200
        assert login.json()["currencyIsoCode"] == "EUR"
        server_ms = httpx.get(base + "/time").json()["serverTime"]
        import time

        assert abs(server_ms / 1000 - time.time()) < 60  # standalone follows real time
    finally:
        process.terminate()
        process.wait(10)
    assert process.returncode is not None


async def test_async_mode_on_the_running_loop():
    async with CapitalSimulator(port=0, seed=2, rate_limits="off") as sim:
        async with httpx.AsyncClient(base_url=sim.api_url) as client:
            login = await client.post("/session", headers={"X-CAP-API-KEY": sim.api_key},
                                      json={"identifier": sim.identifier, "password": sim.password})
            assert login.status_code == 200
            client.headers.update({"CST": login.headers["CST"], "X-SECURITY-TOKEN": login.headers["X-SECURITY-TOKEN"]})
            reference = (await client.post("/positions", json={"epic": "BTCUSD", "direction": "BUY",
                                                                "size": 0.01})).json()["dealReference"]
            confirm = (await client.get(f"/confirms/{reference}")).json()
            assert confirm["dealStatus"] == "ACCEPTED"
        sim.check_books()


def test_thread_mode_context_manager_and_fixture_fields(capital_sim):
    assert capital_sim.base_url.startswith("http://127.0.0.1:")
    assert not capital_sim.base_url.endswith("/api/v1")
    assert capital_sim.credentials == {"api_key": "demo-api-key", "identifier": "demo@example.com",
                                       "password": "demo-password"}
    assert capital_sim.accounts == ["200000000000001", "200000000000002"]
    with CapitalSimulator(port=0) as other:
        assert other.port != capital_sim.port
        assert httpx.get(other.api_url + "/time").status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(other.api_url + "/time")


def test_loopback_only():
    with pytest.raises(ValueError):
        CapitalSimulator(host="0.0.0.0")


def test_control_api_is_thread_safe(capital_sim):
    """The test thread moves the clock while the server thread deals; the books stay consistent."""
    import threading

    client = SimClient(capital_sim)
    client.http.headers["X-Test"] = "1"
    capital_sim.broker.limiter.mode = "off"
    capital_sim.pin_price("BTCUSD", 60000.0)
    errors: list[BaseException] = []

    def mover() -> None:
        try:
            for _ in range(200):
                capital_sim.advance(30)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    thread = threading.Thread(target=mover)
    thread.start()
    for i in range(40):
        direction = "BUY" if i % 2 else "SELL"
        response = client.post("/positions", {"epic": "BTCUSD", "direction": direction, "size": 0.01,
                                              "stopDistance": 1000})
        assert response.status_code in (200, 401)
        if response.status_code == 401:
            client.login()
    thread.join()
    assert not errors
    capital_sim.check_books()
