"""The images API: store, read, change, delete and browse images over HTTP, under ``/images``.

Every request carries ``Authorization: Bearer`` with ``HUIMAGES_UPLOAD_TOKEN``
(or the admin token), compared in constant time. Answers and errors are JSON.
A body over ``HUIMAGES_MAX_UPLOAD_BYTES`` is refused from its
``Content-Length`` before a byte is read, or while a chunked body is read (the
reading stops there). Every file of an upload is checked, decoded completely,
before the first one is stored, so an error stores nothing; a client that
goes away mid-body leaves nothing either.

    POST   /images              the body is an image (image/*), or multipart/form-data with files
                                and optional title, references (a JSON object), typ; 201 new, 200 known
    GET    /images?after=&limit=&q=&order=   browse in ID order or newest first, filtered by text
    GET    /images?ids=<id>,<id>   the records of those that exist (at most 100)
    GET    /images/<id>         the record, with ``cdn``: the CDN URL of each uploaded derivative
    GET    /images/random, /images/<id>/next, /images/<id>/previous   browsing: ``{"id": ...}``
    PATCH  /images/<id>         merge title, references, typ (a JSON object)
    DELETE /images/<id>         delete the image everywhere (204; an unknown ID too; 202 and what is
                                left when a store did not answer: finished by the next queue run)
"""

from __future__ import annotations

import dataclasses
import json
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from huimages.catalog.records import Doc
from huimages.core.focus import check_focus, focus_of
from huimages.core.ids import compute_id, validate_id
from huimages.core.text import MAX_DEPTH, check_value
from huimages.errors import InvalidText
from huimages.http.kit import Environ, HttpError, StartResponse, bearer, json_response
from huimages.http.routes import Handler, Request, Route
from huimages.imaging import ACCEPTED_NAMES, Ingested, ingest
from huimages.serving.service import ImageService

_CHUNK = 64 * 1024
_MAX_METADATA_BYTES = 64 * 1024  # a PATCH body
#: The fields a PATCH may carry; any other answers 400 naming it.
PATCHABLE = ("title", "references", "typ", "timestamp", "focus")
PAGE_LIMIT = 100
MAX_PARTS = 100  # files and fields of one multipart/form-data body
_TIMESTAMP = re.compile(r"\d{8}T\d{6}(\.\d{1,6})?")


@dataclasses.dataclass
class Upload:
    """One file of a POST, checked (decoded) before anything is stored."""

    data: bytes
    filename: str
    content_type: str
    ingested: Ingested | None = None


