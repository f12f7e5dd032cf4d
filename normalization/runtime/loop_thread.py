"""The sync face's private event loop: a background thread and the calling thread take turns to run it.

A sync call that handed its coroutine to the loop's thread and waited for the answer
(``run_coroutine_threadsafe``) paid two thread wake-ups per call on top of the broker's own round
trip: the caller waking the loop thread, and the loop thread waking the caller. On a small (virtual)
machine each wake-up of a thread on another core costs 50-100 us, and the two threads then fought
over the GIL while the reply was processed, so a sync ``create_order`` cost 0.3-0.7 ms more than its
async twin and the raw client running beside it slowed down too.

Here the loop is run by whoever holds its *turn* (a lock):

* **The loop thread** holds it while there is work: events the broker sends while the bot sleeps
  (fills, commissions, reconnects), timers, the journal writes a call left behind. When the loop has
  nothing to do, the thread stops running it, lets go of the turn and sleeps on the loop's selector
  (``poll`` on the epoll descriptor) until something arrives or the next timer is due.
* **A calling thread** that finds the turn free runs the loop itself until its coroutine finishes
  (``run_forever`` on its own thread): the broker's reply wakes the caller directly, as it wakes an
  async bot, and no other thread takes part. It then hands the loop back. What the call left behind
  (the journal write after an order's answer) runs on the bot's next call, while that call's request
  travels, or else on the loop thread after a grace: an alarm the caller sets (a timerfd), unless the
  thread will look in by itself in time -- it does so after each grace while callers keep coming, so a
  bot calling back to back sets no timer at all.
* A caller that already runs an event loop (Jupyter, an async framework), or finds another caller
  running the loop, hands its coroutine over instead and waits (the thread hop, as before). So the
  sync API works inside a running loop, and concurrent callers never wait for each other's calls.

Only one thread runs the loop at any time, so the adapters stay single-threaded asyncio code. What a
sync call costs over its async twin is what the turn itself costs (measured in context, CPU time per
call: ~55 us to start the turn -- the facade, masking the thread's wait, Ctrl-C handling, the task --
~35 us for ``run_forever`` to start and stop, ~25 us to end the turn); see bench/bench_sync_face.py.
Turn-taking needs a selector the thread can sleep on (epoll) and timers it can wait on (timerfd): Linux;
elsewhere every call hops.
"""

from __future__ import annotations

import _signal
import asyncio
import ctypes
import math
import os
import select
import selectors
import signal
import threading
import time
from collections.abc import Coroutine
from typing import Any, Generic, TypeVar

import ccxt

T = TypeVar("T")

#: How long the work a sync call leaves queued (the adapters' post-order journal writes) may wait for the
#: bot's next call to run it before the loop thread is woken to do it: back-to-back calls then run it
#: while their own request travels, as the async face does, instead of waking a second thread each time.
#: It is long enough (several calls of a bot placing orders back to back) that an alarm set by one call
#: is usually still pending at the end of the next ones, which then set none: every arming or disarming
#: of the timer cost the caller 20-30 us on a virtual machine (a hypervisor timer), where the system call
#: alone costs 4 us. What waits meanwhile is bookkeeping whose intent is already on disk (see the
#: adapters' journaling modules), and events from the broker still wake the loop thread at once.
HANDBACK_GRACE = 0.02

#: How long after the last caller's turn the loop thread keeps looking in after each grace by itself
#: (a few graces: a bot whose calls come every few tens of ms keeps it looking in, and sets no alarm).
CALLERS_ACTIVE = 0.1

#: How long a caller waits for the loop thread to finish its current turn before handing its coroutine
#: over instead. The thread's turns are short (it lets go whenever the loop would wait); a longer one is
#: a callback doing heavy work, and the hop then puts the call behind it exactly as waiting would.
TURN_WAIT = 0.005

_SIGINT = int(signal.SIGINT)


