"""The instruments the simulator lists: epics, dealing rules, trading hours and the category tree.

Epics follow Capital.com's own spelling (shares by ticker ``AAPL``, FX ``EURUSD``, indices
``US100``, commodities ``GOLD``, crypto ``BTCUSD``) so that a client written against the real
broker needs no translation table. Each instrument carries what the broker publishes about it
(currency, lot size, decimals, size rules, margin, overnight rates, opening hours in its exchange's
zone) plus what the simulator needs to invent prices (start price, volatility, spread).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

#: Leverage choices per instrument type (ESMA retail caps), the last one is the default.
LEVERAGES: dict[str, list[int]] = {
    "SHARES": [1, 2, 3, 4, 5],
    "CURRENCIES": [1, 2, 3, 5, 10, 20, 30],
    "INDICES": [1, 2, 3, 5, 10, 20],
    "COMMODITIES": [1, 2, 3, 5, 10],
    "CRYPTOCURRENCIES": [1, 2],
}

#: Daily swap moment, seconds after UTC midnight (Capital charges overnight funding at 22:00 UTC).
SWAP_SECOND_OF_DAY = 22 * 3600


def _intervals(text: str) -> list[tuple[int, int]]:
    """``"09:30 - 16:00"`` -> [(570, 960)] in minutes of the local day; an end of 00:00 means midnight."""
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        start, end = (piece.strip() for piece in part.split("-"))
        sh, sm = map(int, start.split(":"))
        eh, em = map(int, end.split(":"))
        end_minute = eh * 60 + em
        if end_minute == 0:
            end_minute = 1440
        elif end_minute == 23 * 60 + 59:
            end_minute = 1440
        out.append((sh * 60 + sm, end_minute))
    return out


@dataclass(frozen=True)
class Hours:
    """A weekly trading schedule in one IANA zone (``week[i]`` for Monday..Sunday)."""

    zone: str
    week: tuple[str, ...]

    def parsed(self) -> list[list[tuple[int, int]]]:
        return [_intervals(day) for day in self.week]

    def as_api(self) -> dict[str, object]:
        """The ``openingHours`` object: each day a list of ``"HH:MM - HH:MM"`` strings."""
        out: dict[str, object] = {}
        for name, text in zip(DAYS, self.week, strict=True):
            out[name] = [part.strip() for part in text.split(",") if part.strip()]
        out["zone"] = self.zone
        return out


ALWAYS = Hours("UTC", ("00:00 - 23:59",) * 7)
US_SHARES = Hours("America/New_York", ("09:30 - 16:00",) * 5 + ("", ""))
EU_SHARES = Hours("Europe/Berlin", ("09:00 - 17:30",) * 5 + ("", ""))
AU_SHARES = Hours("Australia/Sydney", ("10:00 - 16:00",) * 5 + ("", ""))
# FX: Sunday 17:05 to Friday 17:00 New York with a five-minute daily break.
FX = Hours(
    "America/New_York",
    ("00:00 - 17:00, 17:05 - 00:00",) * 4 + ("00:00 - 17:00", "", "17:05 - 00:00"),
)
# US index and metal CFDs follow the futures: Sunday 18:00 to Friday 17:00 New York, one hour break.
US_FUTURES = Hours(
    "America/New_York",
    ("00:00 - 17:00, 18:00 - 00:00",) * 4 + ("00:00 - 17:00", "", "18:00 - 00:00"),
)
EU_INDEX = Hours("Europe/Berlin", ("08:00 - 22:00",) * 5 + ("", ""))
UK_INDEX = Hours("Europe/London", ("08:00 - 21:00",) * 5 + ("", ""))
ASIA_INDEX = Hours("Asia/Tokyo", ("08:45 - 15:15, 16:30 - 00:00",) * 5 + ("", ""))
AU_INDEX = Hours("Australia/Sydney", ("09:50 - 16:30, 17:10 - 00:00",) * 5 + ("", ""))


@dataclass(frozen=True)
class Instrument:
    """One tradeable CFD as the broker describes it, plus the simulator's price parameters."""

    epic: str
    symbol: str
    name: str
    type: str
    currency: str
    price: float  # anchor price of the synthetic path
    spread: float  # absolute bid/offer spread in price units
    decimals: int
    hours: Hours
    node: str  # market navigation leaf id
    min_size: float = 1.0
    size_increment: float = 1.0
    max_size: float = 10_000.0
    lot_size: float = 1.0
    daily_vol: float = 0.015
    overnight_long: float = -0.0215  # percent of notional per day
    overnight_short: float = -0.0063
    min_stop_pct: float = 0.1  # minStopOrProfitDistance, percent of price
    max_stop_pct: float = 75.0
    guaranteed_stop_pct: float = 1.0
    volume_scale: float = 1_000.0
    sentiment_long: float = 0.0  # 0 means "derive from the epic"

    @property
    def tick(self) -> float:
        return 10.0**-self.decimals

    @property
    def max_leverage(self) -> int:
        return LEVERAGES[self.type][-1]

    # -- opening hours ------------------------------------------------------------------
    def open_intervals(self, start: float, end: float) -> list[tuple[float, float]]:
        """Trading intervals (epoch seconds, merged) that overlap [start, end]."""
        return _open_intervals(self.hours, int(start) // 86400 - 1, int(end) // 86400 + 1)

    def utc_hours(self, ts: float) -> dict[str, object]:
        """The ``openingHours`` object for the UTC week (Monday..Sunday) around ``ts``.

        Every documented example says ``"zone": "UTC"``, so the exchange-zone schedule is converted
        to UTC days for the current week (so a daylight-saving change shows in the next week's
        answer); an interval crossing midnight is cut there, ``"23:05 - 00:00"`` + ``"00:00 - ..."``."""
        day0 = int(ts) // 86_400
        monday = (day0 - (day0 + 3) % 7) * 86_400  # 1970-01-01 was a Thursday
        intervals = self.open_intervals(monday, monday + 7 * 86_400)
        out: dict[str, object] = {}
        for index, name in enumerate(DAYS):
            begin, end = monday + index * 86_400, monday + (index + 1) * 86_400
            parts = []
            for a, b in intervals:
                a, b = max(a, begin), min(b, end)
                if b - a >= 60:
                    parts.append(f"{_hhmm(a - begin)} - {_hhmm(b - begin)}")
            out[name] = parts
        out["zone"] = "UTC"
        return out

    def is_open(self, ts: float) -> bool:
        intervals = self.open_intervals(ts, ts)
        starts = [a for a, _ in intervals]
        index = bisect.bisect_right(starts, ts) - 1
        return index >= 0 and intervals[index][0] <= ts < intervals[index][1]


@lru_cache(maxsize=4096)
def _open_intervals(hours: Hours, first_day: int, last_day: int) -> list[tuple[float, float]]:
    """Open intervals for local dates around UTC days ``first_day..last_day`` (days since epoch)."""
    zone = ZoneInfo(hours.zone)
    parsed = hours.parsed()
    raw: list[tuple[float, float]] = []
    local = date(1970, 1, 1) + timedelta(days=first_day - 1)
    stop = date(1970, 1, 1) + timedelta(days=last_day + 1)
    while local <= stop:
        midnight = datetime(local.year, local.month, local.day, tzinfo=zone)
        for start_minute, end_minute in parsed[local.weekday()]:
            begin = _local_epoch(midnight, start_minute, zone)
            finish = _local_epoch(midnight, end_minute, zone)
            raw.append((begin, finish))
        local += timedelta(days=1)
    raw.sort()
    merged: list[tuple[float, float]] = []
    for begin, finish in raw:
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], finish))
        else:
            merged.append((begin, finish))
    return merged


