"""The sync face runs the async implementation on a private loop thread."""

from __future__ import annotations

import asyncio
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
        return 1_700_000_000_000

    async def wait_forever(self, event: asyncio.Event) -> str:
        await event.wait()
        return "done"

    async def close(self):
        self.options["closed"] = True


class Echo(SyncFacade, ccxt.Exchange):
    async_class = EchoAsync


def test_sync_call_runs_on_the_private_loop_thread() -> None:
    with Echo() as ex:
        assert ex.fetch_time() == 1_700_000_000_000
        assert ex.fetchTime() == 1_700_000_000_000  # ccxt's camelCase alias
        assert ex.options["seen_thread"] == "ccxt-brokers-loop"  # one loop thread per process
        assert ex.id == "echo" and ex.has["fetchTime"] is True


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


def test_timeout_raises_request_timeout_without_cancelling() -> None:
    ex = Echo({"options": {"syncTimeout": 0.05}})
    event = asyncio.Event()
    with pytest.raises(ccxt.RequestTimeout):
        ex.wait_forever(event)
    # The coroutine is still alive on the loop: release it and it completes.
    ex.options["syncTimeout"] = 5
    ex._loop_thread.loop.call_soon_threadsafe(event.set)
    ex.close()


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
