"""Who may use the review page: a one-time login link, sessions that expire, a CSRF token per session.

The link is printed in the human's terminal; it works once. A session is a random cookie (HttpOnly,
SameSite=Strict) that expires after an idle hour and at most eight hours after login; every form carries the
session's CSRF token. Kept in memory: a restart of `flash-mcp review` logs everyone out.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

IDLE_S, MAX_S, LINK_S = 3600.0, 8 * 3600.0, 15 * 60.0


@dataclass
class Session:
    csrf: str
    started: float
    seen: float


class Sessions:
    def __init__(self, clock: Callable[[], float] = time.time):
        self.clock = clock
        self._links: dict[str, float] = {}
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def login_link_token(self) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._links[token] = self.clock() + LINK_S
        return token

    def log_in(self, token: str) -> str | None:
        """A new session id for an unused, unexpired link token (the token is spent either way)."""
        with self._lock:
            expires = self._links.pop(token, None)
            if expires is None or expires < self.clock():
                return None
            session_id, now = secrets.token_urlsafe(32), self.clock()
            self._sessions[session_id] = Session(secrets.token_urlsafe(24), now, now)
            return session_id

    def get(self, session_id: str | None) -> Session | None:
        with self._lock:
            session = self._sessions.get(session_id or "")
            now = self.clock()
            if session is None or now - session.seen > IDLE_S or now - session.started > MAX_S:
                self._sessions.pop(session_id or "", None)
                return None
            session.seen = now
            return session

    @staticmethod
    def csrf_ok(session: Session, sent: str | None) -> bool:
        return sent is not None and hmac.compare_digest(session.csrf, sent)
