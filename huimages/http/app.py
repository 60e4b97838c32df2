"""The WSGI app: routing, HTTP semantics, and errors mapped to statuses.

No Pillow and no storage client here: the app parses the request, asks the
``ImageService``, and turns the answer (a cache file) or the exception into a
response. ``create_app(settings)`` is the one callable that ``huimages serve``,
FastCGI and the tests all wrap.
"""

from __future__ import annotations

import email.utils
import logging
import os
import struct
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from huimages.config import Settings
from huimages.core.text import has_control
from huimages.core.urls import CACHE_FOREVER, parse_image_path, signature_of
from huimages.errors import (
    BackendUnavailable,
    CorruptOriginal,
    DiskFull,
    EmptyStore,
    FormatNotServed,
    HuImagesError,
    ImageNotFound,
    InvalidFocus,
    InvalidImage,
    InvalidImageId,
    InvalidPath,
    InvalidSize,
    InvalidText,
    Overloaded,
    RenderBusy,
    RenderTimeout,
    SizeNotAllowed,
    StorageError,
    TooManyRequests,
)
from huimages.http.api import ImagesApi
from huimages.http.kit import (
    NO_STORE,
    Environ,
    Headers,
    HttpError,
    StartResponse,
    client_address,
    is_admin,
    json_response,
    request_target,
    text_response,
)
from huimages.http.routes import Request, Route, Router
from huimages.http.ui.routes import interface_routes
from huimages.serving.cache import CachedFile
from huimages.serving.service import ImageService
from huimages.telemetry import metrics

if TYPE_CHECKING:
    from huimages.http.ui.app import WebInterface

logger = logging.getLogger(__name__)


_CHUNK = 256 * 1024

# Most specific first: the first matching class decides the status.
_STATUS: tuple[tuple[type[HuImagesError], str], ...] = (
    (InvalidSize, "400 Bad Request"),
    (InvalidFocus, "400 Bad Request"),
    (InvalidImageId, "400 Bad Request"),
    (InvalidPath, "400 Bad Request"),
    (InvalidText, "400 Bad Request"),
    (SizeNotAllowed, "403 Forbidden"),
    (RenderTimeout, "503 Service Unavailable"),
    (ImageNotFound, "404 Not Found"),
    (EmptyStore, "404 Not Found"),
    (FormatNotServed, "404 Not Found"),
    (InvalidImage, "422 Unprocessable Entity"),
    (CorruptOriginal, "422 Unprocessable Entity"),
    (RenderBusy, "503 Service Unavailable"),
    (Overloaded, "503 Service Unavailable"),
    (TooManyRequests, "429 Too Many Requests"),
    (BackendUnavailable, "503 Service Unavailable"),
    (DiskFull, "503 Service Unavailable"),
    (StorageError, "500 Internal Server Error"),
)


#: Admission control's refusals, as ``huimages_renders_refused_total`` counts them.
_REFUSED: dict[type[HuImagesError], str] = {Overloaded: "render_slots", TooManyRequests: "stranger_budget"}


