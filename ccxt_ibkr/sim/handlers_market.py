"""Contract details, market data (ticks, depth, real-time bars) and historical bars."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from normalization.runtime.pricepath import Bar

from . import messages as M
from .catalogue import Instrument
from .connection import SessionBase
from .marketdata import HMDS, HistoricalError, Quote, format_bar_time, parse_end, round_to_tick
from .subscriptions import DepthSub, HistSub, MktSub, RealTimeSub
from .wire import Fields, fmt_size

LIVE_TICKS = {"bid": 1, "ask": 2, "last": 4, "high": 6, "low": 7, "close": 9, "volume": 8,
              "bid_size": 0, "ask_size": 3, "last_size": 5}
DELAYED_TICKS = {"bid": 66, "ask": 67, "last": 68, "high": 72, "low": 73, "close": 75, "volume": 74,
                 "bid_size": 69, "ask_size": 70, "last_size": 71}


class MarketDataHandlers(SessionBase):
    """Requests answered from the catalogue and the price paths."""

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
        smart = f.bool() if f.remaining else False
        if len(self.depth) >= 3:
            self.error(req_id, 309, "Max number (3) of market depth requests has been reached")
            return
        inst = self.resolve(q, req_id)
        if inst is None:
            return
        sub = DepthSub(inst, max(1, min(rows, 10)), smart=smart)
        self.depth[req_id] = sub
        self.send_depth(req_id, sub)

    def send_depth(self, req_id: int, sub: DepthSub) -> None:
        quote = self.sim.market.quote(sub.inst, self.sim.clock.now())
        tick = sub.inst.min_tick
        operation = 1 if sub.sent else 0
        # Smart depth aggregates the venues SMART routes to; each level names its venue as market maker.
        venues = [v for v in sub.inst.valid_exchanges if v != "SMART"] or [sub.inst.exchange]
        for i in range(sub.rows):
            for side, price, size in (
                (1, quote.bid - i * tick, quote.bid_size * (i + 1)),
                (0, quote.ask + i * tick, quote.ask_size * (i + 1)),
            ):
                price = round_to_tick(price, tick)
                size_text = fmt_size(size, self.version)
                if sub.smart:
                    venue = venues[i % len(venues)]
                    self.send([13, 1, req_id, i, venue, operation, side, price, size_text, 1])
                else:
                    self.send([12, 1, req_id, i, operation, side, price, size_text])
        sub.sent = True

    def cancel_mkt_depth(self, f: Fields) -> None:
        f.int()
        self.depth.pop(f.int(), None)

    # -- historical data -------------------------------------------------------------------
    def req_historical_data(self, f: Fields) -> None:
        self.sim.stats_historical_requests += 1
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
        try:
            bars = self.sim.market.bars(inst, what, end, span, seconds, use_rth, now)
        except Exception:  # noqa: BLE001 - a window the price path cannot serve (before its history): TWS
            bars = []  # answers such requests with 162 and the request id, never a bare server error
        if not bars and not keep_up:
            # TWS answers an empty window (weekend, before listing) with 162, not an empty list.
            kind = "Trades" if what in {"TRADES", "ADJUSTED_LAST"} else what.title()
            where = f"{inst.local_symbol}@{q.exchange or inst.exchange}"
            self.error(req_id, 162, f"{HMDS}HMDS query returned no data: {where} {kind}")
            return
        daily = seconds >= 86400
        window = (self._stamp(end - span, inst, format_date), self._stamp(end, inst, format_date))
        out: list[object] = [17, req_id, *window, len(bars)]
        for bar in bars:
            out += self._bar(bar, what, daily, format_date, inst)
        self.sim.stats_bars_served += len(bars)
        self.send(out)
        if keep_up:
            self.hist[req_id] = HistSub(inst, what, seconds, format_date, use_rth)

    def _stamp(self, ts: float, inst: Instrument, format_date: int) -> str:
        """Start/end of the window: in the exchange's zone for formatDate 1 (as bar times are), else UTC."""
        if format_date == 1:
            local = dt.datetime.fromtimestamp(ts, ZoneInfo(inst.hours.tz))
            return f"{local:%Y%m%d %H:%M:%S} {inst.hours.tz}"
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
        # The latest bar, forming or just completed. Intraday: only the tail of the last session
        # that has opened (cheap at every clock step); longer bars: a few sessions back.
        lookback = 10 * 86400 if sub.seconds >= 86400 else 2 * sub.seconds
        if sub.seconds < 86400 and sub.inst.sec_type != "CRYPTO":
            opened = [w for w in self.sim.market.windows(sub.inst, now - 5 * 86400, now, sub.use_rth) if w[0] <= now]
            if opened:
                lookback = int(now + 1 - max(opened[-1][0], min(now, opened[-1][1]) - 2 * sub.seconds))
        if sub.seconds >= 604800:
            lookback = 62 * 86400
        bars = self.sim.market.bars(sub.inst, sub.what, now + 1, lookback, sub.seconds, sub.use_rth, now)
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

    def req_real_time_bars(self, f: Fields) -> None:
        f.int()
        req_id = f.int()
        q = self.read_contract(f)
        f.int()  # bar size: TWS only supports 5 seconds
        what = f.str().upper()
        inst = self.resolve(q, req_id)
        if inst is None:
            return
        if inst.sec_type == "CASH" and what == "TRADES":
            self.error(req_id, 420, "Invalid Real-time Query:No data of type TRADES is available for Forex")
            return
        now = int(self.sim.clock.now())
        self.realtime[req_id] = RealTimeSub(inst, what, now - now % 5)

    def cancel_real_time_bars(self, f: Fields) -> None:
        f.int()
        self.realtime.pop(f.int(), None)

    def send_real_time_bars(self, req_id: int, sub: RealTimeSub) -> None:
        """Every completed 5-second bar since the last push (at most the latest 60)."""
        now = int(self.sim.clock.now())
        last_complete = now - now % 5 - 5
        first = max(sub.next_bar, last_complete - 59 * 5)
        half = self.sim.market.half_spread(sub.inst) if sub.what in {"BID", "ASK"} else 0.0
        shift = -half if sub.what == "BID" else half
        for t in range(first, last_complete + 1, 5):
            price = round_to_tick(self.sim.market.mid(sub.inst, t) + shift, sub.inst.min_tick)
            volume = 0 if sub.what != "TRADES" else 1 + t % 7
            self.send([50, 3, req_id, t, price, price, price, price, fmt_size(volume, self.version), price,
                       1 if volume else 0])
        sub.next_bar = max(sub.next_bar, last_complete + 5)

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
        for req_id, rt in list(self.realtime.items()):
            self.send_real_time_bars(req_id, rt)

