"""State and plumbing shared by every request handler of one client connection.

Handlers live in mixins (``handlers_market``, ``handlers_orders``, ``handlers_account``) so
each stays small; they all build on this base: the outgoing path with its fault hooks
(delay, drop after N messages), TWS error replies, and contract parsing/resolution.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from . import messages as M
from .catalogue import ContractQuery, Instrument
from .subscriptions import DepthSub, HistSub, MktSub, RealTimeSub, TickByTickSub
from .wire import Fields, encode_fields

if TYPE_CHECKING:
    from .server import IBSimulator

log = logging.getLogger("ccxt_ibkr.sim")


class SessionBase:
    """Connection state; subclasses add the request handlers."""

    def __init__(self, sim: IBSimulator, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.sim = sim
        self.reader = reader
        self.writer = writer
        self.version = 0
        self.client_id: int | None = None
        self.ready = False
        self.closed = False
        self.muted = False
        self.md_type = 1
        #: clientId 0 with reqAutoOpenOrders(True) also hears about other clients' orders.
        self.auto_bind = False
        self.positions_sub = False
        self.account_sub = False
        self.multi_subs: dict[int, str] = {}
        self.summary_subs: dict[int, list[str]] = {}
        self.mkt: dict[int, MktSub] = {}
        self.depth: dict[int, DepthSub] = {}
        self.hist: dict[int, HistSub] = {}
        self.realtime: dict[int, RealTimeSub] = {}
        self.tick_by_tick: dict[int, TickByTickSub] = {}
        #: reqPnL subscriptions -> the last figures sent (None before the first).
        self.pnl_subs: dict[int, tuple[float, ...] | None] = {}
        self.pnl_single_subs: dict[int, tuple[int, tuple[float, ...] | None]] = {}
        self.positions_multi: dict[int, str] = {}
        self.display_groups: dict[int, int] = {}
        self.scanners: dict[int, tuple[str, str, str, int]] = {}
        self._outbox: asyncio.Queue[bytes | None] | None = None
        self._drain_task: asyncio.Task[None] | None = None
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"

    # -- plumbing --------------------------------------------------------------------------
    @property
    def account(self) -> str:
        return self.sim.ledger.account

    def send(self, fields: list[object]) -> None:
        if self.closed or self.muted:
            return
        data = encode_fields(fields)
        delay = self.sim.faults.delay_for(self.client_id or 0)
        if delay > 0 or self._outbox is not None:
            if self._outbox is None:
                self._outbox = asyncio.Queue()
                self._drain_task = asyncio.get_running_loop().create_task(self._drain_outbox())
            self._outbox.put_nowait(data)
        else:
            self._write(data)

    def _write(self, data: bytes) -> None:
        if self.closed:
            return
        self.writer.write(data)
        self.sim.stats_messages_out += 1
        if self.ready and self.sim.faults.count_message(self.client_id or 0, "out"):
            log.info("fault: dropping client %s after scheduled message", self.client_id)
            self.abort()

    async def _drain_outbox(self) -> None:
        assert self._outbox is not None
        while not self.closed:
            data = await self._outbox.get()
            if data is None:
                break
            delay = self.sim.faults.delay_for(self.client_id or 0)
            if delay > 0:
                await asyncio.sleep(delay)
            self._write(data)
            if self._outbox.empty() and self.sim.faults.delay_for(self.client_id or 0) <= 0:
                self._outbox = None
                break

    def error(self, req_id: int, code: int, text: str) -> None:
        self.send(M.error(self.version, req_id, code, text))

    def _stop_draining(self) -> None:
        """A closed connection's delayed replies are dropped; the drain task must not outlive the loop."""
        task = self._drain_task
        if task is not None and not task.done():
            task.cancel()

    def abort(self) -> None:
        """Drop the socket abruptly, like a crashed gateway or a broken network."""
        if self.closed:
            return
        self.closed = True
        self._stop_draining()
        transport = self.writer.transport
        if transport is not None:
            transport.abort()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._stop_draining()
        try:
            self.writer.close()
        except Exception:  # pragma: no cover - closing a broken transport
            pass


    def streamed_instruments(self) -> list[Instrument]:
        """Instruments this client receives live pushes for (quotes, depth, bars, tick by tick)."""
        subs: list = [*self.mkt.values(), *self.depth.values(), *self.hist.values(), *self.realtime.values(),
                      *self.tick_by_tick.values()]
        return [sub.inst for sub in subs]

    # -- helpers ---------------------------------------------------------------------------
    def read_contract(self, f: Fields, primary: bool = True) -> ContractQuery:
        q = ContractQuery()
        q.con_id = f.int()
        q.symbol = f.str()
        q.sec_type = f.str()
        q.last_trade_date = f.str()
        q.strike = f.float()
        q.right = f.str()
        q.multiplier = f.str()
        q.exchange = f.str()
        if primary:
            q.primary_exchange = f.str()
        q.currency = f.str()
        q.local_symbol = f.str()
        q.trading_class = f.str()
        return q

    def resolve(self, q: ContractQuery, req_id: int) -> Instrument | None:
        inst, why = self.sim.catalogue.resolve(q, self.sim.clock.now())
        if inst is None:
            self.error(req_id, 200, why)
        return inst
