"""Streaming requests added with TWS 9.7x: PnL, PnL single, positions multi, tick-by-tick,
historical ticks and histograms.

Each subscription answers at once with the current state and then again, from ``on_clock``
and ``on_account_change``, whenever what it reports has changed; TWS throttles these to
about one message a second, the simulator sends at most one per clock move.
"""

from __future__ import annotations

from . import messages as M
from .connection import SessionBase
from .marketdata import HistoricalError, parse_end, parse_start
from .subscriptions import TickByTickSub
from .ticks import MAX_TICKS, histogram, historical_ticks
from .wire import Fields, fmt_size

TICK_BY_TICK_TYPES = {"LAST": 1, "ALLLAST": 2, "BIDASK": 3, "MIDPOINT": 4}
#: TWS's default cap on concurrent tick-by-tick subscriptions (it depends on market data lines).
MAX_TICK_BY_TICK = 5
HISTOGRAM_UNITS = {"day": 86400, "days": 86400, "week": 7 * 86400, "weeks": 7 * 86400,
                   "month": 30 * 86400, "months": 30 * 86400, "year": 365 * 86400, "years": 365 * 86400}


class StreamHandlers(SessionBase):
    """PnL, multi-account positions, tick-by-tick and tick history."""

    # -- PnL ------------------------------------------------------------------------------
    def req_pnl(self, f: Fields) -> None:
        req_id = f.int()
        account = f.str()
        f.str()  # modelCode
        if account and account != self.account:
            self.error(req_id, 321, f"Error validating request.-'ci' : cause - Invalid account code {account!r}")
            return
        self.pnl_subs[req_id] = None
        self.send_pnl(req_id)

    def send_pnl(self, req_id: int) -> None:
        pnl = self.sim.pnl.account()
        key = (round(pnl.daily, 2), round(pnl.unrealized, 2), round(pnl.realized, 2))
        if self.pnl_subs.get(req_id) == key:
            return
        self.pnl_subs[req_id] = key
        self.send([94, req_id, *key])

    def cancel_pnl(self, f: Fields) -> None:
        self.pnl_subs.pop(f.int(), None)

    def req_pnl_single(self, f: Fields) -> None:
        req_id = f.int()
        account = f.str()
        f.str()  # modelCode
        con_id = f.int()
        if account and account != self.account:
            self.error(req_id, 321, f"Error validating request.-'ci' : cause - Invalid account code {account!r}")
            return
        if self.sim.catalogue.by_con_id(con_id) is None:
            self.error(req_id, 200, "No security definition has been found for the request")
            return
        self.pnl_single_subs[req_id] = (con_id, None)
        self.send_pnl_single(req_id)

    def send_pnl_single(self, req_id: int) -> None:
        con_id, last = self.pnl_single_subs[req_id]
        one = self.sim.pnl.single(con_id)
        key = (round(one.daily, 2), round(one.unrealized, 2), round(one.realized, 2), round(one.value, 2))
        if key == last:
            return
        self.pnl_single_subs[req_id] = (con_id, key)
        self.send([95, req_id, fmt_size(one.position, self.version), *key[:3], key[3]])

    def cancel_pnl_single(self, f: Fields) -> None:
        self.pnl_single_subs.pop(f.int(), None)

    # -- positions multi ----------------------------------------------------------------------
    def req_positions_multi(self, f: Fields) -> None:
        f.int()
        req_id = f.int()
        account = f.str()
        model = f.str()
        self.positions_multi[req_id] = model
        if not account or account == self.account:
            with self.sim.ledger.lock:
                positions = [p for p in self.sim.ledger.positions.values() if p.qty]
            for pos in positions:
                self.send(self._position_multi(req_id, model, pos.instrument, pos.qty, pos.avg_cost))
        self.send([72, 1, req_id])

    def _position_multi(self, req_id: int, model: str, inst, qty: float, avg_cost: float) -> list[object]:
        row = M.position(self.account, inst, qty, avg_cost, self.version)
        return [71, 1, req_id, self.account, *row[3:], model]

    def cancel_positions_multi(self, f: Fields) -> None:
        f.int()
        self.positions_multi.pop(f.int(), None)

    # -- tick by tick ---------------------------------------------------------------------
    def req_tick_by_tick(self, f: Fields) -> None:
        req_id = f.int()
        q = self.read_contract(f)
        kind = f.str().replace(" ", "").upper()
        count = f.int(0) if f.remaining else 0
        ignore_size = f.bool() if f.remaining else False
        tick_type = TICK_BY_TICK_TYPES.get(kind)
        if tick_type is None:
            self.error(req_id, 10189, f"Failed to request tick-by-tick data.Invalid tick type: {kind}")
            return
        inst = self.resolve(q, req_id)
        if inst is None:
            return
        if inst.sec_type == "CASH" and tick_type in (1, 2):
            self.error(req_id, 10189, "Failed to request tick-by-tick data.Last and AllLast ticks are not "
                       "available for Forex: request BidAsk or MidPoint")
            return
        if len(self.tick_by_tick) >= MAX_TICK_BY_TICK:
            self.error(req_id, 10190, "Max number of tick-by-tick requests has been reached.")
            return
        now = self.sim.clock.now()
        if count > 0:
            what = {1: "TRADES", 2: "TRADES", 3: "BID_ASK", 4: "MIDPOINT"}[tick_type]
            self._send_historical_ticks(req_id, inst, what, None, now, count, False)
        sub = TickByTickSub(inst, tick_type, ignore_size)
        self.tick_by_tick[req_id] = sub
        self.send_tick_by_tick(req_id, sub)

    def send_tick_by_tick(self, req_id: int, sub: TickByTickSub) -> None:
        now = self.sim.clock.now()
        quote = self.sim.market.quote(sub.inst, now)
        t = int(now)
        if sub.tick_type in (1, 2):
            key: tuple = (quote.last, quote.last_size, quote.time // 60)
            fields: list[object] = [quote.last, fmt_size(quote.last_size, self.version), 0,
                                    sub.inst.primary_exchange or sub.inst.exchange, ""]
        elif sub.tick_type == 3:
            key = (quote.bid, quote.ask) if sub.ignore_size else (quote.bid, quote.ask, quote.bid_size, quote.ask_size)
            fields = [quote.bid, quote.ask, fmt_size(quote.bid_size, self.version),
                      fmt_size(quote.ask_size, self.version), 0]
        else:
            mid = self.sim.market.mid(sub.inst, now)
            key = (mid,)
            fields = [mid]
        if key == sub.last:
            return
        sub.last = key
        self.send([99, req_id, sub.tick_type, t, *fields])

    def cancel_tick_by_tick(self, f: Fields) -> None:
        self.tick_by_tick.pop(f.int(), None)

    # -- historical ticks and histograms ---------------------------------------------------
    def req_historical_ticks(self, f: Fields) -> None:
        req_id = f.int()
        q = self.read_contract(f)
        f.bool()  # includeExpired
        start_text = f.str()
        end_text = f.str()
        count = f.int(MAX_TICKS)
        what = f.str().upper() or "TRADES"
        use_rth = f.bool()
        inst = self.resolve(q, req_id)
        if inst is None:
            return
        if what not in {"TRADES", "BID_ASK", "MIDPOINT"}:
            self.error(req_id, 10187, f"Failed to request historical ticks:Invalid whatToShow {what!r}")
            return
        if inst.sec_type == "CASH" and what == "TRADES":
            self.error(req_id, 10187, "Failed to request historical ticks:No data of type TRADES for Forex")
            return
        if bool(start_text.strip()) == bool(end_text.strip()):
            self.error(req_id, 10187, "Failed to request historical ticks:Exactly one of startDateTime and "
                       "endDateTime must be given")
            return
        now = self.sim.clock.now()
        try:
            start = parse_start(start_text) if start_text.strip() else None
            end = parse_end(end_text, now) if end_text.strip() else now
        except HistoricalError as exc:
            self.error(req_id, exc.code, exc.text)
            return
        self._send_historical_ticks(req_id, inst, what, start, end, count, use_rth)

    def _send_historical_ticks(self, req_id: int, inst, what: str, start: float | None, end: float, count: int,
                               use_rth: bool) -> None:
        ticks = historical_ticks(self.sim.market, inst, what, start, end, count, use_rth)
        v = self.version
        out: list[object]
        if what == "BID_ASK":
            out = [97, req_id, len(ticks)]
            for t in ticks:
                out += [t.time, 0, t.bid, t.ask, fmt_size(t.bid_size, v), fmt_size(t.ask_size, v)]
        elif what == "MIDPOINT":
            out = [96, req_id, len(ticks)]
            for t in ticks:
                out += [t.time, 0, t.price, 0]
        else:
            venue = inst.primary_exchange or inst.exchange
            out = [98, req_id, len(ticks)]
            for t in ticks:
                out += [t.time, 0, t.price, fmt_size(t.size, v), venue, ""]
        out.append(1)  # done
        self.send(out)

    def req_histogram_data(self, f: Fields) -> None:
        req_id = f.int()
        q = self.read_contract(f)
        f.bool()  # includeExpired
        use_rth = f.bool()
        period = f.str().strip().lower()
        inst = self.resolve(q, req_id)
        if inst is None:
            return
        number, _, unit = period.partition(" ")
        try:
            span = int(number) * HISTOGRAM_UNITS[unit.strip()]
        except (ValueError, KeyError):
            self.error(req_id, 321, f"Error validating request.-'cd' : cause - Invalid time period {period!r}")
            return
        now = int(self.sim.clock.now())
        rows = histogram(self.sim.market, inst, now - span, now, use_rth)
        out: list[object] = [89, req_id, len(rows)]
        for price, volume in rows:
            out += [price, fmt_size(volume, self.version)]
        self.send(out)

    # -- pushes -----------------------------------------------------------------------------
    def on_stream_clock(self) -> None:
        for req_id in list(self.pnl_subs):
            self.send_pnl(req_id)
        for req_id in list(self.pnl_single_subs):
            self.send_pnl_single(req_id)
        for req_id, sub in list(self.tick_by_tick.items()):
            self.send_tick_by_tick(req_id, sub)

    def on_stream_positions(self, con_ids: set[int]) -> None:
        if self.positions_multi:
            with self.sim.ledger.lock:
                positions = [self.sim.ledger.positions[c] for c in con_ids if c in self.sim.ledger.positions]
            for req_id, model in self.positions_multi.items():
                for pos in positions:
                    self.send(self._position_multi(req_id, model, pos.instrument, pos.qty, pos.avg_cost))
        self.on_stream_clock()
