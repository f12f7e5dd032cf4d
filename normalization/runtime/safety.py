"""Money safety: paper/demo unless the user opts into live trading twice.

One flag in code is too easy to copy from an example; one environment variable is too easy to
leave set. Live trading needs both ``options['live'] = True`` and ``CCXT_BROKERS_ALLOW_LIVE=1``,
and either alone raises ``PermissionDenied`` naming the missing half.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ccxt.base.errors import PermissionDenied

ALLOW_LIVE_VARIABLE = "CCXT_BROKERS_ALLOW_LIVE"
_TRUE = {"1", "true", "yes", "on"}


def live_allowed_by_environment(environ: Mapping[str, str] | None = None) -> bool:
    environ = os.environ if environ is None else environ
    return environ.get(ALLOW_LIVE_VARIABLE, "").strip().lower() in _TRUE


def resolve_live(exchange_id: str, live_option: object, environ: Mapping[str, str] | None = None) -> bool:
    """True only when both halves say live; False (paper/demo) when neither does."""
    wants_live = live_option is True or (isinstance(live_option, str) and live_option.lower() in _TRUE)
    env_allows = live_allowed_by_environment(environ)
    if wants_live and not env_allows:
        raise PermissionDenied(
            f"{exchange_id}: options['live'] is True but the environment variable "
            f"{ALLOW_LIVE_VARIABLE}=1 is not set; both are required for live trading"
        )
    if env_allows and not wants_live and live_option is not None and live_option is not False:
        raise PermissionDenied(f"{exchange_id}: options['live'] has an unreadable value {live_option!r}")
    return wants_live


def check_sandbox_switch(exchange_id: str, enabled: bool, environ: Mapping[str, str] | None = None) -> None:
    """``set_sandbox_mode(False)`` asks for live: refuse it unless the environment allows live."""
    if not enabled and not live_allowed_by_environment(environ):
        raise PermissionDenied(
            f"{exchange_id}: set_sandbox_mode(False) means live trading; it also needs "
            f"options['live'] = True and {ALLOW_LIVE_VARIABLE}=1"
        )


LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def is_loopback(host: str | None) -> bool:
    """``localhost`` and 127.0.0.0/8, ::1: a simulator or a local gateway, never a broker's live host."""
    if not host:
        return False
    host = host.strip().lower().strip("[]")
    return host in LOOPBACK_HOSTS or host.startswith("127.") or host == "::1"


def require_live_opt_in(exchange_id: str, live_option: object, facts: list[str],
                        environ: Mapping[str, str] | None = None) -> None:
    """The live gate, shared by both brokers: each supplies the ``facts`` that make a target live (IB: a
    live port, a ``U...`` account; Capital: a host other than the demo host or loopback), whatever
    setting named it. With any fact and not both opt-ins, ``PermissionDenied`` names what is missing.
    Called on every connect and before every order, not only at construction: options change later."""
    if not facts:
        return
    missing = []
    wants_live = live_option is True or (isinstance(live_option, str) and live_option.strip().lower() in _TRUE)
    if not wants_live:
        missing.append("options['live'] = True")
    if not live_allowed_by_environment(environ):
        missing.append(f"the environment variable {ALLOW_LIVE_VARIABLE}=1")
    if missing:
        raise PermissionDenied(
            f"{exchange_id}: refusing live trading: {'; '.join(facts)}. Live trading needs both "
            f"options['live'] = True and {ALLOW_LIVE_VARIABLE}=1; missing: {' and '.join(missing)}"
        )
