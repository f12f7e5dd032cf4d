"""Rate limits of the simulator (token buckets), measured on the simulated clock so the tests are deterministic."""

from __future__ import annotations

import httpx
import pytest

from ccxt_capital.sim import CapitalSimulator
from ccxt_capital.sim.testing import SimClient

pytestmark = pytest.mark.capital_sim(rate_limits="sim")

TOO_MANY = {"errorCode": "error.too-many.requests"}


def test_ten_requests_per_second_per_session(capital_sim):
    client = SimClient(capital_sim)
    statuses = [client.get("/ping").status_code for _ in range(12)]
    assert statuses == [200] * 10 + [429] * 2
    assert client.get("/accounts").json() == TOO_MANY
    capital_sim.advance(0.099)
    assert client.get("/ping").status_code == 429
    capital_sim.advance(0.001)  # a token comes back every tenth of a second
    assert [client.get("/ping").status_code for _ in range(2)] == [200, 429]
    capital_sim.advance(1)  # and the bucket is full again after a second
    assert [client.get("/ping").status_code for _ in range(11)] == [200] * 10 + [429]


def test_the_limit_is_per_session(capital_sim):
    first = SimClient(capital_sim)
    for _ in range(10):
        first.get("/ping")
    assert first.get("/ping").status_code == 429
    capital_sim.advance(1)
    second = SimClient(capital_sim)
    assert second.get("/ping").status_code == 200


def test_token_bucket_not_sliding_window(capital_sim):
    """10 per second is measured as a bucket of 10 refilled at 10/s: half a second after a burst of 5
    the bucket is full again, so 10 more pass (a sliding window would refuse the 6th)."""
    client = SimClient(capital_sim)
    for _ in range(5):
        assert client.get("/ping").status_code == 200
    capital_sim.advance(0.5)
    assert [client.get("/ping").status_code for _ in range(11)] == [200] * 10 + [429]


def test_a_client_pacing_with_the_documented_bucket_is_never_refused(capital_sim):
    """A client that paces itself with a token bucket of burst 10 at 10/s (on the same clock) sends
    a burst of 10 and then one request every 0.1 s: 10 + 10 in its first second, never a 429."""
    client = SimClient(capital_sim)
    statuses = [client.get("/ping").status_code for _ in range(10)]
    for _ in range(40):
        capital_sim.advance(0.1)
        statuses.append(client.get("/ping").status_code)
    assert statuses == [200] * 50


def test_login_once_per_second_per_api_key(capital_sim):
    assert SimClient(capital_sim, login=False).login().status_code == 200
    second = SimClient(capital_sim, login=False).login()
    assert second.status_code == 429 and second.json() == TOO_MANY
    capital_sim.advance(1)
    assert SimClient(capital_sim, login=False).login().status_code == 200


def test_deals_once_per_tenth_of_a_second(capital_sim):
    client = SimClient(capital_sim)
    body = {"epic": "AAPL", "direction": "BUY", "size": 1}
    assert client.post("/positions", body).status_code == 200
    refused = client.post("/positions", body)
    assert refused.status_code == 429 and refused.json() == TOO_MANY
    order = {"epic": "AAPL", "direction": "BUY", "size": 1, "type": "LIMIT", "level": 1.0}
    assert client.post("/workingorders", order).status_code == 429  # the same budget
    capital_sim.advance(0.1)
    assert client.post("/workingorders", order).status_code == 200
    assert len(capital_sim.positions()) == 1 and len(capital_sim.working_orders()) == 1
    capital_sim.check_books()


def test_a_thousand_deals_per_hour(capital_sim):
    client = SimClient(capital_sim)
    limiter = capital_sim.broker.limiter
    session = next(iter(capital_sim.broker.sessions.sessions.values()))
    # Pre-fill the hourly window as if 1000 deals happened in the last hour.
    from ccxt_capital.sim.limits import DEALS_PER_HOUR

    now = capital_sim.clock.now()
    with capital_sim.broker.lock:
        for _ in range(1000):
            limiter.admit([("deal-hour", session.api_key, DEALS_PER_HOUR)])
    capital_sim.advance(1)
    response = client.post("/positions", {"epic": "AAPL", "direction": "BUY", "size": 1})
    assert response.json() == TOO_MANY
    capital_sim.clock.set(now + 3600)
    client.login()
    assert client.post("/positions", {"epic": "AAPL", "direction": "BUY", "size": 1}).status_code == 200


def test_refused_requests_change_nothing(capital_sim):
    client = SimClient(capital_sim)
    for _ in range(9):
        client.get("/ping")
    assert client.post("/positions", {"epic": "AAPL", "direction": "BUY", "size": 1}).status_code == 200
    assert client.post("/positions", {"epic": "AAPL", "direction": "BUY", "size": 1}).status_code == 429
    assert len(capital_sim.positions()) == 1


def test_public_endpoints_are_not_session_limited(capital_sim):
    with httpx.Client(base_url=capital_sim.api_url) as client:
        assert all(client.get("/time").status_code == 200 for _ in range(30))


def test_limits_can_be_switched_off():
    with CapitalSimulator(port=0, rate_limits="off") as sim:
        client = SimClient(sim)
        assert all(client.get("/ping").status_code == 200 for _ in range(50))
        assert SimClient(sim, login=False).login().status_code == 200


def test_wall_clock_limits_need_real_time():
    """In wall mode a frozen sim clock does not reset the window; real time does (no sleeps: a
    quick burst is simply refused)."""
    with CapitalSimulator(port=0, rate_limits="wall") as sim:
        client = SimClient(sim)
        # Real time is not under the test's control, so only robust facts are checked: the first ten
        # pass, and a quick burst hits the limit (100 requests would need over 10 s to avoid it).
        statuses = [client.get("/ping").status_code for _ in range(100)]
        assert statuses[:10] == [200] * 10 and 429 in statuses
        sim.advance(5)  # the simulated clock does not help here
        assert client.get("/ping").status_code in (200, 429)


def test_unknown_rate_limit_mode_is_refused():
    with pytest.raises(ValueError):
        CapitalSimulator(rate_limits="sometimes")
