"""Login sessions: session id + CSRF token per login, idle expiry, forced expiry."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field


def _token() -> str:
    # the controller's cookies are 32 characters
    return secrets.token_hex(16)


@dataclass
class Session:
    sid: str
    csrftoken: str
    username: str
    last_used: float = field(default_factory=time.monotonic)


class Sessions:
    def __init__(self, idle_timeout: float = 15 * 60) -> None:
        self.idle_timeout = idle_timeout  # the controller's api_idle_timeout default is 15 min
        self._by_sid: dict[str, Session] = {}

    def create(self, username: str) -> Session:
        s = Session(_token(), _token(), username)
        self._by_sid[s.sid] = s
        return s

    def get(self, sid: str | None) -> Session | None:
        """The live session for `sid`, touched; None when missing or idle too long."""
        if not sid:
            return None
        s = self._by_sid.get(sid)
        if s is None:
            return None
        now = time.monotonic()
        if self.idle_timeout > 0 and now - s.last_used > self.idle_timeout:
            del self._by_sid[sid]
            return None
        s.last_used = now
        return s

    def drop(self, sid: str) -> bool:
        return self._by_sid.pop(sid, None) is not None

    def expire_all(self) -> int:
        n = len(self._by_sid)
        self._by_sid.clear()
        return n

    def __len__(self) -> int:
        return len(self._by_sid)
