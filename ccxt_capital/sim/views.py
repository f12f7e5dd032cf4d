"""JSON shapes of the API, built from the books: one function per kind of object.

Kept apart from the dealing rules so that the wire format (field names, date formats, which
fields appear) can be checked and changed in one place.
"""

from __future__ import annotations

from typing import Any

from .account import Account
from .catalogue import LEVERAGES, SWAP_SECOND_OF_DAY, Instrument
from .dealing import Dealer
from .models import Activity, Position, WorkingOrder
from .timefmt import fmt


def _pct(value: float) -> float:
    return round(value, 2)


def market_summary(dealer: Dealer, inst: Instrument, ts: float) -> dict[str, Any]:
    """The ``market`` object of /markets, /positions and /workingorders."""
    quote = dealer.feed.quote(inst.epic, ts)
    high, low, previous = dealer.feed.day_stats(inst.epic, ts)
    bid_high, _ = dealer.feed.side_prices(inst, high)
    bid_low, _ = dealer.feed.side_prices(inst, low)
    change = round(quote.mid - previous, inst.decimals)
    return {
        "instrumentName": inst.name,
        "expiry": "-",
        "marketStatus": "TRADEABLE" if inst.is_open(ts) else "CLOSED",
        "epic": inst.epic,
        "symbol": inst.symbol,
        "instrumentType": inst.type,
        "lotSize": inst.lot_size,
        "high": bid_high,
        "low": bid_low,
        "percentageChange": _pct(100 * (quote.mid - previous) / previous) if previous else 0.0,
        "netChange": change,
        "bid": quote.bid,
        "offer": quote.offer,
        "updateTime": fmt(ts, dealer.tz_offset, millis=True),
        "updateTimeUTC": fmt(ts, millis=True),
        "delayTime": 0,
        "streamingPricesAvailable": True,
        "scalingFactor": 1,
        "marketModes": ["REGULAR"],
    }