def _hhmm(seconds: float) -> str:
    """Seconds into a day -> ``HH:MM``; the day's end is written ``00:00``, as the broker does."""
    minutes = int(seconds) // 60 % 1440
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _local_epoch(midnight: datetime, minute: int, zone: ZoneInfo) -> float:
    naive = midnight.replace(tzinfo=None) + timedelta(minutes=minute)
    return naive.replace(tzinfo=zone).astimezone(timezone.utc).timestamp()


def _share(epic: str, name: str, price: float, *, currency: str = "USD", hours: Hours = US_SHARES,
           node: str = "hierarchy_v1.shares.us", min_size: float = 1.0, step: float = 1.0,
           spread_pct: float = 0.05, vol: float = 0.02) -> Instrument:
    return Instrument(
        epic=epic, symbol=epic, name=name, type="SHARES", currency=currency, price=price,
        spread=round(max(price * spread_pct / 100, 0.01), 2), decimals=2, hours=hours, node=node,
        min_size=min_size, size_increment=step, max_size=5_000, daily_vol=vol,
        overnight_long=-0.0226, overnight_short=-0.0052, min_stop_pct=0.5,
    )


def _fx(epic: str, price: float, decimals: int, spread: float) -> Instrument:
    base, quote = epic[:3], epic[3:]
    return Instrument(
        epic=epic, symbol=f"{base}/{quote}", name=f"{base}/{quote}", type="CURRENCIES", currency=quote,
        price=price, spread=spread, decimals=decimals, hours=FX, node="hierarchy_v1.currencies.majors",
        min_size=1000, size_increment=1, max_size=5_000_000, daily_vol=0.005,
        overnight_long=-0.0071, overnight_short=-0.0016, min_stop_pct=0.05,
        volume_scale=5_000,
    )


