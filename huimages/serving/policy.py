"""Which sizes may be rendered: the size policy and signed URLs.

Anyone who knows an image ID could otherwise make the server render any size
and burn CPU and disk. Sizes that are always allowed: ``o``, the named sizes
(by name or numeric form), ``150x150`` (huImages' default size) and
``HUIMAGES_ALLOWED_SIZES``. Any other size is
rendered under ``open`` without more ado; under ``named`` only with a
signature; and as soon as keys are configured, only with a signature, whatever
the policy. A signature is an HMAC-SHA256 of the exact path, extension
included (``/<size>/<id>.jpeg``, ``/<size>/<id>.webp``) with one of ``HUIMAGES_URL_KEYS`` (newest first: the
first key signs, all keys verify, so keys rotate without breaking URLs).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable

from huimages.config import Settings
from huimages.core.sizes import DEFAULT_SIZE, Size
from huimages.errors import SizeNotAllowed

_SIGNATURE_BYTES = 16  # 128 bits of HMAC-SHA256: ample against guessing, short in URLs


def sign(path: str, key: str) -> str:
    digest = hmac.new(key.encode(), path.encode("ascii"), hashlib.sha256).digest()[:_SIGNATURE_BYTES]
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def verify(path: str, signature: str, keys: Iterable[str]) -> bool:
    """Whether ``signature`` signs ``path`` with any of ``keys``, compared in constant time."""
    given = signature.encode("ascii", "replace")
    return any(hmac.compare_digest(sign(path, key).encode("ascii"), given) for key in keys)


class SizePolicy:
    def __init__(self, settings: Settings) -> None:
        self.mode = settings.signing.policy
        self.keys = tuple(settings.signing.keys)
        # 150x150 is the default size of every huImages scaled_* function, so pages are full of it.
        free = {"o", DEFAULT_SIZE, *settings.sizes, *settings.sizes.values(), *settings.signing.allowed_sizes}
        self.free = frozenset(free)

    def is_free(self, size: Size) -> bool:
        """Allowed without a signature (a crop around a focus as its centred crop: the service checks the focus)."""
        size = size.unfocused
        return size.token in self.free or size.spec in self.free

    def needs_signature(self, size: Size) -> bool:
        return not self.is_free(size) and bool(self.keys)

    def can_render(self, size: Size) -> bool:
        """Whether a URL of this size can be emitted that the server will render (signed if need be)."""
        return self.is_free(size) or bool(self.keys) or self.mode == "open"

    def signature_for(self, size: Size, path: str) -> str | None:
        """What the client appends to a URL it emits (None when no signature is needed)."""
        return sign(path, self.keys[0]) if self.needs_signature(size) else None

    def check(self, size: Size, path: str, signature: str | None) -> bool:
        """Raise ``SizeNotAllowed`` unless the policy lets ``path`` be rendered; True when a signature verified.

        Without keys nothing can verify, so a signature (``?s=``, ``?s=x``, a
        forged one) is ignored: the request counts as unsigned, and a
        stranger's budget applies to it. (It is not refused: URLs signed while
        keys were configured keep working after the keys are removed.)
        """
        if self.is_free(size):
            return False
        if self.keys:
            if signature is None:
                raise SizeNotAllowed(size.token, "this size needs a signed URL; emit URLs with the huimages client")
            if not verify(path, signature, self.keys):
                raise SizeNotAllowed(size.token, "the signature does not match this path")
            return True
        if self.mode == "named":
            raise SizeNotAllowed(size.token, "only named and allowed sizes are rendered here")
        return False