class ImagesApi:
    def __init__(self, service: ImageService) -> None:
        self.service = service

    def routes(self) -> list[Route]:
        """The API's part of the routing table; every handler checks the token first."""
        return [
            Route("/images", ("GET", "POST"), self._authorised(self._collection)),
            Route("/images/random", ("GET",), self._authorised(self._random)),
            Route("/images/<id>/<direction:next|previous>", ("GET",), self._authorised(self._neighbour)),
            Route("/images/<id>", ("GET", "PATCH", "DELETE"), self._authorised(self._one)),
        ]

    def _authorised(self, handler: Handler) -> Handler:
        def checked(request: Request) -> Iterable[bytes]:
            self._authorise(request.environ)
            return handler(request)

        return checked

    def _collection(self, request: Request) -> Iterable[bytes]:
        if request.method == "POST":
            return self._upload(request.environ, request.start_response, request.query)
        return json_response(request.start_response, "200 OK", self._browse(request.query))

    def _random(self, request: Request) -> Iterable[bytes]:
        return json_response(request.start_response, "200 OK", {"id": self.service.random_image()})

    def _neighbour(self, request: Request) -> Iterable[bytes]:
        following = request.params["direction"] == "next"
        found = self.service.neighbour(validate_id(request.params["id"]), following=following)
        return json_response(request.start_response, "200 OK", {"id": found})

    def _one(self, request: Request) -> Iterable[bytes]:
        image_id, environ, start_response = validate_id(request.params["id"]), request.environ, request.start_response
        if request.method == "PATCH":
            body = read_body(environ, _MAX_METADATA_BYTES, "for a record's fields")
            fields = _json_object(body, "the body")
            unknown = sorted(set(fields) - set(PATCHABLE))
            if unknown:  # a misspelt field would otherwise be ignored with a 200
                raise HttpError(
                    "400 Bad Request",
                    f"unknown field {unknown[0]!r}: a PATCH takes {', '.join(PATCHABLE)}; nothing changed",
                )
            metadata = _metadata(fields)  # checked before anything is written
            if "focus" in fields:  # [x, y] set by hand; null: back to the one found at upload
                focus = fields["focus"]
                self.service.set_focus(image_id, None if focus is None else check_focus(focus))
            if set(fields) - {"focus"}:
                self.service.update_metadata(image_id, **metadata)
        elif request.method == "DELETE":
            report = self.service.delete(image_id)
            if not report.finished:  # the rest is recorded and finished later: say what is left
                return json_response(start_response, "202 Accepted", report.as_dict())
            start_response("204 No Content", [("Cache-Control", "no-store")])
            return []
        return json_response(start_response, "200 OK", self._record(image_id))

    def _authorise(self, environ: Environ) -> None:
        settings = self.service.settings
        if not (settings.upload_token or settings.admin_token):
            raise HttpError("403 Forbidden", "the images API is off: set HUIMAGES_UPLOAD_TOKEN")
        verdict = bearer(environ, self.service.guesses, settings.upload_token, settings.admin_token)
        if verdict is None:
            raise HttpError(
                "401 Unauthorized",
                "send Authorization: Bearer <HUIMAGES_UPLOAD_TOKEN>",
                [("WWW-Authenticate", 'Bearer realm="huimages"')],
            )
        if not verdict:
            raise HttpError("403 Forbidden", "the token is not valid here")

    # -- POST /images --------------------------------------------------------

    def _upload(self, environ: Environ, start_response: StartResponse, query: str) -> Iterable[bytes]:
        content_type = environ.get("CONTENT_TYPE", "")
        kind = content_type.split(";", 1)[0].strip().lower()
        if not (kind.startswith("image/") or kind in ("application/octet-stream", "multipart/form-data")):
            raise HttpError(
                "415 Unsupported Media Type",
                f"the body is {kind or 'untyped'}: send an image (Content-Type image/... or"
                f" application/octet-stream; the bytes decide, {ACCEPTED_NAMES}) or multipart/form-data",
            )
        body = read_body(environ, self.service.settings.limits.max_upload_bytes)
        if kind == "multipart/form-data":
            uploads, fields = parse_multipart(content_type, body)
        else:
            params = dict(urllib.parse.parse_qsl(query))
            uploads, fields = [Upload(body, params.get("filename", ""), kind)], params
        answers, created = self.store(uploads, _metadata(fields))
        status = "201 Created" if created else "200 OK"
        if kind == "multipart/form-data":
            return json_response(start_response, status, {"images": answers})
        return json_response(start_response, status, answers[0], [("Location", f"/images/{answers[0]['id']}")])

    def store(self, uploads: list[Upload], metadata: Mapping[str, Any]) -> tuple[list[dict[str, Any]], bool]:
        """Check every file (decode it completely), then store each; their summaries, and whether any is new."""
        for upload in uploads:  # every file decodes, or nothing is stored
            settings = self.service.settings
            upload.ingested = ingest(upload.data, settings.limits, settings.master_side, settings.focus)
        answers, created = [], False
        for upload in uploads:
            image_id = compute_id(upload.data)
            known = bool(self.service.catalog.find_many([image_id]))
            self.service.ingest(
                upload.data,
                filename=upload.filename,
                content_type_hint=upload.content_type,
                prepared=upload.ingested,
                **metadata,
            )
            created |= not known
            answers.append({**self._summary(self.service.catalog.get_live(image_id)), "created": not known})
        return answers, created

    def _summary(self, doc: Doc) -> dict[str, Any]:
        return self._summaries([doc])[0]

    def _summaries(self, docs: list[Doc], *, full: bool = False) -> list[dict[str, Any]]:
        """What a client needs of each record: size, type, length and its URLs (``full``: the record too).

        One look-up of the CDN state for all of them; the records are in hand.
        """
        from huimages.client import Client

        ids = [str(doc["_id"]) for doc in docs]
        publisher = self.service.publisher
        published = publisher.published(ids) if publisher is not None and ids else {}
        client = Client(service=self.service).knowing(docs, published)
        names = ["o", *self.service.settings.sizes]
        urls = {name: client.scaled_imageurls(ids, name) for name in names}
        answers = []
        for image_id, doc in zip(ids, docs, strict=True):
            summary = {
                "id": image_id,
                "width": doc.get("width"),
                "height": doc.get("height"),
                "content_type": doc.get("content_type"),
                "length": doc.get("length"),
                "frames": doc.get("frames"),  # an animation's frames; 1: a still; None: not counted yet
                "focus": focus_of(doc).as_record(),
                "placeholder": doc.get("placeholder"),  # None: stored before placeholders (huimages focus --all)
                "urls": {name: urls[name][image_id] for name in names},
            }
            if full:
                record = {k: v for k, v in doc.items() if k not in ("_rev", "_attachments")}
                summary = {**record, **summary, "length": self.service.original_length(doc)}
                summary["cdn"] = published.get(image_id, {})
            answers.append(summary)
        return answers

    # -- GET ------------------------------------------------------------------

    def _record(self, image_id: str) -> dict[str, Any]:
        return self._summaries([self.service.catalog.get_live(image_id)], full=True)[0]

    def _browse(self, query: str) -> dict[str, Any]:
        params = dict(urllib.parse.parse_qsl(query))
        if "ids" in params:
            ids = [validate_id(i) for i in params["ids"].split(",") if i][:PAGE_LIMIT]
            known = self.service.catalog.find_many(ids)
            live = [known[i] for i in dict.fromkeys(ids) if i in known and not known[i].get("deleted")]
            return {"images": self._summaries(live, full=True)}
        try:
            limit = max(1, min(PAGE_LIMIT, int(params.get("limit", "50"))))
        except ValueError:
            raise HttpError("400 Bad Request", "limit must be a number from 1 to 100") from None
        after = params.get("after") or None
        if after is not None:
            validate_id(after)
        order = params.get("order", "id")
        if order not in ("id", "newest"):
            raise HttpError("400 Bad Request", "order is id or newest")
        found, following = self.browse(after, limit, params.get("q", ""), newest=order == "newest")
        summaries = self._summaries(found)
        for summary, doc in zip(summaries, found, strict=True):
            summary["title"] = doc.get("title") or []
        return {"images": summaries, "next": following}

    def browse(self, after: str | None, limit: int, text: str, *, newest: bool) -> tuple[list[Doc], str | None]:
        """Up to ``limit`` live records after ``after`` whose titles, references or file name hold ``text``.

        Returns them and the cursor of the next page (None at the end). A
        search reads at most 20 pages' worth of records per call.
        """
        read = self.service.catalog.newest_page if newest else self.service.catalog.page
        needle = text.strip().lower()
        found: list[Doc] = []
        scanned = 0
        while len(found) < limit and scanned < 20 * limit:  # a search reads at most 20 pages' worth
            docs = read(after, PAGE_LIMIT)
            if not docs:
                after = None
                break
            for doc in docs:
                scanned += 1
                after = str(doc["_id"])
                if not needle or needle in _searchable(doc):
                    found.append(doc)
                    if len(found) == limit:
                        break
        return found, after


