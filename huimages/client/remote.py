"""The image store over HTTP: a huimages server's images API, for sites with no store of their own.

A site whose environment names the image server (``IMAGESERVERURL``) and
``HUIMAGES_UPLOAD_TOKEN``, but no store, gets a ``Client`` backed by
``RemoteImages``: saves, metadata changes and deletes are requests to
``/images``; records (size, titles, CDN URLs) are fetched from
``/images/<id>`` and kept in the process for ``HUIMAGES_REMOTE_CACHE_SECONDS``.
The server's errors come back as the same ``HuImagesError`` classes a local
client raises.
"""

from __future__ import annotations

import datetime
import json
import logging
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from typing import Any

from huimages.catalog.records import Doc, format_timestamp
from huimages.config import Settings
from huimages.core.formats import Format
from huimages.core.ids import compute_id, validate_id
from huimages.core.sizes import Size
from huimages.errors import (
    BackendUnavailable,
    ConfigurationError,
    EmptyStore,
    HuImagesError,
    ImageTooLarge,
    InvalidImage,
    InvalidImageId,
    InvalidText,
    StorageError,
    UnknownImage,
)
from huimages.serving.deletes import DeleteReport

BATCH = 100  # records per GET /images?ids=
#: How fast an upload is assumed to be decoded and stored at the least: the answer's wait grows by a second per MB.
UPLOAD_BYTES_PER_SECOND = 1_000_000
_BACKEND = "image server"
logger = logging.getLogger(__name__)


class RemoteImages:
    """The store half of ``Client``, answered by a huimages server's ``/images`` API."""

    def __init__(self, settings: Settings) -> None:
        if not settings.upload_token:
            raise ConfigurationError("HUIMAGES_UPLOAD_TOKEN", "a remote client needs the images API's token")
        self.base = settings.server_url
        self.token = settings.upload_token
        self.timeout = settings.backend_timeout
        self.ttl = settings.remote_cache_seconds
        self._records: dict[str, tuple[float, Doc]] = {}
        self._lock = threading.Lock()

    # -- writing ----------------------------------------------------------------

    def save(
        self,
        data: bytes,
        *,
        timestamp: datetime.datetime | str | None,
        title: str,
        references: Mapping[str, Any] | None,
        typ: str,
        filename: str,
        content_type_hint: str | None,
    ) -> str:
        fields = _metadata(timestamp, title, references, typ)
        kind = content_type_hint if (content_type_hint or "").startswith("image/") else "application/octet-stream"
        body, content_type = _multipart(fields, filename or "image", str(kind), bytes(data))
        # The server decodes and stores the whole body before it answers: the wait grows with it.
        waiting = self.timeout + len(body) / UPLOAD_BYTES_PER_SECOND
        try:
            answer = self._call("POST", "/images", body, content_type, timeout=waiting)
        except BackendUnavailable as exc:
            return self._stored_after_all(compute_id(bytes(data)), waiting, exc)
        image_id = str(answer["images"][0]["id"])
        self._forget(image_id)
        return image_id

    def _stored_after_all(self, image_id: str, waited: float, failure: BackendUnavailable) -> str:
        """After an upload went unanswered: its ID if the server stored it anyway (IDs are content addresses)."""
        try:
            self._call("GET", f"/images/{image_id}", image_id=image_id)
        except HuImagesError:
            raise BackendUnavailable(
                _BACKEND,
                f"{self.base} did not answer the upload within {waited:.0f} s and has not stored {image_id}"
                " (yet); upload it again (storing the same bytes twice is harmless)",
                failure.retry_after,
            ) from failure
        self._forget(image_id)
        return image_id

    def update_metadata(
        self,
        image_id: str,
        *,
        timestamp: datetime.datetime | str | None,
        title: str,
        references: Mapping[str, Any] | None,
        typ: str,
    ) -> None:
        body = json.dumps(_metadata(timestamp, title, references, typ)).encode()
        record = self._call("PATCH", f"/images/{validate_id(image_id)}", body, "application/json", image_id)
        self._remember(record)

    def set_focus(self, image_id: str, point: tuple[float, float] | None) -> Doc:
        body = json.dumps({"focus": None if point is None else list(point)}).encode()
        record = self._call("PATCH", f"/images/{validate_id(image_id)}", body, "application/json", image_id)
        self._remember(record)
        return record

    def delete(self, image_id: str) -> DeleteReport:
        answer = self._call("DELETE", f"/images/{validate_id(image_id)}", image_id=image_id)
        self._forget(image_id)
        report = DeleteReport(image_id, remaining=[str(r) for r in answer.get("remaining") or []])
        report.error = str(answer.get("error") or "")
        if not report.finished:
            logger.warning("%s", answer.get("message") or report.describe())
        return report

    # -- reading ----------------------------------------------------------------

    def record(self, image_id: str) -> Doc:
        """The image's record (as ``GET /images/<id>`` gives it), from the process's cache while fresh."""
        validate_id(image_id)
        hit = self._fresh([image_id]).get(image_id)
        if hit is not None:
            return hit
        record = self._call("GET", f"/images/{image_id}", image_id=image_id)
        self._remember(record)
        return record

    def records(self, image_ids: Iterable[str]) -> dict[str, Doc]:
        """The records of those of ``image_ids`` that exist: cached ones, the rest in batches of 100."""
        wanted = [validate_id(i) for i in dict.fromkeys(image_ids)]
        found = self._fresh(wanted)
        missing = [i for i in wanted if i not in found]
        for start in range(0, len(missing), BATCH):
            batch = missing[start : start + BATCH]
            answer = self._call("GET", "/images?" + urllib.parse.urlencode({"ids": ",".join(batch)}))
            for record in answer["images"]:
                self._remember(record)
                found[str(record["_id"])] = record
        return found

    def length(self, image_id: str) -> int:
        return int(self.record(image_id)["length"])

    def cdn_urls(self, size_token: str, image_ids: list[str], fmt: Format) -> dict[str, str]:
        """CDN URLs of those derivatives the records say are uploaded."""
        key = f"{size_token}.{fmt.name}"
        records = self.records(image_ids)
        return {i: str(r["cdn"][key]) for i, r in records.items() if key in (r.get("cdn") or {})}

    def document(self, image_id: str) -> Doc:
        return self.record(image_id)  # the API serves no record marked deleted

    def derivative_bytes(self, size: Size, image_id: str, url: str) -> bytes:
        """The bytes at the derivative's URL on the server."""
        request = urllib.request.Request(url, method="GET")
        with self._open(request, None, self.timeout) as response:
            return bytes(response.read())

    def random_id(self) -> str:
        return str(self._call("GET", "/images/random")["id"])

    def next_id(self, image_id: str) -> str:
        return str(self._call("GET", f"/images/{validate_id(image_id)}/next", image_id=image_id)["id"])

    def previous_id(self, image_id: str) -> str:
        return str(self._call("GET", f"/images/{validate_id(image_id)}/previous", image_id=image_id)["id"])

    # -- the record cache ----------------------------------------------------------

    def _fresh(self, image_ids: list[str]) -> dict[str, Doc]:
        now = time.monotonic()
        with self._lock:
            hits = {i: self._records.get(i) for i in image_ids}
        return {i: hit[1] for i, hit in hits.items() if hit is not None and hit[0] > now}

    def _remember(self, record: Doc) -> None:
        if self.ttl > 0:
            with self._lock:
                self._records[str(record["_id"])] = (time.monotonic() + self.ttl, record)

    def _forget(self, image_id: str) -> None:
        with self._lock:
            self._records.pop(image_id, None)

    # -- HTTP -------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str | None = None,
        image_id: str | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(self.base + path.lstrip("/"), data=body, headers=headers, method=method)
        with self._open(request, image_id, timeout or self.timeout) as response:
            raw = response.read()
        if not raw:
            return {}
        answer = json.loads(raw)
        if not isinstance(answer, dict):
            raise StorageError(_BACKEND, f"{method} {path}: the answer is not a JSON object")
        return answer

    def _open(self, request: urllib.request.Request, image_id: str | None, timeout: float) -> Any:
        try:
            return urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as exc:
            with exc:
                raise _error(exc.code, _read_error(exc), image_id, self.base, exc.headers.get("Retry-After")) from None
        except (OSError, urllib.error.URLError) as exc:
            reason = getattr(exc, "reason", exc)
            raise BackendUnavailable(_BACKEND, f"{self.base} did not answer: {reason}") from None


