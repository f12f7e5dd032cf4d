"""``<broker-cli> journal list | show | export | purge``: the order journal read from the command line.

Why: after an incident the operator's first question is "what did the bot send, and what became
of it", and the journal is where that is written, before and after every send. These commands
open it directly -- no broker connection -- with the same options the adapter uses
(``--config`` / ``options['journal']`` / ``$CCXT_BROKERS_JOURNAL`` / the per-user default file).

Which account: the adapter scopes the journal by the broker's account id (known once connected).
``--journal-account`` names it; otherwise the account option (IB ``--account``) is used, and failing
that the one account the journal holds (several: the command lists them and asks).
"""

from __future__ import annotations

import argparse
import glob
import os
from pathlib import Path
from typing import Any

from .journal import (
    STATES,
    USE_DEFAULT,
    OrderJournal,
    default_journal_path,
    open_journal,
    sync_option,
)
from .journal_views import FILL_COLUMNS, ORDER_COLUMNS, fill_record, order_record, to_csv, to_json

__all__ = ["add_journal_parser", "open_cli_journal"]


def add_journal_parser(add: Any, usage_error: type[Exception]) -> None:
    """Register ``journal`` and its actions; ``add(name, handler, help)`` is the CLI's subcommand maker."""
    p = add("journal", _cmd_journal, "read the order journal (no connection): list, show, export, purge")
    p.add_argument("action", choices=("list", "show", "export", "purge"))
    p.add_argument("id", nargs="?", metavar="ID", help="show: clientOrderId, or the broker's order id")
    p.add_argument("--journal-account", help="the journal's account scope (default: the only one it holds)")
    p.add_argument("--state", choices=sorted(STATES), action="append", help="list/export: only these states")
    p.add_argument("--symbol-filter", dest="journal_symbol", metavar="SYMBOL", help="list/export: one symbol")
    p.add_argument("--limit", type=int, help="list: the most recent N orders")
    p.add_argument("--format", choices=("json", "csv"), default="json", help="export: json (default) or csv")
    p.add_argument("--fills", action="store_true", help="export: the fills instead of the orders")
    p.add_argument("--before", help="purge: terminal orders last updated before this time (ISO 8601, ms, -30d)")
    p.set_defaults(usage_error=usage_error)


def _configured_account(exchange: Any, args: argparse.Namespace) -> str | None:
    options = getattr(exchange, "options", {}) or {}
    return getattr(args, "journal_account", None) or options.get("account") or options.get("accountId")


def open_cli_journal(exchange: Any, args: argparse.Namespace) -> OrderJournal:
    """The journal the adapter would use, opened without connecting (see the module docstring)."""
    options = getattr(exchange, "options", {}) or {}
    option = options.get("journal", USE_DEFAULT)
    account = _configured_account(exchange, args)
    sync = sync_option(exchange.id, options)
    per_user_default = (option is USE_DEFAULT or option is True) and not os.environ.get("CCXT_BROKERS_JOURNAL")
    if per_user_default and account is None:
        sample = default_journal_path(exchange.id, "ACCOUNT")  # the per-account file name, any account
        pattern = str(sample.with_name(sample.name.replace("ACCOUNT", "*")))
        files = sorted(glob.glob(pattern))
        if len(files) > 1:
            names = ", ".join(Path(f).stem.split("-", 2)[-1] for f in files)
            raise args.usage_error(f"several journals for {exchange.id} ({names}): name one with --journal-account")
        if files:
            option = files[0]
    journal = open_journal(option, exchange=exchange.id, account=account or "default", sync=sync)
    if account is None:
        held = journal.accounts()
        if len(held) > 1:
            raise args.usage_error(f"the journal holds several accounts ({', '.join(held)}): "
                                   "name one with --journal-account")
        if held and held[0] != journal.account:
            return journal.scoped(held[0])
    return journal


def _orders(journal: OrderJournal, args: argparse.Namespace) -> list[dict[str, Any]]:
    states = frozenset(args.state) if args.state else None
    rows = [order_record(o) for o in journal.orders(states)]
    if args.journal_symbol:
        rows = [r for r in rows if r["symbol"] == args.journal_symbol]
    return rows


def _cmd_journal(exchange: Any, args: argparse.Namespace, call: Any) -> Any:
    from .cli import _Text, parse_time  # the command line's own helpers (imported late: cli imports us)

    journal = open_cli_journal(exchange, args)
    where = {"exchange": journal.exchange, "account": journal.account, "journal": str(journal.path or ":memory:")}
    try:
        if args.action == "list":
            rows = _orders(journal, args)
            if args.limit is not None:
                rows = rows[-args.limit:]
            return {**where, "count": len(rows), "orders": rows}
        if args.action == "show":
            if not args.id:
                raise args.usage_error("journal show needs the order's ID (clientOrderId or broker id)")
            row = journal.get(args.id) or journal.find_by(order_id=args.id, perm_id=args.id, deal_reference=args.id,
                                                          deal_id=args.id)
            if row is None:
                raise args.usage_error(f"{args.id!r} is not in the journal ({where['journal']}, account "
                                       f"{journal.account})")
            return {**where, "order": order_record(row),
                    "history": [vars(h) for h in journal.history(row.client_order_id)],
                    "fills": [fill_record(f) for f in journal.fills(row.client_order_id)]}
        if args.action == "export":
            rows = [fill_record(f) for f in journal.fills()] if args.fills else _orders(journal, args)
            if args.format == "csv":
                return _Text(to_csv(rows, FILL_COLUMNS if args.fills else ORDER_COLUMNS))
            return _Text(to_json(rows))
        if not args.before:
            raise args.usage_error("journal purge needs --before DATE (terminal orders older than it are deleted)")
        before = parse_time(args.before)
        return {**where, "purged": journal.purge(before), "before": before}
    finally:
        journal.close()
