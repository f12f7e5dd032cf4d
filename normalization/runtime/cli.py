"""JSON command line shared by ``python -m ccxt_ibkr`` and ``python -m ccxt_capital``.

Written once so both brokers answer the same commands the same way; each broker supplies only how
to build its exchange from the parsed flags (``build_exchange``), its own connection flags
(``add_connection_args``) and how to start its simulator (``run_simulator``).

Contract, which scripts and monitoring rely on:

- stdout carries exactly one JSON document (``ohlcv --format csv`` prints CSV instead);
- errors go to stderr as ``{"error": {"type", "message", "exitCode"}}`` with exit codes
  0 ok, 2 usage or configuration, 3 ccxt ``ExchangeError`` family (bad input, rejected, auth),
  4 ccxt ``NetworkError`` family (retry later), 1 anything else, 130 interrupted;
- secrets never appear: keys such as apiKey/secret/password/token/cst are masked anywhere in the
  output, and the values of the exchange's credentials are masked inside any text, error messages
  included;
- ``place --dry-run`` and ``validate`` never call ``create_order``; ``validate`` never connects (the
  order commands are :mod:`~normalization.runtime.cli_orders`, the journal's
  :mod:`~normalization.runtime.cli_journal`).

The exchange may be a sync ccxt class or an ``async_support`` one: awaitables are run on a private
event loop that lives for the duration of the command.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import dataclasses
import enum
import inspect
import io
import json
import math
import re
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import ccxt

from .cli_journal import add_journal_parser
from .cli_orders import add_order_parsers
from .factory import ConfigError
from .market_cache import save_markets

__all__ = [
    "simulator_runner",
    "EXIT_OK",
    "EXIT_ERROR",
    "EXIT_USAGE",
    "EXIT_EXCHANGE",
    "EXIT_NETWORK",
    "EXIT_INTERRUPTED",
    "UsageError",
    "run_cli",
    "build_parser",
    "config_from_args",
    "exit_code_for",
    "json_default",
    "redact",
    "parse_time",
]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_EXCHANGE = 3
EXIT_NETWORK = 4
EXIT_INTERRUPTED = 130

MASK = "***"
# Keys whose values are secrets wherever they appear (compared after dropping '-', '_' and case).
_SECRET_KEY_RE = re.compile(r"(apikey|secret|password|passphrase|token|privatekey|authorization|cookie)")
_SECRET_EXACT = {"cst", "xsecuritytoken"}
# "key: value" / "key=value" / '"key": "value"' inside free text, e.g. in an HTTP error body.
_SECRET_TEXT_RE = re.compile(
    r"""(?ix)
    (["']?(?:api[_-]?key|secret|password|passphrase|token|cst|x-security-token|authorization)["']?
    \s*[:=]\s*["']?)
    ([^\s"',;&}]+)
    """
)
# Credential attributes of a ccxt Exchange whose values must never be printed.
_CREDENTIAL_ATTRS = ("apiKey", "secret", "password", "token", "privateKey", "twofa")


class UsageError(Exception):
    """Bad command line; carries the usage line of the (sub)command that failed."""

    def __init__(self, message: str, usage: str = "") -> None:
        super().__init__(message)
        self.usage = usage


class _Exit(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing plain text and calling sys.exit."""

    def error(self, message: str) -> Any:  # noqa: D401 - argparse API
        raise UsageError(f"{self.prog}: {message}", self.format_usage().strip())

    def exit(self, status: int = 0, message: str | None = None) -> Any:
        if message:
            raise UsageError(message.strip(), self.format_usage().strip())
        raise _Exit(status)


@dataclasses.dataclass
class _Text:
    """A non-JSON result (CSV) to print verbatim."""

    text: str


# -- small parsers --------------------------------------------------------------------------------

_RELATIVE_RE = re.compile(r"^-(\d+(?:\.\d+)?)([smhdw])$")
_RELATIVE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(text: str, *, now: Callable[[], float] = time.time) -> int:
    """ms since epoch from ``1717200000000`` (ms), ISO 8601 (``2024-06-01``, ``2024-06-01T13:30Z``;
    naive means UTC), ``now`` or a relative ``-7d`` / ``-12h`` / ``-30m``."""
    value = text.strip()
    if re.fullmatch(r"\d+", value):
        return int(value)
    if value.lower() == "now":
        return int(now() * 1000)
    rel = _RELATIVE_RE.match(value)
    if rel:
        return int((now() - float(rel.group(1)) * _RELATIVE_UNITS[rel.group(2)]) * 1000)
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not a time: {text!r} (use ms, ISO 8601, 'now' or e.g. -7d)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return int(parsed.timestamp() * 1000)


parse_time.__name__ = "time"  # argparse names the type in "invalid time value"


def _positive_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(text)
    return value


_positive_float.__name__ = "positive number"


def _key_value(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise ValueError(text)
    key, raw = text.split("=", 1)
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


_key_value.__name__ = "KEY=VALUE"


# -- JSON and redaction ---------------------------------------------------------------------------


def json_default(obj: Any) -> Any:
    """``json.dumps(default=...)`` for what ccxt and broker objects carry besides plain JSON."""
    if isinstance(obj, Decimal):
        return float(obj) if obj.is_finite() else None
    if isinstance(obj, datetime):
        if obj.tzinfo is None:
            obj = obj.replace(tzinfo=timezone.utc)
        return obj.isoformat().replace("+00:00", "Z")
    if isinstance(obj, date):
        return obj.isoformat()
    if isinstance(obj, timedelta):
        return obj.total_seconds()
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    if isinstance(obj, Path):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    item = getattr(obj, "item", None)  # numpy scalars
    if callable(item):
        try:
            return item()
        except (TypeError, ValueError):
            pass
    return str(obj)


def _is_secret_key(key: Any) -> bool:
    if not isinstance(key, str):
        return False
    flat = key.replace("-", "").replace("_", "").lower()
    return flat in _SECRET_EXACT or bool(_SECRET_KEY_RE.search(flat))


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask known secret values and ``key=value`` style secrets inside free text."""
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return _SECRET_TEXT_RE.sub(lambda m: m.group(1) + MASK, text)


def redact(obj: Any, secrets: Iterable[str] = (), *, strip_info: bool = False) -> Any:
    """A JSON-safe copy of ``obj`` with secret keys masked, secret values masked inside strings,
    NaN/inf turned into null, and (optionally) ccxt's raw ``info`` payloads dropped."""
    secret_set = frozenset(s for s in secrets if s and len(s) >= 4)
    seen: set[int] = set()

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return redact_text(value, secret_set) if secret_set or "=" in value or ":" in value else value
        if isinstance(value, bool) or value is None or isinstance(value, int):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else None
        if isinstance(value, Decimal):
            return float(value) if value.is_finite() else None
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = dataclasses.asdict(value)
        if isinstance(value, Mapping):
            if id(value) in seen:
                return "<cycle>"
            seen.add(id(value))
            out = {}
            for k, v in value.items():
                if strip_info and k == "info":
                    continue
                out[str(k) if not isinstance(k, str) else k] = MASK if _is_secret_key(k) and v else walk(v)
            seen.discard(id(value))
            return out
        if isinstance(value, (list, tuple, set, frozenset)):
            return [walk(v) for v in value]
        return walk(json_default(value))

    return walk(obj)


def _secret_values(exchange: Any, args: argparse.Namespace | None) -> set[str]:
    """Credential values to mask in any text: the exchange's credentials, secret-looking options,
    and secret-looking command-line flags."""
    found: set[str] = set()

    def collect(mapping: Any, depth: int = 0) -> None:
        if not isinstance(mapping, Mapping) or depth > 3:
            return
        for k, v in mapping.items():
            if isinstance(v, str) and _is_secret_key(k):
                found.add(v)
            elif isinstance(v, Mapping):
                collect(v, depth + 1)

    if exchange is not None:
        for attr in _CREDENTIAL_ATTRS:
            value = getattr(exchange, attr, None)
            if isinstance(value, str):
                found.add(value)
        collect(getattr(exchange, "options", None))
        collect(getattr(exchange, "headers", None))
    if args is not None:
        collect(vars(args))
    return {s for s in found if s and len(s) >= 4}


# -- exit codes -----------------------------------------------------------------------------------


def exit_code_for(exc: BaseException) -> int:
    """Exit code for an exception (see the module docstring). ConfigError is a usage problem (2)
    even though it is a ccxt BadRequest, because the fix is in the caller's settings."""
    if isinstance(exc, (UsageError, ConfigError)):
        return EXIT_USAGE
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, ccxt.NetworkError):
        return EXIT_NETWORK
    if isinstance(exc, ccxt.ExchangeError):
        return EXIT_EXCHANGE
    return EXIT_ERROR


# -- parser ---------------------------------------------------------------------------------------


def _common_parent(add_connection_args: Callable[[Any], None] | None) -> _Parser:
    parent = _Parser(add_help=False)
    out = parent.add_argument_group("output")
    out.add_argument("--pretty", action="store_true", help="indent the JSON output")
    out.add_argument("--info", action="store_true", help="keep ccxt's raw 'info' payloads (dropped by default)")
    out.add_argument("--debug", action="store_true", help="add a (redacted) traceback to error output")
    conn = parent.add_argument_group("connection")
    conn.add_argument("--config", metavar="FILE", help="JSON file with a ccxt config dict (merged first)")
    conn.add_argument("--timeout", type=float, metavar="SECONDS", help="request timeout")
    conn.add_argument(
        "--live",
        action="store_true",
        help="trade the live account (also needs CCXT_BROKERS_ALLOW_LIVE=1); paper/demo by default",
    )
    conn.add_argument(
        "--symbols", dest="universe", help="comma-separated universe to load as markets (e.g. AAPL/USD,EUR/USD)"
    )
    conn.add_argument(
        "--cache",
        nargs="?",
        const=True,
        metavar="DIR",
        help="serve OHLCV through the on-disk bar cache (default dir, or DIR); only missing bars are requested",
    )
    if add_connection_args is not None:
        add_connection_args(conn)  # type: ignore[arg-type]
    return parent


def build_parser(
    prog: str,
    add_connection_args: Callable[[Any], None] | None = None,
    description: str | None = None,
) -> argparse.ArgumentParser:
    """The full parser; exposed so brokers can test their flags and docs can print the help."""
    parser = _Parser(
        prog=prog,
        description=description or "ccxt-style JSON command line. Output is one JSON document on stdout.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            f"  {prog} health\n"
            f"  {prog} ticker AAPL/USD EUR/USD\n"
            f"  {prog} ohlcv AAPL/USD -t 1h --since 2024-01-01 --until 2024-02-01 --format csv\n"
            f"  {prog} place AAPL/USD buy 10 --type limit --price 187.5 --dry-run\n"
            f"  {prog} <command> --help\n\n"
            "exit codes: 0 ok, 2 usage/config, 3 exchange error (rejected, bad input, auth),\n"
            "4 network error (retry later), 1 other. Errors are JSON on stderr."
        ),
    )
    parent = _common_parent(add_connection_args)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, handler: Callable[..., Any], help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[parent], help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        return p

    add("health", _cmd_health, "connect, load markets and report status and latency")
    p = add("markets", _cmd_markets, "list markets")
    p.add_argument("--search", help="case-insensitive substring of the symbol or id")
    p.add_argument("--type", dest="market_type", help="spot, swap, future, option ...")
    p = add("ticker", _cmd_ticker, "ticker for one or more symbols")
    p.add_argument("symbols", nargs="+", metavar="SYMBOL")
    p = add("ohlcv", _cmd_ohlcv, "OHLCV bars, paginated between --since and --until")
    p.add_argument("symbol", metavar="SYMBOL")
    p.add_argument("--timeframe", "-t", default="1h")
    p.add_argument("--since", type=parse_time, help="ms, ISO 8601, 'now' or relative like -7d")
    p.add_argument("--until", type=parse_time, help="inclusive end, same formats as --since")
    p.add_argument("--limit", type=int, help="maximum number of bars")
    p.add_argument("--format", choices=("json", "csv"), default="json")
    add("balance", _cmd_balance, "account balance")
    p = add("positions", _cmd_positions, "open positions")
    p.add_argument("symbols", nargs="*", metavar="SYMBOL")
    p = add("orders", _cmd_orders, "orders (open by default)")
    p.add_argument("--symbol")
    p.add_argument("--status", choices=("open", "closed", "all"), default="open")
    p.add_argument("--id", dest="order_id", help="fetch one order by id")
    p.add_argument("--since", type=parse_time)
    p.add_argument("--limit", type=int)
    p = add("trades", _cmd_trades, "my trades (fills)")
    p.add_argument("--symbol")
    p.add_argument("--since", type=parse_time)
    p.add_argument("--limit", type=int)
    add_order_parsers(add, _positive_float, _key_value, UsageError)
    add_journal_parser(add, UsageError)
    p = add("watch", _cmd_watch, "follow one order: a JSON line per change, exit 0 once it is done")
    p.add_argument("--id", dest="order_id", required=True, help="order id or clientOrderId")
    p.add_argument("--symbol")
    p.add_argument("--interval", type=_positive_float, default=1.0, help="seconds between looks (1)")
    p.add_argument("--max-wait", type=_positive_float, default=300.0,
                   help="seconds before giving up with exit code 4 (300)")
    p = add("stream", _cmd_stream, "stream ticker / ohlcv / orders / trades (fills) as JSON lines (ccxt.pro)")
    p.add_argument("kind", choices=("ticker", "ohlcv", "orders", "trades"))
    p.add_argument("symbols", nargs="*", metavar="SYMBOL")
    p.add_argument("--timeframe", "-t", default="1m")
    p.add_argument("--count", type=int, help="stop after this many lines (default: until interrupted)")
    p = add("cancel", _cmd_cancel, "cancel an order")
    p.add_argument("order_id", metavar="ID")
    p.add_argument("--symbol")
    sub.add_parser("sim", help="start the broker simulator (arguments after 'sim' go to it; try 'sim --help')")
    return parser


def config_from_args(args: argparse.Namespace, base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Helper for ``build_exchange``: ``base`` + ``--config`` file + the flags every broker shares
    (``--timeout``, ``--live``, ``--symbols``, ``--cache``; a flag wins over the file and the environment).

    Brokers then add their own flags into ``config["options"]``.
    """
    config: dict[str, Any] = json.loads(json.dumps(dict(base or {})))
    path = getattr(args, "config", None)
    if path:
        try:
            loaded = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"--config {path}: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"--config {path}: expected a JSON object")
        options = {**config.get("options", {}), **loaded.get("options", {})}
        config.update(loaded)
        config["options"] = options
    config.setdefault("options", {})
    if getattr(args, "timeout", None):
        config["timeout"] = int(args.timeout * 1000)
    if getattr(args, "live", False):
        config["options"]["live"] = True
    universe = [s.strip() for s in (getattr(args, "universe", None) or "").split(",") if s.strip()]
    if universe:
        config["options"]["symbols"] = universe
    if getattr(args, "cache", None) is not None:
        config["options"]["ohlcvCache"] = args.cache
    return config


# -- running --------------------------------------------------------------------------------------


class _Runner:
    """Calls exchange methods; runs coroutines (async_support exchanges) on one private loop.

    The loop is also made the thread's current loop while the command runs, as ``asyncio.run`` does:
    ib_insync (and eventkit) ask the policy for "the" loop (``get_event_loop_policy().get_event_loop()``),
    not for the running one, and would otherwise open the TWS socket on another loop."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None

    def __call__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        result = fn(*args, **kwargs)
        if inspect.isawaitable(result):
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                asyncio.set_event_loop(self._loop)
            return self._loop.run_until_complete(result)
        return result

    def close(self) -> None:
        if self._loop is not None:
            try:
                self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            finally:
                asyncio.set_event_loop(None)
                self._loop.close()


def simulator_runner(sim_main: Callable[[list[str]], Any]) -> Callable[[list[str]], int]:
    """``<broker-cli> sim ...`` = ``python -m <broker>.sim ...``, with argparse's exits as return codes."""

    def run(argv: list[str]) -> int:
        try:
            return int(sim_main(argv) or 0)
        except SystemExit as done:  # the simulator's argparse: --help (0) or a usage error (2)
            return done.code if isinstance(done.code, int) else (0 if done.code is None else 2)

    return run


def run_cli(
    argv: list[str] | None,
    *,
    prog: str,
    build_exchange: Callable[[argparse.Namespace], Any],
    run_simulator: Callable[[list[str]], int],
    add_connection_args: Callable[[Any], None] | None = None,
    description: str | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """Parse ``argv``, run one command, print one JSON document, return the exit code.

    ``add_connection_args(group)`` receives the "connection" argument group shared by every
    subcommand (call ``group.add_argument(...)``); ``build_exchange(args)`` gets the parsed
    namespace (see :func:`config_from_args`); ``run_simulator(argv)`` gets everything after ``sim``.

    Brokers wire it as ``def main(): raise SystemExit(run_cli(sys.argv[1:], prog="ccxt-ibkr", ...))``.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    out = sys.stdout if stdout is None else stdout
    err = sys.stderr if stderr is None else stderr
    if argv[:1] == ["sim"]:
        # Everything after 'sim' belongs to the simulator's own parser, --help included.
        return int(run_simulator(argv[1:]) or 0)
    parser = build_parser(prog, add_connection_args, description)
    try:
        with contextlib.redirect_stdout(out):  # --help goes to the caller's stdout
            args = parser.parse_args(argv)
        if not getattr(args, "command", None):
            raise UsageError(f"{prog}: a command is required", parser.format_usage().strip())
    except _Exit as done:  # --help / --version
        return done.status
    except UsageError as exc:
        _emit_error(err, exc, set(), debug=False)
        return EXIT_USAGE

    runner = _Runner()
    exchange: Any = None
    secrets = _secret_values(None, args)
    try:
        exchange = build_exchange(args)
        secrets |= _secret_values(exchange, args)
        args.emit_line = lambda doc: _emit_line(out, doc, secrets, args)
        result = args.handler(exchange, args, runner)
        _cache_markets(exchange, args)
        if isinstance(result, _Text):
            out.write(redact_text(result.text, secrets))
        else:
            document = redact(result, secrets, strip_info=not args.info)
            out.write(json.dumps(document, default=json_default, indent=2 if args.pretty else None, allow_nan=False))
            out.write("\n")
        out.flush()
        return EXIT_OK
    except (Exception, KeyboardInterrupt) as exc:
        if exchange is not None:
            secrets |= _secret_values(exchange, args)
        _emit_error(err, exc, secrets, debug=getattr(args, "debug", False))
        return exit_code_for(exc)
    finally:
        _close_quietly(exchange, runner)


def _cache_markets(exchange: Any, args: argparse.Namespace) -> None:
    """Keep the markets a connected command loaded, for ``validate`` without a connection (best effort)."""
    markets = getattr(exchange, "markets", None)
    if getattr(args, "offline", False) or getattr(args, "command", None) == "journal" or not markets:
        return
    try:
        save_markets(str(exchange.id), markets)
    except (OSError, TypeError, ValueError):
        pass  # a cache that cannot be written must never fail the command


def _emit_line(out: IO[str], doc: Any, secrets: set[str], args: argparse.Namespace) -> None:
    """One JSON line now (the streaming commands: ``watch``, ``stream``)."""
    document = redact(doc, secrets, strip_info=not args.info)
    out.write(json.dumps(document, default=json_default, allow_nan=False))
    out.write("\n")
    out.flush()


def _close_quietly(exchange: Any, runner: _Runner) -> None:
    try:
        close = getattr(exchange, "close", None)
        if callable(close):
            runner(close)
    except Exception:  # closing must never mask the command's own result
        pass
    finally:
        runner.close()


def _emit_error(err: IO[str], exc: BaseException, secrets: set[str], *, debug: bool) -> None:
    code = exit_code_for(exc)
    body: dict[str, Any] = {
        "type": type(exc).__name__,
        "message": redact_text(str(exc) or type(exc).__name__, secrets),
        "exitCode": code,
    }
    if isinstance(exc, UsageError) and exc.usage:
        body["usage"] = exc.usage
    if debug:
        body["traceback"] = redact_text("".join(traceback.format_exception(exc)), secrets)
    err.write(json.dumps({"error": body}, default=json_default) + "\n")
    err.flush()


# -- commands -------------------------------------------------------------------------------------


def _has(exchange: Any, capability: str) -> bool:
    return bool((getattr(exchange, "has", None) or {}).get(capability))


def _cmd_health(exchange: Any, args: argparse.Namespace, call: _Runner) -> dict[str, Any]:
    started = time.perf_counter()
    markets = call(exchange.load_markets)
    doc: dict[str, Any] = {"ok": True, "exchange": getattr(exchange, "id", None), "markets": len(markets or {})}
    if _has(exchange, "fetchTime"):
        doc["time"] = call(exchange.fetch_time)
    if _has(exchange, "fetchStatus"):
        doc["status"] = call(exchange.fetch_status)
    doc["latencyMs"] = round((time.perf_counter() - started) * 1000, 1)
    return doc


def _cmd_markets(exchange: Any, args: argparse.Namespace, call: _Runner) -> dict[str, Any]:
    markets = call(exchange.load_markets) or {}
    needle = (args.search or "").lower()
    selected = [
        m
        for s, m in sorted(markets.items())
        if (not needle or needle in s.lower() or needle in str(m.get("id", "")).lower())
        and (not args.market_type or m.get("type") == args.market_type)
    ]
    return {"exchange": getattr(exchange, "id", None), "count": len(selected), "markets": selected}


def _cmd_ticker(exchange: Any, args: argparse.Namespace, call: _Runner) -> Any:
    call(exchange.load_markets)
    if len(args.symbols) == 1:
        return call(exchange.fetch_ticker, args.symbols[0])
    if _has(exchange, "fetchTickers"):
        return call(exchange.fetch_tickers, args.symbols)
    return {s: call(exchange.fetch_ticker, s) for s in args.symbols}


def _cmd_ohlcv(exchange: Any, args: argparse.Namespace, call: _Runner) -> Any:
    """Pages forward from --since until --until/--limit; works whether or not the exchange
    paginates by itself, and stops when a page brings nothing new."""
    call(exchange.load_markets)
    params = {"until": args.until} if args.until is not None else {}
    rows: dict[int, list[Any]] = {}
    since = args.since
    for _ in range(10_000):
        remaining = None if args.limit is None else args.limit - len(rows)
        page = call(exchange.fetch_ohlcv, args.symbol, args.timeframe, since, remaining, params) or []
        fresh = [r for r in page if int(r[0]) not in rows and (args.until is None or r[0] <= args.until)]
        for r in fresh:
            rows[int(r[0])] = list(r)
        if since is None or not fresh or (args.limit is not None and len(rows) >= args.limit):
            break
        last = max(int(r[0]) for r in fresh)
        if args.until is not None and last >= args.until:
            break
        since = last + 1
    data = [rows[t] for t in sorted(rows)]
    if args.limit is not None:
        data = data[: args.limit]
    if args.format == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["timestamp", "datetime", "open", "high", "low", "close", "volume"])
        for r in data:
            stamp = datetime.fromtimestamp(r[0] / 1000, timezone.utc).isoformat().replace("+00:00", "Z")
            writer.writerow([r[0], stamp, *("" if v is None else v for v in r[1:6])])
        return _Text(buf.getvalue())
    return {"symbol": args.symbol, "timeframe": args.timeframe, "count": len(data), "ohlcv": data}


def _cmd_balance(exchange: Any, args: argparse.Namespace, call: _Runner) -> Any:
    return call(exchange.fetch_balance)


def _cmd_positions(exchange: Any, args: argparse.Namespace, call: _Runner) -> Any:
    call(exchange.load_markets)
    return call(exchange.fetch_positions, args.symbols or None)


def _cmd_orders(exchange: Any, args: argparse.Namespace, call: _Runner) -> Any:
    call(exchange.load_markets)
    if args.order_id:
        return call(exchange.fetch_order, args.order_id, args.symbol)
    method = {"open": "fetch_open_orders", "closed": "fetch_closed_orders", "all": "fetch_orders"}[args.status]
    return call(getattr(exchange, method), args.symbol, args.since, args.limit)


def _cmd_trades(exchange: Any, args: argparse.Namespace, call: _Runner) -> Any:
    call(exchange.load_markets)
    return call(exchange.fetch_my_trades, args.symbol, args.since, args.limit)


TERMINAL_STATUSES = frozenset({"closed", "canceled", "rejected", "expired"})


def _cmd_watch(exchange: Any, args: argparse.Namespace, call: _Runner) -> Any:
    """Look at the order every ``--interval`` s; print it when it changed; done when it is terminal."""
    deadline = time.monotonic() + args.max_wait
    params = {"clientOrderId": args.order_id} if not str(args.order_id).isdigit() else {}
    last: tuple[Any, ...] | None = None
    while True:
        order = call(exchange.fetch_order, args.order_id, args.symbol, params)
        state = (order.get("status"), order.get("filled"), order.get("remaining"), order.get("average"),
                 order.get("price"), order.get("amount"))
        if state != last:
            args.emit_line(order)
            last = state
        if order.get("status") in TERMINAL_STATUSES:
            return _Text("")
        left = deadline - time.monotonic()
        if left <= 0:
            raise ccxt.RequestTimeout(f"order {args.order_id} still {order.get('status')} after {args.max_wait:g} s")
        time.sleep(min(args.interval, left))


def _cmd_stream(exchange: Any, args: argparse.Namespace, call: _Runner) -> Any:
    """JSON lines from the exchange's ccxt.pro ``watch_*`` until interrupted (or ``--count`` lines)."""
    capability = {"ticker": "watchTicker", "ohlcv": "watchOHLCV", "orders": "watchOrders",
                  "trades": "watchMyTrades"}[args.kind]
    if not _has(exchange, capability):
        raise ccxt.NotSupported(f"{getattr(exchange, 'id', 'exchange')} does not stream {args.kind}")
    if args.kind in ("ticker", "ohlcv") and not args.symbols:
        raise UsageError(f"stream {args.kind} needs at least one SYMBOL")
    printed = [0]

    def emit(doc: Any) -> bool:
        args.emit_line(doc)
        printed[0] += 1
        return args.count is not None and printed[0] >= args.count

    async def follow(symbol: str | None) -> None:
        while True:
            if args.kind == "ticker":
                batch: Any = [await exchange.watch_ticker(symbol)]
            elif args.kind == "ohlcv":
                bars = await exchange.watch_ohlcv(symbol, args.timeframe)
                batch = [{"symbol": symbol, "timeframe": args.timeframe, "ohlcv": bar} for bar in bars]
            elif args.kind == "orders":
                batch = await exchange.watch_orders(symbol)
            else:
                batch = await exchange.watch_my_trades(symbol)
            for doc in batch:
                if emit(doc):
                    return

    async def run() -> None:
        targets = list(args.symbols) or [None]
        tasks = [asyncio.ensure_future(follow(symbol)) for symbol in targets]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    call(run)
    return _Text("")


def _cmd_cancel(exchange: Any, args: argparse.Namespace, call: _Runner) -> Any:
    call(exchange.load_markets)
    return call(exchange.cancel_order, args.order_id, args.symbol)
