"""Fault injection: error bursts, slow replies, dropped connections, early expiry, pending confirms."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.capital_sim(rate_limits="off")

BUY = {"epic": "AAPL", "direction": "BUY", "size": 1}


def test_burst_of_429s(capital_sim, capital_client):
    capital_sim.faults.too_many_requests(times=3, path="/prices")
    statuses = [capital_client.get("/prices/AAPL").status_code for _ in range(4)]
    assert statuses == [429, 429, 429, 200]
    assert capital_client.get("/accounts").status_code == 200


def test_server_errors_do_not_touch_the_books(capital_sim, capital_client):
    capital_sim.faults.fail(503, "error.service.unavailable", method="POST", path="/positions")
    response = capital_client.post("/positions", BUY)
    assert response.status_code == 503
    assert response.json() == {"errorCode": "error.service.unavailable"}
    assert capital_sim.positions() == []
    assert capital_client.post("/positions", BUY).status_code == 200
    assert len(capital_sim.positions()) == 1
    capital_sim.faults.fail(500, times=2)
    assert [capital_client.get("/ping").status_code for _ in range(3)] == [500, 500, 200]


def test_slow_reply_times_out_a_client(capital_sim, capital_client):
    capital_sim.faults.slow(0.5, path="/accounts")
    with pytest.raises(httpx.ReadTimeout):
        capital_client.get("/accounts", timeout=0.05)
    assert capital_client.get("/accounts").status_code == 200


def test_drop_before_booking(capital_sim, capital_client):
    capital_sim.faults.drop(method="POST", path="/positions")
    with pytest.raises(httpx.RemoteProtocolError):
        capital_client.post("/positions", BUY)
    assert capital_sim.positions() == []
    capital_sim.check_books()
    assert capital_client.get("/positions").json() == {"positions": []}


def test_drop_after_booking(capital_sim, capital_client):
    capital_sim.faults.drop(after=True, method="POST", path="/positions")
    with pytest.raises(httpx.RemoteProtocolError):
        capital_client.post("/positions", BUY)
    # The deal went through although the client never heard of it: it must reconcile.
    [position] = capital_sim.positions()
    listed = capital_client.get("/positions").json()["positions"]
    assert [p["position"]["dealId"] for p in listed] == [position.deal_id]
    activity = capital_client.get("/history/activity", params={"detailed": "true"}).json()["activities"]
    reference = activity[0]["details"]["dealReference"]
    assert capital_client.get(f"/confirms/{reference}").json()["dealStatus"] == "ACCEPTED"
    capital_sim.check_books()


def test_session_expired_early(capital_sim, capital_client):
    assert capital_sim.faults.expire_sessions_now() == 1
    response = capital_client.get("/accounts")
    assert response.status_code == 401
    assert response.json() == {"errorCode": "error.invalid.session.token"}
    assert capital_client.login().status_code == 200
    capital_sim.faults.expire_session(path="/positions")
    assert capital_client.get("/accounts").status_code == 200
    assert capital_client.post("/positions", BUY).status_code == 401
    assert capital_sim.positions() == []


def test_pending_confirm_by_polls(capital_sim, capital_client):
    capital_sim.faults.pending_confirms(polls=2)
    reference = capital_client.post("/positions", BUY).json()["dealReference"]
    first = capital_client.get(f"/confirms/{reference}")
    assert first.status_code == 404 and first.json() == {"errorCode": "error.not-found.dealReference"}
    assert capital_client.get(f"/confirms/{reference}").status_code == 404
    assert capital_client.get(f"/confirms/{reference}").json()["dealStatus"] == "ACCEPTED"
    # Only the armed number of deals is affected.
    other = capital_client.post("/positions", BUY).json()["dealReference"]
    assert capital_client.get(f"/confirms/{other}").status_code == 200


def test_pending_confirm_by_simulated_time(capital_sim, capital_client):
    capital_sim.faults.pending_confirms(seconds=2.0, deals=2)
    first = capital_client.post("/positions", BUY).json()["dealReference"]
    second = capital_client.post("/positions", BUY).json()["dealReference"]
    assert capital_client.get(f"/confirms/{first}").status_code == 404
    capital_sim.advance(1.0)
    assert capital_client.get(f"/confirms/{second}").status_code == 404
    capital_sim.advance(1.0)
    assert capital_client.get(f"/confirms/{first}").status_code == 200
    assert capital_client.get(f"/confirms/{second}").status_code == 200
    # The positions existed all along: a pending confirm hides nothing else.
    assert len(capital_sim.positions()) == 2


def test_faults_match_method_and_path(capital_sim, capital_client):
    capital_sim.faults.fail(500, method="DELETE")
    assert capital_client.get("/ping").status_code == 200
    assert capital_client.delete("/session").status_code == 500
    assert capital_client.get("/ping").status_code == 200
    capital_sim.faults.fail(500, times=5)
    assert len(capital_sim.faults.armed) == 1
    capital_sim.faults.clear()
    assert capital_sim.faults.armed == []
    with pytest.raises(ValueError):
        from ccxt_capital.sim.faults import FaultRule

        capital_sim.faults.add(FaultRule("meteor"))