class _TurnSelector(selectors.DefaultSelector):  # type: ignore[misc, valid-type]
    """The loop's selector. A caller running the loop uses it as it is: it waits, and the reply wakes
    the caller. The loop thread, for its turn, puts :meth:`thread_select` in front of it (an instance
    attribute, so a caller's select pays nothing for the thread's rules)."""

    idle: float | None = 0.0
    loop: asyncio.AbstractEventLoop | None = None

    def thread_select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        """Never blocks: when the loop would wait, it stops the loop and leaves the wait's length in
        ``idle``, so the thread can sleep without holding the turn."""
        if timeout is not None and timeout <= 0:
            return super().select(timeout)
        ready = super().select(0)
        if not ready:
            self.idle = timeout
            assert self.loop is not None
            self.loop.stop()  # ends run_forever after this iteration's due timers, none of which is due yet
        return ready


class _Call(Generic[T]):
    """One sync call's outcome, and how its waiter learns it (stopping the loop it runs, or a lock)."""

    __slots__ = ("driving", "error", "finished", "interrupted", "value", "waiter")

    def __init__(self, waiter: threading.Lock | None = None) -> None:
        self.value: Any = None
        self.error: BaseException | None = None
        self.finished = False
        self.driving = waiter is None
        self.interrupted = False
        self.waiter = waiter

    def finish(self, loop: asyncio.AbstractEventLoop) -> None:
        self.finished = True
        if self.driving:
            loop.stop()  # the caller running the loop returns after this iteration
        elif self.waiter is not None:
            self.waiter.release()

    def outcome(self) -> T:
        if self.error is not None:
            error, self.error = self.error, None  # no reference cycle through the traceback
            raise error
        return self.value  # type: ignore[no-any-return]


async def _settle(coro: Coroutine[Any, Any, T], call: _Call[T], loop: asyncio.AbstractEventLoop) -> None:
    """Run ``coro`` and hand its outcome to the caller the instant it has one: the post-order journal
    writes the adapters queue with ``call_soon`` run after the caller has its answer, not before."""
    try:
        call.value = await coro
    except BaseException as error:  # noqa: BLE001 - every outcome belongs to the caller
        call.error = error
        if not isinstance(error, Exception):
            call.finish(loop)
            raise  # cancellation and interpreter exits still end this task
    call.finish(loop)


def _nothing() -> None:
    """Scheduled only to wake the loop's thread (the self-pipe write of ``call_soon_threadsafe``)."""


class _Alarm:
    """A one-shot timer on the loop (a Linux timerfd, one of the loop's readers): it wakes whoever waits
    on the loop, the sleeping loop thread or a caller running it. Arming it costs the caller one system
    call and wakes nobody now, where a wake-up would cost the other core, the GIL and, on a loaded
    machine, milliseconds."""

    def __init__(self) -> None:
        self.fd = -1
        self._spec: Any = None
        try:
            # PyDLL: the call keeps the GIL. timerfd_settime never blocks, so letting go of the GIL around it
            # (as CDLL and os.timerfd_settime do) could only hand it to another thread at the end of a sync
            # call. The call still costs 20-30 us in context against 4 us in a tight loop (measured either
            # way), which is why callers in a burst set no alarm at all (see HANDBACK_GRACE).
            libc = ctypes.PyDLL(None, use_errno=True)
            create, self._settime = libc.timerfd_create, libc.timerfd_settime
        except (OSError, AttributeError):
            if hasattr(os, "timerfd_create"):  # Python 3.13+
                self.fd = os.timerfd_create(time.CLOCK_MONOTONIC, flags=os.TFD_NONBLOCK | os.TFD_CLOEXEC)
            return
        create.argtypes, create.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        self._settime.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
        self._settime.restype = ctypes.c_int
        self._spec = (ctypes.c_long * 4)()  # struct itimerspec {interval {s, ns}, value {s, ns}} (64-bit)
        self._spec_ref = ctypes.byref(self._spec)
        fd = create(1, 0o4000 | 0o2000000)  # CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC
        self.fd = fd if fd >= 0 and ctypes.sizeof(ctypes.c_long) == 8 else -1

    @property
    def usable(self) -> bool:
        return self.fd >= 0

    def arm(self, seconds: float) -> None:
        """Fire once in ``seconds`` (0 disarms)."""
        if self._spec is None:
            os.timerfd_settime(self.fd, initial=seconds)
            return
        whole = int(seconds)
        self._spec[2], self._spec[3] = whole, max(int((seconds - whole) * 1e9), 0 if seconds == 0 else 1000)
        self._settime(self.fd, 0, self._spec_ref, None)

    def clear(self) -> None:
        try:
            os.read(self.fd, 8)
        except (BlockingIOError, OSError):
            pass

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _turn_selector() -> _TurnSelector | None:
    """A selector the loop thread can sleep on through its file descriptor, where the platform has one."""
    selector = _TurnSelector()
    if isinstance(selector, selectors.EpollSelector):
        return selector
    selector.close()
    return None


