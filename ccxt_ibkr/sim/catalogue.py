"""The instruments the fake TWS knows, their sessions, and TWS-style contract matching.

A real TWS resolves a partly filled ``Contract`` against its security-definition database:
one match is qualified, none is error 200 "No security definition", and several are
"ambiguous" wherever a single contract is needed. The catalogue reproduces that with a few
dozen instruments chosen to exercise every path the adapter has: SMART-routed US stocks with
NASDAQ/NYSE/ARCA primaries, ASX and Xetra stocks in other currencies, two dual listings
(BHP, SAP) that are ambiguous without a currency, IDEALPRO FX, quarterly ES futures whose
expiries follow the simulated clock, and fractional PAXOS crypto.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from zoneinfo import ZoneInfo

from .calendars import CALENDAR_UNKNOWN, calendar_session

DAY = 86_400
_FUT_MONTH_CODES = {3: "H", 6: "M", 9: "U", 12: "Z"}


@dataclass(frozen=True)
class Session:
    """Daily session in local time; ``prev_day`` sessions open the evening before."""

    open_minute: int
    close_minute: int
    prev_day: bool = False


@dataclass(frozen=True)
class Hours:
    """Trading and liquid (regular) hours of a venue, on the given ISO weekdays (1=Monday)."""

    tz: str
    trading: Session
    liquid: Session
    weekdays: frozenset[int] = frozenset({1, 2, 3, 4, 5})
    #: exchange_calendars name (XNYS, XASX, ...): its sessions decide which days trade (holidays)
    #: and clip the local times above (early closes); "" = every weekday in ``weekdays`` trades.
    calendar: str = ""

    def _windows(self, day: dt.date, session: Session) -> tuple[dt.datetime, dt.datetime]:
        zone = ZoneInfo(self.tz)
        start_day = day - dt.timedelta(days=1) if session.prev_day else day
        start = dt.datetime.combine(start_day, dt.time(0), zone) + dt.timedelta(minutes=session.open_minute)
        end = dt.datetime.combine(day, dt.time(0), zone) + dt.timedelta(minutes=session.close_minute)
        return start, end

    def session_on(self, day: dt.date, liquid: bool) -> tuple[float, float] | None:
        """(open, close) epoch seconds of the session belonging to trading date ``day``."""
        return _session_on(self, day, liquid)

    def current_or_next(self, ts: float, liquid: bool) -> tuple[float, float]:
        """The session containing ``ts``, else the next one to open."""
        local = dt.datetime.fromtimestamp(ts, ZoneInfo(self.tz)).date()
        for offset in range(-1, 10):
            window = self.session_on(local + dt.timedelta(days=offset), liquid)
            if window and ts < window[1]:
                return window
        raise ValueError("no session within ten days")

    def last_trade_time(self, ts: float) -> float:
        """``ts`` while the venue trades, else the last minute of the previous session."""
        local = dt.datetime.fromtimestamp(ts, ZoneInfo(self.tz)).date()
        for offset in range(1, -12, -1):
            window = self.session_on(local + dt.timedelta(days=offset), liquid=False)
            if window is None or window[0] > ts:
                continue
            return ts if ts < window[1] else window[1] - 60
        return ts

    def is_open(self, ts: float, liquid: bool) -> bool:
        start, end = self.current_or_next(ts, liquid)
        return start <= ts < end

    def describe(self, ts: float, liquid: bool, days: int = 7) -> str:
        """TWS ``tradingHours``/``liquidHours`` text: ``20250101:0930-20250101:1600;20250104:CLOSED``."""
        zone = ZoneInfo(self.tz)
        first = dt.datetime.fromtimestamp(ts, zone).date()
        parts = []
        for offset in range(days):
            day = first + dt.timedelta(days=offset)
            window = self.session_on(day, liquid)
            if window is None:
                parts.append(f"{day:%Y%m%d}:CLOSED")
                continue
            start = dt.datetime.fromtimestamp(window[0], zone)
            end = dt.datetime.fromtimestamp(window[1], zone)
            parts.append(f"{start:%Y%m%d:%H%M}-{end:%Y%m%d:%H%M}")
        return ";".join(parts)


@lru_cache(maxsize=8192)
def _session_on(hours: Hours, day: dt.date, liquid: bool) -> tuple[float, float] | None:
    # Cached: matching asks for the same few sessions at every clock step.
    if day.isoweekday() not in hours.weekdays:
        return None
    start, end = hours._windows(day, hours.liquid if liquid else hours.trading)
    if not hours.calendar:
        return start.timestamp(), end.timestamp()
    regular = calendar_session(hours.calendar, day)
    if regular is None:
        return None  # a holiday
    if regular is CALENDAR_UNKNOWN:
        return start.timestamp(), end.timestamp()
    cal_open, cal_close = regular
    open_ts = max(start.timestamp(), cal_open) if liquid else start.timestamp()
    if liquid:
        close_ts = min(end.timestamp(), cal_close)
    else:
        # Extended hours end as long after the regular close as usual (half days: 13:00 -> 17:00).
        after = (hours.trading.close_minute - hours.liquid.close_minute) * 60
        close_ts = min(end.timestamp(), cal_close + max(after, 0))
    return open_ts, close_ts


US_STOCK_HOURS = Hours("US/Eastern", Session(4 * 60, 20 * 60), Session(9 * 60 + 30, 16 * 60), calendar="XNYS")
ASX_HOURS = Hours("Australia/Sydney", Session(10 * 60, 16 * 60), Session(10 * 60, 16 * 60), calendar="XASX")
IBIS_HOURS = Hours("MET", Session(8 * 60, 22 * 60), Session(9 * 60, 17 * 60 + 30), calendar="XETR")
FX_HOURS = Hours("US/Eastern", Session(17 * 60 + 15, 17 * 60, True), Session(17 * 60 + 15, 17 * 60, True))
CME_HOURS = Hours(
    "US/Central", Session(17 * 60, 16 * 60, True), Session(8 * 60 + 30, 15 * 60), calendar="CMES"
)
CRYPTO_HOURS = Hours(
    "US/Eastern", Session(0, 24 * 60), Session(0, 24 * 60), frozenset({1, 2, 3, 4, 5, 6, 7})
)


#: Market rules (reqMarketRule): id -> (lowEdge, increment) rows. One flat increment per
#: catalogue tick size, so a rule always agrees with the contract's minTick.
MARKET_RULES: dict[int, tuple[tuple[float, float], ...]] = {
    26: ((0.0, 0.01),),
    62: ((0.0, 0.005),),
    67: ((0.0, 0.25),),
    239: ((0.0, 0.00005),),
    110: ((0.0, 0.0001),),
    32: ((0.0, 0.001),),
    1: ((0.0, 1.0),),
}


def market_rule_id(tick: float) -> int:
    for rule, rows in MARKET_RULES.items():
        if len(rows) == 1 and abs(rows[0][1] - tick) < 1e-12:
            return rule
    raise KeyError(f"no market rule for tick {tick}")


@dataclass(frozen=True)
class Instrument:
    """One tradable contract with everything contractDetails and the engines need."""

    con_id: int
    symbol: str
    sec_type: str
    currency: str
    exchange: str  # the exchange TWS echoes by default (SMART for stocks)
    primary_exchange: str
    local_symbol: str
    trading_class: str
    long_name: str
    min_tick: float
    start_price: float
    hours: Hours
    min_size: float = 1.0
    size_increment: float = 1.0
    multiplier: str = ""
    last_trade_date: str = ""  # YYYYMMDD for futures
    contract_month: str = ""
    valid_exchanges: tuple[str, ...] = ()
    order_types: str = (
        "ACTIVETIM,ADJUST,ALERT,ALGO,ALLOC,AVGCOST,BASKET,DAY,GTC,IOC,FOK,LMT,MKT,STP,STPLMT,TRAIL"
    )
    daily_vol: float = 0.015
    spread_ticks: int = 1
    industry: str = ""
    category: str = ""
    subcategory: str = ""
    stock_type: str = ""
    agg_group: int = 1
    #: One market-rule id per valid exchange (TWS order); empty = derived from ``min_tick``.
    market_rule_ids: str = ""
    margin_rate: float = 0.5
    volume_scale: float = 1_000.0
    #: Futures: the index they settle on (contractDetails underConId/underSymbol/underSecType).
    under_con_id: int = 0
    under_symbol: str = ""
    under_sec_type: str = ""

    @property
    def rule_ids(self) -> str:
        """contractDetails.marketRuleIds: one id per valid exchange, each a rule of ``MARKET_RULES``."""
        if self.market_rule_ids:
            return self.market_rule_ids
        rule = market_rule_id(self.min_tick)
        return ",".join([str(rule)] * max(1, len(self.valid_exchanges)))

    @property
    def mult(self) -> float:
        return float(self.multiplier) if self.multiplier else 1.0

    @property
    def key(self) -> str:
        """Stable identity for seeding price paths."""
        return f"{self.symbol}:{self.sec_type}:{self.currency}:{self.primary_exchange}:{self.last_trade_date}"

    def expiry_ts(self) -> float | None:
        """Expiry as epoch seconds (the last trade date's liquid close), or None."""
        if not self.last_trade_date:
            return None
        day = dt.datetime.strptime(self.last_trade_date, "%Y%m%d").date()
        window = self.hours.session_on(day, liquid=True)
        assert window is not None
        return window[1]


@dataclass
class ContractQuery:
    """The 12 contract fields every request carries (``C12`` in ib-protocol.md)."""

    con_id: int = 0
    symbol: str = ""
    sec_type: str = ""
    last_trade_date: str = ""
    strike: float | None = None
    right: str = ""
    multiplier: str = ""
    exchange: str = ""
    primary_exchange: str = ""
    currency: str = ""
    local_symbol: str = ""
    trading_class: str = ""
    include_expired: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        name = self.symbol or self.local_symbol or str(self.con_id)
        parts = [name, self.sec_type, self.exchange, self.currency]
        return " ".join(p for p in parts if p)


def _us(con_id: int, symbol: str, primary: str, name: str, price: float, industry: str, **kw) -> Instrument:
    trading_class = "NMS" if primary == "NASDAQ" else symbol
    return Instrument(
        con_id=con_id, symbol=symbol, sec_type="STK", currency="USD", exchange="SMART",
        primary_exchange=primary, local_symbol=symbol, trading_class=trading_class, long_name=name,
        min_tick=0.01, start_price=price, hours=US_STOCK_HOURS,
        valid_exchanges=("SMART", primary, "ARCA", "BATS", "IEX", "ISLAND"),
        industry=industry, category=industry, stock_type="COMMON", **kw,
    )


def _stock(con_id: int, symbol: str, primary: str, currency: str, name: str, price: float, hours: Hours,
           tick: float = 0.01) -> Instrument:
    return Instrument(
        con_id=con_id, symbol=symbol, sec_type="STK", currency=currency, exchange="SMART",
        primary_exchange=primary, local_symbol=symbol, trading_class=symbol, long_name=name,
        min_tick=tick, start_price=price, hours=hours, valid_exchanges=("SMART", primary),
        stock_type="COMMON",
    )


def _fx(con_id: int, base: str, quote: str, price: float, tick: float = 0.00005) -> Instrument:
    return Instrument(
        con_id=con_id, symbol=base, sec_type="CASH", currency=quote, exchange="IDEALPRO",
        primary_exchange="", local_symbol=f"{base}.{quote}", trading_class=f"{base}.{quote}",
        long_name="European Monetary Union Euro" if base == "EUR" else f"{base} {quote}",
        min_tick=tick, start_price=price, hours=FX_HOURS, min_size=1.0, size_increment=1.0,
        valid_exchanges=("IDEALPRO",), daily_vol=0.005, spread_ticks=2, margin_rate=0.03,
        agg_group=4, volume_scale=0.0,
    )


def _crypto(con_id: int, symbol: str, name: str, price: float, tick: float, min_size: float) -> Instrument:
    return Instrument(
        con_id=con_id, symbol=symbol, sec_type="CRYPTO", currency="USD", exchange="PAXOS",
        primary_exchange="", local_symbol=f"{symbol}.USD", trading_class=symbol, long_name=name,
        min_tick=tick, start_price=price, hours=CRYPTO_HOURS, min_size=min_size, size_increment=min_size,
        valid_exchanges=("PAXOS",), daily_vol=0.03, spread_ticks=2, margin_rate=1.0,
        order_types="DAY,GTC,IOC,LMT,MKT,STP,STPLMT", volume_scale=5.0,
    )


def third_friday(year: int, month: int) -> dt.date:
    first = dt.date(year, month, 1)
    offset = (4 - first.weekday()) % 7
    return first + dt.timedelta(days=offset + 14)


#: The S&P 500 E-mini index conId at IB (ES futures' underlying).
ES_INDEX_CON_ID = 11004968


def es_futures(now: float, count: int = 4, expired: int = 1) -> list[Instrument]:
    """Quarterly ES contracts around ``now``: ``expired`` past ones, then ``count`` live ones."""
    today = dt.datetime.fromtimestamp(now, dt.timezone.utc).date()
    quarters: list[dt.date] = []
    year, month = today.year - 1, 3
    while len(quarters) < 40:
        quarters.append(third_friday(year, month))
        month += 3
        if month > 12:
            year, month = year + 1, 3
    live_index = next(i for i, d in enumerate(quarters) if d >= today)
    chosen = quarters[live_index - expired : live_index + count]
    out = []
    for day in chosen:
        code = _FUT_MONTH_CODES[day.month]
        out.append(
            Instrument(
                con_id=600_000_000 + day.year * 100 + day.month,
                symbol="ES", sec_type="FUT", currency="USD", exchange="CME", primary_exchange="",
                local_symbol=f"ES{code}{day.year % 10}", trading_class="ES",
                long_name="E-mini S&P 500", min_tick=0.25, start_price=5500.0, hours=CME_HOURS,
                multiplier="50", last_trade_date=f"{day:%Y%m%d}", contract_month=f"{day:%Y%m}",
                valid_exchanges=("CME", "QBALGO"), daily_vol=0.012, spread_ticks=1, margin_rate=0.06,
                volume_scale=200.0,
                under_con_id=ES_INDEX_CON_ID, under_symbol="ES", under_sec_type="IND",
            )
        )
    return out


def default_instruments(now: float) -> list[Instrument]:
    """The standard catalogue; futures expiries are relative to ``now`` (the sim clock)."""
    items = [
        _us(265598, "AAPL", "NASDAQ", "APPLE INC", 190.0, "Technology"),
        _us(272093, "MSFT", "NASDAQ", "MICROSOFT CORP", 420.0, "Technology"),
        _us(4815747, "NVDA", "NASDAQ", "NVIDIA CORP", 120.0, "Technology", daily_vol=0.025),
        _us(76792991, "TSLA", "NASDAQ", "TESLA INC", 250.0, "Consumer, Cyclical", daily_vol=0.03),
        _us(3691937, "AMZN", "NASDAQ", "AMAZON.COM INC", 185.0, "Communications"),
        _us(208813719, "GOOGL", "NASDAQ", "ALPHABET INC-CL A", 170.0, "Communications"),
        _us(107113386, "META", "NASDAQ", "META PLATFORMS INC-CLASS A", 500.0, "Communications"),
        _us(756733, "SPY", "ARCA", "SPDR S&P 500 ETF TRUST", 540.0, "Fund", daily_vol=0.01),
        _us(8314, "IBM", "NYSE", "INTL BUSINESS MACHINES CORP", 200.0, "Technology"),
        _us(1520593, "JPM", "NYSE", "JPMORGAN CHASE & CO", 200.0, "Financial"),
        _us(5,  "KO", "NYSE", "COCA-COLA CO/THE", 65.0, "Consumer, Non-cyclical"),
        # Dual listings: without a currency these are ambiguous, as at TWS.
        _us(4036813, "BHP", "NYSE", "BHP GROUP LTD-SPON ADR", 60.0, "Basic Materials"),
        _us(3857, "SAP", "NYSE", "SAP SE-SPONSORED ADR", 205.0, "Technology"),
        _stock(4036812, "BHP", "ASX", "AUD", "BHP GROUP LTD", 45.0, ASX_HOURS),
        _stock(4036818, "CBA", "ASX", "AUD", "COMMONWEALTH BANK OF AUSTRAL", 120.0, ASX_HOURS),
        _stock(4036826, "CSL", "ASX", "AUD", "CSL LTD", 290.0, ASX_HOURS),
        _stock(4036857, "WBC", "ASX", "AUD", "WESTPAC BANKING CORP", 28.0, ASX_HOURS, tick=0.005),
        _stock(14204, "SAP", "IBIS", "EUR", "SAP SE", 190.0, IBIS_HOURS),
        _fx(12087792, "EUR", "USD", 1.08),
        _fx(12087797, "GBP", "USD", 1.27),
        _fx(15016059, "USD", "JPY", 150.0, tick=0.005),
        _fx(14433401, "AUD", "USD", 0.66),
        _fx(12087807, "EUR", "GBP", 0.85),
        _fx(15016062, "USD", "CAD", 1.36),
        _fx(12087820, "EUR", "AUD", 1.64),
        _crypto(479624278, "BTC", "Bitcoin", 60_000.0, 0.25, 0.0001),
        _crypto(495759171, "ETH", "Ethereum", 3_000.0, 0.01, 0.001),
    ]
    items.extend(es_futures(now))
    return items


class Catalogue:
    """Lookup by conId and by partial contract, with TWS's matching rules."""

    def __init__(self, instruments: Iterable[Instrument]) -> None:
        self._items: list[Instrument] = list(instruments)
        self._by_con_id = {i.con_id: i for i in self._items}
        if len(self._by_con_id) != len(self._items):
            raise ValueError("duplicate conId in catalogue")

    def __iter__(self):
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def by_con_id(self, con_id: int) -> Instrument | None:
        return self._by_con_id.get(con_id)

    def find(self, symbol: str, sec_type: str = "", currency: str = "") -> Instrument:
        """Convenience for tests and the CLI: exactly one instrument or ``KeyError``."""
        found = self.match(ContractQuery(symbol=symbol, sec_type=sec_type, currency=currency), now=None)
        if len(found) != 1:
            raise KeyError(f"{symbol} {sec_type} {currency}: {len(found)} matches")
        return found[0]

    def replace_instrument(self, instrument: Instrument) -> None:
        for i, item in enumerate(self._items):
            if item.con_id == instrument.con_id:
                self._items[i] = instrument
        self._by_con_id[instrument.con_id] = instrument

    def match(self, q: ContractQuery, now: float | None) -> list[Instrument]:
        """All instruments the query could mean (TWS returns all of them for contract details)."""
        if q.con_id:
            inst = self._by_con_id.get(q.con_id)
            if inst is None:
                return []
            if q.exchange and q.exchange not in inst.valid_exchanges:
                return []
            return [inst]
        if not (q.symbol or q.local_symbol):
            return []
        out = []
        for inst in self._items:
            if q.sec_type and q.sec_type.upper() != inst.sec_type:
                continue
            if q.symbol and q.symbol.upper() != inst.symbol:
                continue
            if q.local_symbol and q.local_symbol.upper() != inst.local_symbol.upper():
                continue
            if q.currency and q.currency.upper() != inst.currency:
                continue
            if q.exchange and q.exchange.upper() not in inst.valid_exchanges:
                continue
            primaries = (inst.primary_exchange, inst.exchange)
            if q.primary_exchange and q.primary_exchange.upper() not in primaries:
                continue
            if q.trading_class and q.trading_class.upper() != inst.trading_class.upper():
                continue
            if q.multiplier and inst.multiplier and float(q.multiplier) != inst.mult:
                continue
            if q.last_trade_date:
                wanted = q.last_trade_date.split(" ")[0]
                if not (inst.last_trade_date.startswith(wanted) or inst.contract_month == wanted):
                    continue
            if now is not None and not q.include_expired:
                expiry = inst.expiry_ts()
                if expiry is not None and expiry <= now:
                    continue
            out.append(inst)
        return out

    def resolve(self, q: ContractQuery, now: float) -> tuple[Instrument | None, str]:
        """Exactly one instrument, or None and the TWS error-200 text."""
        found = self.match(q, now)
        if len(found) == 1:
            return found[0], ""
        if not found:
            return None, "No security definition has been found for the request"
        return None, f"The contract description specified for {q.symbol or q.local_symbol} is ambiguous."

