"""Reference requests: market rules, symbol search, option chains, depth venues, scanner, misc.

These are the requests a program sends once to learn about the venue rather than to trade:
TWS answers each from its security-definition and permission databases. The simulator
answers from its catalogue, and where a paper account has no such feature (news feeds,
Wall Street Horizon, FA allocations, options) with the error TWS sends, so no ibapi call
ever waits forever.
"""

from __future__ import annotations

import datetime as dt

from .catalogue import ES_INDEX_CON_ID, MARKET_RULES, Instrument, third_friday
from .connection import SessionBase
from .scanner import SCANNER_PARAMETERS_XML, scan_rows
from .wire import Fields

#: SMART's component venues as reqSmartComponents lists them (bit number, exchange, letter).
SMART_COMPONENTS = [(1, "NASDAQ", "Q"), (2, "ARCA", "P"), (3, "NYSE", "N"), (4, "BATS", "Z"), (5, "IEX", "V")]
#: reqMktDepthExchanges rows: exchange, secType, listing exchange, service data type, aggGroup.
DEPTH_EXCHANGES = [
    ("NASDAQ", "STK", "NASDAQ", "Deep2", 1), ("ARCA", "STK", "ARCA", "Deep2", 1),
    ("NYSE", "STK", "NYSE", "Deep", 1), ("BATS", "STK", "", "Deep", 1), ("IEX", "STK", "", "Deep", 1),
    ("ASX", "STK", "ASX", "Deep", 2), ("IBIS", "STK", "IBIS", "Deep", 3),
    ("IDEALPRO", "CASH", "", "Deep", 4), ("CME", "FUT", "", "Deep", 1), ("PAXOS", "CRYPTO", "", "Deep", 1),
]
FA_TEXT = "Error validating request.-'vd' : cause - FA data operations ignored for non FA customers."
OPTIONS_TEXT = "Error validating request.-'bB' : cause - The simulator's account has no option permissions"