class LoopThread:
    """A private asyncio event loop, kept running by a daemon thread and run by sync callers in turn."""

    def __init__(self, name: str = "ccxt-brokers-loop") -> None:
        self._selector = _turn_selector()
        self.loop: asyncio.AbstractEventLoop = (
            asyncio.SelectorEventLoop(self._selector) if self._selector is not None else asyncio.new_event_loop()
        )
        # The loop thread sleeps on the loop's selector through a second epoll: a caller running the loop
        # masks it there, so the replies it waits for wake the caller alone.
        self._sleeper: select.epoll | None = None
        if self._selector is not None:
            self._selector.loop = self.loop
            self._sleeper = select.epoll()
            self._sleeper.register(self._selector.fileno(), select.EPOLLIN)
        # The alarm is one of the loop's own readers: it wakes whoever waits on the loop (the sleeping
        # thread, or a caller running it, who just clears it), and masking the loop masks it too.
        self._alarm: _Alarm | None = None
        self._alarm_at = 0.0  # monotonic time the armed alarm rings (0: not armed)
        # The watchdog ends a caller's turn at its deadline (its sync timeout). It stays armed between
        # calls: the next call, due later, needs no system call, and the watchdog re-arms itself for the
        # caller then running the loop when it rings early. Checking the deadline in the caller's select
        # instead cost a bounded wait per select: on a virtual machine every bounded wait arms a timer in
        # the hypervisor (~100 us a create_order, measured; see bench/bench_sync_face.py).
        self._watchdog: _Alarm | None = None
        self._watch_at = 0.0  # monotonic time the armed watchdog rings (0: not armed)
        self._deadline: float | None = None  # the deadline of the caller running the loop
        if self._sleeper is not None:
            alarm, watchdog = _Alarm(), _Alarm()
            if alarm.usable and watchdog.usable:
                self._alarm, self._watchdog = alarm, watchdog
                self.loop.add_reader(alarm.fd, self._alarm_rang)
                self.loop.add_reader(watchdog.fd, self._watchdog_rang)
                # The sleeping thread also hears the alarm directly (once per ring), even while a caller
                # runs the loop and reads it: a burst of calls then sets the thread looking in by itself.
                self._sleeper.register(alarm.fd, select.EPOLLIN | select.EPOLLET)
            else:  # no timerfd: every call hops to the loop thread
                alarm.close()
                watchdog.close()
                self._sleeper.close()
                self._sleeper = None
                self._selector = None
        self._wake_at = 0.0  # loop time the sleeping thread wakes at by itself (inf: only for an event)
        self._turns = 0  # callers' turns so far: while they come, the thread looks in after each grace
        self._turn = threading.Lock()
        self._caller_turn = False  # a caller, not the loop thread, holds the turn (its call may be long)
        self._closing = False
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()
        self._started.wait()

    # ------------------------------------------------------------------ the loop thread

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        selector, sleeper = self._selector, self._sleeper
        self._started.set()
        if selector is None or sleeper is None:  # no turn-taking: the thread runs the loop, callers hop
            try:
                with self._turn:
                    while not self._closing:
                        self.loop.run_forever()
            finally:
                with self._turn:
                    self._shutdown()
            return
        woken = True  # by an event (take the turn, waiting if a caller is just letting go), not by the clock
        seen, active_until = self._turns, 0.0
        alarm_fd = self._alarm.fd if self._alarm is not None else -1
        try:
            while not self._closing:
                if not self._turn.acquire(blocking=woken):
                    # The clock woke the thread while a caller runs the loop (that caller sees the events
                    # and the timers): look again after a grace, without waiting on the caller.
                    idle: float | None = HANDBACK_GRACE
                    self._wake_at = self.loop.time() + HANDBACK_GRACE
                else:
                    try:
                        # Woken by the clock with nothing queued and no timer due (the usual look-in while a
                        # bot calls back to back, whose calls ran what they left): no turn of the loop, which
                        # would cost ~70 us of CPU and the GIL beside the bot's own work (measured).
                        idle = self._thread_turn(selector) if woken or self._work_due() else self._own_wait()
                        now = self.loop.time()
                        if self._turns != seen:
                            seen, active_until = self._turns, now + CALLERS_ACTIVE
                        if now < active_until:
                            # Callers are at work: look again after a grace, so the work their calls
                            # leave behind needs no alarm from them (see HANDBACK_GRACE).
                            idle = HANDBACK_GRACE if idle is None else min(idle, HANDBACK_GRACE)
                        self._wake_at = math.inf if idle is None else self.loop.time() + idle
                    finally:
                        self._turn.release()
                woken = True
                if idle != 0.0 and not self._closing:
                    # Woken by the loop's events, or by the clock (its own timeout, or the alarm alone).
                    woken = any(fd != alarm_fd for fd, _ in sleeper.poll(-1 if idle is None else idle))
        finally:
            with self._turn:
                self._shutdown()
            sleeper.close()
            for alarm in (self._alarm, self._watchdog):
                if alarm is not None:
                    alarm.close()

    def _work_due(self) -> bool:
        """Callbacks queued or a timer due: what a look-in by the clock is for."""
        ready = getattr(self.loop, "_ready", None)
        scheduled = getattr(self.loop, "_scheduled", None)
        if ready is None or scheduled is None:
            return True  # another loop implementation: always look
        return bool(ready) or bool(scheduled) and scheduled[0].when() <= self.loop.time()

    def _own_wait(self) -> float | None:
        """How long the loop would wait for its next timer (None: none)."""
        scheduled = getattr(self.loop, "_scheduled", None)
        return max(scheduled[0].when() - self.loop.time(), 0.0) if scheduled else None

    def _thread_turn(self, selector: _TurnSelector) -> float | None:
        """The loop thread's turn: run the loop until it would wait; how long it would wait (None: for
        an event only)."""
        selector.idle = 0.0
        selector.select = selector.thread_select  # type: ignore[method-assign]
        try:
            self.loop.run_forever()
        finally:
            del selector.select  # the class's own, for the callers
        if getattr(self.loop, "_ready", None):
            return 0.0  # a stopped loop may leave callbacks queued: run them first
        return selector.idle

    def _shutdown(self) -> None:
        pending = [task for task in asyncio.all_tasks(self.loop) if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self.loop.is_closed()

    # ------------------------------------------------------------------ callers

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None, what: str = "call") -> T:
        """Run ``coro`` on the loop and wait at most ``timeout`` seconds for its result.

        A timeout raises ``RequestTimeout`` and never cancels the coroutine: it goes on in the background
        (an order placement completes or fails and lands in the journal instead of being torn in half)."""
        running = asyncio._get_running_loop()
        if running is self.loop or threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError(f"{what}: the sync API was called from its own event loop")
        if self._closing or self.loop.is_closed():
            coro.close()
            raise ccxt.ExchangeClosedByUser(f"{what}: the exchange is closed")
        if running is None and self._selector is not None and self._take_turn():
            if self.loop.is_closed():
                self._turn.release()
                coro.close()
                raise ccxt.ExchangeClosedByUser(f"{what}: the exchange is closed")
            return self._drive(coro, timeout, what)
        return self._hand_over(coro, timeout, what)

    def _take_turn(self) -> bool:
        if self._turn.acquire(blocking=False):
            return True
        if self._caller_turn:
            return False  # another caller runs the loop: it runs this coroutine too, hand it over
        return self._turn.acquire(timeout=TURN_WAIT)

    def _drive(self, coro: Coroutine[Any, Any, T], timeout: float | None, what: str) -> T:
        """Run the loop on this thread until ``coro`` finishes (or ``timeout``), then hand it back."""
        loop = self.loop
        call: _Call[T] = _Call()
        self._caller_turn = True
        self._mask(0)
        # eventkit (under ib_async) asks the policy for "the" loop, not for the running one: ours, for
        # the length of the call (read and restored without the policy's side effects).
        local = getattr(asyncio.get_event_loop_policy(), "_local", None)
        if local is not None:
            saved = local._loop, local._set_called
            local._loop = loop
        restore_sigint = _stop_on_sigint(loop, call)
        try:
            ready = getattr(loop, "_ready", None)
            left = len(ready) if ready is not None else 0
            loop.create_task(_settle(coro, call, loop))
            if left:
                # This call's first step (validation, the send) goes before what earlier calls left
                # queued, which then runs while the request travels: the order an async bot gets.
                ready.rotate(1)
            deadline = None
            if timeout is not None:
                deadline = self._deadline = time.monotonic() + timeout
                if not 0 < self._watch_at <= deadline:
                    self._arm_watchdog(timeout)
            while not call.finished and not call.interrupted:
                loop.run_forever()
                if deadline is not None and time.monotonic() >= deadline:
                    break
        finally:
            self._deadline = None
            call.driving = False
            if restore_sigint is not None:
                restore_sigint()
            if local is not None:
                local._loop, local._set_called = saved
            self._mask(select.EPOLLIN)  # events already waiting wake the loop thread now
            self._turns += 1
            delay = self._handback_delay()
            if delay is not None:
                # The loop thread looks then, unless a call comes first. An alarm already due to ring
                # sooner stays as it is, and one whose work this call did is not disarmed: it rings at
                # most once for nothing (on the loop thread, or as one more turn of a caller's loop),
                # where arming or disarming would cost every call (see HANDBACK_GRACE).
                now = time.monotonic()
                if not now < self._alarm_at <= now + delay:
                    assert self._alarm is not None
                    self._alarm.arm(max(delay, 1e-6))
                    self._alarm_at = now + max(delay, 1e-6)
            self._caller_turn = False
            self._turn.release()
        if call.interrupted:
            raise KeyboardInterrupt  # an unfinished coroutine goes on in the background, as after a timeout
        if not call.finished:
            raise _timeout_error(what, timeout)
        return call.outcome()

    def _mask(self, events: int) -> None:
        assert self._sleeper is not None and self._selector is not None
        try:
            self._sleeper.modify(self._selector.fileno(), events)
        except (OSError, ValueError):  # closed: the loop thread is gone
            pass

    def _alarm_rang(self) -> None:
        assert self._alarm is not None
        self._alarm.clear()
        self._alarm_at = 0.0

    def _arm_watchdog(self, seconds: float) -> None:
        assert self._watchdog is not None
        seconds = max(seconds, 1e-6)
        self._watchdog.arm(seconds)
        self._watch_at = time.monotonic() + seconds

    def _watchdog_rang(self) -> None:
        """A deadline came: the caller's turn ends if it is the running caller's, else the watchdog is
        set again for the running caller (one that started after it was armed), or left off."""
        assert self._watchdog is not None
        self._watchdog.clear()
        self._watch_at = 0.0
        if self._deadline is None:
            return
        left = self._deadline - time.monotonic()
        if left <= 0:
            self.loop.stop()  # _drive sees its deadline passed
        else:
            self._arm_watchdog(left)

    def _handback_delay(self) -> float | None:
        """When the sleeping loop thread must look at what this turn left (None: it wakes by itself in
        time): callbacks queued to run (after a grace), or a live timer due before the thread's wake-up."""
        ready = getattr(self.loop, "_ready", None)
        scheduled = getattr(self.loop, "_scheduled", None)
        if ready is None or scheduled is None:
            return 0.0  # another loop implementation: always hand back at once
        now = self.loop.time()
        due = now + HANDBACK_GRACE if ready else math.inf
        if scheduled and scheduled[0].when() < min(due, self._wake_at):  # the heap's head is its earliest
            for handle in scheduled:
                if handle.when() < due and not handle.cancelled():
                    due = handle.when()
        if due >= self._wake_at:
            return None
        return max(due - now, 0.0)

    def _hand_over(self, coro: Coroutine[Any, Any, T], timeout: float | None, what: str) -> T:
        """Let whoever runs the loop run ``coro``; wait on a lock it releases with the outcome."""
        waiter = threading.Lock()
        waiter.acquire()
        call: _Call[T] = _Call(waiter)
        loop = self.loop
        try:
            loop.call_soon_threadsafe(_start, loop, coro, call)
        except RuntimeError:  # closed meanwhile
            coro.close()
            raise ccxt.ExchangeClosedByUser(f"{what}: the exchange is closed") from None
        if not waiter.acquire(timeout=-1 if timeout is None else timeout):
            raise _timeout_error(what, timeout)
        return call.outcome()

    def stop(self, timeout: float = 10.0) -> None:
        if self.loop.is_closed():
            return
        self._closing = True
        try:
            # Wakes the thread. With turn-taking its turn ends by itself once the loop is idle, so nothing that
            # would stop the loop is left queued: the shutdown's own run of the loop (finishing what is still
            # pending, e.g. an order placement whose sync call timed out) would stop at it, half-way.
            wake = self.loop.stop if self._selector is None else _nothing
            self.loop.call_soon_threadsafe(wake)
        except RuntimeError:  # closed meanwhile
            return
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)


