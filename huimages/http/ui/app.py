"""The web interface under ``/ui/``: sign in, upload, browse, an image's page, status.

Server-rendered HTML (Jinja2, every value escaped), a stylesheet and one small
script, all served by the app itself: no build step, nothing from another
origin. Browsing and an image's page work without JavaScript; the script adds
drag and drop with a progress bar per file, and copy buttons.

Every page needs a session (``session.Sessions``), made by signing in with
``HUIMAGES_ADMIN_TOKEN``. Every request that changes data carries the
session's CSRF token and, when the browser sends one, an ``Origin`` of this
host.
"""

from __future__ import annotations

import hmac
import importlib.resources
import posixpath
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jinja2
from markupsafe import escape

from huimages.catalog.records import Doc, alt_text, original_filename
from huimages.client import Client
from huimages.core.focus import check_focus, focus_of
from huimages.core.formats import JPEG
from huimages.core.ids import validate_id
from huimages.core.sizes import output_dimensions
from huimages.core.text import has_control
from huimages.core.units import human_bytes
from huimages.core.urls import image_path
from huimages.errors import EmptyStore, HuImagesError
from huimages.http.api import ImagesApi, Upload, parse_multipart, read_body
from huimages.http.kit import NO_STORE, Environ, Headers, HttpError, StartResponse, client_address, json_response
from huimages.http.routes import Request
from huimages.http.ui.session import Sessions, is_https
from huimages.imaging import ACCEPT_ATTRIBUTE, ACCEPTED_NAMES
from huimages.serving.census import census
from huimages.serving.service import ImageService

PAGE_SIZE = 24
THUMB = "small"  # the grid's thumbnails: a named size, so never refused by the size policy
PREVIEW = "medium"
#: The crops the focus section previews as the focus moves: (name, width, height) in CSS pixels.
FOCUS_PREVIEWS = (("square", 120, 120), ("banner (4:1)", 240, 60), ("tall (1:2)", 60, 120))
_MAX_FORM_BYTES = 64 * 1024

#: What the upload page says it takes, from the one table of accepted formats.
_ACCEPTS = {"formats": ACCEPTED_NAMES, "accept": ACCEPT_ATTRIBUTE}
_STATIC = {"ui.css": "text/css; charset=utf-8", "ui.js": "text/javascript; charset=utf-8"}

#: What a finished action says on the page it leads to (a code in the URL, never text from it).
NOTICES = {
    "deleted": "The image was deleted.",
    "deleting": "The image was deleted. A store did not answer: what it keeps goes at the next queue run.",
    "title": "The title was saved.",
    "focus": "The focus was saved: the crops' URLs name it now (the old ones keep answering).",
    "requeued": "Parked CDN items were queued again.",
    "signedout": "You are signed out.",
    "empty": "There are no images yet: upload some.",
}