def _index(epic: str, name: str, price: float, currency: str, hours: Hours, spread: float) -> Instrument:
    return Instrument(
        epic=epic, symbol=epic, name=name, type="INDICES", currency=currency, price=price,
        spread=spread, decimals=1, hours=hours, node="hierarchy_v1.indices", min_size=0.01,
        size_increment=0.01, max_size=500, daily_vol=0.011, overnight_long=-0.0214,
        overnight_short=-0.0062, min_stop_pct=0.1,
    )


def _crypto(epic: str, name: str, price: float, decimals: int, spread: float, min_size: float) -> Instrument:
    base = epic[:-3]
    return Instrument(
        epic=epic, symbol=f"{base}/USD", name=name, type="CRYPTOCURRENCIES", currency="USD", price=price,
        spread=spread, decimals=decimals, hours=ALWAYS, node="hierarchy_v1.crypto", min_size=min_size,
        size_increment=min_size, max_size=1_000_000 * min_size, daily_vol=0.035,
        overnight_long=-0.0616, overnight_short=-0.0137, min_stop_pct=1.0,
    )


def default_instruments() -> list[Instrument]:
    """The built-in catalogue: a few dozen epics across the five instrument types."""
    shares = [
        _share("AAPL", "Apple Inc", 190.0),
        _share("TSLA", "Tesla Inc", 240.0, min_size=0.1, step=0.1, vol=0.03),
        _share("MSFT", "Microsoft Corp", 410.0),
        _share("NVDA", "NVIDIA Corp", 120.0, vol=0.028),
        _share("AMZN", "Amazon.com Inc", 180.0),
        _share("GOOGL", "Alphabet Inc - A", 170.0),
        _share("META", "Meta Platforms Inc", 500.0),
        _share("NFLX", "Netflix Inc", 600.0),
        _share("AMD", "Advanced Micro Devices Inc", 150.0, vol=0.03),
        _share("JPM", "JPMorgan Chase & Co", 200.0),
        _share("KO", "Coca-Cola Co", 62.0, vol=0.01),
        _share("DIS", "Walt Disney Co", 100.0),
        _share("SAP", "SAP SE", 190.0, currency="EUR", hours=EU_SHARES, node="hierarchy_v1.shares.de"),
        _share("SIE", "Siemens AG", 175.0, currency="EUR", hours=EU_SHARES, node="hierarchy_v1.shares.de"),
        _share("BHP", "BHP Group Ltd", 45.0, currency="AUD", hours=AU_SHARES, node="hierarchy_v1.shares.au"),
        _share("CBA", "Commonwealth Bank of Australia", 120.0, currency="AUD", hours=AU_SHARES,
               node="hierarchy_v1.shares.au"),
    ]
    currencies = [
        _fx("EURUSD", 1.08, 5, 0.00006),
        _fx("GBPUSD", 1.27, 5, 0.00009),
        _fx("USDJPY", 150.0, 3, 0.007),
        _fx("AUDUSD", 0.66, 5, 0.00007),
        _fx("USDCHF", 0.88, 5, 0.00012),
        _fx("USDCAD", 1.36, 5, 0.00014),
        _fx("NZDUSD", 0.60, 5, 0.00012),
        _fx("EURGBP", 0.86, 5, 0.00012),
    ]
    indices = [
        _index("US100", "US Tech 100", 18_000.0, "USD", US_FUTURES, 1.8),
        _index("US500", "US 500", 5_000.0, "USD", US_FUTURES, 0.6),
        _index("US30", "US Wall Street 30", 39_000.0, "USD", US_FUTURES, 2.4),
        _index("DE40", "Germany 40", 18_000.0, "EUR", EU_INDEX, 1.4),
        _index("UK100", "UK 100", 8_000.0, "GBP", UK_INDEX, 1.0),
        _index("J225", "Japan 225", 38_000.0, "JPY", ASIA_INDEX, 10.0),
        _index("AU200", "Australia 200", 7_700.0, "AUD", AU_INDEX, 1.0),
    ]
    commodities = [
        Instrument("GOLD", "GOLD", "Gold", "COMMODITIES", "USD", 2_300.0, 0.3, 2, US_FUTURES,
                   "hierarchy_v1.commodities", min_size=0.01, size_increment=0.01, max_size=1_000,
                   daily_vol=0.009, overnight_long=-0.0205, overnight_short=-0.0051, min_stop_pct=0.1),
        Instrument("SILVER", "SILVER", "Silver", "COMMODITIES", "USD", 27.0, 0.02, 3, US_FUTURES,
                   "hierarchy_v1.commodities", min_size=1, size_increment=1, max_size=50_000,
                   daily_vol=0.017, min_stop_pct=0.2),
        Instrument("OIL_CRUDE", "OIL_CRUDE", "US Crude Oil Spot", "COMMODITIES", "USD", 78.0, 0.03, 2,
                   US_FUTURES, "hierarchy_v1.commodities", min_size=1, size_increment=1, max_size=10_000,
                   daily_vol=0.02, min_stop_pct=0.2),
        Instrument("NATURALGAS", "NATURALGAS", "Natural Gas", "COMMODITIES", "USD", 2.5, 0.004, 3,
                   US_FUTURES, "hierarchy_v1.commodities", min_size=10, size_increment=10,
                   max_size=1_000_000, daily_vol=0.035, min_stop_pct=0.5),
    ]
    crypto = [
        _crypto("BTCUSD", "Bitcoin/USD", 60_000.0, 2, 60.0, 0.001),
        _crypto("ETHUSD", "Ethereum/USD", 3_000.0, 2, 3.0, 0.01),
        _crypto("LTCUSD", "Litecoin/USD", 80.0, 2, 0.3, 0.1),
        _crypto("XRPUSD", "Ripple/USD", 0.55, 5, 0.003, 10),
    ]
    return shares + currencies + indices + commodities + crypto


