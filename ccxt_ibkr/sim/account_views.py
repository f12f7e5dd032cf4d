"""Account values, account-summary tags and portfolio rows, as TWS reports them.

Pure views over the ledger and a mark-price function: the same numbers feed
updateAccountValue, accountUpdateMulti, accountSummary and updatePortfolio, so a client
sees one consistent account whichever request it used.
"""

from __future__ import annotations

from collections.abc import Callable

from . import messages as M
from .catalogue import Instrument
from .ledger import Ledger

Mark = Callable[[Instrument], float]

SUMMARY_TAGS = [
    "AccountType", "NetLiquidation", "TotalCashValue", "SettledCash", "AccruedCash", "BuyingPower",
    "EquityWithLoanValue", "PreviousDayEquityWithLoanValue", "GrossPositionValue", "RegTEquity", "RegTMargin",
    "SMA", "InitMarginReq", "MaintMarginReq", "AvailableFunds", "ExcessLiquidity", "Cushion",
    "FullInitMarginReq", "FullMaintMarginReq", "FullAvailableFunds", "FullExcessLiquidity",
    "LookAheadNextChange", "LookAheadInitMarginReq", "LookAheadMaintMarginReq", "LookAheadAvailableFunds",
    "LookAheadExcessLiquidity", "HighestSeverity", "DayTradesRemaining", "Leverage",
]


def account_values(ledger: Ledger, mark: Mark) -> list[tuple[str, str, str]]:
    """(key, value, currency) rows as updateAccountValue / accountUpdateMulti send them."""
    base = ledger.base_currency
    summary = ledger.summary(mark)
    rows: list[tuple[str, str, str]] = [
        ("AccountCode", ledger.account, ""),
        ("AccountType", "INDIVIDUAL", ""),
        ("AccountReady", "true", ""),
        ("Currency", base, base),
        ("Currency", "BASE", "BASE"),
    ]
    for key, value in summary.items():
        rows.append((key, f"{value:.2f}", base))
    per_ccy = ledger.currency_values(mark)
    for ccy, values in per_ccy.items():
        for key, value in values.items():
            text = f"{value:.6f}" if key == "ExchangeRate" else f"{value:.2f}"
            rows.append((key, text, ccy))
    totals = {"CashBalance": 0.0, "TotalCashBalance": 0.0, "NetLiquidationByCurrency": 0.0,
              "StockMarketValue": 0.0, "FuturesPNL": 0.0, "UnrealizedPnL": 0.0, "RealizedPnL": 0.0}
    for values in per_ccy.values():
        rate = values["ExchangeRate"]
        for key in totals:
            totals[key] += values[key] * rate
    for key, value in totals.items():
        rows.append((key, f"{value:.2f}", "BASE"))
    rows.append(("ExchangeRate", "1.00", "BASE"))
    return rows

def summary_values(ledger: Ledger, mark: Mark, tags: list[str]) -> list[tuple[str, str, str]]:
    """accountSummary rows for the requested tags ("AllTags", "$LEDGER", "$LEDGER:ALL" understood)."""
    base = ledger.base_currency
    summary = ledger.summary(mark)
    wanted = set(tags)
    if "AllTags" in wanted or not wanted:
        wanted |= set(SUMMARY_TAGS)
    rows: list[tuple[str, str, str]] = []
    for tag in SUMMARY_TAGS:
        if tag not in wanted:
            continue
        if tag == "AccountType":
            rows.append((tag, "INDIVIDUAL", ""))
        elif tag in summary:
            rows.append((tag, f"{summary[tag]:.2f}", base))
        elif tag == "Leverage":
            net = summary["NetLiquidation"]
            rows.append((tag, f"{summary['GrossPositionValue'] / net if net else 0:.2f}", ""))
        elif tag == "DayTradesRemaining":
            rows.append((tag, "-1", ""))
        elif tag in {"RegTEquity", "SMA", "PreviousDayEquityWithLoanValue"}:
            rows.append((tag, f"{summary['NetLiquidation']:.2f}", base))
        elif tag in {"RegTMargin"}:
            rows.append((tag, f"{summary['InitMarginReq']:.2f}", base))
        elif tag.startswith("LookAhead"):
            key = tag.replace("LookAhead", "")
            rows.append((tag, f"{summary.get(key, 0.0):.2f}", base))
        elif tag == "HighestSeverity":
            rows.append((tag, "0", ""))
    ledger_tags = [t for t in wanted if t.startswith("$LEDGER")]
    if ledger_tags:
        per_ccy = ledger.currency_values(mark)
        all_ccy = any(t in {"$LEDGER:ALL"} for t in ledger_tags)
        for ccy, values in per_ccy.items():
            if not all_ccy and f"$LEDGER:{ccy}" not in ledger_tags and ccy != base:
                continue
            for key in ("CashBalance", "TotalCashBalance", "ExchangeRate", "NetLiquidationByCurrency",
                        "StockMarketValue", "UnrealizedPnL", "RealizedPnL", "FuturesPNL"):
                rows.append((key, f"{values[key]:.6f}" if key == "ExchangeRate" else f"{values[key]:.2f}", ccy))
    return rows

def portfolio_rows(
    ledger: Ledger, mark: Mark, version: int, con_ids: set[int] | None = None
) -> list[list[object]]:
    """updatePortfolio messages; ``con_ids`` limits them to changed positions (closed ones too)."""
    rows = []
    with ledger.lock:
        positions = list(ledger.positions.values())
    for pos in positions:
        if con_ids is not None and pos.instrument.con_id not in con_ids:
            continue
        if con_ids is None and not pos.qty:
            continue
        price = mark(pos.instrument)
        rows.append(
            M.portfolio(
                ledger.account, pos.instrument, pos.qty, price, ledger.market_value(pos, price),
                pos.avg_cost, ledger.unrealized(pos, price) if pos.qty else 0.0, pos.realized, version,
            )
        )
    return rows
