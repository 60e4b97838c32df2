"""The modern client API: store images, emit URLs and ``<img>`` tags.

``Client`` methods carry huImages' names, arguments and defaults (sizes
default to ``150x150``), but raise ``HuImagesError`` subclasses where huImages
returned ``{}``, ``None`` or ``(None, None)``; the module functions in
``huimages`` are the huImages-compatible adapters over a default client.

A client reaches the images through ``Images``: ``LocalImages`` on a host that
reaches the store itself, ``RemoteImages`` (``huimages.client.remote``) over a
server's images API. URLs, tags and dimensions are made here, the same way
for both.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from huimages.catalog.records import Doc, alt_text, url_title
from huimages.client.markup import img_tag, picture_tag, placeholder_style, srcset_value
from huimages.client.responsive import Candidate, density_candidates, width_candidates
from huimages.config import Settings
from huimages.core.focus import check_focus, focus_of
from huimages.core.formats import FORMATS, JPEG, Format, served_format
from huimages.core.ids import validate_id
from huimages.core.sizes import DEFAULT_SIZE, Size, output_dimensions, parse_size
from huimages.core.urls import SIGNATURE_PARAM, image_path, titled_path
from huimages.errors import ConfigurationError
from huimages.serving.deletes import DeleteReport
from huimages.serving.policy import SizePolicy
from huimages.serving.service import ImageService

DEFAULT_DENSITIES = (1, 2)
PICTURE_FORMATS = ("avif", "webp")  # best first: a browser takes the first <source> it can show


class Images(Protocol):
    """What a client asks of the store: written once locally, once over HTTP."""

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
    ) -> str: ...

    def update_metadata(
        self,
        image_id: str,
        *,
        timestamp: datetime.datetime | str | None,
        title: str,
        references: Mapping[str, Any] | None,
        typ: str,
    ) -> None: ...

    def delete(self, image_id: str) -> DeleteReport: ...

    def set_focus(self, image_id: str, point: tuple[float, float] | None) -> Doc:
        """Set the focus by hand (None: back to the one found at upload); the record after."""

    def record(self, image_id: str) -> Doc:
        """The record of an image that may be served (``ImageNotFound`` otherwise)."""

    def document(self, image_id: str) -> Doc:
        """The record as ``get_imagedoc`` gives it (a local catalog also gives one marked deleted)."""

    def records(self, image_ids: Iterable[str]) -> dict[str, Doc]:
        """The records of those of ``image_ids`` that exist."""

    def length(self, image_id: str) -> int: ...

    def cdn_urls(self, size_token: str, image_ids: list[str], fmt: Format) -> dict[str, str]:
        """CDN URLs of those derivatives that are uploaded."""

    def derivative_bytes(self, size: Size, image_id: str, url: str) -> bytes:
        """The JPEG bytes of a derivative: rendered here if need be, or fetched from ``url`` (the server's)."""

    def random_id(self) -> str: ...

    def next_id(self, image_id: str) -> str: ...

    def previous_id(self, image_id: str) -> str: ...


@dataclasses.dataclass
class _PageMemo:
    """What one page has read: records by ID, and CDN URLs by (size, format) and ID (None: not uploaded)."""

    records: dict[str, Doc] = dataclasses.field(default_factory=dict)
    cdn: dict[tuple[str, str], dict[str, str | None]] = dataclasses.field(default_factory=dict)


class LocalImages:
    """``Images`` on a host that reaches the store (filesystem or S3, SQLite or CouchDB) itself."""

    def __init__(self, service: ImageService) -> None:
        self.service = service

    def save(self, data: bytes, **metadata: Any) -> str:
        return self.service.ingest(data, **metadata)

    def update_metadata(self, image_id: str, **metadata: Any) -> None:
        self.service.update_metadata(image_id, **metadata)

    def delete(self, image_id: str) -> DeleteReport:
        return self.service.delete(image_id)

    def set_focus(self, image_id: str, point: tuple[float, float] | None) -> Doc:
        return self.service.set_focus(image_id, point)

    def record(self, image_id: str) -> Doc:
        return self.service.record(image_id)

    def document(self, image_id: str) -> Doc:
        return self.service.catalog.get(image_id)

    def records(self, image_ids: Iterable[str]) -> dict[str, Doc]:
        return self.service.catalog.find_many(image_ids)

    def length(self, image_id: str) -> int:
        return self.service.original_length(self.service.catalog.get(image_id))

    def cdn_urls(self, size_token: str, image_ids: list[str], fmt: Format) -> dict[str, str]:
        publisher = self.service.publisher
        return publisher.urls(size_token, image_ids, fmt) if publisher is not None else {}

    def derivative_bytes(self, size: Size, image_id: str, url: str) -> bytes:
        return self.service.derivative(size, image_id).read()  # no HTTP round trip

    def random_id(self) -> str:
        return self.service.random_image()

    def next_id(self, image_id: str) -> str:
        return self.service.neighbour(image_id, following=True)

    def previous_id(self, image_id: str) -> str:
        return self.service.neighbour(image_id, following=False)


class Client:
    """huimages for one site: built from ``Settings`` (default: the environment).

    With ``HUIMAGES_CLIENT=remote`` (or ``auto``, the upload token set and no
    store named) the client works over the images API of ``IMAGESERVERURL``.
    """

    def __init__(self, settings: Settings | None = None, *, service: ImageService | None = None) -> None:
        self._service: ImageService | None = None
        self._memo: _PageMemo | None = None
        self.images: Images
        if service is None:
            settings = settings or Settings.from_env()
            if settings.client_mode == "remote":
                from huimages.client.remote import RemoteImages

                self.settings, self.policy = settings, SizePolicy(settings)
                self.images = RemoteImages(settings)
                return
            service = ImageService.from_settings(settings)
        self._service, self.settings, self.policy = service, service.settings, service.policy
        self.images = LocalImages(service)

    def for_one_page(self) -> Client:
        """This client, reading each record and each CDN look-up at most once.

        For one page that shows many URLs, tags and ``<picture>`` elements of
        a few images (with CouchDB each read is a request). It does not see
        changes made after its first read: use it for one page, then drop it.
        """
        page = copy.copy(self)
        page._memo = _PageMemo()
        return page

    def knowing(self, docs: Iterable[Doc], published: Mapping[str, Mapping[str, str]]) -> Client:
        """``for_one_page``, already holding these records and their CDN URLs (``CdnPublisher.published``).

        The URLs, tags and srcsets of these images in the named sizes then
        cost no read at all: a listing reads its records in one query and its
        CDN state in one more, whatever its length.
        """
        page = self.for_one_page()
        assert page._memo is not None
        records = page._memo.records
        records.update({str(doc["_id"]): doc for doc in docs})
        for size in {self.parse_size(name) for name in self.settings.sizes}:
            placed = {i: self._placed(size, doc).spec for i, doc in records.items()}  # a crop: around its focus
            for fmt in self.settings.formats:
                for image_id, spec in placed.items():
                    found = published.get(image_id, {}).get(f"{spec}.{fmt}")
                    page._memo.cdn.setdefault((spec, fmt), {})[image_id] = found
        return page

    @property
    def remote(self) -> bool:
        return self._service is None

    @property
    def service(self) -> ImageService:
        """The local service (store, catalog, cache); a remote client has none."""
        if self._service is None:
            raise ConfigurationError(
                "HUIMAGES_CLIENT", "this client works over the images API and has no local store; set HUIMAGES_HOME"
            )
        return self._service

    def parse_size(self, token: str) -> Size:
        """A size token (``small``, ``150x150!``, ``o``) under this site's named sizes and limits."""
        return parse_size(token, self.settings.sizes, self.settings.limits.max_side)

    def output_format(self, extension: str) -> Format:
        return served_format(extension, self.settings.formats)

    # -- storing --------------------------------------------------------------

    def save_image(
        self,
        imagedata: bytes,
        contenttype: str | None = None,
        timestamp: datetime.datetime | str | None = None,
        title: str = "",
        references: Mapping[str, Any] | None = None,
        filename: str = "image.jpeg",
        typ: str = "",
    ) -> str:
        """Store an image; returns its ID. Saving the same bytes again merges the metadata.

        The stored content type is the one detected from the bytes, which
        cannot lie; ``contenttype`` is only a hint (a mismatch is logged).
        ``filename`` is kept from the first save (alt texts and URL titles
        fall back to it). Raises ``InvalidImage`` or ``ImageTooLarge`` and
        stores nothing for bad input.
        """
        return self.images.save(
            imagedata,
            timestamp=timestamp,
            title=title,
            references=references,
            typ=typ,
            filename=filename,
            content_type_hint=contenttype,
        )

    def update_metadata(
        self,
        doc_id: str,
        timestamp: datetime.datetime | str | None = None,
        title: str = "",
        references: Mapping[str, Any] | None = None,
        typ: str = "",
    ) -> str:
        """Merge metadata as ``save_image`` does, without bytes; returns the ID (``UnknownImage`` if none)."""
        self.images.update_metadata(doc_id, timestamp=timestamp, title=title, references=references, typ=typ)
        return doc_id

    def set_title(self, imageid: str, title: str) -> None:
        """Add a title the image does not have yet (the newest is the alt text)."""
        self.images.update_metadata(imageid, timestamp=None, title=title, references=None, typ="")

    def delete_image(self, imageid: str) -> DeleteReport:
        """Delete the image everywhere (record, original, derivatives, CDN); an unknown ID is not an error.

        The report says what a store that did not answer still keeps
        (``remaining``); that is removed by the next queue run or sweep.
        """
        return self.images.delete(imageid)

    def set_focus(self, imageid: str, focus: tuple[float, float] | None) -> dict[str, Any]:
        """Set where the image's crops are placed: ``(x, y)`` as fractions (0 to 1) of the upright image.

        ``set_focus(id, None)`` goes back to the focus found at upload (faces,
        saliency or the centre). Returns the focus now in force
        (``{"x", "y", "source"}``). The helpers name new URLs for the image's
        crops at once; the URLs they named before keep answering.
        """
        point = None if focus is None else check_focus(focus)
        doc = self.images.set_focus(validate_id(imageid), point)
        if self._memo is not None:
            self._memo.records[imageid] = doc
        return focus_of(doc).as_record()

    # -- reading --------------------------------------------------------------

    def get_imagedoc(self, imageid: str) -> Doc:
        """The image's catalog document (a dict in huImages' CouchDB shape)."""
        return self.images.document(imageid)

    def get_length(self, imageid: str) -> int:
        """Length in bytes of the stored original."""
        return self.images.length(imageid)

    def imageurl(self, imageid: str, size: str = "o", *, format: str = "jpeg") -> str:
        """The same as ``scaled_imageurl``, with the original as the default size."""
        return self.scaled_imageurl(imageid, size, format=format)

    def scaled_imageurl(self, imageid: str, size: str = DEFAULT_SIZE, *, format: str = "jpeg") -> str:
        """The URL of a scaled version in ``format`` (jpeg, webp, avif, png): on the CDN once uploaded there."""
        return self.scaled_imageurls([imageid], size, format=format)[imageid]

    def scaled_imageurls(
        self, imageids: list[str], size: str = DEFAULT_SIZE, *, format: str = "jpeg"
    ) -> dict[str, str]:
        """``scaled_imageurl`` for many images at once, with one lookup for all of them.

        Named sizes are written in numeric form, as huImages did; with
        ``HUIMAGES_TITLE_URLS`` (default on) the image server URL carries the
        image's title as huImages wrote it.
        """
        fmt = self.output_format(format)
        return self._urls(self.parse_size(size), [validate_id(i) for i in imageids], fmt=fmt)

    def scaled_srcset(
        self,
        imageid: str,
        size: str = DEFAULT_SIZE,
        densities: tuple[float, ...] = DEFAULT_DENSITIES,
        *,
        widths: tuple[int, ...] | None = None,
        format: str = "jpeg",
    ) -> str:
        """A ``srcset`` value: ``"<url> 1x, <url> 2x"``, or ``"<url> 320w, ..."`` with ``widths``.

        A 2x candidate is the box doubled (``WxH!`` becomes ``2Wx2H!``); width
        candidates keep the box's shape. Candidates the original is too small
        for are left out, as are sizes the size policy would refuse to render.
        """
        doc = self._record(validate_id(imageid))
        parsed = self.parse_size(size)
        return srcset_value(self._candidate_urls(imageid, doc, parsed, densities, widths, format))

    def scaled_picture(
        self,
        imageid: str,
        size: str = DEFAULT_SIZE,
        formats: tuple[str, ...] = PICTURE_FORMATS,
        densities: tuple[float, ...] = DEFAULT_DENSITIES,
        *,
        widths: tuple[int, ...] | None = None,
        sizes: str | None = None,
        fallback: str = "jpeg",
        placeholder: bool | str = False,
        **attrs: Any,
    ) -> str:
        """``<picture>``: a ``<source>`` per format (best first), then a JPEG ``<img>`` fallback.

        The ``<img>`` carries ``src`` (the 1x JPEG), ``srcset``, ``width`` and
        ``height`` (of ``size``), the alt text (as ``scaled_tag`` makes it) and
        ``attrs``, all escaped. With ``widths``, pass ``sizes`` too (the
        layout's width, e.g. ``"(max-width: 600px) 100vw, 600px"``). Formats
        this server does not serve (``HUIMAGES_FORMATS``) are left out.
        ``fallback="png"`` makes the ``<img>`` a lossless PNG with its
        transparency: for logos and diagrams (the fallback's format must be
        served, or ``FormatNotServed``). ``placeholder`` as for ``scaled_tag``.
        """
        parsed = self.parse_size(size)
        doc = self._record(validate_id(imageid))
        attrs = placeholder_style(doc, placeholder, attrs)
        last = served_format(fallback, self.settings.formats)
        sources = []
        for name in formats:
            if name not in ("jpeg", last.name) and name in self.settings.formats:
                urls = self._candidate_urls(imageid, doc, parsed, densities, widths, name)
                sources.append((FORMATS[name].content_type, srcset_value(urls)))
        candidates = self._candidate_urls(imageid, doc, parsed, densities, widths, last.name)
        src = self._urls(parsed, [imageid], {imageid: doc}, last)[imageid]
        width, height = output_dimensions(parsed, int(doc["width"]), int(doc["height"]))
        extra = {"srcset": srcset_value(candidates), **({"sizes": sizes} if sizes else {}), **attrs}
        img = img_tag(src, width, height, alt_text(doc, self.settings.alt_addition), (), extra)
        return picture_tag(sources, img, sizes)

    def scaled_imagedata(self, imageid: str, size: str = DEFAULT_SIZE) -> bytes:
        """The bytes of a scaled version (JPEG): rendered here if need be, or fetched from the image server."""
        parsed, image_id = self.parse_size(size), validate_id(imageid)
        if parsed.crop:
            parsed = self._placed(parsed, self._record(image_id))
        return self.images.derivative_bytes(parsed, image_id, self._url(parsed, image_id, None, JPEG))

    def scaled_dimensions(self, imageid: str, size: str = DEFAULT_SIZE) -> tuple[int, int]:
        """(width, height) of the image served for ``scaled_imageurl(imageid, size)``."""
        doc = self._record(validate_id(imageid))
        return output_dimensions(self.parse_size(size), int(doc["width"]), int(doc["height"]))

    def scaled_tag(
        self, imageid: str, size: str = DEFAULT_SIZE, *args: str, placeholder: bool | str = False, **attrs: Any
    ) -> str:
        """An ``<img .../>`` tag: src, width, height, ``args`` verbatim, ``attrs`` escaped, and an alt text.

        Without an ``alt`` keyword the alt text is huImages': the newest title,
        else the file name, followed by ``HUIMAGESALTADDITION``. A trailing
        underscore is dropped from attribute names (``class_="x"``).
        ``placeholder=True`` shows the image's average colour until it loads
        (a ``style`` background); ``placeholder="preview"`` adds its blurred
        preview (a data URI of a few hundred bytes, from its ThumbHash).
        """
        parsed = self.parse_size(size)
        doc = self._record(imageid)
        width, height = output_dimensions(parsed, int(doc["width"]), int(doc["height"]))
        src = self._urls(parsed, [imageid], {imageid: doc})[imageid]
        attrs = placeholder_style(doc, placeholder, attrs)
        return img_tag(src, width, height, alt_text(doc, self.settings.alt_addition), args, attrs)

    # -- browsing -------------------------------------------------------------

    def get_random_imageid(self) -> str:
        return self.images.random_id()

    def get_next_imageid(self, imageid: str) -> str:
        return self.images.next_id(imageid)

    def get_previous_imageid(self, imageid: str) -> str:
        return self.images.previous_id(imageid)

    def _candidate_urls(
        self,
        image_id: str,
        doc: Doc,
        size: Size,
        densities: tuple[float, ...],
        widths: tuple[int, ...] | None,
        format_name: str,
    ) -> list[tuple[str, str]]:
        """(URL, descriptor) of each srcset candidate the server will render."""
        src_w, src_h, max_side = int(doc["width"]), int(doc["height"]), self.settings.limits.max_side
        candidates: list[Candidate] = (
            width_candidates(size, widths, src_w, src_h, max_side)
            if widths
            else density_candidates(size, densities, src_w, src_h, max_side)
        )
        fmt = self.output_format(format_name)
        allowed = [c for c in candidates if self.policy.can_render(c.size)]
        return [(self._urls(c.size, [image_id], {image_id: doc}, fmt)[image_id], c.descriptor) for c in allowed]

    @staticmethod
    def _placed(size: Size, doc: Doc | None) -> Size:
        """A crop placed around the image's focus (named by its URL); other sizes, and crops given one, unchanged."""
        if not size.crop or size.focus is not None or doc is None:
            return size
        return size.focused(focus_of(doc).point)

    def _urls(
        self, size: Size, ids: list[str], docs: dict[str, Doc] | None = None, fmt: Format = JPEG
    ) -> dict[str, str]:
        """CDN URLs where uploaded, else image server URLs (titled when the setting says so).

        A crop is placed around each image's focus, which its URL names: so
        the records are read first (in one query) when they are not given.
        """
        if not size.crop or size.focus is not None:
            return self._urls_of(size, ids, docs, fmt)
        known = dict(docs or {})
        unread = [i for i in ids if i not in known]
        if unread:
            known.update(self._records(unread))
        groups: dict[Size, list[str]] = {}
        for image_id in ids:
            groups.setdefault(self._placed(size, known.get(image_id)), []).append(image_id)
        urls: dict[str, str] = {}
        for placed, members in groups.items():
            urls.update(self._urls_of(placed, members, known, fmt))
        return urls

    def _urls_of(self, size: Size, ids: list[str], docs: dict[str, Doc] | None, fmt: Format) -> dict[str, str]:
        on_cdn = self._cdn_urls(size.spec, ids, fmt)
        missing = [i for i in ids if i not in on_cdn]
        if docs is None:
            docs = self._records(missing) if self.settings.title_urls and missing else {}
        return {i: on_cdn.get(i) or self._url(size, i, docs.get(i), fmt) for i in ids}

    def _record(self, image_id: str) -> Doc:
        if self._memo is None:
            return self.images.record(image_id)
        if image_id not in self._memo.records:
            self._memo.records[image_id] = self.images.record(image_id)
        return self._memo.records[image_id]

    def _records(self, image_ids: list[str]) -> dict[str, Doc]:
        if self._memo is None:
            return self.images.records(image_ids)
        known = self._memo.records
        unread = [i for i in image_ids if i not in known]
        if unread:
            known.update(self.images.records(unread))
        return {i: known[i] for i in image_ids if i in known}

    def _cdn_urls(self, size_spec: str, image_ids: list[str], fmt: Format) -> dict[str, str]:
        if self._memo is None:
            return self.images.cdn_urls(size_spec, image_ids, fmt)
        known = self._memo.cdn.setdefault((size_spec, fmt.name), {})
        unread = [i for i in image_ids if i not in known]
        if unread:
            found = self.images.cdn_urls(size_spec, unread, fmt)
            known.update({i: found.get(i) for i in unread})
        return {i: url for i in image_ids if (url := known[i]) is not None}

    def _url(self, size: Size, image_id: str, doc: Doc | None, fmt: Format) -> str:
        """The image server URL, signed (over the canonical path) when the size policy needs it."""
        canonical = image_path(size.spec, image_id, fmt)
        path = canonical
        if doc is not None and self.settings.title_urls:
            path = titled_path(size.spec, image_id, url_title(doc), fmt)
        signature = self.policy.signature_for(size, canonical)
        query = f"?{SIGNATURE_PARAM}={signature}" if signature else ""
        return f"{self.settings.server_url}{path[1:]}{query}"
