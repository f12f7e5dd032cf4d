"""One exchange factory for strategy runners: ``ACTIVE_EXCHANGE=IB|CAPITAL|<any ccxt id>``.

Why: a runner that used to say ``ccxt.gemini(config)`` should switch venue by environment, not by
code, and it should fail *at start* with a message naming the bad variable rather than at the first
order. Written once here and re-exported by ``ccxt_ibkr`` and ``ccxt_capital``.

Adapter classes are resolved lazily (``importlib`` inside the function) so importing this module
never pulls in ib_async or httpx. Tests inject a ``registry`` instead of the real adapters and an
``env`` mapping instead of ``os.environ``.

Live trading: ``IB_PAPER=0`` / ``CAPITAL_DEMO=0`` only sets ``options["live"] = True``; the adapter
itself refuses to go live unless ``CCXT_BROKERS_ALLOW_LIVE=1`` (two keys, held by two layers).
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Mapping
from typing import Any

import ccxt

from ..client_ids import validate_prefix

__all__ = [
    "ConfigError",
    "ACTIVE_EXCHANGE_ENV",
    "normalize_exchange_name",
    "parse_bool",
    "ib_config_from_env",
    "capital_config_from_env",
    "generic_config_from_env",
    "config_from_env",
    "resolve_exchange_class",
    "create_exchange",
    "create_async_exchange",
]

ACTIVE_EXCHANGE_ENV = "ACTIVE_EXCHANGE"

_TRUE = {"1", "true", "yes"}
_FALSE = {"0", "false", "no"}

# Names a runner may put in ACTIVE_EXCHANGE for our two venues (case-insensitive).
_ALIASES = {
    "IB": "IB",
    "IBKR": "IB",
    "INTERACTIVEBROKERS": "IB",
    "CAPITAL": "CAPITAL",
    "CAPITALCOM": "CAPITAL",
    "CAPITAL.COM": "CAPITAL",
}

# Lazy import paths: (sync module, async module, class name).
_BUILTIN: dict[str, tuple[str, str, str]] = {
    "IB": ("ccxt_ibkr", "ccxt_ibkr.async_support", "IBTrader"),
    "CAPITAL": ("ccxt_capital", "ccxt_capital.async_support", "CapitalTrader"),
}

# Well-known IB ports: TWS paper 7497 / live 7496, IB Gateway paper 4002 / live 4001.
_IB_PAPER_PORTS = {7497, 4002}
_IB_LIVE_PORTS = {7496, 4001}

_CCY_RE = re.compile(r"^[A-Za-z]{3}$")

#: registry value: one class for both faces, or a (sync_class, async_class) pair.
RegistryEntry = type | tuple[type, type]


class ConfigError(ccxt.BadRequest):
    """A missing, malformed or contradictory setting; the message names the variable(s)."""


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is None or not str(value).strip():
        return None
    return str(value).strip()


def parse_bool(name: str, value: str | None, default: bool) -> bool:
    """Strict boolean: 1/0/true/false/yes/no (any case); anything else is a ConfigError naming ``name``.

    Strict on purpose: ``IB_PAPER=flase`` must not silently mean live (or paper).
    """
    if value is None or not value.strip():
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"{name}={value!r} is not a boolean; use 1/0, true/false or yes/no")


def _parse_int(name: str, value: str, lo: int, hi: int | None = None) -> int:
    try:
        number = int(value, 10)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not an integer") from None
    if number < lo or (hi is not None and number > hi):
        bound = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise ConfigError(f"{name}={number} is out of range (must be {bound})")
    return number


def _prefix(env: Mapping[str, str]) -> str | None:
    value = _get(env, "CLIENT_ORDER_PREFIX")
    if value is not None:
        # The same rule the order path enforces (normalization.client_ids), reported at start.
        try:
            validate_prefix(value)
        except ccxt.BaseError as exc:
            raise ConfigError(f"CLIENT_ORDER_PREFIX={value!r}: {exc}") from None
    return value


def normalize_exchange_name(name: str) -> str:
    """``ib``/``ibkr`` -> ``IB``, ``capital``/``capitalcom`` -> ``CAPITAL``, any other id -> lower case."""
    key = name.strip()
    return _ALIASES.get(key.upper(), key.lower())


def ib_config_from_env(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """IB settings from ``IB_*`` variables; only variables that are set appear in ``options``
    (the adapter owns the defaults), except ``live`` which is always explicit."""
    env = os.environ if env is None else env
    paper = parse_bool("IB_PAPER", _get(env, "IB_PAPER"), True)
    options: dict[str, Any] = {}
    if (host := _get(env, "IB_HOST")) is not None:
        options["host"] = host
    if (port := _get(env, "IB_PORT")) is not None:
        options["port"] = _parse_int("IB_PORT", port, 1, 65535)
        if paper and options["port"] in _IB_LIVE_PORTS:
            raise ConfigError(
                f"IB_PORT={options['port']} is a live TWS/Gateway port but IB_PAPER is on; "
                "use 7497/4002 for paper or set IB_PAPER=0"
            )
        if not paper and options["port"] in _IB_PAPER_PORTS:
            raise ConfigError(f"IB_PORT={options['port']} is a paper TWS/Gateway port but IB_PAPER=0 asks for live")
    if (client_id := _get(env, "IB_CLIENT_ID")) is not None:
        options["clientId"] = _parse_int("IB_CLIENT_ID", client_id, 0)
    if (account := _get(env, "IB_ACCOUNT_ID")) is not None:
        # IB paper accounts are the D-prefixed ones (DU..., DF...); live ones are not.
        if not paper and account.upper().startswith("D"):
            raise ConfigError(f"IB_ACCOUNT_ID={account} is a paper account but IB_PAPER=0 asks for live")
        if paper and account.upper().startswith(("U", "F")):
            raise ConfigError(f"IB_ACCOUNT_ID={account} is a live account but IB_PAPER is on")
        options["account"] = account
    if (ccy := _get(env, "IB_BASE_CURRENCY")) is not None:
        if not _CCY_RE.match(ccy):
            raise ConfigError(f"IB_BASE_CURRENCY={ccy!r} must be a 3-letter currency code such as USD")
        options["baseCurrency"] = ccy.upper()
    if (venue := _get(env, "IB_EXCHANGE")) is not None:
        options["defaultExchange"] = venue.upper()
    if (prefix := _prefix(env)) is not None:
        options["clientOrderPrefix"] = prefix
    options["live"] = not paper
    return {"options": options}


def capital_config_from_env(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Capital.com credentials and mode from ``CAPITAL_*``; all three credentials are required."""
    env = os.environ if env is None else env
    demo = parse_bool("CAPITAL_DEMO", _get(env, "CAPITAL_DEMO"), True)
    names = ("CAPITAL_API_KEY", "CAPITAL_LOGIN", "CAPITAL_PASSWORD")
    missing = [n for n in names if _get(env, n) is None]
    if missing:
        raise ConfigError(f"ACTIVE_EXCHANGE=CAPITAL needs {', '.join(missing)} to be set")
    options: dict[str, Any] = {"live": not demo}
    if (prefix := _prefix(env)) is not None:
        options["clientOrderPrefix"] = prefix
    return {
        "apiKey": _get(env, "CAPITAL_API_KEY"),
        "login": _get(env, "CAPITAL_LOGIN"),
        "password": _get(env, "CAPITAL_PASSWORD"),
        "options": options,
    }