def _searchable(doc: Mapping[str, Any]) -> str:
    titles = doc.get("title") or []
    parts = [*(titles if isinstance(titles, list) else [titles]), json.dumps(doc.get("references") or {})]
    parts.append(str(doc.get("filename", "")))
    return " ".join(str(p) for p in parts).lower()


def read_body(environ: Environ, limit: int, which: str = "(the upload limit, HUIMAGES_MAX_UPLOAD_BYTES)") -> bytes:
    """The request body, refused past ``limit`` bytes (413, naming ``which`` limit) before or while reading it."""
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH") or ""
    if length:
        try:
            expected = int(length)
        except ValueError:
            raise HttpError("400 Bad Request", "Content-Length is not a number") from None
        if expected > limit:
            raise _too_large(limit, which)
        data = _read(stream, expected)
        if len(data) < expected:
            raise HttpError("400 Bad Request", f"the body ended after {len(data)} of {expected} bytes; nothing stored")
        return data
    chunked = environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked"
    if not (chunked or environ.get("wsgi.input_terminated")):
        raise HttpError("411 Length Required", "send Content-Length, or a chunked body")
    data = _read(stream, limit + 1)
    if len(data) > limit:
        _read(stream, _DRAIN_BYTES)  # dropped: a client still sending when the server closes gets a reset, not the 413
        raise _too_large(limit, which)
    return data


