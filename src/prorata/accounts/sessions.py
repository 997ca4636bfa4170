"""The session store (``SESSION_ENGINE``): Django's database sessions, same table and same signed
data, with the read that every signed-in request starts with done by one hand-written, prepared
query (:func:`prorata.accounts.queries.unexpired_session`; its measured gain is in
``benchmarks/README.md``)."""

from __future__ import annotations

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.contrib.sessions.base_session import AbstractBaseSession

from prorata.accounts.queries import unexpired_session
from prorata.common.clock import wall_now


class SessionStore(DatabaseSessionStore):
    def _get_session_from_db(self) -> AbstractBaseSession | None:
        """The unexpired session of this key, or None (and the key forgotten), as Django's
        (expiry in real time, like Django's own, not the project clock's)."""
        session = unexpired_session(model=self.model, session_key=self.session_key,
                                    expires_after=wall_now())
        if session is None:
            self._session_key = None
        return session
