"""The pacing scheduler, on a fake clock: waits exactly as long as the rules demand, never less."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from normalization.runtime.pacing import (
    EPSILON,
    Pacer,
    Window,
    capital_pacer,
    ib_historical_pacer,
    min_interval,
    no_identical,
)


class FakeTime:
    """Virtual time: ``sleep`` never waits for real; once every runnable task has reached a sleep, a
    driver moves the clock to the earliest wake-up and wakes that sleeper."""

    def __init__(self) -> None:
        self.now = 0.0
        self._waiters: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._driver: asyncio.Task[None] | None = None

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (self.now + seconds, next(self._seq), future))
        if self._driver is None or self._driver.done():
            self._driver = asyncio.create_task(self._drive())
        await future

    async def _drive(self) -> None:
        while self._waiters:
            for _ in range(10):  # let every runnable task reach its own sleep first
                await asyncio.sleep(0)
            target, _, future = heapq.heappop(self._waiters)
            self.now = max(self.now, target)
            if not future.done():
                future.set_result(None)


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


async def test_61st_historical_request_waits_for_the_ten_minute_window(fake: FakeTime) -> None:
    pacer = ib_historical_pacer(clock=fake.clock, sleep=fake.sleep, margin=0)
    for i in range(60):
        # distinct contracts and requests; 1 s apart keeps the per-contract rule out of the way
        assert await pacer.acquire(contract=i, identical=("req", i)) == 0
        fake.now += 1.0
    assert fake.now == 60.0
    assert pacer.plan_delay(contract=60, identical=("req", 60)) == pytest.approx(540.0)
    waited = await pacer.acquire(contract=60, identical=("req", 60))
    assert waited == pytest.approx(540.0) and fake.now == pytest.approx(600.0)
    # the 62nd waits for the second request of the first minute to leave the window
    assert pacer.plan_delay(contract=61, identical=("req", 61)) == pytest.approx(1.0)


async def test_bid_ask_counts_twice(fake: FakeTime) -> None:
    pacer = ib_historical_pacer(clock=fake.clock, sleep=fake.sleep, margin=0)
    for i in range(30):
        await pacer.acquire(2, contract=i, identical=i)
    assert pacer.plan_delay(contract=99, identical=99) == pytest.approx(600.0)


async def test_identical_request_within_15s_waits(fake: FakeTime) -> None:
    pacer = ib_historical_pacer(clock=fake.clock, sleep=fake.sleep, margin=0)
    key = ("AAPL", "20251121 16:00:00", "1 D", "1 hour", "TRADES", True)
    await pacer.acquire(contract="AAPL", identical=key)
    fake.now += 4.0
    assert pacer.plan_delay(contract="AAPL", identical=key) == pytest.approx(11.0)
    # a different request for another contract is not held up by the waiting identical one
    waiter = asyncio.create_task(pacer.acquire(contract="AAPL", identical=key))
    await asyncio.sleep(0)
    assert pacer.plan_delay(contract="MSFT", identical="other") == 0
    await waiter
    assert fake.now == pytest.approx(15.0)


async def test_per_contract_burst(fake: FakeTime) -> None:
    pacer = ib_historical_pacer(clock=fake.clock, sleep=fake.sleep, margin=0)
    for i in range(5):
        assert await pacer.acquire(contract="ES", identical=i) == 0
    # IB forbids six or more for one contract within 2 s
    assert pacer.plan_delay(contract="ES", identical=5) == pytest.approx(2.0)
    assert pacer.plan_delay(contract="NQ", identical=5) == 0


async def test_margin_is_added(fake: FakeTime) -> None:
    pacer = ib_historical_pacer(clock=fake.clock, sleep=fake.sleep, margin=0.25)
    await pacer.acquire(contract="A", identical="x")
    assert pacer.plan_delay(contract="A", identical="x") == pytest.approx(15.25)


async def test_capital_limits(fake: FakeTime) -> None:
    pacer = capital_pacer(clock=fake.clock, sleep=fake.sleep, margin=0)
    assert await pacer.acquire(deal=True) == 0
    assert await pacer.acquire(deal=True) == pytest.approx(0.1)
    assert await pacer.acquire(session=True) == 0
    assert await pacer.acquire(session=True) == pytest.approx(1.0)
    fake.now = 10.0
    for _ in range(10):
        assert await pacer.acquire() == 0
    assert pacer.plan_delay() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown pacing scope"):
        pacer.plan_delay(contract="x")
    demo = capital_pacer(demo=True)
    assert any(r.max_requests == 1000 for r in demo.rules)


async def test_concurrent_waiters_queue_and_cancellation_returns_the_slot(fake: FakeTime) -> None:
    pacer = Pacer([min_interval(1.0)], clock=fake.clock, sleep=fake.sleep)
    results = await asyncio.gather(*(pacer.acquire() for _ in range(4)))
    assert sorted(results) == pytest.approx([0, 1, 2, 3])

    never = asyncio.Event()

    async def blocking_sleep(seconds: float) -> None:
        await never.wait()

    slow = Pacer([min_interval(1.0)], clock=fake.clock, sleep=blocking_sleep)
    await slow.acquire()
    task = asyncio.create_task(slow.acquire())
    await asyncio.sleep(0)
    assert slow.plan_delay() == pytest.approx(2.0)  # behind the reservation
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert slow.plan_delay() == pytest.approx(1.0)  # reservation given back


def test_plan_batch_does_not_touch_state(fake: FakeTime) -> None:
    pacer = ib_historical_pacer(clock=fake.clock, sleep=fake.sleep, margin=0)
    plan = pacer.plan([{"contract": "ES", "identical": i} for i in range(12)])
    assert plan[:5] == [0] * 5 and plan[5] == pytest.approx(2.0) and plan[10] == pytest.approx(4.0)
    assert pacer.plan_delay(contract="ES", identical=0) == 0


async def test_custom_rules_with_scoped_identity(fake: FakeTime) -> None:
    pacer = Pacer([no_identical(5.0, scope="req"), Window(3, 10.0)], clock=fake.clock, sleep=fake.sleep)
    await pacer.acquire(req="a")
    assert pacer.plan_delay(req="a") == pytest.approx(5.0)
    assert pacer.plan_delay(req="b") == 0
    await pacer.acquire(req="b")
    await pacer.acquire()  # no identity: only the global rule applies
    assert pacer.plan_delay(req="c") == pytest.approx(10.0)
    assert "no identical request within 5s" in repr(pacer)


def test_impossible_weight_is_refused() -> None:
    with pytest.raises(ValueError):
        Pacer([Window(2, 1.0)]).plan_delay(weight=3)
    with pytest.raises(ValueError):
        Window(0, 1.0)


def test_old_entries_are_pruned(fake: FakeTime) -> None:
    pacer = ib_historical_pacer(clock=fake.clock, sleep=fake.sleep, margin=0)
    for i in range(50):
        pacer.reserve(contract=i, identical=i)
        fake.now += 20
    fake.now += 1000
    pacer.reserve(contract="x", identical="x")
    assert sum(len(e) for e in pacer._buckets.values()) == 3


# --------------------------------------------------------------------------- property

rules_strategy = st.lists(
    st.builds(
        Window,
        max_requests=st.integers(1, 4),
        seconds=st.sampled_from([0.1, 0.5, 1.0, 2.0, 3.7, 15.0]),
        scope=st.sampled_from([None, "a", "b"]),
        weighted=st.booleans(),
    ),
    min_size=1,
    max_size=4,
)
requests_strategy = st.lists(
    st.tuples(
        st.floats(0, 5, allow_nan=False),  # gap since the previous arrival
        st.integers(1, 2),  # weight
        st.fixed_dictionaries({}, optional={"a": st.integers(0, 2), "b": st.integers(0, 2)}),
    ),
    min_size=1,
    max_size=40,
)


def known(rules: list[Window], keys: dict) -> dict:
    scopes = {r.scope for r in rules}
    return {k: v for k, v in keys.items() if k in scopes}


def violations(rules: list[Window], log: list[tuple[float, int, dict]]) -> list[str]:
    """Independent checker: for every rule and key, count requests in every window ending at a request."""
    found = []
    for index, rule in enumerate(rules):
        times: dict[object, list[float]] = defaultdict(list)
        for t, weight, keys in log:
            if rule.scope is None or rule.scope in keys:
                key = None if rule.scope is None else keys[rule.scope]
                times[key].extend([t] * (weight if rule.weighted else 1))
        for key, ts in times.items():
            for end in ts:
                inside = sum(1 for t in ts if end - rule.seconds + EPSILON < t <= end)
                if inside > rule.max_requests:
                    found.append(f"rule {index} {rule} key {key}: {inside} in window ending {end}")
    return found


@settings(max_examples=150, deadline=None)
@given(rules=rules_strategy, requests=requests_strategy)
def test_schedule_never_violates_any_rule(rules: list[Window], requests) -> None:
    max_weight = min((r.max_requests for r in rules if r.weighted), default=2)
    fake = FakeTime()
    pacer = Pacer(rules, clock=fake.clock)
    log = []
    arrival = 0.0
    for gap, weight, keys in requests:
        weight = min(weight, max_weight)
        keys = known(rules, keys)
        arrival += gap
        fake.now = max(fake.now, arrival)  # the clock never goes back
        start = pacer.reserve(weight, at=arrival, **keys)
        assert start >= arrival
        log.append((start, weight, keys))
    assert violations(rules, log) == []


@settings(max_examples=100, deadline=None)
@given(rules=rules_strategy, requests=requests_strategy)
def test_acquire_schedule_never_violates_any_rule(rules: list[Window], requests) -> None:
    """Same property through the async API, with concurrent callers on the fake clock."""
    max_weight = min((r.max_requests for r in rules if r.weighted), default=2)

    async def run() -> list[tuple[float, int, dict]]:
        fake = FakeTime()
        pacer = Pacer(rules, clock=fake.clock, sleep=fake.sleep)
        log = []

        async def one(delay: float, weight: int, keys: dict) -> None:
            await fake.sleep(delay)  # arrive at a random time
            await pacer.acquire(weight, **keys)
            log.append((fake.now, weight, keys))  # the moment the caller would send

        batch = [one(gap, min(w, max_weight), known(rules, keys)) for gap, w, keys in requests]
        await asyncio.gather(*batch)
        return log

    log = asyncio.run(run())
    assert len(log) == len(requests)
    assert violations(rules, log) == []