class ImageApp:
    """The WSGI callable. Build it with ``create_app``."""

    def __init__(self, service: ImageService) -> None:
        self.service = service
        self.api = ImagesApi(service)
        self._ui: WebInterface | None = None
        self.router = Router(
            [
                Route("/healthz", ("GET",), self._health),
                Route("/metrics", ("GET",), self._metrics),
                Route("/processqueue", ("GET", "POST"), self._process_queue),
                *self.api.routes(),
                *interface_routes(lambda: self.ui),
            ],
            fallback=self._image,
        )

    @property
    def ui(self) -> WebInterface:
        """The web interface, made on its first request (image servers that never show it skip Jinja2)."""
        if self._ui is None:
            from huimages.http.ui.app import WebInterface

            self._ui = WebInterface(self.service)
        return self._ui

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        responses = metrics.get().responses

        def counted(status: str, headers: Headers, *args: Any) -> Any:
            unsafe = next((name for name, value in headers if has_control(value)), None)
            if unsafe is not None:  # a header built from request data that escaped its check: never sent
                raise ValueError(f"the {unsafe} header holds a control character")
            responses.labels(status[:3]).inc()
            return start_response(status, headers, *args)

        return self._answer(environ, counted)

    def _answer(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        try:
            return self._dispatch(environ, start_response)
        except HttpError as exc:
            return _error_response(environ, start_response, exc.status, str(exc), exc.headers)
        except HuImagesError as exc:
            return self._error(environ, start_response, exc)
        except Exception:
            logger.exception("unhandled error for %s", environ.get("REQUEST_URI") or environ.get("PATH_INFO"))
            return text_response(start_response, "500 Internal Server Error", "internal error; see the server log")

    def _dispatch(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path, query = request_target(environ)
        method = environ.get("REQUEST_METHOD", "GET")
        handler, params = self.router.resolve(path, method)
        return handler(Request(environ, start_response, path, query, method, params))

    def _image(self, request: Request) -> Iterable[bytes]:
        """``/<size>/<id>.<format>`` and huImages' other URL forms: a cached file, or a render."""
        under_routes = _under(request.path, "/ui") or _under(request.path, "/images")  # no route took it
        parsed = None if under_routes else parse_image_path(request.path)
        if parsed is None:
            raise HttpError("404 Not Found", _not_found(request.path))
        if request.method not in ("GET", "HEAD"):
            raise HttpError("405 Method Not Allowed", f"{request.method} is not allowed here", [("Allow", "GET, HEAD")])
        size = self.service.parse_size(parsed.size_token)
        fmt = self.service.output_format(parsed.extension)
        signature = signature_of(request.query)
        cached = self.service.serve(size, parsed.image_id, signature, fmt, client_address(request.environ))
        return _file_response(
            request.environ, request.start_response, cached, fmt.content_type, head=request.method == "HEAD"
        )

    def _health(self, request: Request) -> Iterable[bytes]:
        report = self.service.health()
        healthy = all(item["ok"] for item in report.values())
        status = "200 OK" if healthy else "503 Service Unavailable"
        return json_response(request.start_response, status, {"ok": healthy, "backends": report})

    def _process_queue(self, request: Request) -> Iterable[bytes]:
        if not is_admin(request.environ, self.service.settings.admin_token, self.service.guesses):
            raise HttpError(
                "403 Forbidden",
                "/processqueue answers requests from this host, or with Authorization: Bearer <HUIMAGES_ADMIN_TOKEN>",
            )
        if self.service.publisher is None:
            raise HttpError("404 Not Found", "no CDN is configured: set CDN_BUCKET and CDN_URL")
        return json_response(request.start_response, "200 OK", self.service.process_queue())

    def _metrics(self, request: Request) -> Iterable[bytes]:
        environ, start_response = request.environ, request.start_response
        if not is_admin(environ, self.service.settings.admin_token, self.service.guesses):
            raise HttpError(
                "403 Forbidden",
                "/metrics answers requests from this host, or with Authorization: Bearer <HUIMAGES_ADMIN_TOKEN>",
            )
        queue = self.service.publisher.store if self.service.publisher is not None else None
        body, content_type = metrics.exposition(queue)
        start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body))), *NO_STORE])
        return [body]

    def _error(self, environ: Environ, start_response: StartResponse, exc: HuImagesError) -> Iterable[bytes]:
        status = next((s for cls, s in _STATUS if isinstance(exc, cls)), "500 Internal Server Error")
        refused = _REFUSED.get(type(exc))
        if refused is not None:
            metrics.get().refused.labels(refused).inc()
        headers: Headers = []
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            headers.append(("Retry-After", str(retry_after)))
        uri = environ.get("REQUEST_URI") or environ.get("PATH_INFO")
        message = str(exc)
        if isinstance(exc, CorruptOriginal):  # the log names the object; the client learns what it needs
            logger.error("%s for %s: %s", status, uri, exc)
            message = f"the stored original of {exc.image_id} is corrupt and cannot be served"
        elif status.startswith("5"):
            logger.error("%s for %s: %s", status, uri, exc)
        else:
            logger.info("%s for %s: %s", status, uri, exc)
        return _error_response(environ, start_response, status, message, headers, type(exc).__name__)