SECURITY_HEADERS: Headers = [
    (
        "Content-Security-Policy",
        "default-src 'none'; img-src 'self'; style-src 'self'; script-src 'self'; connect-src 'self';"
        " form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
]


class WebInterface:
    def __init__(self, service: ImageService) -> None:
        self.service = service
        self.client = Client(service=service)
        self.api = ImagesApi(service)
        token = service.settings.admin_token
        self.sessions = Sessions(token) if token else None
        self.templates = jinja2.Environment(
            loader=jinja2.PackageLoader("huimages.http.ui", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.filters["bytes"] = human_bytes
        self.templates.filters["when"] = _when
        folder = importlib.resources.files("huimages.http.ui") / "static"
        self.static_files = {name: (folder / name).read_bytes() for name in _STATIC}

    # -- the routes' handlers (huimages.http.ui.routes) ---------------------------------

    def signed_in(self, request: Request, name: str) -> Iterable[bytes]:
        """Run the page handler ``name`` for a request with a session (and, for a POST, its CSRF token);
        without a session, the sign-in page (401 for a script), coming back here after it."""
        nonce = self.sessions.nonce(request.environ) if self.sessions else None
        if nonce is None:
            if _wants_json(request.environ):
                raise HttpError("401 Unauthorized", "your session has ended: sign in again at /ui/signin")
            target = request.path + (f"?{request.query}" if request.query else "")
            return _redirect(request.start_response, "/ui/signin?" + urllib.parse.urlencode({"next": target}))
        params = dict(urllib.parse.parse_qsl(request.query))
        page = _Page(self, request.environ, request.start_response, nonce, params)
        if request.method == "POST":
            page.check_csrf()
        handler: Callable[[_Page, Request], Iterable[bytes]] = getattr(self, f"_{name}")
        return handler(page, request)

    def to_start(self, request: Request) -> Iterable[bytes]:
        return _redirect(request.start_response, "/ui/")

    def static(self, request: Request) -> Iterable[bytes]:
        name = request.params["name"]
        body = self.static_files.get(name)
        if body is None:
            raise HttpError("404 Not Found", "no such file")
        headers = [("Content-Type", _STATIC[name]), ("Content-Length", str(len(body)))]
        request.start_response("200 OK", [*headers, ("Cache-Control", "public, max-age=300"), *SECURITY_HEADERS])
        return [] if request.method == "HEAD" else [body]

    def _random(self, page: _Page, _request: Request) -> Iterable[bytes]:
        try:
            return page.redirect(f"/ui/images/{self.service.random_image()}")
        except EmptyStore:
            return page.redirect("/ui/upload?done=empty")

    def _signout(self, page: _Page, _request: Request) -> Iterable[bytes]:
        cookie = Sessions.clear(is_https(page.environ))
        return _redirect(page.start_response, "/ui/signin?done=signedout", [("Set-Cookie", cookie)])

    def _neighbour(self, page: _Page, request: Request) -> Iterable[bytes]:
        image_id = validate_id(request.params["id"])
        found = self.service.neighbour(image_id, following=request.params["direction"] == "next")
        return page.redirect(f"/ui/images/{found}")

    def _title(self, page: _Page, request: Request) -> Iterable[bytes]:
        image_id = validate_id(request.params["id"])
        title = page.form().get("title", "").strip()
        if not title:
            raise HttpError("400 Bad Request", "the title is empty: type one, or go back")
        self.service.update_metadata(image_id, timestamp=None, title=title)
        return page.redirect(f"/ui/images/{image_id}?done=title")

    def _focus(self, page: _Page, request: Request) -> Iterable[bytes]:
        image_id = validate_id(request.params["id"])
        form = page.form()
        if "auto" in form:
            self.service.set_focus(image_id, None)
        else:
            self.service.set_focus(image_id, check_focus([form.get("x", ""), form.get("y", "")]))
        return page.redirect(f"/ui/images/{image_id}?done=focus#focus-heading")

    def _delete(self, page: _Page, request: Request) -> Iterable[bytes]:
        image_id = validate_id(request.params["id"])
        if request.method == "POST":
            report = self.service.delete(image_id)
            return page.redirect("/ui/?done=deleted" if report.finished else "/ui/?done=deleting")
        return page.render("delete.html", image=self._card(self.service.record(image_id)))

    # -- sign-in ------------------------------------------------------------------------

    def signin(self, request: Request) -> Iterable[bytes]:
        environ, start_response, method = request.environ, request.start_response, request.method
        params = dict(urllib.parse.parse_qsl(request.query))
        target = local_target(params.get("next", ""))
        page = _Page(self, environ, start_response, None, params)
        if self.sessions is None:
            message = "The web interface is off: set HUIMAGES_ADMIN_TOKEN on the server, restart it, and sign in."
            return page.render("signin.html", "403 Forbidden", error=message, target=target, enabled=False)
        if method != "POST":
            return page.render("signin.html", error="", target=target, enabled=True)
        page.check_origin()
        form = page.form()
        target = local_target(form.get("next", ""))
        token = (self.service.settings.admin_token or "").encode()
        right = hmac.compare_digest(form.get("token", "").strip().encode(), token)
        self.service.guesses.attempt(client_address(environ), right)  # 429 for an address that guessed too often
        if not right:
            error = "That is not the admin token (HUIMAGES_ADMIN_TOKEN). Check it and try again."
            return page.render("signin.html", "403 Forbidden", error=error, target=target, enabled=True)
        cookie, _ = self.sessions.issue(is_https(environ))
        return _redirect(start_response, target, [("Set-Cookie", cookie)])

    # -- pages ----------------------------------------------------------------------------

    def _browse(self, page: _Page, _request: Request) -> Iterable[bytes]:
        after = page.params.get("after") or None
        if after is not None:
            validate_id(after)
        text = page.params.get("q", "")
        docs, following = self.api.browse(after, PAGE_SIZE, text, newest=True)
        more = following if len(docs) == PAGE_SIZE else None
        return page.render("browse.html", images=[self._card(d) for d in docs], q=text, more=more, after=after)

    def _image(self, page: _Page, request: Request) -> Iterable[bytes]:
        image_id = validate_id(request.params["id"])
        doc = self.service.record(image_id)
        width, height = int(doc["width"]), int(doc["height"])
        client = self.client.for_one_page()  # one catalog read for every URL, tag and <picture> below
        sizes = []
        for name, spec in [*self.service.settings.sizes.items(), ("o", "o")]:
            w, h = output_dimensions(client.parse_size(name), width, height)
            entry: dict[str, Any] = {"name": name, "spec": spec, "width": w, "height": h}
            entry["url"] = client.imageurl(image_id, name)
            entry["tag"] = client.scaled_tag(image_id, name)
            entry["picture"] = client.scaled_picture(image_id, name) if name != "o" else ""
            sizes.append(entry)
        sizes.sort(key=lambda entry: entry["width"] * entry["height"])  # smallest first
        record = {
            "titles": doc.get("title") or [],
            "references": doc.get("references") or {},
            "types": doc.get("types") or [],
            "filename": original_filename(doc) or "",
            "content_type": doc.get("content_type", ""),
            "length": self.service.original_length(doc),
            "ctime": doc.get("ctime", ""),
        }
        preview = self._path(PREVIEW, image_id)
        focus = focus_of(doc)
        return page.render(
            "image.html",
            image=self._card(doc),
            record=record,
            sizes=sizes,
            preview=preview,
            width=width,
            height=height,
            focus={"x": round(focus.x, 3), "y": round(focus.y, 3), "source": focus.source},
            crops=FOCUS_PREVIEWS,
        )

    def _upload(self, page: _Page, request: Request) -> Iterable[bytes]:
        limit = self.service.settings.limits.max_upload_bytes
        if request.method != "POST":
            return page.render("upload.html", results=[], limit=limit, **_ACCEPTS)
        content_type = page.environ.get("CONTENT_TYPE", "")
        if not content_type.lower().startswith("multipart/form-data"):
            raise HttpError("415 Unsupported Media Type", "send the files as multipart/form-data")
        title = page.form().get("title", "").strip()
        # each file on its own: one bad file does not stop the others
        results = [self._store_one(upload, title) for upload in page.uploads]
        if _wants_json(page.environ):
            failed = all(r["error"] for r in results)
            status = "422 Unprocessable Entity" if failed else "200 OK"
            return json_response(page.start_response, status, {"results": results})
        return page.render("upload.html", results=results, limit=limit, **_ACCEPTS)

    def _store_one(self, upload: Upload, title: str) -> dict[str, Any]:
        name = upload.filename or "image"
        if len(upload.data) > self.service.settings.limits.max_upload_bytes:
            return {"file": name, "error": f"{name} is larger than the upload limit; nothing stored"}
        try:
            answers, _ = self.api.store([upload], {"title": title} if title else {})
        except HuImagesError as exc:
            return {"file": name, "error": f"{name} was not stored: {exc}"}
        card = self._card(self.service.record(answers[0]["id"]))
        return {"file": name, **card, "created": answers[0]["created"], "error": ""}

    def _status(self, page: _Page, _request: Request) -> Iterable[bytes]:
        health = self.service.health()
        queue: dict[str, Any] | None = None
        stats = self.service.queue_stats()
        if stats is not None:
            oldest = stats.oldest_queued_at
            queue = {
                "counts": stats.counts,
                "oldest": _age(time.time() - oldest) if oldest is not None else "",
                "parked": stats.counts.get("parked", 0),
            }
        counted = census(self.service.settings.paths.cache_dir)
        shelves, temporary = counted.shelves, counted.temporary
        names = {spec: name for name, spec in self.service.settings.sizes.items()}
        cache: list[dict[str, Any]] = [
            {"size": folder, "name": names.get(folder, ""), "format": ext, "files": s.files, "bytes": s.bytes}
            for (folder, ext), s in shelves.items()
        ]
        totals = {"files": sum(c["files"] for c in cache), "bytes": sum(c["bytes"] for c in cache)}
        return page.render(
            "status.html", health=health, queue=queue, cache=cache, totals=totals, temporary=temporary.files
        )

    def _requeue(self, page: _Page, _request: Request) -> Iterable[bytes]:
        if self.service.publisher is None:
            raise HttpError("404 Not Found", "no CDN is configured: set CDN_BUCKET and CDN_URL")
        self.service.requeue_parked()
        return page.redirect("/ui/status?done=requeued")

    # -- helpers --------------------------------------------------------------------------

    def _path(self, size: str, image_id: str) -> str:
        """A root-relative image URL of this server (so the page's images never leave its origin)."""
        parsed = self.client.parse_size(size)
        path = image_path(parsed.spec, image_id, JPEG)
        signature = self.client.policy.signature_for(parsed, path)
        return path + (f"?sig={signature}" if signature else "")

    def _card(self, doc: Doc) -> dict[str, Any]:
        image_id = str(doc["_id"])
        titles = doc.get("title") or []
        label = alt_text(doc) or f"image {image_id}"
        width, height = output_dimensions(self.client.parse_size(THUMB), int(doc["width"]), int(doc["height"]))
        placeholder = doc.get("placeholder") or {}
        return {
            "color": str(placeholder.get("color") or ""),
            "id": image_id,
            "title": titles[-1] if titles else "",
            "alt": label,
            "thumb": self._path(THUMB, image_id),
            "thumb_width": width,
            "thumb_height": height,
            "page": f"/ui/images/{image_id}",
        }


class _Page:
    """One request to a page: renders templates with the session's CSRF token, reads forms, checks origins."""

    def __init__(
        self,
        ui: WebInterface,
        environ: Environ,
        start_response: StartResponse,
        nonce: str | None,
        params: Mapping[str, str],
    ) -> None:
        self.ui = ui
        self.environ = environ
        self.start_response = start_response
        self.nonce = nonce
        self.params = params
        self._form: dict[str, str] | None = None
        self.uploads: list[Upload] = []

    @property
    def csrf(self) -> str:
        return self.ui.sessions.csrf(self.nonce) if self.ui.sessions and self.nonce else ""

    def form(self) -> dict[str, str]:
        """The fields of the form body (read once); the files of a multipart form go to ``uploads``."""
        if self._form is None:
            content_type = self.environ.get("CONTENT_TYPE", "")
            if content_type.lower().startswith("multipart/form-data"):
                limit = self.ui.service.settings.limits.max_upload_bytes + _MAX_FORM_BYTES
                self.uploads, self._form = parse_multipart(content_type, read_body(self.environ, limit))
            else:
                raw = read_body(self.environ, _MAX_FORM_BYTES, "for a form").decode("utf-8", "replace")
                self._form = dict(urllib.parse.parse_qsl(raw, keep_blank_values=True))
        return self._form

    def check_origin(self) -> None:
        """A browser's ``Origin`` (sent with every POST it makes) must be this host."""
        origin = self.environ.get("HTTP_ORIGIN")
        if origin and origin != "null":
            host = self.environ.get("HTTP_HOST", "")
            if urllib.parse.urlsplit(origin).netloc != host:
                raise HttpError("403 Forbidden", "the request came from another site's page; nothing was changed")

    def check_csrf(self) -> None:
        self.check_origin()
        sent = self.environ.get("HTTP_X_CSRF_TOKEN") or self.form().get("csrf", "")
        assert self.ui.sessions is not None and self.nonce is not None
        if not self.ui.sessions.csrf_ok(self.nonce, sent):
            raise HttpError("403 Forbidden", "the form has expired or came from elsewhere; reload the page and retry")

    def render(self, template: str, status: str = "200 OK", **values: Any) -> Iterable[bytes]:
        done = NOTICES.get(self.params.get("done", ""), "")
        body = (
            self.ui.templates.get_template(template)
            .render(csrf=self.csrf, signed_in=self.nonce is not None, notice=done, **values)
            .encode("utf-8", "replace")  # a record stored before its text was checked may hold a lone surrogate
        )
        headers = [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))]
        self.start_response(status, [*headers, *NO_STORE, *SECURITY_HEADERS])
        return [] if self.environ.get("REQUEST_METHOD") == "HEAD" else [body]

    def redirect(self, target: str) -> Iterable[bytes]:
        return _redirect(self.start_response, target)


def _redirect(start_response: StartResponse, target: str, extra: Headers | None = None) -> Iterable[bytes]:
    start_response("303 See Other", [("Location", target), ("Content-Length", "0"), *NO_STORE, *(extra or [])])
    return []


def local_target(target: str) -> str:
    """Where to go after signing in: a page of the interface, rebuilt from its parts, never echoed.

    The path is decoded, its dot segments resolved and its slashes merged; it
    must then lie under ``/ui/`` and hold no control character, and is quoted
    again, as is the query. Anything else (another site, ``/ui/../x``, a CR or
    LF meant to add a header) leads to ``/ui/``.
    """
    try:
        parts = urllib.parse.urlsplit(target)
    except ValueError:  # "//[": a broken IPv6 host (found by scripts/fuzz.py text)
        return "/ui/"
    path = urllib.parse.unquote(parts.path)
    if parts.scheme or parts.netloc or not path.startswith("/") or has_control(target + path):
        return "/ui/"
    normal = "/" + posixpath.normpath(path).lstrip("/")  # resolves . and .., merges slashes ("//x" too)
    if normal == "/ui" or (path.endswith("/") and normal.startswith("/ui/")):
        normal += "/"
    if not normal.startswith("/ui/") or "\\" in normal:
        return "/ui/"
    query = urllib.parse.urlencode(urllib.parse.parse_qsl(parts.query), errors="replace")
    return urllib.parse.quote(normal, errors="replace") + (f"?{query}" if query else "")


def _wants_json(environ: Environ) -> bool:
    return "application/json" in environ.get("HTTP_ACCEPT", "")


def _when(stamp: str) -> str:
    """huImages' timestamp (``20240131T235959.000123``) as ``2024-01-31 23:59:59``; other text as it is."""
    if len(stamp) >= 15 and stamp[:8].isdigit() and stamp[8] == "T" and stamp[9:15].isdigit():
        return f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]} {stamp[9:11]}:{stamp[11:13]}:{stamp[13:15]}"
    return stamp


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def error_page(status: str, message: str) -> bytes:
    """A plain HTML error page for the interface (no session needed)."""
    escaped = escape(message)
    title = escape(status)
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f'<link rel="stylesheet" href="/ui/static/ui.css"></head><body><main><h1>{title}</h1>'
        f'<p role="alert">{escaped}</p><p><a href="/ui/">Back to the images</a></p></main></body></html>'
    ).encode("utf-8", "replace")
