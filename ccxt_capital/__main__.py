"""``python -m ccxt_capital`` / ``ccxt-capital``: the JSON command line for Capital.com.

The commands, output contract and exit codes are the shared ones (:mod:`normalization.runtime.cli`);
this module adds only what is Capital.com's: the credential and host flags, how they combine with
the ``CAPITAL_*`` environment variables, and ``sim`` (the fake REST API, :mod:`ccxt_capital.sim`).

Flags are written over their variables (``--api-key`` over ``CAPITAL_API_KEY``, ``--live`` sets
``CAPITAL_DEMO=0``) and the result is validated by the factory's own
:func:`~normalization.runtime.factory.capital_config_from_env`, so a missing credential fails at start
naming both the flag and the variable. The API key and password are masked in every output, errors
included. The adapter is imported only when a command needs it, so ``--help`` always works.

    ccxt-capital health --base-url http://127.0.0.1:8100       # the simulator's default credentials
    ccxt-capital ohlcv EUR/USD -t 1d --since 2024-01-01 --cache --format csv
    ccxt-capital place AAPL/USD buy 1 --dry-run
    ccxt-capital sim --port 8100
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any

from normalization.runtime.cli import config_from_args, run_cli, simulator_runner
from normalization.runtime.factory import ConfigError, capital_config_from_env

PROG = "ccxt-capital"

#: flag destination -> (environment variable, flag spelling for messages)
_FLAG_ENV = {
    "api_key": ("CAPITAL_API_KEY", "--api-key"),
    "login": ("CAPITAL_LOGIN", "--login"),
    "password": ("CAPITAL_PASSWORD", "--password"),
}


def add_connection_args(group: Any) -> None:
    """Capital.com's credentials and host; each defaults to its ``CAPITAL_*`` variable."""
    group.add_argument("--api-key", help="X-CAP-API-KEY (CAPITAL_API_KEY); never printed")
    group.add_argument("--login", help="login e-mail / identifier (CAPITAL_LOGIN)")
    group.add_argument("--password", help="API key password (CAPITAL_PASSWORD); never printed")
    group.add_argument(
        "--base-url",
        help="API host, e.g. the simulator's http://127.0.0.1:8100 (default: Capital.com's demo host)",
    )
    group.add_argument("--account-id", help="trade this sub-account instead of the preferred one")


def _with_flag_names(message: str, args: argparse.Namespace) -> str:
    """``needs CAPITAL_PASSWORD`` becomes ``needs --password (CAPITAL_PASSWORD)``."""
    for _dest, (name, flag) in _FLAG_ENV.items():
        message = re.sub(rf"\b{name}\b", f"{flag} ({name})", message)
    if getattr(args, "live", False):
        message = message.replace("CAPITAL_DEMO=0", "--live (CAPITAL_DEMO=0)")
    return message.replace("ACTIVE_EXCHANGE=CAPITAL needs", f"{PROG} needs")


def build_config(args: argparse.Namespace, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """The ccxt config for ``args``: ``CAPITAL_*`` environment, overridden by the flags, validated."""
    env = dict(os.environ if environ is None else environ)
    env.update({name: str(getattr(args, dest)) for dest, (name, _) in _FLAG_ENV.items() if getattr(args, dest, None)})
    if getattr(args, "live", False):
        env["CAPITAL_DEMO"] = "0"
    try:
        base = capital_config_from_env(env)
    except ConfigError as exc:
        raise ConfigError(_with_flag_names(str(exc), args)) from None
    config = config_from_args(args, base)
    options = config["options"]
    if getattr(args, "base_url", None):
        options["baseUrl"] = args.base_url
    if getattr(args, "account_id", None):
        options["accountId"] = args.account_id
    return config


def build_exchange(args: argparse.Namespace) -> Any:
    """The async adapter, run on the CLI's own loop (no extra thread for a one-shot command)."""
    try:
        from .pro import CapitalTraderPro as CapitalTrader  # the async adapter with ccxt.pro's watch_* (stream)
    except ImportError as exc:  # e.g. httpx not installed
        raise ConfigError(f"{PROG}: the Capital.com adapter cannot be loaded ({exc}); pip install httpx") from exc
    return CapitalTrader(build_config(args))


def run_simulator(argv: list[str]) -> int:
    """``ccxt-capital sim ...`` = ``python -m ccxt_capital.sim ...``."""
    from .sim.__main__ import main as sim_main

    return simulator_runner(sim_main)(argv)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; returns the exit code (0 ok, 2 usage, 3 exchange, 4 network)."""
    return run_cli(
        argv,
        prog=PROG,
        build_exchange=build_exchange,
        run_simulator=run_simulator,
        add_connection_args=add_connection_args,
        description="Capital.com (REST API v1) from the command line; one JSON document on stdout.",
    )


if __name__ == "__main__":
    sys.exit(main())