#: Category tree for GET /marketnavigation: (id, name, parent id or None).
NAVIGATION: list[tuple[str, str, str | None]] = [
    ("hierarchy_v1.shares", "Shares", None),
    ("hierarchy_v1.shares.us", "US shares", "hierarchy_v1.shares"),
    ("hierarchy_v1.shares.de", "German shares", "hierarchy_v1.shares"),
    ("hierarchy_v1.shares.au", "Australian shares", "hierarchy_v1.shares"),
    ("hierarchy_v1.currencies", "Forex", None),
    ("hierarchy_v1.currencies.majors", "Majors", "hierarchy_v1.currencies"),
    ("hierarchy_v1.indices", "Indices", None),
    ("hierarchy_v1.commodities", "Commodities", None),
    ("hierarchy_v1.crypto", "Cryptocurrencies", None),
]


@dataclass
class Catalogue:
    """Lookup of instruments by epic, in listing order."""

    instruments: list[Instrument] = field(default_factory=default_instruments)

    def __post_init__(self) -> None:
        self.by_epic = {inst.epic: inst for inst in self.instruments}

    def get(self, epic: str) -> Instrument | None:
        return self.by_epic.get(epic)

    def search(self, term: str) -> list[Instrument]:
        needle = term.strip().lower()
        return [
            inst
            for inst in self.instruments
            if needle in inst.epic.lower() or needle in inst.name.lower() or needle in inst.symbol.lower()
        ]

    def children(self, node_id: str | None) -> list[tuple[str, str]]:
        return [(nid, name) for nid, name, parent in NAVIGATION if parent == node_id]

    def node_name(self, node_id: str) -> str | None:
        for nid, name, _ in NAVIGATION:
            if nid == node_id:
                return name
        return None

    def in_node(self, node_id: str) -> list[Instrument]:
        return [inst for inst in self.instruments if inst.node == node_id]
