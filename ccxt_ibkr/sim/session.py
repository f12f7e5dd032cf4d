"""One client connection: handshake, request dispatch, subscriptions and fault hooks.

A session owns nothing the account depends on; it translates between the wire and the
shared simulator state (catalogue, market data, ledger, order engine) held by
``server.IBSimulator``. Everything here runs on the simulator's event loop thread, so no
locking is needed beyond what the shared objects do for test-thread readers.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from normalization.runtime.pricepath import Bar

from . import messages as M
from .catalogue import ContractQuery, Instrument
from .faults import ACKED, BEFORE, BOOKED
from .marketdata import HMDS, HistoricalError, Quote, format_bar_time, parse_end
from .matching import OrderRequest, Reject
from .wire import (
    Fields,
    ProtocolError,
    encode_fields,
    fmt_size,
    negotiate,
    read_frame,
    read_greeting,
    split_payload,
)

if TYPE_CHECKING:
    from .server import IBSimulator

log = logging.getLogger("ccxt_ibkr.sim")

FARM_MESSAGES = [
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefnj"),
]
#: Live and delayed tick ids: bid, ask, last, high, low, close, volume; sizes bid/ask/last.
LIVE_TICKS = {"bid": 1, "ask": 2, "last": 4, "high": 6, "low": 7, "close": 9, "volume": 8,
              "bid_size": 0, "ask_size": 3, "last_size": 5}
DELAYED_TICKS = {"bid": 66, "ask": 67, "last": 68, "high": 72, "low": 73, "close": 75, "volume": 74,
                 "bid_size": 69, "ask_size": 70, "last_size": 71}
SUMMARY_TAGS = [
    "AccountType", "NetLiquidation", "TotalCashValue", "SettledCash", "AccruedCash", "BuyingPower",
    "EquityWithLoanValue", "PreviousDayEquityWithLoanValue", "GrossPositionValue", "RegTEquity", "RegTMargin",
    "SMA", "InitMarginReq", "MaintMarginReq", "AvailableFunds", "ExcessLiquidity", "Cushion",
    "FullInitMarginReq", "FullMaintMarginReq", "FullAvailableFunds", "FullExcessLiquidity",
    "LookAheadNextChange", "LookAheadInitMarginReq", "LookAheadMaintMarginReq", "LookAheadAvailableFunds",
    "LookAheadExcessLiquidity", "HighestSeverity", "DayTradesRemaining", "Leverage",
]


@dataclass
class MktSub:
    inst: Instrument
    last: Quote | None = None
    delayed: bool = False


@dataclass
class HistSub:
    inst: Instrument
    what: str
    seconds: int
    format_date: int
    use_rth: bool
    last_sent: tuple | None = None


@dataclass
class DepthSub:
    inst: Instrument
    rows: int
    sent: bool = False


class Session:
    """Serve one socket until it closes; never lets an exception reach other sessions."""

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
        self.positions_sub = False
        self.account_sub = False
        self.multi_subs: dict[int, str] = {}
        self.summary_subs: dict[int, list[str]] = {}
        self.mkt: dict[int, MktSub] = {}
        self.depth: dict[int, DepthSub] = {}
        self.hist: dict[int, HistSub] = {}
        self._outbox: asyncio.Queue[bytes | None] | None = None
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        self.handlers: dict[int, Callable[[Fields], None]] = {
            1: self.req_mkt_data, 2: self.cancel_mkt_data, 3: self.place_order, 4: self.cancel_order,
            5: self.req_open_orders, 6: self.req_account_updates, 7: self.req_executions, 8: self.req_ids,
            9: self.req_contract_details, 10: self.req_mkt_depth, 11: self.cancel_mkt_depth,
            15: self.req_auto_open_orders, 16: self.req_all_open_orders, 17: self.req_managed_accts,
            20: self.req_historical_data, 25: self.cancel_historical_data, 49: self.req_current_time,
            58: self.req_global_cancel, 59: self.req_market_data_type, 61: self.req_positions,
            62: self.req_account_summary, 63: self.cancel_account_summary, 64: self.cancel_positions,
            76: self.req_account_updates_multi, 77: self.cancel_account_updates_multi,
            87: self.req_head_timestamp, 99: self.req_completed_orders,
        }

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
                asyncio.get_running_loop().create_task(self._drain_outbox())
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

    def abort(self) -> None:
        """Drop the socket abruptly, like a crashed gateway or a broken network."""
        if self.closed:
            return
        self.closed = True
        transport = self.writer.transport
        if transport is not None:
            transport.abort()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.writer.close()
        except Exception:  # pragma: no cover - closing a broken transport
            pass

    # -- lifecycle -------------------------------------------------------------------------
    async def run(self) -> None:
        try:
            lo, hi, _options = await read_greeting(self.reader)
            version = negotiate(lo, hi)
            if version is None:
                log.warning("%s: no common version with client range %s..%s", self.peer, lo, hi)
                return
            self.version = version
            when = dt.datetime.fromtimestamp(self.sim.clock.now(), dt.timezone.utc)
            self.writer.write(encode_fields([version, f"{when:%Y%m%d %H:%M:%S} UTC"]))
            while not self.closed:
                payload = await read_frame(self.reader)
                fields = split_payload(payload)
                if not fields:
                    raise ProtocolError("empty message")
                self.sim.stats_messages_in += 1
                self.dispatch(fields)
                await self.writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            log.info("%s (client %s) disconnected", self.peer, self.client_id)
        except ProtocolError as exc:
            log.warning("%s (client %s) sent garbage, closing: %s", self.peer, self.client_id, exc)
        except Exception:  # noqa: BLE001 - one bad session must not take the server down
            log.exception("%s (client %s) session failed", self.peer, self.client_id)
        finally:
            self.close()
            self.sim.session_closed(self)

    def dispatch(self, fields: list[str]) -> None:
        try:
            msg_id = int(fields[0])
        except ValueError as exc:
            raise ProtocolError(f"bad message id {fields[0]!r}") from exc
        if not self.ready and msg_id != 71:
            raise ProtocolError(f"message {msg_id} before startApi")
        if self.ready and self.sim.faults.count_message(self.client_id or 0, "in"):
            log.info("fault: dropping client %s on incoming message", self.client_id)
            self.abort()
            return
        if msg_id == 71:
            self.start_api(Fields(fields[1:]))
            return
        handler = self.handlers.get(msg_id)
        if handler is None:
            log.debug("client %s: ignoring message %s", self.client_id, msg_id)
            return
        reader = Fields(fields[1:])
        try:
            handler(reader)
        except ProtocolError:
            raise
        except Exception:
            log.exception("client %s: handler for %s failed", self.client_id, msg_id)
            self.error(-1, 320, "Server error when reading an API client request.")

    def start_api(self, f: Fields) -> None:
        if self.ready:
            return
        f.int()  # version
        client_id = f.int()
        if client_id in self.sim.faults.busy_client_ids or self.sim.client_in_use(client_id):
            self.error(-1, 326, "Unable to connect as the client id is already in use. Retry with a unique client id.")
            self.close()
            return
        self.client_id = client_id
        self.ready = True
        self.sim.session_ready(self)
        self.send([15, 1, self.account])
        self.send([9, 1, self.sim.engine.next_valid_id(client_id)])
        for code, text in FARM_MESSAGES:
            self.error(-1, code, text)
        if self.sim.faults.outage:
            self.error(-1, 1100, "Connectivity between IB and Trader Workstation has been lost.")

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

    # -- connection-level requests ------------------------------------------------------------
    def req_ids(self, f: Fields) -> None:
        self.send([9, 1, self.sim.engine.next_valid_id(self.client_id or 0)])

    def req_managed_accts(self, f: Fields) -> None:
        self.send([15, 1, self.account])

    def req_current_time(self, f: Fields) -> None:
        self.send([49, 1, int(self.sim.clock.now())])

    def req_market_data_type(self, f: Fields) -> None:
        f.int()
        self.md_type = f.int(1)

    # -- contract details --------------------------------------------------------------------
    def req_contract_details(self, f: Fields) -> None:
        f.int()
        req_id = f.int()
        q = self.read_contract(f)
        q.include_expired = f.bool()
        found = self.sim.catalogue.match(q, self.sim.clock.now())
        if not found:
            self.error(req_id, 200, "No security definition has been found for the request")
            return
        now = self.sim.clock.now()
        for inst in found:
            exchange = q.exchange if q.exchange and q.exchange in inst.valid_exchanges else inst.exchange
            self.send(M.contract_details(self.version, req_id, inst, exchange, now))
        self.send([52, 1, req_id])

    # -- market data -------------------------------------------------------------------------
    def req_mkt_data(self, f: Fields) -> None:
        f.int()
        req_id = f.int()
        q = self.read_contract(f)
        if q.sec_type == "BAG":
            for _ in range(f.int()):
                f.skip(4)
        if f.bool():
            f.skip(3)
        f.str()  # genericTickList
        snapshot = f.bool()
        inst = self.resolve(q, req_id)
        if inst is None:
            return
        if not snapshot and len(self.mkt) >= self.sim.max_market_data_lines:
            self.error(req_id, 101, f"Max number of tickers has been reached ({self.sim.max_market_data_lines})")
            return
        delayed = self.md_type in (3, 4)
        self.send([58, 1, req_id, self.md_type])
        self.send([81, req_id, inst.min_tick, "9c0001", 3])
        sub = MktSub(inst, delayed=delayed)
        self.send_ticks(req_id, sub, full=True)
        if snapshot:
            self.send([57, 1, req_id])
        else:
            self.mkt[req_id] = sub

    def quote_for(self, sub: MktSub) -> Quote:
        now = self.sim.clock.now()
        return self.sim.market.quote(sub.inst, now - 900 if sub.delayed else now)

    def send_ticks(self, req_id: int, sub: MktSub, full: bool) -> None:
        quote = self.quote_for(sub)
        old = None if full else sub.last
        ids = DELAYED_TICKS if sub.delayed else LIVE_TICKS
        v = self.version
        fx = sub.inst.sec_type == "CASH"
        if old is None or (old.bid, old.bid_size) != (quote.bid, quote.bid_size):
            self.send(M.tick_price(req_id, ids["bid"], quote.bid, quote.bid_size, v))
        if old is None or (old.ask, old.ask_size) != (quote.ask, quote.ask_size):
            self.send(M.tick_price(req_id, ids["ask"], quote.ask, quote.ask_size, v))
        if not fx and (old is None or (old.last, old.last_size) != (quote.last, quote.last_size)):
            self.send(M.tick_price(req_id, ids["last"], quote.last, quote.last_size, v))
        if old is None or old.high != quote.high:
            self.send(M.tick_price(req_id, ids["high"], quote.high, 0, v))
        if old is None or old.low != quote.low:
            self.send(M.tick_price(req_id, ids["low"], quote.low, 0, v))
        if old is None or old.close != quote.close:
            self.send(M.tick_price(req_id, ids["close"], quote.close, 0, v))
        if not fx and (old is None or old.volume != quote.volume):
            self.send(M.tick_size(req_id, ids["volume"], quote.volume, v))
        sub.last = quote

    def cancel_mkt_data(self, f: Fields) -> None:
        f.int()
        self.mkt.pop(f.int(), None)

    def req_mkt_depth(self, f: Fields) -> None:
        f.int()
        req_id = f.int()
        q = self.read_contract(f)
        rows = f.int(5)
        if len(self.depth) >= 3:
            self.error(req_id, 309, "Max number (3) of market depth requests has been reached")
            return
        inst = self.resolve(q, req_id)
        if inst is None:
            return
        sub = DepthSub(inst, max(1, min(rows, 10)))
        self.depth[req_id] = sub
        self.send_depth(req_id, sub)

    def send_depth(self, req_id: int, sub: DepthSub) -> None:
        quote = self.sim.market.quote(sub.inst, self.sim.clock.now())
        tick = sub.inst.min_tick
        operation = 1 if sub.sent else 0
        for i in range(sub.rows):
            for side, price, size in (
                (1, quote.bid - i * tick, quote.bid_size * (i + 1)),
                (0, quote.ask + i * tick, quote.ask_size * (i + 1)),
            ):
                self.send([12, 1, req_id, i, operation, side, round(price, 10), fmt_size(size, self.version)])
        sub.sent = True

    def cancel_mkt_depth(self, f: Fields) -> None:
        f.int()
        self.depth.pop(f.int(), None)

    # -- historical data -------------------------------------------------------------------
    def req_historical_data(self, f: Fields) -> None:
        req_id = f.int()
        q = self.read_contract(f)
        q.include_expired = f.bool()
        end_text = f.str()
        bar_size = f.str()
        duration = f.str()
        use_rth = f.bool()
        what = f.str().upper()
        format_date = f.int(1)
        if q.sec_type == "BAG":
            for _ in range(f.int()):
                f.skip(4)
        keep_up = f.bool() if f.remaining else False
        inst = self.resolve(q, req_id)
        if inst is None:
            return
        now = self.sim.clock.now()
        try:
            seconds, span = self.sim.market.validate_request(inst, bar_size, duration, what)
            end = parse_end(end_text, now)
            self.sim.market.check_age(inst, seconds, end, now)
        except HistoricalError as exc:
            self.error(req_id, exc.code, exc.text)
            return
        identical = (inst.con_id, q.exchange, what, bar_size, duration, end_text, use_rth, format_date, keep_up)
        violation = self.sim.pacer.check(
            now, identical, (inst.con_id, q.exchange, what), 2 if what == "BID_ASK" else 1, seconds
        )
        if violation:
            self.error(req_id, 162, violation)
            return
        bars = self.sim.market.bars(inst, what, end, span, seconds, use_rth, now)
        if not bars and not keep_up:
            # TWS answers an empty window (weekend, before listing) with 162, not an empty list.
            kind = "Trades" if what in {"TRADES", "ADJUSTED_LAST"} else what.title()
            where = f"{inst.local_symbol}@{q.exchange or inst.exchange}"
            self.error(req_id, 162, f"{HMDS}HMDS query returned no data: {where} {kind}")
            return
        daily = seconds >= 86400
        out: list[object] = [17, req_id, self._stamp(end - span, inst), self._stamp(end, inst), len(bars)]
        for bar in bars:
            out += self._bar(bar, what, daily, format_date, inst)
        self.sim.stats_bars_served += len(bars)
        self.send(out)
        if keep_up:
            self.hist[req_id] = HistSub(inst, what, seconds, format_date, use_rth)

    def _stamp(self, ts: float, inst: Instrument) -> str:
        return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y%m%d %H:%M:%S") + " UTC"

    def _bar(self, bar: Bar, what: str, daily: bool, format_date: int, inst: Instrument) -> list[object]:
        date = format_bar_time(bar.time, daily, format_date, inst.hours.tz)
        if what in {"TRADES", "ADJUSTED_LAST"} and bar.volume >= 0:
            wap = round((bar.high + bar.low + bar.close) / 3, 6)
            count = int(bar.volume // 100) + 1
            return M.bar_fields(date, bar.open, bar.high, bar.low, bar.close, bar.volume, wap, count, self.version)
        return M.bar_fields(date, bar.open, bar.high, bar.low, bar.close, -1, -1, -1, self.version)

    def send_hist_update(self, req_id: int, sub: HistSub) -> None:
        now = self.sim.clock.now()
        start = int(now) - int(now) % sub.seconds if sub.seconds < 604800 else int(now) - 86400
        bars = self.sim.market.bars(sub.inst, sub.what, start + 1, 1, sub.seconds, False, now)
        if sub.seconds >= 86400:
            bars = self.sim.market.bars(sub.inst, sub.what, now, sub.seconds, sub.seconds, False, now)
        if not bars:
            return
        bar = bars[-1]
        key = (bar.time, bar.open, bar.high, bar.low, bar.close, bar.volume)
        if key == sub.last_sent:
            return
        sub.last_sent = key
        date, o, h, lo, c, vol, wap, count = self._bar(bar, sub.what, sub.seconds >= 86400, sub.format_date, sub.inst)
        self.send([90, req_id, count, date, o, c, h, lo, wap, vol])

    def cancel_historical_data(self, f: Fields) -> None:
        f.int()
        req_id = f.int()
        if self.hist.pop(req_id, None) is None:
            self.error(req_id, 366, f"No historical data query found for ticker id:{req_id}")

    def req_head_timestamp(self, f: Fields) -> None:
        req_id = f.int()
        q = self.read_contract(f)
        inst = self.resolve(q, req_id)
        if inst is None:
            return
        f.bool()
        f.bool()
        f.str()
        format_date = f.int(1) if f.remaining else 1
        first = 946_684_800 + 86400 * 2  # 2000-01-03, where synthetic history begins
        stamp = str(first) if format_date == 2 else "20000103 00:00:00"
        self.send([88, req_id, stamp])

    # -- orders ----------------------------------------------------------------------------
    def place_order(self, f: Fields) -> None:
        order_id = f.int()
        q = self.read_contract(f)
        if q.sec_type == "BAG":
            self.error(order_id, 201, "Order rejected - reason:Combination orders are not supported by the simulator")
            self.send([3, order_id, "Cancelled", 0, 0, 0, 0, 0, 0, self.client_id, "", ""])
            return
        f.str()
        f.str()  # secIdType, secId
        action = f.str().upper()
        total_qty = f.float() or 0.0
        order_type = f.str().upper()
        lmt_price = f.float()
        aux_price = f.float()
        tif = f.str().upper()
        oca_group = f.str()
        account = f.str()
        f.str()
        f.str()  # openClose, origin
        order_ref = f.str()
        transmit = f.bool() if f.remaining else True
        parent_id = f.int()
        f.skip(4)  # blockOrder sweepToFill displaySize triggerMethod
        outside_rth = f.bool()
        f.bool()  # hidden
        f.str()  # sharesAllocation
        f.str()  # discretionaryAmt
        f.str()  # goodAfterTime
        good_till_date = f.str()
        f.skip(3)  # faGroup faMethod faPercentage
        if self.version < 177:
            f.skip(1)  # faProfile
        f.skip(4)  # modelCode shortSaleSlot designatedLocation exemptCode
        oca_type = f.int(0)
        what_if = self._read_what_if(f)
        if order_type == "STPLMT":
            order_type = "STP LMT"
        req = OrderRequest(
            order_id=order_id, action=action, total_qty=total_qty, order_type=order_type, lmt_price=lmt_price,
            aux_price=aux_price, tif=tif, oca_group=oca_group, account=account, order_ref=order_ref,
            transmit=transmit, parent_id=parent_id, outside_rth=outside_rth, good_till_date=good_till_date,
            oca_type=oca_type, exchange=q.exchange,
        )
        if what_if:
            self._what_if(req, q)
            return
        drop = self.sim.faults.take_order_drop(self.client_id or 0, order_ref)
        if drop is not None and drop.stage == BEFORE:
            log.info("fault: dropping client %s before booking order %s", self.client_id, order_id)
            self.abort()
            return
        if drop is not None and drop.stage == BOOKED:
            self.muted = True
        try:
            self._place(req, q)
        finally:
            self.muted = False
        if drop is not None:
            log.info("fault: dropping client %s after order %s (%s)", self.client_id, order_id, drop.stage)
            if drop.stage == ACKED:
                self.sim.loop_call_soon(self.abort)
            else:
                self.abort()

    def _read_what_if(self, f: Fields) -> bool:
        """Walk the rest of placeOrder (ib_async's layout) up to the whatIf flag."""
        try:
            f.skip(17)  # rule80A .. volatilityType
            if f.str():  # deltaNeutralOrderType
                f.skip(9)
            else:
                f.skip(1)
            f.skip(6)  # continuousUpdate .. scaleSubsLevelSize
            increment = f.float()
            if increment is not None and 0 < increment:
                f.skip(7)
            f.skip(3)  # scaleTable activeStartTime activeStopTime
            if f.str():  # hedgeType
                f.skip(1)
            f.skip(4)  # optOutSmartRouting clearingAccount clearingIntent notHeld
            if f.bool():  # delta-neutral contract
                f.skip(3)
            if f.str():  # algoStrategy
                f.skip(2 * f.int())
            f.skip(1)  # algoId
            return f.bool()
        except ProtocolError:
            return False

    def _what_if(self, req: OrderRequest, q: ContractQuery) -> None:
        """Answer a what-if order with margin and commission estimates; nothing is booked."""
        inst, why = self.sim.catalogue.resolve(q, self.sim.clock.now())
        if inst is None:
            self.error(req.order_id, 200, why)
            return
        now = self.sim.clock.now()
        engine = self.sim.engine
        try:
            engine._validate(req, inst, now)
        except Reject as exc:
            self.error(req.order_id, exc.code, exc.text)
            return
        bid, ask, _ = self.sim.market.touch(inst, now)
        price = req.lmt_price or (ask if req.action == "BUY" else bid)
        summary = self.sim.ledger.summary(self.sim.mark)
        change = self.sim.ledger.margin_for(inst, req.action, req.total_qty, price)
        fee = M.estimate_fee(inst, req.total_qty, price, self.sim.ledger)
        state = {
            "init": (summary["InitMarginReq"], change),
            "maint": (summary["MaintMarginReq"], change * 0.8),
            "equity": (summary["EquityWithLoanValue"], -fee),
            "commission": fee,
            "currency": inst.currency,
        }
        order = engine.preview(self.client_id or 0, req, inst, now)
        self.send(M.open_order(order, self.version, self.account, what_if=state))

    def _place(self, req: OrderRequest, q: ContractQuery) -> None:
        inst, why = self.sim.catalogue.resolve(q, self.sim.clock.now())
        if inst is None:
            self.error(req.order_id, 200, why)
            self._cancelled_status(req.order_id)
            return
        if self.sim.faults.outage:
            self.error(req.order_id, 201, "Order rejected - reason:Not connected to IB (connectivity lost)")
            self._cancelled_status(req.order_id)
            return
        try:
            self.sim.engine.place(self.client_id or 0, req, inst, self.sim.clock.now())
        except Reject as exc:
            self.error(req.order_id, exc.code, exc.text)
            if exc.cancel:
                self._cancelled_status(req.order_id)
        self.sim.after_activity()

    def _cancelled_status(self, order_id: int) -> None:
        self.send([3, order_id, "Cancelled", 0, 0, 0, 0, 0, 0, self.client_id, "", ""])

    def cancel_order(self, f: Fields) -> None:
        f.int()
        order_id = f.int()
        try:
            self.sim.engine.cancel(self.client_id or 0, order_id, self.sim.clock.now())
        except Reject as exc:
            self.error(order_id, exc.code, exc.text)
        self.sim.after_activity()

    def req_global_cancel(self, f: Fields) -> None:
        self.sim.engine.cancel_all(self.sim.clock.now())
        self.sim.after_activity()

    def req_open_orders(self, f: Fields) -> None:
        self._send_open_orders(None if self.client_id == 0 else self.client_id)

    def req_all_open_orders(self, f: Fields) -> None:
        self._send_open_orders(None)

    def req_auto_open_orders(self, f: Fields) -> None:
        if self.client_id != 0:
            self.error(-1, 327, "Only the client with id 0 can set auto bind.")

    def _send_open_orders(self, client_id: int | None) -> None:
        for order in self.sim.engine.open_orders(client_id):
            self.send(M.open_order(order, self.version, self.account))
            self.send(M.order_status(order, self.version))
        self.send([53, 1])

    def req_completed_orders(self, f: Fields) -> None:
        for order in self.sim.engine.completed_orders():
            self.send(M.completed_order(order, self.version, self.account))
        self.send([102])

    def req_executions(self, f: Fields) -> None:
        f.int()
        req_id = f.int()
        client_filter = f.int(0)
        account = f.str()
        since = f.str()
        symbol = f.str().upper()
        sec_type = f.str().upper()
        exchange = f.str().upper()
        side = f.str().upper()
        now = self.sim.clock.now()
        floor = now - now % 86400
        if since.strip():
            try:
                floor = max(floor, parse_end(since.replace("-", " ") if "-" in since else since, 1e12))
            except HistoricalError:
                pass
        for ex in self.sim.engine.executions:
            order = ex.order
            if ex.time < floor:
                continue
            if client_filter and order.client_id != client_filter:
                continue
            if account and account != self.account:
                continue
            if symbol and symbol != order.inst.symbol:
                continue
            if sec_type and sec_type != order.inst.sec_type:
                continue
            if exchange and exchange not in (order.exchange, ex.venue):
                continue
            if side and side[:1] != ex.side[:1]:
                continue
            self.send(M.exec_details(req_id, ex, self.version, self.account))
            self.send(M.commission_report(ex))
        self.send([55, 1, req_id])

    # -- account ---------------------------------------------------------------------------
    def req_positions(self, f: Fields) -> None:
        self.positions_sub = True
        with self.sim.ledger.lock:
            positions = list(self.sim.ledger.positions.values())
        for pos in positions:
            if pos.qty:
                self.send(M.position(self.account, pos.instrument, pos.qty, pos.avg_cost, self.version))
        self.send([62, 1])

    def cancel_positions(self, f: Fields) -> None:
        self.positions_sub = False

    def req_account_updates(self, f: Fields) -> None:
        f.int()
        subscribe = f.bool()
        self.account_sub = subscribe
        if not subscribe:
            return
        for key, value, ccy in self.sim.account_values():
            self.send([6, 2, key, value, ccy, self.account])
        self.send_portfolio()
        now = dt.datetime.fromtimestamp(self.sim.clock.now(), dt.timezone.utc)
        self.send([8, 1, f"{now:%H:%M}"])
        self.send([54, 1, self.account])

    def send_portfolio(self, con_ids: set[int] | None = None) -> None:
        for fields in self.sim.portfolio_rows(self.version, con_ids):
            self.send(fields)

    def req_account_updates_multi(self, f: Fields) -> None:
        f.int()
        req_id = f.int()
        account = f.str() or self.account
        model = f.str()
        self.multi_subs[req_id] = model
        for key, value, ccy in self.sim.account_values():
            self.send([73, 1, req_id, account, model, key, value, ccy])
        self.send([74, 1, req_id])

    def cancel_account_updates_multi(self, f: Fields) -> None:
        f.int()
        self.multi_subs.pop(f.int(), None)

    def req_account_summary(self, f: Fields) -> None:
        f.int()
        req_id = f.int()
        f.str()  # group
        tags = [t.strip() for t in f.str().split(",") if t.strip()]
        self.summary_subs[req_id] = tags
        self.send_summary(req_id, tags)
        self.send([64, 1, req_id])

    def send_summary(self, req_id: int, tags: list[str]) -> None:
        for tag, value, ccy in self.sim.summary_values(tags):
            self.send([63, 1, req_id, self.account, tag, value, ccy])

    def cancel_account_summary(self, f: Fields) -> None:
        f.int()
        self.summary_subs.pop(f.int(), None)

    # -- pushes from the simulator ----------------------------------------------------------
    def on_clock(self) -> None:
        if self.sim.faults.outage:
            return
        for req_id, sub in list(self.mkt.items()):
            self.send_ticks(req_id, sub, full=False)
        for req_id, depth in list(self.depth.items()):
            self.send_depth(req_id, depth)
        for req_id, hist in list(self.hist.items()):
            self.send_hist_update(req_id, hist)

    def on_account_change(self, con_ids: set[int]) -> None:
        if self.positions_sub:
            with self.sim.ledger.lock:
                positions = [self.sim.ledger.positions[c] for c in con_ids if c in self.sim.ledger.positions]
            for pos in positions:
                self.send(M.position(self.account, pos.instrument, pos.qty, pos.avg_cost, self.version))
        if self.account_sub or self.multi_subs:
            values = self.sim.account_values()
            if self.account_sub:
                for key, value, ccy in values:
                    self.send([6, 2, key, value, ccy, self.account])
                self.send_portfolio(con_ids)
            for req_id, model in self.multi_subs.items():
                for key, value, ccy in values:
                    self.send([73, 1, req_id, self.account, model, key, value, ccy])
        for req_id, tags in self.summary_subs.items():
            self.send_summary(req_id, tags)

