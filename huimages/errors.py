"""One exception root for everything huimages raises on purpose.

Backends translate their own errors (OSError, sqlite3, boto3, CouchDB) into
these classes; only ``huimages.http.app`` turns them into HTTP statuses. Each class
carries the context a caller needs to act on it, not just a message.
"""

from __future__ import annotations


class HuImagesError(Exception):
    """Root of all huimages errors."""


class ConfigurationError(HuImagesError):
    """A setting is missing or has a value that cannot work."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name


class InvalidImageId(HuImagesError, ValueError):
    """A string is not a well-formed image ID."""

    def __init__(self, value: str, reason: str) -> None:
        super().__init__(f"invalid image ID {value[:80]!r}: {reason}")
        self.value = value
        self.reason = reason


class InvalidSize(HuImagesError, ValueError):
    """A size string is not part of the URL grammar, or exceeds the limits."""

    def __init__(self, value: str, reason: str) -> None:
        super().__init__(f"invalid size {value[:40]!r}: {reason}")
        self.value = value
        self.reason = reason


class InvalidImage(HuImagesError, ValueError):
    """Bytes that are not a readable image of an accepted format."""

    def __init__(self, reason: str, image_id: str | None = None) -> None:
        super().__init__(reason if image_id is None else f"image {image_id}: {reason}")
        self.reason = reason
        self.image_id = image_id


class InvalidText(HuImagesError, ValueError):
    """Text to store that holds a character no page or header can carry, or a JSON body nested too deep."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class EncodeFailed(InvalidImage):
    """The pixels decoded, but the encoder of one output format refused them (this derivative only)."""


class AnimationTooLarge(EncodeFailed):
    """An animated derivative would hold more pixels than ``HUIMAGES_MAX_ANIMATION_PIXELS`` (this derivative only)."""

    def __init__(self, reason: str, limit: int, actual: int) -> None:
        super().__init__(reason)
        self.limit = limit
        self.actual = actual


class InvalidFocus(HuImagesError, ValueError):
    """A focus that is not two fractions from 0 to 1."""


class ImageTooLarge(InvalidImage):
    """An image whose declared size exceeds a configured limit."""

    def __init__(self, reason: str, limit: int, actual: int) -> None:
        super().__init__(reason)
        self.limit = limit
        self.actual = actual


class ImageNotFound(HuImagesError, LookupError):
    """No image with this ID is stored (or its original is gone)."""

    def __init__(self, image_id: str, where: str = "catalog") -> None:
        super().__init__(f"no image {image_id} in the {where}")
        self.image_id = image_id
        self.where = where


class UnknownImage(ImageNotFound):
    """The catalog has no record of this ID: never stored, or deleted."""


class UnknownFocus(ImageNotFound):
    """A crop URL names a focus this image never had (only its focus now and before are rendered)."""

    def __init__(self, image_id: str, token: str) -> None:
        HuImagesError.__init__(
            self,
            f"image {image_id} has no focus {token.partition('@')[2]!r}: crop URLs name the image's own focus"
            ' (emit them with the huimages client); set one with PATCH /images/<id> {"focus": [x, y]}',
        )
        self.image_id = image_id
        self.where = "focus"


class EmptyStore(HuImagesError, LookupError):
    """Browsing (random/next/previous) asked of a store that holds no image."""

    def __init__(self) -> None:
        super().__init__("the catalog holds no images yet: save one with save_image() first")


class StorageError(HuImagesError):
    """A backend failed in a way a retry will not fix by itself (an I/O fault)."""

    def __init__(self, backend: str, reason: str) -> None:
        super().__init__(f"{backend}: {reason}")
        self.backend = backend
        self.reason = reason


class CorruptOriginal(StorageError):
    """A stored original whose bytes do not match its ID (its SHA-1 differs): this copy is bad."""

    def __init__(self, backend: str, image_id: str, where: str) -> None:
        super().__init__(backend, f"{image_id} in {where} does not match its ID (corrupt object)")
        self.image_id = image_id


class DiskFull(StorageError):
    """A write found no space left on its disk (ENOSPC, EDQUOT); nothing partial was kept.

    The message names no path (the log line does): clients learn only to try again.
    """

    def __init__(self, backend: str, retry_after: int = 10) -> None:
        super().__init__(backend, "no space left on the server's disk; try again shortly")
        self.retry_after = retry_after


class BackendUnavailable(StorageError):
    """A backend did not answer; the same request may succeed after ``retry_after`` s."""

    def __init__(self, backend: str, reason: str, retry_after: int = 5) -> None:
        super().__init__(backend, f"unavailable: {reason}")
        self.retry_after = retry_after


class RenderBusy(HuImagesError):
    """Another worker holds the render lock for this derivative for too long."""

    def __init__(self, key: str, waited: float) -> None:
        super().__init__(f"{key} is being rendered by another worker; gave up after {waited:.0f} s")
        self.key = key
        self.retry_after = 2


class Overloaded(HuImagesError):
    """Every render slot of this process stayed busy for the whole wait; nothing was rendered."""

    def __init__(self, key: str, waited: float, slots: int) -> None:
        super().__init__(f"{key}: all {slots} render slots stayed busy for {waited:.1f} s; try again shortly")
        self.key = key
        self.retry_after = 2


class TooManyRequests(HuImagesError):
    """A client spent its budget of renders of unsigned sizes; it may try again after ``retry_after`` s (429)."""

    def __init__(self, reason: str, retry_after: int) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class InvalidPath(HuImagesError, ValueError):
    """A request path that tries to leave the URL grammar (traversal, encoding tricks)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SizeNotAllowed(HuImagesError, PermissionError):
    """The size policy refuses this size (unsigned, or signed for another path)."""

    def __init__(self, token: str, reason: str) -> None:
        super().__init__(f"size {token[:40]!r} refused: {reason}")
        self.token = token
        self.reason = reason


class RenderTimeout(HuImagesError):
    """A render ran over the configured wall time; nothing was cached."""

    def __init__(self, key: str, seconds: float, limit: float) -> None:
        super().__init__(f"rendering {key} took {seconds:.1f} s, over the limit of {limit:g} s; nothing was cached")
        self.key = key
        self.limit = limit
        self.retry_after = 30


class FormatNotServed(HuImagesError, LookupError):
    """A URL names a format (extension) this server does not serve."""

    def __init__(self, extension: str, allowed: tuple[str, ...]) -> None:
        super().__init__(f"the format {extension[:10]!r} is not served here; use one of: {', '.join(allowed)}")
        self.extension = extension
        self.allowed = allowed
