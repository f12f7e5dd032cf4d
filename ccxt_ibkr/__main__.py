"""``python -m ccxt_ibkr`` / ``ccxt-ibkr``: the JSON command line for Interactive Brokers.

The commands, output contract and exit codes are the shared ones (:mod:`normalization.runtime.cli`);
this module adds only what is IB's: the connection flags, how they combine with the ``IB_*``
environment variables, and ``sim`` (the fake TWS, :mod:`ccxt_ibkr.sim`).

Flags and environment are one configuration: each flag is written over its variable (``--port`` over
``IB_PORT``, ``--live`` sets ``IB_PAPER=0``) and the result goes through the factory's own
:func:`~normalization.runtime.factory.ib_config_from_env`, so the CLI validates exactly as a strategy
runner does (a live port without ``--live`` fails at start, naming the flag). Imports of the adapter
are deferred to the command that needs it, so ``--help`` works even where ib_async is missing.

    ccxt-ibkr health --port 7497
    ccxt-ibkr ohlcv AAPL/USD -t 1h --since 2024-01-01 --until 2024-02-01 --cache ~/.cache/bars --format csv
    ccxt-ibkr place AAPL/USD buy 10 --type limit --price 187.5 --dry-run
    ccxt-ibkr sim --port 7497 --base-currency AUD
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import sys
from collections.abc import Iterator
from typing import Any

from normalization.runtime.cli import config_from_args, run_cli, simulator_runner
from normalization.runtime.factory import ConfigError, ib_config_from_env

PROG = "ccxt-ibkr"

#: flag destination -> (environment variable, how the flag is spelled in messages)
_FLAG_ENV = {
    "host": ("IB_HOST", "--host"),
    "port": ("IB_PORT", "--port"),
    "client_id": ("IB_CLIENT_ID", "--client-id"),
    "account": ("IB_ACCOUNT_ID", "--account"),
    "base_currency": ("IB_BASE_CURRENCY", "--base-currency"),
    "exchange_venue": ("IB_EXCHANGE", "--exchange"),
}


def add_connection_args(group: Any) -> None:
    """IB's connection flags; each defaults to its ``IB_*`` variable, then to the adapter's default."""
    group.add_argument("--host", help="TWS / IB Gateway host (IB_HOST; default 127.0.0.1)")
    group.add_argument("--port", help="API port (IB_PORT; 7497 paper TWS, 4002 paper Gateway)")
    group.add_argument("--client-id", help="API client id (IB_CLIENT_ID; default 1)")
    group.add_argument("--account", help="account id, e.g. DU1234567 (IB_ACCOUNT_ID)")
    group.add_argument("--base-currency", help="account base currency for equity figures (IB_BASE_CURRENCY)")
    group.add_argument("--exchange", dest="exchange_venue", help="default routing exchange (IB_EXCHANGE; SMART)")


def _overlay(args: argparse.Namespace) -> dict[str, str]:
    env = {name: str(getattr(args, dest)) for dest, (name, _) in _FLAG_ENV.items() if getattr(args, dest, None)}
    if getattr(args, "live", False):
        env["IB_PAPER"] = "0"
    return env


def _with_flag_names(message: str, args: argparse.Namespace) -> str:
    """Name the flag the user typed, not only the variable the factory checked:
    ``IB_PORT=4001 is a live port`` becomes ``--port 4001 (IB_PORT) is a live port``."""
    for dest, (name, flag) in _FLAG_ENV.items():
        if getattr(args, dest, None):
            message = re.sub(rf"\b{name}=([^\s,;]+)", rf"{flag} \1 ({name})", message)
    if getattr(args, "live", False):
        message = message.replace("IB_PAPER=0", "--live (IB_PAPER=0)")
    return message


@contextlib.contextmanager
def _quiet_library_logs(argv: list[str]) -> Iterator[None]:
    """ib_async logs connection failures to stderr; the CLI reports them as its JSON error instead,
    so stderr stays machine-readable. ``--debug`` keeps the library's log. The loggers are restored
    afterwards, so calling :func:`main` in-process (tests, notebooks) leaves logging as it was."""
    if "--debug" in argv:
        yield
        return
    sink = logging.NullHandler()  # a handler, so logging's last-resort stderr printer stays silent
    loggers = [logging.getLogger(name) for name in ("ib_async", "ib_insync")]
    saved = [(logger, logger.propagate) for logger in loggers]
    for logger in loggers:
        logger.addHandler(sink)
        logger.propagate = False
    try:
        yield
    finally:
        for logger, propagate in saved:
            logger.removeHandler(sink)
            logger.propagate = propagate


def build_config(args: argparse.Namespace, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """The ccxt config for ``args``: ``IB_*`` environment, overridden by the flags, validated."""
    env = dict(os.environ if environ is None else environ)
    env.update(_overlay(args))
    try:
        base = ib_config_from_env(env)
    except ConfigError as exc:
        raise ConfigError(_with_flag_names(str(exc), args)) from None
    config = config_from_args(args, base)
    options = config["options"]
    # IB has no market listing: the adapter loads its configured universe and resolves other symbols
    # on first use. The shared commands look markets up after load_markets, so the symbols a command
    # names join the universe.
    named = [getattr(args, "symbol", None), *(getattr(args, "symbols", None) or [])]
    named = [s for s in named if isinstance(s, str) and s]
    if named:
        options["symbols"] = list(dict.fromkeys([*options.get("symbols", []), *named]))
    return config


def build_exchange(args: argparse.Namespace) -> Any:
    """The async adapter (run on the CLI's own loop: no extra thread for a one-shot command)."""
    try:
        from .pro import IBTraderPro as IBTrader  # the async adapter with ccxt.pro's watch_* (stream)
    except ImportError as exc:  # e.g. ib_async not installed
        raise ConfigError(f"{PROG}: the IB adapter cannot be loaded ({exc}); pip install ib_async") from exc
    return IBTrader(build_config(args))


def run_simulator(argv: list[str]) -> int:
    """``ccxt-ibkr sim ...`` = ``python -m ccxt_ibkr.sim ...``."""
    from .sim.__main__ import main as sim_main

    return simulator_runner(sim_main)(argv)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; returns the exit code (0 ok, 2 usage, 3 exchange, 4 network)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    quiet = _quiet_library_logs(argv) if argv[:1] != ["sim"] else contextlib.nullcontext()
    with quiet:
        return run_cli(
            argv,
            prog=PROG,
            build_exchange=build_exchange,
            run_simulator=run_simulator,
            add_connection_args=add_connection_args,
            description="Interactive Brokers (TWS / IB Gateway) from the command line; one JSON document on stdout.",
        )


if __name__ == "__main__":
    sys.exit(main())
