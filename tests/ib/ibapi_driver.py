"""A real ibapi (IB's official client) program against the simulator, for tests.

``IbapiApp`` is an ``EClient`` + ``EWrapper`` whose every callback is recorded with its
arguments; tests call the documented EClient methods and wait on the recorded callbacks
(a condition variable, never a sleep). The reader thread is ibapi's own ``run`` loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ibapi.client import EClient
from ibapi.contract import Contract
from ibapi.wrapper import EWrapper

#: Codes TWS sends as information, not as the answer to a request.
INFO_CODES = {2104, 2106, 2107, 2108, 2158, 2119}


@dataclass
class Call:
    name: str
    args: tuple[Any, ...]


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.cond = threading.Condition()

    def record(self, name: str, args: tuple[Any, ...]) -> None:
        with self.cond:
            self.calls.append(Call(name, args))
            self.cond.notify_all()


def _recording(name: str) -> Callable[..., None]:
    def method(self: IbapiApp, *args: Any) -> None:
        self.recorder.record(name, args)

    method.__name__ = name
    return method


class IbapiApp(EWrapper, EClient):
    """ibapi client whose callbacks land in ``recorder.calls``."""

    def __init__(self) -> None:
        EWrapper.__init__(self)
        EClient.__init__(self, wrapper=self)
        self.recorder = _Recorder()
        self._thread: threading.Thread | None = None

    def start(self, port: int, client_id: int = 1, timeout: float = 10.0) -> IbapiApp:
        self.connect("127.0.0.1", port, client_id)
        self._thread = threading.Thread(target=self._read, name="ibapi-reader", daemon=True)
        self._thread.start()
        self.wait_for(lambda c: c.name == "nextValidId", timeout)
        return self

    def _read(self) -> None:
        try:
            self.run()
        except TypeError:
            # ibapi's reader loop, still draining its queue after disconnect(), compares the server version
            # disconnect() cleared (None >= int): upstream's race on shutdown, not an answer of the simulator.
            if self.isConnected():
                raise

    def stop(self) -> None:
        self.disconnect()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def mark(self) -> int:
        """Index of the next callback: wait_for(after=mark) ignores older ones."""
        with self.recorder.cond:
            return len(self.recorder.calls)

    def wait_for(self, match: Callable[[Call], bool], timeout: float = 10.0, after: int = 0) -> Call:
        deadline = time.monotonic() + timeout
        with self.recorder.cond:
            while True:
                for call in self.recorder.calls[after:]:
                    if match(call):
                        return call
                left = deadline - time.monotonic()
                if left <= 0:
                    names = [c.name for c in self.recorder.calls[after:]][-20:]
                    raise TimeoutError(f"no matching callback; last calls: {names}")
                self.recorder.cond.wait(left)

    def since(self, after: int, name: str | None = None) -> list[Call]:
        with self.recorder.cond:
            calls = self.recorder.calls[after:]
        return [c for c in calls if name is None or c.name == name]

    def answer(self, after: int, names: set[str], req_id: int | None = None, timeout: float = 10.0) -> Call:
        """The first answer to a request: one of ``names`` or an error (for ``req_id`` if given)."""

        def match(call: Call) -> bool:
            if call.name == "error":
                code = call.args[2]
                return code not in INFO_CODES and (req_id is None or call.args[0] in (req_id, -1))
            if call.name not in names:
                return False
            return req_id is None or not call.args or call.args[0] == req_id or not isinstance(call.args[0], int)

        return self.wait_for(match, timeout, after)


def _install() -> None:
    for name in dir(EWrapper):
        if name.startswith("_") or name in {"logAnswer"}:
            continue
        if callable(getattr(EWrapper, name)):
            setattr(IbapiApp, name, _recording(name))


_install()


def stock(symbol: str, exchange: str = "SMART", currency: str = "USD") -> Contract:
    c = Contract()
    c.symbol = symbol
    c.secType = "STK"
    c.exchange = exchange
    c.currency = currency
    return c


def forex(pair: str) -> Contract:
    c = Contract()
    c.symbol = pair[:3]
    c.secType = "CASH"
    c.exchange = "IDEALPRO"
    c.currency = pair[3:]
    return c
