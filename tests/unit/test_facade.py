"""The sync face runs the async implementation on a private event loop: a daemon thread keeps it
running, and a caller without a loop of its own runs it for the length of its call."""

from __future__ import annotations

import asyncio
import signal
import threading
from typing import Any

import ccxt
import ccxt.async_support
import pytest

from normalization.runtime import home
from normalization.runtime.facade import SyncFacade


class EchoAsync(ccxt.async_support.Exchange):
    @classmethod
    def description(cls) -> dict[str, Any]:
        return {"id": "echo", "name": "Echo", "rateLimit": 10, "has": {"fetchTime": True}}

    def describe(self) -> Any:
        return self.deep_extend(super().describe(), self.description())

    async def fetch_markets(self, params={}):
        return [
            self.safe_market_structure(
                {"id": "E", "symbol": "E/USD", "base": "E", "quote": "USD", "baseId": "E", "quoteId": "USD",
                 "type": "spot", "spot": True, "active": True,
                 "precision": {"amount": 1.0, "price": 0.01}}
            )
        ]

    async def fetch_time(self, params={}):
        self.options["seen_thread"] = threading.current_thread().name
        self.options["seen_loop"] = asyncio.get_running_loop()
        return 1_700_000_000_000

    async def wait_forever(self, event: asyncio.Event) -> str:
        await event.wait()
        self.options["waited"] = True
        return "done"

    async def release(self, event: asyncio.Event) -> None:
        """Set ``event`` and return once ``wait_forever`` saw it."""
        event.set()
        while not self.options.get("waited"):
            await asyncio.sleep(0)

    async def later(self, done: threading.Event, delay: float) -> None:
        """Return at once; ``done`` is set by the loop afterwards (a callback, or a timer)."""
        loop = asyncio.get_running_loop()
        if delay:
            loop.call_later(delay, done.set)
        else:
            loop.call_soon(done.set)

    async def answer_then_leave(self, done: threading.Event, round_trip: float) -> None:
        """A call whose answer takes ``round_trip`` (a broker's), leaving a callback queued behind it."""
        await asyncio.sleep(round_trip)
        asyncio.get_running_loop().call_soon(done.set)

    async def hops(self, n: int) -> int:
        for _ in range(n):
            await asyncio.sleep(0)
        return n

    async def interrupted(self, event: asyncio.Event) -> str:
        signal.raise_signal(signal.SIGINT)  # Ctrl-C while the caller runs the loop
        await event.wait()
        self.options["waited"] = True
        return "done"

    async def close(self):
        self.options["closed"] = True


class Echo(SyncFacade, ccxt.Exchange):
    async_class = EchoAsync


def test_sync_call_runs_the_private_loop_on_the_calling_thread() -> None:
    with Echo() as ex:
        assert ex.fetch_time() == 1_700_000_000_000
        assert ex.fetchTime() == 1_700_000_000_000  # ccxt's camelCase alias
        # No thread hop: the caller runs the private loop itself for the length of the call.
        assert ex.options["seen_loop"] is ex._loop_thread.loop
        assert ex.options["seen_thread"] == threading.current_thread().name
        assert ex.id == "echo" and ex.has["fetchTime"] is True
        with pytest.raises(RuntimeError):
            asyncio.get_running_loop()  # and has none of its own afterwards
        # The loop is never this thread's current loop outside a call (eventkit asks the policy).
        assert asyncio.get_event_loop_policy()._local._loop is not ex._loop_thread.loop


def test_the_loop_thread_runs_what_a_call_left_behind_while_the_caller_waits() -> None:
    with Echo() as ex:
        queued, timer = threading.Event(), threading.Event()
        ex.later(queued, 0)  # a callback the call queued, as the adapters' post-order journal writes
        assert queued.wait(5)
        ex.later(timer, 0.01)  # a timer due after the call returned
        assert timer.wait(5)


def test_a_bot_calling_back_to_back_sets_no_timer_for_what_its_calls_leave() -> None:
    """Arming the loop's alarm costs the caller a system call (20-30 us on a virtual machine): while calls
    keep coming, the loop thread looks in by itself, and each call runs what the one before it left."""
    with Echo() as ex:
        alarm = ex._loop_thread._alarm
        assert alarm is not None
        armed: list[float] = []
        arm = alarm.arm
        alarm.arm = lambda seconds: (armed.append(seconds), arm(seconds))  # type: ignore[method-assign]
        try:
            # Each call's answer takes longer than the old 3 ms grace, under the 20 ms one.
            events = [threading.Event() for _ in range(20)]
            for event in events:
                ex.answer_then_leave(event, 0.005)
            assert all(event.wait(5) for event in events)
        finally:
            del alarm.arm
        assert len(armed) <= 3, armed  # the first call of the burst, and slack for a loaded machine


def test_events_between_calls_are_handled_by_the_loop_thread() -> None:
    """What the broker sends while the bot sleeps (a fill) is read by the loop thread, not left for the
    bot's next call."""
    import socket

    with Echo() as ex:
        ours, theirs = socket.socketpair()
        seen = threading.Event()
        got: list[bytes] = []

        def readable() -> None:
            got.append(ours.recv(100))
            seen.set()

        async def listen() -> None:
            asyncio.get_running_loop().add_reader(ours.fileno(), readable)

        async def unlisten() -> None:
            asyncio.get_running_loop().remove_reader(ours.fileno())

        try:
            ex._loop_thread.run(listen(), 5)
            theirs.send(b"fill")  # no call in progress
            assert seen.wait(5)
            assert got == [b"fill"] and seen.is_set()
            ex._loop_thread.run(unlisten(), 5)
        finally:
            ours.close()
            theirs.close()


