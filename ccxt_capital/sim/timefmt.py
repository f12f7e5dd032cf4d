"""Date formats of the API: ``YYYY-MM-DDTHH:MM:SS`` (no zone) in and out.

Capital prints local account time next to UTC (``createdDate`` / ``createdDateUTC``); the offset
is the account's ``timezoneOffset`` in hours. Query dates are parsed as UTC wall time, which is what
real clients send (a trailing ``Z`` is refused by the broker, so it is refused here too).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from .errors import bad_request

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?$")


def fmt(ts: float, offset_hours: float = 0.0, *, millis: bool = False) -> str:
    """Format epoch seconds as the API's zone-less ISO date, shifted by ``offset_hours``."""
    moment = datetime.fromtimestamp(ts + offset_hours * 3600, tz=timezone.utc)
    if millis:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def parse(value: str, code: str = "error.invalid.date") -> float:
    """Parse ``YYYY-MM-DDTHH:MM:SS[.ffffff]`` (UTC) to epoch seconds, or raise 400 ``code``."""
    if not isinstance(value, str) or not _DATE_RE.match(value):
        raise bad_request(code)
    try:
        moment = datetime.fromisoformat(value).replace(tzinfo=timezone.utc)
    except ValueError:
        raise bad_request(code) from None
    return moment.timestamp()
