"""Signed-in sessions of the web interface: a signed cookie, and a CSRF token bound to it.

Nothing is stored on the server, so any image server of a site accepts a
session another one issued. The cookie is ``<expiry>.<nonce>.<mac>``: the MAC
is an HMAC-SHA256 under a key derived from ``HUIMAGES_ADMIN_TOKEN``, so
changing the token signs everybody out. The CSRF token is another HMAC of the
session's nonce; every request that changes data must send it (a form field,
or the ``X-CSRF-Token`` header of a script's request).
"""

from __future__ import annotations

import hashlib
import hmac
import http.cookies
import secrets
import time

from huimages.http.kit import Environ

COOKIE = "huimages_session"
LIFETIME = 12 * 3600  # seconds a sign-in lasts
PATH = "/ui/"


class Sessions:
    def __init__(self, admin_token: str) -> None:
        self._key = hashlib.sha256(b"huimages web interface\0" + admin_token.encode()).digest()

    def _mac(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    def issue(self, secure: bool) -> tuple[str, str]:
        """A new session: the ``Set-Cookie`` value, and the session's nonce."""
        nonce = secrets.token_urlsafe(18)
        payload = f"{int(time.time()) + LIFETIME}.{nonce}"
        value = f"{payload}.{self._mac(payload)}"
        flags = f"Path={PATH}; Max-Age={LIFETIME}; HttpOnly; SameSite=Strict" + ("; Secure" if secure else "")
        return f"{COOKIE}={value}; {flags}", nonce

    @staticmethod
    def clear(secure: bool) -> str:
        """The ``Set-Cookie`` value that signs out."""
        return f"{COOKIE}=; Path={PATH}; Max-Age=0; HttpOnly; SameSite=Strict" + ("; Secure" if secure else "")

    def nonce(self, environ: Environ) -> str | None:
        """The nonce of the request's session, if it carries a valid, unexpired one."""
        cookies = http.cookies.SimpleCookie()
        try:
            cookies.load(environ.get("HTTP_COOKIE", ""))
        except http.cookies.CookieError:
            return None
        morsel = cookies.get(COOKIE)
        if morsel is None:
            return None
        expiry, _, rest = morsel.value.partition(".")
        nonce, _, mac = rest.rpartition(".")
        if not (expiry.isdigit() and nonce and hmac.compare_digest(mac, self._mac(f"{expiry}.{nonce}"))):
            return None
        return nonce if int(expiry) > time.time() else None

    def csrf(self, nonce: str) -> str:
        """The CSRF token of a session."""
        return self._mac(f"csrf.{nonce}")

    def csrf_ok(self, nonce: str, sent: str) -> bool:
        return bool(sent) and hmac.compare_digest(sent, self.csrf(nonce))


def is_https(environ: Environ) -> bool:
    return environ.get("wsgi.url_scheme") == "https" or environ.get("HTTPS", "").lower() in ("on", "1")