def _metadata(
    timestamp: datetime.datetime | str | None, title: str, references: Mapping[str, Any] | None, typ: str
) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if timestamp is not None:
        fields["timestamp"] = format_timestamp(timestamp)
    if title:
        fields["title"] = title
    if references:
        fields["references"] = dict(references)
    if typ:
        fields["typ"] = typ
    return fields


def _multipart(fields: Mapping[str, Any], filename: str, kind: str, data: bytes) -> tuple[bytes, str]:
    """A multipart/form-data body with the metadata fields (references as JSON text) and one file."""
    boundary = "huimages-" + secrets.token_hex(16)
    parts = []
    for name, value in fields.items():
        text = json.dumps(value) if isinstance(value, dict) else str(value)
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n'
        parts.append(f"{head}Content-Type: text/plain; charset=utf-8\r\n\r\n".encode() + text.encode() + b"\r\n")
    if filename.isascii() and filename.isprintable() and not set(filename) & set('"\\'):
        name_param = f'filename="{filename}"'
    else:  # RFC 2231, which the server's parser decodes
        name_param = "filename*=utf-8''" + urllib.parse.quote(filename, safe="")
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; {name_param}\r\n'
    parts.append(f"{head}Content-Type: {kind}\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _read_error(exc: urllib.error.HTTPError) -> dict[str, Any]:
    try:
        answer = json.loads(exc.read() or b"{}")
    except (OSError, ValueError):
        return {}
    return answer if isinstance(answer, dict) else {}


def _error(
    status: int, answer: Mapping[str, Any], image_id: str | None, base: str, retry_after: str | None
) -> HuImagesError:
    """The server's error as the ``HuImagesError`` a local client would have raised."""
    message = str(answer.get("error") or f"HTTP {status}")
    kind = answer.get("kind")
    if status in (401, 403):
        return ConfigurationError("HUIMAGES_UPLOAD_TOKEN", f"{base} refused the request: {message}")
    if kind == "EmptyStore":
        return EmptyStore()
    if kind == "ImageTooLarge" or status == 413:
        return ImageTooLarge(message, 0, 0)
    if kind == "InvalidText":
        field, _, reason = message.partition(": ")
        return InvalidText(field, reason)
    if kind == "InvalidImageId":
        return InvalidImageId(image_id or "", message)
    if status == 422 or kind == "InvalidImage":
        return InvalidImage(message, image_id)
    if status == 404 and image_id:
        return UnknownImage(image_id, f"catalog of {base}")
    if status == 429 or status >= 500:
        wait = int(retry_after) if retry_after and retry_after.isdigit() else 5
        return BackendUnavailable(_BACKEND, f"{base} answered {status}: {message}", wait)
    return StorageError(_BACKEND, f"{base} answered {status}: {message}")