class ReferenceHandlers(SessionBase):
    """Answers built from the catalogue; nothing here changes account state."""

    def req_market_rule(self, f: Fields) -> None:
        rule_id = f.int()
        rows = MARKET_RULES.get(rule_id)
        if rows is None:
            self.error(-1, 321, f"Error validating request.-'cz' : cause - Invalid market rule id: {rule_id}")
            return
        out: list[object] = [93, rule_id, len(rows)]
        for low, increment in rows:
            out += [low, increment]
        self.send(out)

    def req_matching_symbols(self, f: Fields) -> None:
        req_id = f.int()
        pattern = f.str().strip().upper()
        seen: set[tuple[str, str, str, str]] = set()
        rows: list[list[object]] = []
        if pattern:
            for inst in self.sim.catalogue:
                if inst.sec_type == "FUT":
                    key = (inst.under_symbol, "IND", inst.exchange, inst.currency)
                    row = [inst.under_con_id or ES_INDEX_CON_ID, inst.under_symbol or inst.symbol, "IND",
                           inst.exchange, inst.currency, 2, "FUT", "FOP", inst.long_name, ""]
                else:
                    key = (inst.symbol, inst.sec_type, inst.primary_exchange or inst.exchange, inst.currency)
                    derivs = ["CFD", "OPT"] if inst.sec_type == "STK" else []
                    row = [inst.con_id, inst.symbol, inst.sec_type, inst.primary_exchange or inst.exchange,
                           inst.currency, len(derivs), *derivs, inst.long_name, ""]
                name = str(row[1])
                if key in seen or not (name.startswith(pattern) or pattern in inst.long_name.upper()):
                    continue
                seen.add(key)
                rows.append(row)
        out: list[object] = [79, req_id, min(len(rows), 16)]
        for row in rows[:16]:
            out += row
        self.send(out)

    def req_sec_def_opt_params(self, f: Fields) -> None:
        req_id = f.int()
        symbol = f.str().upper()
        fut_fop_exchange = f.str().upper()
        sec_type = f.str().upper()
        con_id = f.int()
        inst = self.sim.catalogue.by_con_id(con_id)
        if inst is None or (symbol and inst.symbol != symbol and inst.under_symbol != symbol):
            candidates = [
                i for i in self.sim.catalogue
                if i.symbol == symbol and (not sec_type or i.sec_type == sec_type or i.under_sec_type == sec_type)
            ]
            inst = candidates[0] if candidates else None
        if inst is not None and inst.sec_type in {"STK", "FUT", "IND"}:
            for row in self._option_chains(inst, fut_fop_exchange):
                self.send([75, req_id, *row])
        self.send([76, req_id])

    def _option_chains(self, inst: Instrument, fut_fop_exchange: str) -> list[list[object]]:
        """Monthly expiries (third Fridays) and strikes spaced by price around the underlying's mid."""
        now = self.sim.clock.now()
        price = self.sim.market.mid(inst, now)
        step = 1.0 if price < 50 else 2.5 if price < 200 else 5.0 if price < 1000 else 25.0
        centre = round(price / step) * step
        strikes = [round(centre + k * step, 4) for k in range(-10, 11) if centre + k * step > 0]
        today = dt.datetime.fromtimestamp(now, dt.timezone.utc).date()
        expiries: list[str] = []
        year, month = today.year, today.month
        while len(expiries) < 6:
            day = third_friday(year, month)
            if day >= today:
                expiries.append(f"{day:%Y%m%d}")
            month += 1
            if month > 12:
                year, month = year + 1, 1
        if inst.sec_type == "FUT":
            exchanges = [fut_fop_exchange or inst.exchange]
            multiplier = inst.multiplier
        else:
            exchanges = ["SMART", "CBOE", "ISE"]
            multiplier = "100"
        rows = []
        for exchange in exchanges:
            rows.append([exchange, inst.con_id, inst.trading_class if inst.sec_type == "FUT" else inst.symbol,
                         multiplier, len(expiries), *expiries, len(strikes), *strikes])
        return rows

    def req_mkt_depth_exchanges(self, f: Fields) -> None:
        out: list[object] = [80, len(DEPTH_EXCHANGES)]
        for row in DEPTH_EXCHANGES:
            out += list(row)
        self.send(out)

    def req_smart_components(self, f: Fields) -> None:
        req_id = f.int()
        f.str()  # bboExchange, as tickReqParams gave it
        out: list[object] = [82, req_id, len(SMART_COMPONENTS)]
        for row in SMART_COMPONENTS:
            out += list(row)
        self.send(out)

    # -- account-level lookups ------------------------------------------------------------------
    def req_family_codes(self, f: Fields) -> None:
        self.send([78, 1, self.account, ""])

    def req_user_info(self, f: Fields) -> None:
        self.send([107, f.int(), ""])

    def req_soft_dollar_tiers(self, f: Fields) -> None:
        self.send([77, f.int(), 0])

    def request_fa(self, f: Fields) -> None:
        self.error(-1, 321, FA_TEXT)

    def replace_fa(self, f: Fields) -> None:
        f.int()
        f.int()
        f.str()
        req_id = f.int() if f.remaining else -1
        self.error(req_id, 321, FA_TEXT)

    def req_news_bulletins(self, f: Fields) -> None:
        f.int()
        if f.bool():  # allMsgs: today's bulletins so far, then new ones as they come
            self.send([14, 1, 1, 1, "Simulated TWS: all exchanges operating normally.", "SMART"])

    def req_news_providers(self, f: Fields) -> None:
        self.send([85, 0])  # a paper account subscribes to no news feed

    def req_news_article(self, f: Fields) -> None:
        req_id = f.int()
        provider = f.str()
        self.error(req_id, 10276, f"News feed is not allowed: {provider}")

    def req_historical_news(self, f: Fields) -> None:
        req_id = f.int()
        self.send([87, req_id, 0])

    def req_wsh_meta_data(self, f: Fields) -> None:
        self.error(f.int(), 10279, "Failed request WSH meta data: no Wall Street Horizon subscription")

    def req_wsh_event_data(self, f: Fields) -> None:
        self.error(f.int(), 10283, "Failed request WSH event data: no Wall Street Horizon subscription")

    # -- options ------------------------------------------------------------------------------
    def _option_request(self, f: Fields, versioned: bool = True) -> None:
        if versioned:
            f.int()
        req_id = f.int()
        q = self.read_contract(f)
        if self.resolve(q, req_id) is not None:
            self.error(req_id, 321, OPTIONS_TEXT)

    def calc_implied_volatility(self, f: Fields) -> None:
        self._option_request(f)

    def calc_option_price(self, f: Fields) -> None:
        self._option_request(f)

    def exercise_options(self, f: Fields) -> None:
        f.int()
        req_id = f.int()
        q = self.read_contract(f, primary=False)
        if self.resolve(q, req_id) is not None:
            self.error(req_id, 321, OPTIONS_TEXT)

    # -- display groups and API verification ------------------------------------------------
    def query_display_groups(self, f: Fields) -> None:
        f.int()
        self.send([67, 1, f.int(), "1|2|3|4|5|6|7"])

    def subscribe_to_group_events(self, f: Fields) -> None:
        f.int()
        req_id = f.int()
        self.display_groups[req_id] = f.int()
        self.send([68, 1, req_id, "none"])

    def update_display_group(self, f: Fields) -> None:
        f.int()
        req_id = f.int()
        info = f.str()
        if req_id in self.display_groups:
            self.send([68, 1, req_id, info or "none"])

    def unsubscribe_from_group_events(self, f: Fields) -> None:
        f.int()
        self.display_groups.pop(f.int(), None)

    def verify_request(self, f: Fields) -> None:
        self.send([66, 1, "false", "API verification is not enabled for this account"])

    def verify_and_auth_request(self, f: Fields) -> None:
        self.send([70, 1, "false", "API verification is not enabled for this account"])

    # -- scanner --------------------------------------------------------------------------
    def req_scanner_parameters(self, f: Fields) -> None:
        self.send([19, 1, SCANNER_PARAMETERS_XML])

    def req_scanner_subscription(self, f: Fields) -> None:
        if self.version < 143:  # MIN_SERVER_VER_SCANNER_GENERIC_OPTS dropped the version field
            f.int()
        req_id = f.int()
        rows = f.int(50)
        instrument = f.str()
        location = f.str()
        code = f.str()
        if rows <= 0 or rows >= 2**31 - 1:
            rows = 50
        found = scan_rows(self.sim, instrument, location, code, min(rows, 50))
        if found is None:
            self.error(req_id, 165, f"Historical Market Data Service query message:Scanner type {code!r} "
                       f"not available for {instrument} {location}")
            return
        self.scanners[req_id] = (instrument, location, code, min(rows, 50))
        self.send_scan(req_id, found)

    def send_scan(self, req_id: int, rows: list[tuple[int, Instrument, float]]) -> None:
        out: list[object] = [20, 3, req_id, len(rows)]
        for rank, inst, _value in rows:
            out += [rank, inst.con_id, inst.symbol, inst.sec_type, inst.last_trade_date, 0.0, "",
                    inst.exchange, inst.currency, inst.local_symbol, inst.trading_class, inst.trading_class,
                    "", "", "", ""]
        self.send(out)

    def cancel_scanner_subscription(self, f: Fields) -> None:
        f.int()
        self.scanners.pop(f.int(), None)

    def ignore(self, f: Fields) -> None:
        """Cancels and settings TWS acknowledges with silence."""