def _not_found(path: str) -> str:
    """What a 404 says: where to look instead."""
    if _under(path, "/ui"):
        return "no such page in the web interface; start at /ui/"
    if _under(path, "/images"):
        return "no such resource in the images API; see /images and /images/<id>"
    return "no such resource; image URLs look like /<size>/<id>.jpeg"


def _under(path: str, prefix: str) -> bool:
    """Whether ``path`` is ``prefix`` or below it (``/images``, ``/images/<id>``)."""
    return path == prefix or path.startswith(prefix + "/")


def _error_response(
    environ: Environ, start_response: StartResponse, status: str, message: str, headers: Headers, kind: str = ""
) -> Iterable[bytes]:
    """An error in the form the asker reads: JSON for the API and scripts, a page for the interface, else text."""
    path = request_target(environ)[0]
    if _under(path, "/images") or "application/json" in environ.get("HTTP_ACCEPT", ""):
        payload = {"error": message, **({"kind": kind} if kind else {})}  # a remote client raises the same kind
        return json_response(start_response, status, payload, headers)
    if _under(path, "/ui"):
        from huimages.http.ui.app import SECURITY_HEADERS, error_page

        body = error_page(status, message)
        page_headers = [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))]
        start_response(status, [*page_headers, *NO_STORE, *SECURITY_HEADERS, *headers])
        return [body]
    return text_response(start_response, status, message, headers)


def create_app(settings: Settings | None = None, *, service: ImageService | None = None) -> ImageApp:
    """The WSGI app for ``settings`` (default: from the environment), or for an existing ``service``."""
    return ImageApp(service or ImageService.from_settings(settings or Settings.from_env()))


def _file_response(
    environ: Environ, start_response: StartResponse, cached: CachedFile, content_type: str, *, head: bool
) -> Iterable[bytes]:
    fd, stat = cached.fd, cached.stat
    if cached.render_ms is not None:
        environ["huimages.render_ms"] = cached.render_ms  # for the access log
    etag = file_etag(stat)
    headers: Headers = [
        ("ETag", etag),
        ("Last-Modified", email.utils.formatdate(stat.st_mtime, usegmt=True)),
        ("Cache-Control", CACHE_FOREVER),
    ]
    if _not_modified(environ, etag, int(stat.st_mtime)):
        os.close(fd)
        start_response("304 Not Modified", headers)
        return []
    headers += [("Content-Type", content_type), ("Content-Length", str(stat.st_size))]
    start_response("200 OK", headers)
    fh = os.fdopen(fd, "rb")
    if head:
        fh.close()
        return []
    wrapper = environ.get("wsgi.file_wrapper")
    if wrapper is not None:
        return wrapper(fh, _CHUNK)  # type: ignore[no-any-return]
    return _iter_file(fh)


def file_etag(stat: os.stat_result) -> str:
    """The ETag lighttpd sends for this file (``etag.use-inode = "disable"``), so a 304 follows from either front.

    lighttpd hashes the file's size, modification second and nanoseconds, as
    three native 64-bit integers, with Knuth's DEK hash
    seeded with their length, and writes the 32-bit result in decimal.
    """
    data = struct.pack("=3Q", stat.st_size, int(stat.st_mtime), stat.st_mtime_ns % 1_000_000_000)
    value = len(data)
    for byte in data:
        value = ((value << 5) & 0xFFFFFFFF) ^ (value >> 27) ^ byte
    return f'"{value}"'


def _iter_file(fh: Any) -> Iterable[bytes]:
    with fh:
        while chunk := fh.read(_CHUNK):
            yield chunk


def _not_modified(environ: Environ, etag: str, mtime: int) -> bool:
    """RFC 9110: If-None-Match wins over If-Modified-Since when both are sent."""
    if_none_match = environ.get("HTTP_IF_NONE_MATCH")
    if if_none_match is not None:
        tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
        return "*" in tags or etag in tags
    since = environ.get("HTTP_IF_MODIFIED_SINCE")
    if since:
        try:
            parsed = email.utils.parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
        return mtime <= int(parsed.timestamp())
    return False
