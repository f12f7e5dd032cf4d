"""The connection supervisor: fail-fast gate, seeded backoff, reconnect loop and healing hooks.

Time is fake throughout: ``sleep`` records the delay and yields once, so the reconnect loop runs
as fast as the event loop turns and the schedule it asks for is asserted exactly.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import ccxt
import pytest

from normalization.runtime.breaker import CLOSED as CLOSED_BREAKER
from normalization.runtime.breaker import Breakers
from normalization.runtime.retry import RequestNotSent, retry_if_never_sent
from normalization.runtime.supervisor import (
    CLOSED,
    CONNECTED,
    DISCONNECTED,
    EXECUTION,
    IDLE,
    MAINTENANCE,
    MARKET_DATA,
    OUTAGE,
    Backoff,
    BrokerMaintenance,
    BrokerOutage,
    ConnectionSupervisor,
    MaintenanceWindow,
    NotConnected,
    ReconnectEvent,
    bounded,
    ib_maintenance_windows,
)


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class FlakyConnect:
    """Fails ``failures`` times (with ``error``), then succeeds."""

    def __init__(self, failures: int, error: Exception | None = None) -> None:
        self.failures = failures
        self.calls = 0
        self.error = error or ccxt.ExchangeNotAvailable("connection refused")

    async def __call__(self) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error


def make(connect: FlakyConnect | None = None, **kwargs: object) -> tuple[ConnectionSupervisor, FakeTime]:
    t = FakeTime()
    sup = ConnectionSupervisor(
        "test",
        connect,
        backoff=Backoff(initial=1.0, factor=2.0, maximum=8.0, jitter=0.0),
        clock=t.clock,
        sleep=t.sleep,
        **kwargs,  # type: ignore[arg-type]
    )
    return sup, t


# ------------------------------------------------------------------ backoff


def test_backoff_is_exponential_capped_and_seeded() -> None:
    plain = Backoff(initial=0.5, factor=2, maximum=4, jitter=0)
    assert [plain.delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    a = [Backoff(seed=3).delay(n) for n in range(1, 9)]
    b = [Backoff(seed=3).delay(n) for n in range(1, 9)]
    assert a == b, "the same seed must give the same schedule"
    assert all(0 <= d <= 30 for d in a)
    jittered = Backoff(initial=10, factor=1, maximum=100, jitter=0.2, seed=1)
    assert all(8.0 <= jittered.delay(1) <= 12.0 for _ in range(50))


def test_backoff_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        Backoff(jitter=1.5)
    with pytest.raises(ValueError):
        Backoff().delay(0)
    built = Backoff.from_options({"initialDelay": 0.01, "maxDelay": 0.1, "seed": 5, "jitter": 0})
    assert built.delay(1) == 0.01 and built.delay(10) == 0.1


# ------------------------------------------------------------------ maintenance windows


def test_maintenance_window_wraps_midnight_in_its_timezone() -> None:
    (window,) = ib_maintenance_windows()
    ny = dt.timezone(dt.timedelta(hours=-4))  # EDT in June
    inside = dt.datetime(2025, 6, 10, 23, 50, tzinfo=ny).timestamp()
    after_midnight = dt.datetime(2025, 6, 11, 0, 30, tzinfo=ny).timestamp()
    outside = dt.datetime(2025, 6, 10, 10, 0, tzinfo=ny).timestamp()
    assert window.contains(inside) and window.contains(after_midnight)
    assert not window.contains(outside)


def test_maintenance_window_parsing_and_weekdays() -> None:
    w = MaintenanceWindow.parse("22:00-23:00 UTC")
    assert w.contains(dt.datetime(2025, 6, 10, 22, 30, tzinfo=dt.timezone.utc).timestamp())
    w2 = MaintenanceWindow.parse(("23:00", "01:00", "UTC"))
    sunday_night = MaintenanceWindow(w2.start, w2.end, "UTC", frozenset({6}))
    monday_0030 = dt.datetime(2025, 6, 9, 0, 30, tzinfo=dt.timezone.utc).timestamp()  # window began Sunday
    tuesday_0030 = dt.datetime(2025, 6, 10, 0, 30, tzinfo=dt.timezone.utc).timestamp()
    assert sunday_night.contains(monday_0030) and not sunday_night.contains(tuesday_0030)
    with pytest.raises(ValueError):
        MaintenanceWindow.parse(("23:00",))


# ------------------------------------------------------------------ the gate


async def test_gate_per_state_raises_the_ccxt_exception_a_bot_expects() -> None:
    stuck = asyncio.Event()  # the reconnect loop's backoff never ends: it stays "reconnecting"

    async def never(seconds: float) -> None:
        await stuck.wait()

    sup = ConnectionSupervisor("test", FlakyConnect(0), backoff=Backoff(jitter=0), sleep=never)
    sup.ensure_usable(EXECUTION)  # idle: the caller connects lazily
    sup.connected()
    sup.ensure_usable(MARKET_DATA)
    sup.outage("1100")
    with pytest.raises(BrokerOutage) as outage:
        sup.ensure_usable(EXECUTION)
    assert isinstance(outage.value, ccxt.ExchangeNotAvailable) and isinstance(outage.value, RequestNotSent)
    await sup.restored(data_lost=False)
    sup.lost("socket closed", maintenance=True)
    assert sup.state == MAINTENANCE and sup.reconnecting
    with pytest.raises(BrokerMaintenance) as maint:
        sup.ensure_usable(MARKET_DATA)
    assert isinstance(maint.value, ccxt.OnMaintenance)
    sup.lost("socket closed", maintenance=False)
    with pytest.raises(NotConnected) as down:
        sup.ensure_usable(EXECUTION)
    assert isinstance(down.value, ccxt.NetworkError) and not isinstance(down.value, ccxt.ExchangeError)
    with pytest.raises(ValueError):
        sup.ensure_usable("orders")
    await sup.close()


def test_without_a_reconnect_loop_a_dropped_connection_is_reconnected_lazily() -> None:
    sup, _ = make(auto_reconnect=False)
    sup.connected()
    sup.lost("socket closed")
    assert sup.state == DISCONNECTED and not sup.reconnecting
    sup.ensure_usable(EXECUTION)  # nobody else will reconnect: the next call may


async def test_an_outage_reported_while_connecting_survives_the_connect() -> None:
    sup, _ = make(FlakyConnect(0))
    sup.connected()
    sup.lost("drop")  # while the reconnect runs, the new session hears 1100 before it is "connected"
    sup.outage("1100 at startup")
    await sup.wait_for(lambda s: s.state == OUTAGE and not s.reconnecting, timeout=5)
    with pytest.raises(BrokerOutage):
        sup.ensure_usable(EXECUTION)
    await sup.restored(data_lost=True, reason="1101")
    assert sup.state == CONNECTED


async def test_a_late_restored_message_does_not_revive_a_dead_socket() -> None:
    sup, _ = make(auto_reconnect=False)
    sup.connected()
    sup.outage("1100")
    sup.lost("socket closed")
    await sup.restored(data_lost=False, reason="1102 from the old session")
    assert sup.state == DISCONNECTED


def test_degraded_market_data_never_blocks_execution() -> None:
    sup, _ = make()
    sup.connected()
    sup.degrade(MARKET_DATA, "2103 market data farm broken")
    with pytest.raises(ccxt.ExchangeNotAvailable, match="farm broken"):
        sup.ensure_usable(MARKET_DATA)
    sup.ensure_usable(EXECUTION)  # a cancel still goes through
    sup.recover(MARKET_DATA)
    sup.ensure_usable(MARKET_DATA)


async def test_gate_errors_are_retryable_because_nothing_was_sent() -> None:
    sup, t = make()
    sup.connected()
    sup.outage("1100")
    calls = 0

    async def call() -> str:
        nonlocal calls
        calls += 1
        if calls == 2:
            await sup.restored(data_lost=False, reason="1102")
        sup.ensure_usable(EXECUTION)
        return "sent"

    assert await retry_if_never_sent(call, attempts=3, backoff=0.1, sleep=t.sleep) == "sent"
    assert calls == 2


async def test_close_is_final() -> None:
    sup, _ = make(FlakyConnect(100))
    sup.connected()
    sup.lost("drop")
    await sup.close()
    assert sup.state == CLOSED and not sup.reconnecting
    sup.connected()
    sup.lost("again")
    assert sup.state == CLOSED
    with pytest.raises(ccxt.ExchangeClosedByUser):
        sup.ensure_usable(EXECUTION)


# ------------------------------------------------------------------ reconnect loop


async def test_reconnects_with_backoff_then_heals_in_order() -> None:
    connect = FlakyConnect(3)
    sup, t = make(connect)
    seen: list[tuple[str, ReconnectEvent]] = []

    async def reconcile(event: ReconnectEvent) -> None:
        assert sup.healing, "wait_ready must not return while reconciliation runs"
        seen.append(("reconcile", event))

    sup.on_reconnected(reconcile)
    sup.on_reconnected(lambda event: seen.append(("resubscribe", event)))
    sup.connected()
    sup.lost("peer closed")
    assert sup.state == DISCONNECTED and sup.reconnecting
    with pytest.raises(NotConnected):
        sup.ensure_usable(EXECUTION)
    await sup.wait_ready(timeout=5)
    assert sup.state == CONNECTED and not sup.reconnecting
    assert t.sleeps == [1.0, 2.0, 4.0, 8.0]
    assert connect.calls == 4 and sup.reconnects == 1
    assert [name for name, _ in seen] == ["reconcile", "resubscribe"]
    assert seen[0][1] == ReconnectEvent("reconnect", data_lost=True, attempt=4)


async def test_failed_attempt_inside_maintenance_window_reports_maintenance() -> None:
    connect = FlakyConnect(2)
    noon = dt.datetime(2025, 6, 10, 12, 0, tzinfo=dt.timezone.utc).timestamp()
    sup, t = make(connect, maintenance=["11:00-13:00 UTC"], now=lambda: noon)
    states: list[str] = []
    sup.on_reconnected(lambda event: states.append(sup.state))
    sup.connected()
    sup.lost("gateway restart")
    assert sup.state == MAINTENANCE
    with pytest.raises(ccxt.OnMaintenance):
        sup.ensure_usable(EXECUTION)
    await sup.wait_ready(timeout=5)
    assert states == [CONNECTED]


async def test_gives_up_after_max_attempts_and_goes_idle() -> None:
    connect = FlakyConnect(100)
    sup, _ = make(connect, max_attempts=3)
    sup.connected()
    sup.lost("drop")
    await sup.wait_for(lambda s: s.state == IDLE, timeout=5)
    assert connect.calls == 3 and "gave up" in (sup.reason or "")
    sup.ensure_usable(EXECUTION)  # idle again: the next call connects lazily and reports its own error


async def test_outage_then_restored_runs_hooks_with_data_lost_flag() -> None:
    sup, _ = make(FlakyConnect(0))
    events: list[ReconnectEvent] = []
    sup.on_reconnected(events.append)
    sup.connected()
    sup.outage("1100")
    assert sup.state == OUTAGE and not sup.reconnecting, "1100 keeps the socket: no reconnect loop"
    await sup.restored(data_lost=True, reason="1101")
    await sup.restored(data_lost=False, reason="1102")
    assert [e.data_lost for e in events] == [True, False]
    assert all(e.reason == "restored" for e in events)


async def test_failing_hook_does_not_stop_the_next_one() -> None:
    sup, _ = make(FlakyConnect(0))
    ran: list[str] = []

    def broken(event: ReconnectEvent) -> None:
        raise ccxt.ExchangeNotAvailable("snapshot incomplete")

    sup.on_reconnected(broken)
    sup.on_reconnected(lambda event: ran.append("resubscribe"))
    sup.connected()
    sup.lost("drop")
    await sup.wait_ready(timeout=5)
    assert ran == ["resubscribe"]
    assert isinstance(sup.last_hook_error, ccxt.ExchangeNotAvailable)


async def test_a_lazy_connect_during_backoff_ends_the_loop() -> None:
    connect = FlakyConnect(0)
    gate = asyncio.Event()

    async def slow_sleep(seconds: float) -> None:
        await gate.wait()

    sup = ConnectionSupervisor("test", connect, backoff=Backoff(jitter=0), sleep=slow_sleep)
    sup.connected()
    sup.lost("drop")
    sup.connected("lazy connect by a caller")
    gate.set()
    await sup.wait_for(lambda s: not s.reconnecting, timeout=5)
    assert connect.calls == 0 and sup.state == CONNECTED


async def test_reset_cancels_the_loop() -> None:
    sup = ConnectionSupervisor("test", FlakyConnect(100), backoff=Backoff(initial=60, jitter=0))
    sup.connected()
    sup.lost("drop")
    assert sup.reconnecting
    sup.reset()
    await asyncio.sleep(0)
    assert sup.state == IDLE and not sup.reconnecting


async def test_wait_for_times_out_with_a_ccxt_error() -> None:
    sup, _ = make()
    with pytest.raises(ccxt.RequestTimeout, match="expected state"):
        await sup.wait_for(lambda s: s.state == CONNECTED, timeout=0.01)


async def test_bounded_turns_a_hang_into_request_timeout() -> None:
    never = asyncio.get_running_loop().create_future()
    with pytest.raises(ccxt.RequestTimeout, match="ibkr fetch_ticker"):
        await bounded(never, 0.01, "fetch_ticker", "ibkr")
    assert await bounded(asyncio.sleep(0, "ok"), 1, "x") == "ok"


async def test_breakers_opened_by_a_drop_are_closed_by_the_reconnect_before_healing() -> None:
    breakers = Breakers.create("test", failure_threshold=1, reset_timeout=60)
    sup, _ = make(FlakyConnect(1))
    sup.reset_on_connect(breakers.market_data, breakers.execution)
    states: list[str] = []
    sup.on_reconnected(lambda event: states.append(breakers.execution.state))
    sup.connected()
    breakers.execution.trip(ccxt.NetworkError("in flight when the socket died"))
    breakers.market_data.trip(ccxt.NetworkError("in flight when the socket died"))
    sup.lost("drop")
    await sup.wait_ready(timeout=5)
    assert states == [CLOSED_BREAKER], "reconciliation must not meet an open breaker"
    assert breakers.market_data.state == CLOSED_BREAKER
    breakers.execution.trip()
    sup.outage("1100")
    await sup.restored(data_lost=False)
    assert breakers.execution.state == CLOSED_BREAKER


async def test_a_failure_from_the_previous_connection_does_not_drop_the_new_one() -> None:
    sup, _ = make(FlakyConnect(0))
    sup.connected()
    sent_on = sup.epoch
    sup.lost("drop", epoch=sent_on)
    await sup.wait_ready(timeout=5)
    assert sup.epoch != sent_on
    sup.lost("a request sent before the drop failed late", epoch=sent_on)
    assert sup.state == CONNECTED and not sup.reconnecting
    sup.lost("a request on the new connection failed", epoch=sup.epoch)
    assert sup.state == DISCONNECTED
    await sup.close()
