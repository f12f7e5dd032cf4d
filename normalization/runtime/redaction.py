"""Secrets never reach a log record: the values themselves are redacted, in every logger our dependencies use.

Why by value: the adapters' own messages never print a secret, but their dependencies do at DEBUG --
httpcore's trace prints request headers, and with the ``http2`` extra hpack logs each header it adds
to its table (``Adding b'x-cap-api-key'=b'...'``), CST and X-SECURITY-TOKEN included. Matching header
names only works for the formats one knows; a secret's value is the same in every format (a bytes
repr shows it literally), so the transport registers each secret as it learns it (API key and password
at login, the session tokens on every login) and this filter replaces it with ``[redacted]`` before any
handler sees the record.

A logging filter attached to a logger only sees records logged on that very logger (not on its
children), so every logger name the dependencies write to is listed in :data:`LOGGERS`.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable

__all__ = ["LOGGERS", "REDACTED", "SecretRedactor", "install", "redactor", "register_secret_headers",
           "register_secrets"]

REDACTED = "[redacted]"
#: Every logger the HTTP stack writes to (httpx, httpcore's sync and async modules, h2, hpack), and ours.
LOGGERS = (
    "httpx", "httpcore", "httpcore.connection", "httpcore.connection_pool", "httpcore.http11", "httpcore.http2",
    "httpcore.proxy", "httpcore.socks", "h2", "h2.connection", "h2.config", "h2.stream", "hpack", "hpack.hpack",
    "hpack.table", "hpack.huffman", "ccxt_capital", "ccxt_capital.transport", "ccxt_capital.exchange",
    "normalization", "asyncio",
)
#: Shorter values are not treated as secrets: replacing them everywhere would garble every log line.
MIN_LENGTH = 4
#: Session tokens change at every login; the oldest are forgotten beyond this many.
MAX_SECRETS = 256


class SecretRedactor(logging.Filter):
    """Replaces registered secret values in a record's formatted message (and drops its args)."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: dict[str, None] = {}  # insertion-ordered: the oldest is dropped first
        self._lock = threading.Lock()
        self._names: set[str] = set()
        self._by_name: re.Pattern[str] | None = None

    def add_header_names(self, names: Iterable[str]) -> None:
        """Header names whose values are secrets, redacted in the shapes the HTTP stack logs them --
        ``('cst', '...')`` (httpcore), ``b'cst'=b'...'`` and ``b'cst': b'...'`` (hpack) -- even before the
        value is known: hpack logs a login answer's tokens while decoding it, before we can register them."""
        with self._lock:
            self._names.update(n.lower() for n in names)
            alternatives = "|".join(re.escape(n) for n in sorted(self._names))
            self._by_name = re.compile(
                rf"""(b?['"](?:{alternatives})['"](?:\s*=\s*|\s*:\s*|,\s*)b?['"])[^'"]*(['"])""", re.IGNORECASE)

    def add(self, values: Iterable[object]) -> None:
        with self._lock:
            for value in values:
                if isinstance(value, bytes):
                    value = value.decode("utf-8", "replace")
                if value is None:
                    continue
                text = str(value)
                if len(text) < MIN_LENGTH or text in self._secrets:
                    continue
                self._secrets[text] = None
                while len(self._secrets) > MAX_SECRETS:
                    del self._secrets[next(iter(self._secrets))]

    def redact(self, text: str) -> str:
        if self._by_name is not None:
            text = self._by_name.sub(rf"\1{REDACTED}\2", text)
        # Longest first, so a secret containing another is replaced whole.
        for secret in sorted(self._secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets and self._by_name is None:
            return True
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a record that cannot format is the handler's problem, not ours
            return True
        clean = self.redact(text)
        if clean != text:
            record.msg, record.args = clean, None
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


_REDACTOR = SecretRedactor()
_installed = False


def redactor() -> SecretRedactor:
    """The process's one redactor (secrets of every exchange object are redacted everywhere)."""
    return _REDACTOR


def install() -> None:
    """Attach the redactor to every logger in :data:`LOGGERS` (idempotent)."""
    global _installed
    if _installed:
        return
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if _REDACTOR not in logger.filters:
            logger.addFilter(_REDACTOR)
    _installed = True


def register_secrets(*values: object) -> None:
    """Redact these values from now on, in every listed logger."""
    install()
    _REDACTOR.add(values)


def register_secret_headers(*names: str) -> None:
    """Redact the values of these headers wherever a listed logger prints one."""
    install()
    _REDACTOR.add_header_names(names)
