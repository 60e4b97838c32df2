"""HTTP plumbing shared by the image routes and the images API: errors, JSON and text answers, who asks."""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import json
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from huimages.core.urls import split_request_target

if TYPE_CHECKING:
    from huimages.serving.guesses import GuessLimit

StartResponse = Callable[..., Any]
Environ = dict[str, Any]
Headers = list[tuple[str, str]]


class HttpError(Exception):
    """An error response decided by the web layer itself (bad path, method)."""

    def __init__(self, status: str, message: str, headers: Headers | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or []


def is_admin(environ: Environ, token: str | None, guesses: GuessLimit) -> bool:
    """Admin URLs: from this host, or with the admin token (compared in constant time, wrong ones counted)."""
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(environ.get("REMOTE_ADDR", "")).is_loopback:
            return True
    return bearer(environ, guesses, token) is True


def bearer(environ: Environ, guesses: GuessLimit, *tokens: str | None) -> bool | None:
    """Whether ``Authorization: Bearer`` carries one of ``tokens`` (constant time); None when no token was sent.

    A token sent is reported to ``guesses``, which answers 429 (``TooManyRequests``)
    for an address that sent too many wrong ones.
    """
    scheme, _, given = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return None
    sent = given.strip().encode()
    right = any(hmac.compare_digest(sent, token.encode()) for token in tokens if token)
    guesses.attempt(client_address(environ), right)
    return right


def client_address(environ: Environ) -> str:
    """Who asks, as budgets and guess limits count it: the peer's address (forwarding headers are not trusted)."""
    return str(environ.get("REMOTE_ADDR") or "unknown")


def request_target(environ: Environ) -> tuple[str, str]:
    """The decoded request path and the query string.

    Servers that pass the URI as the client sent it (lighttpd's ``REQUEST_URI``,
    gunicorn's ``RAW_URI``) are trusted over ``PATH_INFO``, which lighttpd's
    rewrite and 404-handler modes change.
    """
    raw = environ.get("REQUEST_URI") or environ.get("RAW_URI")
    if raw:
        return split_request_target(raw)
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    return path or "/", environ.get("QUERY_STRING", "")


NO_STORE: Headers = [("Cache-Control", "no-store")]


def json_response(
    start_response: StartResponse, status: str, payload: dict[str, Any], extra: Headers | None = None
) -> Iterable[bytes]:
    body = json.dumps(payload, sort_keys=True).encode()
    headers: Headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *NO_STORE]
    start_response(status, [*headers, *(extra or [])])
    return [body]


def text_response(
    start_response: StartResponse, status: str, message: str, extra: Headers | None = None
) -> Iterable[bytes]:
    body = (message.splitlines()[0] if message else status).encode("utf-8", "replace") + b"\n"
    headers: Headers = [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
        *NO_STORE,
        *(extra or []),
    ]
    start_response(status, headers)
    return [body]
