"""Simulator behaviour around sessions and connections: orders held for the open (warning 399),
history windows in the exchange's zone, and connections that never finish the handshake.
"""

from __future__ import annotations

import datetime as dt
import socket
import struct
from collections.abc import Iterator
from decimal import Decimal

import pytest

pytest.importorskip("ibapi")

from ibapi.order import Order  # noqa: E402

from ccxt_ibkr.sim import IBSimulator  # noqa: E402

from .ibapi_driver import IbapiApp, stock  # noqa: E402

#: Saturday 2025-06-14 12:00 UTC: US stocks closed until Monday 09:30 New York.
SATURDAY = dt.datetime(2025, 6, 14, 12, tzinfo=dt.timezone.utc).timestamp()


@pytest.fixture
def weekend() -> Iterator[tuple[IBSimulator, IbapiApp]]:
    with IBSimulator(port=0, start=SATURDAY) as sim:
        app = IbapiApp().start(sim.port, client_id=3)
        yield sim, app
        app.stop()


def test_order_held_for_the_open_gets_warning_399(weekend: tuple[IBSimulator, IbapiApp]) -> None:
    sim, app = weekend
    order = Order()
    order.action = "BUY"
    order.totalQuantity = Decimal(10)
    order.orderType = "LMT"
    order.lmtPrice = 150.0
    mark = app.mark()
    app.reqIds(1)
    order_id = app.wait_for(lambda c: c.name == "nextValidId", after=mark).args[0]
    app.placeOrder(order_id, stock("AAPL"), order)
    warning = app.wait_for(lambda c: c.name == "error" and c.args[0] == order_id, after=mark)
    assert warning.args[2] == 399
    assert "2025-06-16 09:30:00 US/Eastern" in warning.args[3]
    status = app.wait_for(lambda c: c.name == "orderStatus" and c.args[0] == order_id, after=mark)
    assert status.args[1] == "PreSubmitted"


def test_history_window_is_stamped_in_the_exchange_zone(weekend: tuple[IBSimulator, IbapiApp]) -> None:
    _, app = weekend
    mark = app.mark()
    app.reqHistoricalData(5, stock("AAPL"), "", "2 D", "1 hour", "TRADES", 1, 1, False, [])
    end = app.wait_for(lambda c: c.name == "historicalDataEnd", after=mark)
    assert end.args[2] == "20250614 08:00:00 US/Eastern"
    assert end.args[1] == "20250612 08:00:00 US/Eastern"


def _raw(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return sock


def _closed(sock: socket.socket) -> bool:
    """True once the peer closed: recv returns b'' (or the socket resets)."""
    try:
        while True:
            if sock.recv(65536) == b"":
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_silent_connection_is_dropped_after_the_handshake_timeout() -> None:
    with IBSimulator(port=0) as sim:
        sim.handshake_timeout = 0.3
        with _raw(sim.port) as sock:
            assert _closed(sock)


def test_greeting_without_start_api_is_dropped() -> None:
    with IBSimulator(port=0) as sim:
        sim.handshake_timeout = 0.3
        with _raw(sim.port) as sock:
            text = b"v100..178"
            sock.sendall(b"API\0" + struct.pack(">I", len(text)) + text)
            assert _closed(sock)


def test_large_frame_before_start_api_is_refused_at_once() -> None:
    with IBSimulator(port=0) as sim:
        sim.handshake_timeout = 60.0  # the frame limit, not the timeout, must close it
        with _raw(sim.port) as sock:
            sock.sendall(b"API\0" + struct.pack(">I", 16 * 1024 * 1024) + b"v100")
            assert _closed(sock)