def _start(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T], call: _Call[T]) -> None:
    loop.create_task(_settle(coro, call, loop))


def _timeout_error(what: str, timeout: float | None) -> ccxt.RequestTimeout:
    return ccxt.RequestTimeout(
        f"{what} did not finish within {timeout:g} s; it keeps running in the background "
        "and its outcome is recorded (no order is ever sent twice)"
    )


def _stop_on_sigint(loop: asyncio.AbstractEventLoop, call: _Call[Any]) -> Any:
    """While the main thread runs the loop, Ctrl-C ends its turn instead of raising inside a coroutine.

    Python raises KeyboardInterrupt wherever the main thread happens to be; in the middle of an order's
    coroutine that would tear the placement in half. As with the thread hop, the caller gets the
    KeyboardInterrupt and the coroutine goes on on the loop thread. Returns how to restore the handler,
    or None where nothing was changed (not the main thread, or a handler of the bot's own)."""
    if threading.get_ident() != threading.main_thread().ident:
        return None
    # The C module's calls: the ``signal`` module's wrappers convert every handler to an enum (20 us).
    if _signal.getsignal(_SIGINT) is not _signal.default_int_handler:
        return None

    def interrupt(signum: int, frame: Any) -> None:
        call.interrupted = True
        loop.stop()
        loop.call_soon_threadsafe(_nothing)  # out of the selector's wait

    _signal.signal(_SIGINT, interrupt)
    return _restore_sigint


def _restore_sigint() -> None:
    _signal.signal(_SIGINT, _signal.default_int_handler)