def test_markets_and_options_are_shared_between_faces() -> None:
    with Echo({"options": {"mine": 1}}) as ex:
        ex.load_markets()
        assert ex.markets is ex.impl.markets
        assert ex.market("E/USD")["id"] == "E"
        ex.options["later"] = 2
        assert ex.impl.options["later"] == 2 and ex.impl.options["mine"] == 1


def test_works_inside_a_running_event_loop() -> None:
    async def notebook_cell() -> int:
        with Echo() as ex:
            return ex.fetch_time()

    assert asyncio.run(notebook_cell()) == 1_700_000_000_000


def test_a_caller_inside_a_running_loop_hands_its_call_to_the_loop_thread() -> None:
    async def notebook_cell() -> str:
        with Echo() as ex:
            ex.fetch_time()
            return ex.options["seen_thread"]

    assert asyncio.run(notebook_cell()) == "ccxt-brokers-loop"  # the process-wide loop thread


def test_concurrent_callers_never_wait_for_each_others_calls() -> None:
    with Echo({"options": {"syncTimeout": 10}}) as ex:
        event = asyncio.Event()
        results: list[str] = []
        waiter = threading.Thread(target=lambda: results.append(ex.wait_forever(event)))
        waiter.start()
        # Whichever thread runs the loop, this call completes while the other one still waits.
        assert ex.fetch_time() == 1_700_000_000_000
        assert waiter.is_alive() and not results
        ex.release(event)
        waiter.join(10)
        assert results == ["done"]


def test_timeout_raises_request_timeout_without_cancelling() -> None:
    ex = Echo({"options": {"syncTimeout": 300}})
    # The watchdog set for this long timeout stays armed between calls: a shorter one must arm it sooner.
    assert ex.fetch_time() == 1_700_000_000_000
    ex.options["syncTimeout"] = 0.05
    event = asyncio.Event()
    with pytest.raises(ccxt.RequestTimeout):
        ex.wait_forever(event)
    # The coroutine is still alive on the loop: release it and it completes.
    ex.options["syncTimeout"] = 5
    ex.release(event)
    assert ex.options["waited"] is True
    ex.close()


def test_many_threads_calling_at_once_all_get_their_answers() -> None:
    with Echo({"options": {"syncTimeout": 30}}) as ex:
        answers: dict[int, list[int]] = {}

        def bot(k: int) -> None:
            answers[k] = [ex.hops(i % 4) for i in range(150)]

        threads = [threading.Thread(target=bot, args=(k,)) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert answers == {k: [i % 4 for i in range(150)] for k in range(4)}


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread()
                    or signal.getsignal(signal.SIGINT) is not signal.default_int_handler,
                    reason="Ctrl-C is delivered to the main thread with Python's default handler")
def test_ctrl_c_interrupts_the_caller_not_the_coroutine() -> None:
    with Echo({"options": {"syncTimeout": 5}}) as ex:
        event = asyncio.Event()
        with pytest.raises(KeyboardInterrupt):
            ex.interrupted(event)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        ex.release(event)  # the coroutine was not torn: it goes on and completes
        assert ex.options["waited"] is True


def test_close_closes_the_twin_and_releases_the_thread() -> None:
    """The loop thread is shared by every sync exchange in the process: close() releases it, and the
    last user's close() stops it."""
    ex = Echo()
    impl = ex.impl
    thread = ex._loop_thread
    users = home._PROCESS_USERS
    ex.close()
    assert impl.options["closed"] is True
    if users == 1:
        assert not thread.alive
    else:
        assert thread.alive and home._PROCESS_USERS == users - 1
    with pytest.raises(ccxt.ExchangeClosedByUser):
        ex.fetch_time()
    ex.close()  # idempotent
    assert home._PROCESS_USERS == users - 1


def test_the_last_close_stops_the_shared_thread() -> None:
    first, second = Echo(), Echo()
    assert first._loop_thread is second._loop_thread
    thread = first._loop_thread
    first.close()
    assert thread.alive and second.fetch_time() == 1_700_000_000_000
    others = home._PROCESS_USERS
    second.close()
    assert thread.alive is (others > 1)


def test_where_the_loop_thread_cannot_sleep_on_the_selector_every_call_hands_over(monkeypatch) -> None:
    """Without epoll (macOS, Windows) the loop thread runs the loop all along and calls hop to it."""
    from normalization.runtime import loop_thread

    monkeypatch.setattr(loop_thread, "_turn_selector", lambda: None)
    thread = loop_thread.LoopThread(name="no-epoll-loop")

    async def where() -> str:
        return threading.current_thread().name

    assert thread.run(where(), 5) == "no-epoll-loop"
    event = asyncio.Event()
    with pytest.raises(ccxt.RequestTimeout):
        thread.run(event.wait(), 0.05)
    thread.loop.call_soon_threadsafe(event.set)  # the timed-out wait goes on and completes

    async def released() -> bool:
        return event.is_set()

    assert thread.run(released(), 5) is True
    thread.stop()
    assert not thread.alive