def market_details(dealer: Dealer, inst: Instrument, account: Account, ts: float) -> dict[str, Any]:
    """GET /markets/{epic}: instrument, dealingRules and snapshot."""
    summary = market_summary(dealer, inst, ts)
    leverage = account.leverages.get(inst.type, inst.max_leverage)
    next_swap = (int(ts) // 86_400) * 86_400 + SWAP_SECOND_OF_DAY
    if next_swap <= ts:
        next_swap += 86_400
    return {
        "instrument": {
            "epic": inst.epic,
            "symbol": inst.symbol,
            "expiry": "-",
            "name": inst.name,
            "lotSize": inst.lot_size,
            "type": inst.type,
            "guaranteedStopAllowed": True,
            "controlledRiskAllowed": True,  # the official examples' name for it
            "streamingPricesAvailable": True,
            "currency": inst.currency,
            "marginFactor": round(100.0 / leverage, 4),
            "marginFactorUnit": "PERCENTAGE",
            "openingHours": inst.utc_hours(ts),
            "country": "",
            "overnightFee": {
                "longRate": inst.overnight_long,
                "shortRate": inst.overnight_short,
                "swapChargeTimestamp": int(next_swap * 1000),
                "swapChargeInterval": 1440,
            },
        },
        "dealingRules": {
            "minStepDistance": {"unit": "POINTS", "value": inst.tick},
            "minDealSize": {"unit": "POINTS", "value": inst.min_size},
            "maxDealSize": {"unit": "POINTS", "value": inst.max_size},
            "minSizeIncrement": {"unit": "POINTS", "value": inst.size_increment},
            "minGuaranteedStopDistance": {"unit": "PERCENTAGE", "value": inst.guaranteed_stop_pct},
            "minStopOrProfitDistance": {"unit": "PERCENTAGE", "value": inst.min_stop_pct},
            "maxStopOrProfitDistance": {"unit": "PERCENTAGE", "value": inst.max_stop_pct},
            # The same rules under the names of the official examples (older API wording).
            "minControlledRiskStopDistance": {"unit": "PERCENTAGE", "value": inst.guaranteed_stop_pct},
            "minNormalStopOrLimitDistance": {"unit": "PERCENTAGE", "value": inst.min_stop_pct},
            "maxStopOrLimitDistance": {"unit": "PERCENTAGE", "value": inst.max_stop_pct},
            "marketOrderPreference": "AVAILABLE_DEFAULT_OFF",
            "trailingStopsPreference": "AVAILABLE",
        },
        "snapshot": {
            "marketStatus": summary["marketStatus"],
            "netChange": summary["netChange"],
            "percentageChange": summary["percentageChange"],
            "updateTime": summary["updateTime"],
            "delayTime": 0,
            "bid": summary["bid"],
            "offer": summary["offer"],
            "high": summary["high"],
            "low": summary["low"],
            "decimalPlacesFactor": inst.decimals,
            "scalingFactor": 1,
            "marketModes": ["REGULAR"],
        },
    }


def position(dealer: Dealer, pos: Position, ts: float) -> dict[str, Any]:
    inst = dealer.catalogue.by_epic[pos.epic]
    account = dealer.accounts[pos.account_id]
    body: dict[str, Any] = {
        "contractSize": inst.lot_size,
        "createdDate": fmt(pos.created, dealer.tz_offset, millis=True),
        "createdDateUTC": fmt(pos.created, millis=True),
        "dealId": pos.deal_id,
        "dealReference": pos.deal_reference,
        "workingOrderId": pos.working_order_id,
        "size": pos.size,
        "leverage": account.leverages.get(inst.type, inst.max_leverage),
        "upl": round(pos_upl_account(dealer, pos, ts), 2),
        "direction": pos.direction,
        "level": pos.level,
        "currency": inst.currency,
        "guaranteedStop": pos.guaranteed,
        "trailingStop": pos.trailing,
    }
    if pos.stop_level is not None:
        body["stopLevel"] = pos.stop_level
    if pos.trailing and pos.trailing_distance is not None:
        body["trailingStep"] = inst.tick
        body["trailingStopDistance"] = pos.trailing_distance
    if pos.profit_level is not None:
        body["profitLevel"] = pos.profit_level
    return {"position": body, "market": market_summary(dealer, inst, ts)}


def pos_upl_account(dealer: Dealer, pos: Position, ts: float) -> float:
    inst = dealer.catalogue.by_epic[pos.epic]
    return dealer.to_account(dealer.upl(pos, ts), inst.currency, dealer.accounts[pos.account_id], ts)


def working_order(dealer: Dealer, order: WorkingOrder, ts: float) -> dict[str, Any]:
    inst = dealer.catalogue.by_epic[order.epic]
    data: dict[str, Any] = {
        "dealId": order.deal_id,
        "direction": order.direction,
        "epic": order.epic,
        "orderSize": order.size,
        "orderLevel": order.level,
        "timeInForce": "GOOD_TILL_DATE" if order.good_till is not None else "GOOD_TILL_CANCELLED",
        "createdDate": fmt(order.created, dealer.tz_offset, millis=True),
        "createdDateUTC": fmt(order.created, millis=True),
        "guaranteedStop": order.guaranteed,
        "trailingStop": order.trailing,
        "orderType": order.order_type,
        "currencyCode": inst.currency,
    }
    if order.good_till is not None:
        data["goodTillDate"] = fmt(order.good_till, dealer.tz_offset)
        data["goodTillDateUTC"] = fmt(order.good_till)
    if order.stop_distance is not None:
        data["stopDistance"] = order.stop_distance
    if order.profit_distance is not None:
        data["profitDistance"] = order.profit_distance
    return {"workingOrderData": data, "marketData": market_summary(dealer, inst, ts)}


def account_entry(dealer: Dealer, account: Account, ts: float) -> dict[str, Any]:
    values = dealer.account_values(account, ts)
    return {
        "accountId": account.account_id,
        "accountName": account.name,
        "status": "ENABLED",
        "accountType": "CFD",
        "preferred": account.preferred,
        "balance": {k: values[k] for k in ("balance", "deposit", "profitLoss", "available")},
        "currency": account.currency,
        "symbol": account.symbol,
    }


def preferences(account: Account) -> dict[str, Any]:
    return {
        "hedgingMode": account.hedging,
        "leverages": {
            kind: {"current": account.leverages[kind], "available": list(choices)}
            for kind, choices in LEVERAGES.items()
        },
    }


def activity(dealer: Dealer, entry: Activity, detailed: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "date": fmt(entry.ts, dealer.tz_offset, millis=True),
        "dateUTC": fmt(entry.ts, millis=True),
        "epic": entry.epic,
        "dealId": entry.deal_id,
        "source": entry.source,
        "type": entry.type,
        "status": entry.status,
    }
    if detailed:
        body["details"] = entry.details
    return body


def transaction(dealer: Dealer, tx: Any) -> dict[str, Any]:
    return {
        "date": fmt(tx.ts, dealer.tz_offset, millis=True),
        "dateUtc": fmt(tx.ts, millis=True),
        "instrumentName": tx.instrument_name,
        "transactionType": tx.type,
        "note": tx.note,
        "reference": tx.reference,
        "size": f"{tx.amount:.2f}",
        "currency": tx.currency,
        "status": "PROCESSED",
    }
