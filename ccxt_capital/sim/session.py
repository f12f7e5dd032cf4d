"""Logins and sessions: API key + identifier/password in, CST / X-SECURITY-TOKEN out.

A session is identified by its CST; the X-SECURITY-TOKEN must match it. Sessions die after ten
minutes without a request, measured on the simulated clock so a test can cross the boundary by
advancing time instead of sleeping.

Tokens are bearer credentials: they come from the operating system's CSPRNG (:mod:`secrets`), never
from the seeded generator that makes prices and deal ids reproducible -- whoever knows the seed must
not be able to compute another client's session.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from .errors import bad_request, unauthorized

INACTIVITY_TIMEOUT = 600.0


@dataclass
class Credentials:
    """One login the simulator accepts."""

    api_key: str
    identifier: str
    password: str


@dataclass
class Session:
    """One logged-in session and the account it currently acts on."""

    cst: str
    token: str
    api_key: str
    account_id: str
    created: float
    last_seen: float
    requests: int = 0


@dataclass
class SessionStore:
    """All live sessions, with expiry on the simulated clock."""

    credentials: list[Credentials]
    timeout: float = INACTIVITY_TIMEOUT
    sessions: dict[str, Session] = field(default_factory=dict)

    @staticmethod
    def _token(length: int = 24) -> str:
        return secrets.token_urlsafe(length)

    def check_api_key(self, api_key: str | None) -> None:
        if not api_key:
            raise bad_request("error.null.api.key")
        if not any(cred.api_key == api_key for cred in self.credentials):
            raise unauthorized("error.invalid.api.key")

    def login(self, api_key: str, identifier: str, password: str, account_id: str, now: float) -> Session:
        self.check_api_key(api_key)
        for cred in self.credentials:
            if cred.api_key == api_key and cred.identifier == identifier and cred.password == password:
                break
        else:
            raise unauthorized("error.invalid.details")
        session = Session(cst=self._token(), token=self._token(), api_key=api_key,
                          account_id=account_id, created=now, last_seen=now)
        self.sessions[session.cst] = session
        return session

    def authenticate(self, cst: str | None, token: str | None, now: float) -> Session:
        """The live session for these headers, its inactivity clock restarted; else 401."""
        if not cst or not token:
            raise unauthorized("error.null.client.token")
        session = self.sessions.get(cst)
        if session is None or session.token != token:
            raise unauthorized("error.invalid.session.token")
        if now - session.last_seen >= self.timeout:
            del self.sessions[cst]
            raise unauthorized("error.invalid.session.token")
        session.last_seen = now
        session.requests += 1
        return session

    def logout(self, session: Session) -> None:
        self.sessions.pop(session.cst, None)

    def expire(self, cst: str | None = None) -> int:
        """End one session (or all): the next request with it gets 401. Returns how many ended."""
        if cst is None:
            count = len(self.sessions)
            self.sessions.clear()
            return count
        return 1 if self.sessions.pop(cst, None) else 0

    def switch(self, session: Session, account_id: str, known: set[str]) -> None:
        if not isinstance(account_id, str) or account_id not in known:
            raise bad_request("error.invalid.accountId")
        if account_id == session.account_id:
            raise bad_request("error.not-different.accountId")
        session.account_id = account_id