_DRAIN_BYTES = 1 << 20  # how much more of a body found too large is read before the 413


def _read(stream: Any, most: int) -> bytes:
    parts, total = [], 0
    while total < most:
        try:
            chunk = stream.read(min(_CHUNK, most - total))
        except TimeoutError:  # the front's stall timeout: the client stopped sending
            raise HttpError("408 Request Timeout", "the body stopped arriving; nothing stored") from None
        if not chunk:
            break
        parts.append(chunk)
        total += len(chunk)
    return b"".join(parts)


def _too_large(limit: int, which: str) -> HttpError:
    return HttpError("413 Content Too Large", f"the body is over the limit of {limit:,} bytes {which}; nothing stored")


def parse_multipart(content_type: str, body: bytes) -> tuple[list[Upload], dict[str, str]]:
    """The files and the fields of a multipart/form-data body (at most ``MAX_PARTS`` of them together)."""
    _count_parts(content_type, body)
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        raise HttpError("400 Bad Request", "the multipart/form-data body has no parts (check its boundary)")
    uploads: list[Upload] = []
    fields: dict[str, str] = {}
    assert isinstance(message, EmailMessage)
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition") or ""
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is None:
            fields[str(name)] = data.decode("utf-8", "replace")
            continue
        kind = part.get_content_type()
        if not (kind.startswith("image/") or kind == "application/octet-stream"):
            raise HttpError("415 Unsupported Media Type", f"{filename} is {kind}, not an image; nothing stored")
        uploads.append(Upload(data, filename, kind))
    if not uploads:
        raise HttpError("400 Bad Request", "the form holds no file: add one or more files")
    return uploads, fields


def _count_parts(content_type: str, body: bytes) -> None:
    """Refuse a form of more than ``MAX_PARTS`` parts before parsing it (50,000 small fields took 10 s to parse)."""
    header = EmailMessage()
    header["Content-Type"] = content_type
    boundary = header.get_boundary()
    if not boundary:
        raise HttpError("400 Bad Request", "the multipart/form-data Content-Type names no boundary")
    parts = body.count(b"--" + boundary.encode("latin-1", "replace")) - 1  # the last delimiter closes the form
    if parts > MAX_PARTS:
        raise HttpError(
            "413 Content Too Large",
            f"the form has {parts:,} parts; at most {MAX_PARTS} files and fields are taken in one request",
        )


def _metadata(fields: Mapping[str, Any]) -> dict[str, Any]:
    """title, references (a JSON object, as text in a form), typ and timestamp (huImages' form), checked."""
    metadata: dict[str, Any] = {"timestamp": None}
    for name in ("title", "typ", "timestamp"):
        value = fields.get(name)
        if value is not None:
            if not isinstance(value, str):
                raise HttpError("400 Bad Request", f"{name} must be a string")
            metadata[name] = value
    if metadata["timestamp"] is not None and not _TIMESTAMP.fullmatch(metadata["timestamp"]):
        raise HttpError("400 Bad Request", "timestamp must look like 20240131T235959.000000 (huImages' form)")
    references = fields.get("references")
    if references is not None:
        if isinstance(references, str):
            references = _json_object(references.encode(), "references")
        if not isinstance(references, dict):
            raise HttpError("400 Bad Request", "references must be a JSON object")
        metadata["references"] = references
    return metadata


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    """A JSON object nested at most ``MAX_DEPTH`` levels."""
    try:
        value = json.loads(raw or b"{}")
    except RecursionError:
        raise InvalidText(what, f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError:
        raise HttpError("400 Bad Request", f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise HttpError("400 Bad Request", f"{what} must be a JSON object")
    check_value(what, value, strings=False)  # the fields' text is checked, by name, where it is stored
    return value