def generic_config_from_env(exchange_id: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Credentials for any other ccxt id from ``<ID>_API_KEY``, ``<ID>_SECRET``, ``<ID>_PASSWORD``,
    ``<ID>_UID`` (all optional, so a public-data runner needs none)."""
    env = os.environ if env is None else env
    prefix = exchange_id.upper()
    config: dict[str, Any] = {}
    fields = (("API_KEY", "apiKey"), ("SECRET", "secret"), ("PASSWORD", "password"), ("UID", "uid"))
    for suffix, key in fields:
        if (value := _get(env, f"{prefix}_{suffix}")) is not None:
            config[key] = value
    return config


def config_from_env(name: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The ccxt config dict the factory would build for venue ``name`` from the environment."""
    venue = normalize_exchange_name(name)
    if venue == "IB":
        return ib_config_from_env(env)
    if venue == "CAPITAL":
        return capital_config_from_env(env)
    return generic_config_from_env(venue, env)


def _from_registry(entry: RegistryEntry, async_: bool) -> type:
    if isinstance(entry, tuple):
        return entry[1] if async_ else entry[0]
    return entry


def resolve_exchange_class(
    name: str,
    *,
    async_: bool = False,
    registry: Mapping[str, RegistryEntry] | None = None,
) -> type:
    """The class for ``name``: registry entry, our adapter (lazy import), or a ccxt exchange."""
    venue = normalize_exchange_name(name)
    if registry:
        for key in (venue, name, name.upper(), name.lower()):
            if key in registry:
                return _from_registry(registry[key], async_)
    if venue in _BUILTIN:
        sync_mod, async_mod, cls_name = _BUILTIN[venue]
        module_name = async_mod if async_ else sync_mod
        try:
            module = importlib.import_module(module_name)
            return getattr(module, cls_name)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"ACTIVE_EXCHANGE={name}: cannot load {module_name}.{cls_name} ({exc})") from exc
    namespace: Any = ccxt
    if async_:
        namespace = importlib.import_module("ccxt.async_support")
    cls = getattr(namespace, venue, None)
    # ccxt.async_support classes do not subclass ccxt.Exchange, so check the interface instead.
    if not (isinstance(cls, type) and hasattr(cls, "describe") and hasattr(cls, "load_markets")):
        raise ConfigError(
            f"ACTIVE_EXCHANGE={name!r} is not a known exchange; use IB, CAPITAL or a ccxt id such as gemini"
        )
    return cls


def create_exchange(
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    *,
    async_: bool = False,
    env: Mapping[str, str] | None = None,
    registry: Mapping[str, RegistryEntry] | None = None,
) -> Any:
    """Build the exchange for ``name`` (default ``$ACTIVE_EXCHANGE``).

    With ``config`` the dict is passed to the class as-is; without it the config is built from the
    environment (see :func:`config_from_env`), so ``create_exchange()`` alone is a complete runner
    setup. ``async_=True`` returns the ``async_support`` twin (remember ``await ex.close()``).
    """
    env = os.environ if env is None else env
    if name is None:
        name = _get(env, ACTIVE_EXCHANGE_ENV)
        if name is None:
            raise ConfigError(f"{ACTIVE_EXCHANGE_ENV} is not set; use IB, CAPITAL or a ccxt id such as gemini")
    cls = resolve_exchange_class(name, async_=async_, registry=registry)
    if config is None:
        config = config_from_env(name, env)
    return cls(dict(config))


def create_async_exchange(
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Any:
    """``create_exchange(..., async_=True)``, for runners that prefer a separate name."""
    return create_exchange(name, config, async_=True, **kwargs)
