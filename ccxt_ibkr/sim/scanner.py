"""Market scanner: the parameters document and the ranking behind reqScannerSubscription.

TWS's real parameters XML is megabytes; this one is small but has the same shape
(``ScanParameterResponse`` with instrument, location and scan-type lists), and every scan it
advertises is one ``scan_rows`` can compute from the simulator's own quotes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .catalogue import Instrument

if TYPE_CHECKING:
    from .server import IBSimulator

#: scanCode -> (display name, sort key, descending)
SCAN_TYPES = {
    "TOP_PERC_GAIN": "Top % Gainers",
    "TOP_PERC_LOSE": "Top % Losers",
    "MOST_ACTIVE": "Most Active",
    "HOT_BY_VOLUME": "Hot Contracts by Volume",
}
#: locationCode -> primary exchanges it covers
LOCATIONS = {
    "STK.US.MAJOR": {"NASDAQ", "NYSE", "ARCA"},
    "STK.US": {"NASDAQ", "NYSE", "ARCA"},
    "STK.NASDAQ": {"NASDAQ"},
    "STK.NYSE": {"NYSE"},
    "STK.ARCA": {"ARCA"},
    "STK.AU.ASX": {"ASX"},
    "STK.EU.IBIS": {"IBIS"},
}


def _xml() -> str:
    scans = "".join(
        f"<ScanType><displayName>{name}</displayName><scanCode>{code}</scanCode>"
        f"<instruments>STK</instruments><absoluteColumns>false</absoluteColumns></ScanType>"
        for code, name in SCAN_TYPES.items()
    )
    locations = "".join(
        f"<Location><displayName>{code}</displayName><locationCode>{code}</locationCode>"
        f"<instruments>STK</instruments></Location>"
        for code in LOCATIONS
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        "<ScanParameterResponse>"
        "<InstrumentList varName=\"fullInstrumentList\"><Instrument><name>US Stocks</name><type>STK</type>"
        "<filters>PRICE,VOLUME</filters></Instrument></InstrumentList>"
        f"<LocationTree varName=\"locationTree\"><Location><displayName>Stocks</displayName>"
        f"<instruments>STK</instruments><LocationTree>{locations}</LocationTree></Location></LocationTree>"
        f"<ScanTypeList varName=\"scanTypeList\">{scans}</ScanTypeList>"
        "</ScanParameterResponse>"
    )


SCANNER_PARAMETERS_XML = _xml()


def scan_rows(
    sim: IBSimulator, instrument: str, location: str, code: str, limit: int
) -> list[tuple[int, Instrument, float]] | None:
    """(rank, instrument, value) best first, or None for a scan this venue does not offer."""
    venues = LOCATIONS.get(location.upper())
    if instrument.upper() != "STK" or venues is None or code.upper() not in SCAN_TYPES:
        return None
    code = code.upper()
    now = sim.clock.now()
    scored: list[tuple[float, Instrument]] = []
    for inst in sim.catalogue:
        if inst.sec_type != "STK" or inst.primary_exchange not in venues:
            continue
        quote = sim.market.quote(inst, now)
        change = (quote.last - quote.close) / quote.close if quote.close else 0.0
        if code == "TOP_PERC_GAIN":
            value = change
        elif code == "TOP_PERC_LOSE":
            value = -change
        else:
            value = quote.volume
        scored.append((value, inst))
    scored.sort(key=lambda item: (-item[0], item[1].con_id))
    return [(rank, inst, value) for rank, (value, inst) in enumerate(scored[:limit])]
