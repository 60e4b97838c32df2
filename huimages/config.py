"""Settings: one frozen object, grouped by concern, read once from the environment (and a file).

Every setting has exactly one name, used both as the environment variable and
as the key in the optional TOML file named by ``HUIMAGES_CONFIG``; the
environment wins over the file. The names are flat (they are huImages' and
AWS's), the object is grouped: ``settings.paths``, ``settings.limits``,
``settings.s3``, ``settings.couch``, ``settings.cdn``, ``settings.signing``.
Derived paths are resolved once, when the settings are built. Nothing here
runs at import time: callers build ``Settings.from_env()`` once and pass it
down.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from huimages.core.formats import DEFAULT_FORMATS, FORMATS, Encoding, available, parse_formats, split_format
from huimages.errors import ConfigurationError

#: HUIMAGES_FOCUS: faces (where the faces extra is installed) then saliency; saliency alone; none (centred crops).
FOCUS_MODES = ("auto", "saliency", "centre")
DEFAULT_SIZES: dict[str, str] = {
    "mini": "23x40",
    "thumb": "50x200",
    "sidebar": "179x600",
    "small": "240x160",
    "medium": "480x320",
    "full": "477x800",
    "vga": "640x480",
    "svga": "800x600",
    "xvga": "1024x768",
    "square": "75x75!",
}


@dataclasses.dataclass(frozen=True)
class Paths:
    """Where data lives on this host; every path absolute. Build with ``Paths.under(home)``."""

    home: Path
    cache_dir: Path
    originals_dir: Path
    catalog_file: Path
    originals_cache_dir: Path

    @classmethod
    def under(
        cls,
        home: Path | str,
        *,
        cache_dir: Path | str | None = None,
        originals_dir: Path | str | None = None,
        catalog_file: Path | str | None = None,
        originals_cache_dir: Path | str | None = None,
    ) -> Paths:
        """The paths of a data folder; a path not given is the usual one inside it."""
        root = Path(home).absolute()

        def pick(value: Path | str | None, default: str) -> Path:
            return Path(value).absolute() if value else root / default

        return cls(
            home=root,
            cache_dir=pick(cache_dir, "cache"),
            originals_dir=pick(originals_dir, "originals"),
            catalog_file=pick(catalog_file, "catalog.sqlite3"),
            originals_cache_dir=pick(originals_cache_dir, "originals-cache"),
        )

    @property
    def run_dir(self) -> Path:
        """Sockets and generated configs of the lighttpd front."""
        return self.home / "run"


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one request or one upload may cost."""

    max_side: int = 4096
    max_pixels: int = 50_000_000
    max_upload_bytes: int = 64 * 1024 * 1024
    # Photos have 3 to 30 pixels per byte of file (the sample photos: 3 to 20), flat PNG graphics a few
    # hundred; a file declaring far more is a decompression bomb. Checked above RATIO_FLOOR pixels; 0: off.
    max_pixels_per_byte: int = 1000
    # Counting 3,000 one-pixel TIFF pages takes 0.4 s here (10,000: 2.6 s; counting grows faster than linearly).
    max_frames: int = 3000
    # An animated render holds every output frame (RGBA) until it is encoded: 16 M pixels are 64 MB,
    # 100 frames of 400x400. A frame of 240x160 from a 480x360 GIF took about 10 ms here (docs/formats.md).
    max_animation_pixels: int = 16_000_000
    lock_timeout: float = 60.0
    render_timeout: float = 30.0
    retry_failed_after: float = 600.0  # a failed render of an original is answered from memory until then
    # What a stranger's unsigned URLs of sizes outside the named ones may cost (``serving.budget``); 0: no limit.
    # Counted in fixed minutes, so any 60 s hold at most twice these: 200 renders and 50 MB.
    unsigned_renders_per_minute: int = 100
    unsigned_mb_per_minute: int = 25
    unsigned_sizes_per_image: int = 20
    render_concurrency: int = 0  # 0: one per core of this process
    render_wait: float = 10.0
    # Requests that may wait for a slot; -1: four per slot (a page of new thumbnails from one browser waits its turn).
    render_queue: int = -1

    @property
    def render_slots(self) -> int:
        """Renders at once per process."""
        return self.render_concurrency or max(1, len(os.sched_getaffinity(0)))

    @property
    def render_waiting(self) -> int:
        """Requests that may wait for a render slot per process; more are refused at once."""
        return 4 * self.render_slots if self.render_queue < 0 else self.render_queue


@dataclasses.dataclass(frozen=True)
class S3Settings:
    """The S3 bucket of the originals (when ``bucket`` is set) and the credentials of every S3 call."""

    bucket: str | None = None
    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key_id: str | None = dataclasses.field(default=None, repr=False)
    secret_access_key: str | None = dataclasses.field(default=None, repr=False)


@dataclasses.dataclass(frozen=True)
class CouchSettings:
    """The CouchDB catalog (when ``server`` is set): images in ``db``, the CDN queue in ``cdn_db``."""

    server: str | None = dataclasses.field(default=None, repr=False)  # may carry a password
    db: str = "huimages"
    cdn_db: str = ""  # empty: "<db>_cdn"

    def __post_init__(self) -> None:
        if not self.cdn_db:
            object.__setattr__(self, "cdn_db", f"{self.db}_cdn")


@dataclasses.dataclass(frozen=True)
class CdnSettings:
    """CDN offload: derivatives uploaded to ``bucket``, served from ``url`` once uploaded."""

    bucket: str | None = None
    url: str | None = None
    sizes: tuple[str, ...] | None = None  # None: every size but o
    concurrency: int = 8
    max_attempts: int = 8
    retry_base: float = 30.0
    batch: int = 200
    lease_seconds: float = 30.0  # short: a run renews it every lease_renew seconds, so a dead run blocks briefly
    lease_renew: float = 10.0
    lookup_ttl: float = 10.0
    cloudfront_distribution_id: str | None = None

    def __post_init__(self) -> None:
        if self.url:
            object.__setattr__(self, "url", self.url.rstrip("/"))

    @property
    def enabled(self) -> bool:
        return bool(self.bucket)


@dataclasses.dataclass(frozen=True)
class SigningSettings:
    """Which sizes render for anyone: the size policy, its allow-list, and the URL signing keys."""

    policy: str = "open"
    allowed_sizes: tuple[str, ...] = ()
    keys: tuple[str, ...] = dataclasses.field(default=(), repr=False)


def _default_paths() -> Paths:
    return Paths.under("huimages-data")


def _default_formats() -> tuple[str, ...]:
    """jpeg, webp, avif and png: those of them this Pillow can encode (JPEG and PNG it always can)."""
    return tuple(name for name in DEFAULT_FORMATS if available(FORMATS[name]))


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything huimages can be told."""

    server_url: str = "http://127.0.0.1:8080/"
    title_urls: bool = True
    alt_addition: str = ""
    paths: Paths = dataclasses.field(default_factory=_default_paths)
    jpeg_quality: int = 85
    # Chosen on the sample photos (docs/benchmarks.md, "Formats"): at these the WebP and AVIF files are about
    # 0.6x and 0.5x of the JPEG's bytes at an SSIM within 0.004 of it, and speed 9 costs an AVIF a few ms more.
    formats: tuple[str, ...] = dataclasses.field(default_factory=_default_formats)
    webp_quality: int = 87
    avif_quality: int = 67
    avif_speed: int = 9
    master_side: int = 2048
    focus: str = "auto"  # how uploads find the focus crops are placed around (huimages.imaging.focus)
    prerender: tuple[str, ...] = ()
    sizes: Mapping[str, str] = dataclasses.field(default_factory=lambda: dict(DEFAULT_SIZES))
    limits: Limits = dataclasses.field(default_factory=Limits)
    s3: S3Settings = dataclasses.field(default_factory=S3Settings)
    couch: CouchSettings = dataclasses.field(default_factory=CouchSettings)
    backend_timeout: float = 10.0
    cdn: CdnSettings = dataclasses.field(default_factory=CdnSettings)
    signing: SigningSettings = dataclasses.field(default_factory=SigningSettings)
    admin_token: str | None = dataclasses.field(default=None, repr=False)
    upload_token: str | None = dataclasses.field(default=None, repr=False)
    log_format: str = "text"
    cache_max_bytes: int = 0  # 0: no bound (prune from cron, or not at all)
    cache_prune_interval: float = 300.0
    originals_cache_max_bytes: int = 0  # 0: as cache_max_bytes (the local copies of S3 originals and masters)
    housekeeping_interval: float = 60.0  # finishing deletes and uploads that faults left undone
    client_mode: str = "local"  # from_env resolves "auto" (see _client_mode)
    remote_cache_seconds: float = 30.0
    lighttpd: str = ""  # the binary; empty: lighttpd on PATH or in the usual sbin folders
    malloc_arena_max: int = 1  # glibc's arenas per server process (huimages.http.fronts.malloc)
    #: The settings the environment or the file named (the rest are defaults).
    given: frozenset[str] = dataclasses.field(default=frozenset(), repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.server_url.endswith("/"):
            object.__setattr__(self, "server_url", self.server_url + "/")
        _validate(self)

    def encoding(self, name: str) -> Encoding:
        """How derivatives in the format ``name`` are encoded (PNG is lossless: its quality is not used)."""
        quality = {"jpeg": self.jpeg_quality, "webp": self.webp_quality, "avif": self.avif_quality}.get(name, 100)
        return Encoding(FORMATS[name], quality, self.avif_speed)

    @property
    def originals_cache_bound(self) -> int:
        """Bytes the local copies of S3 originals and masters may take (0: no bound, or no S3 originals)."""
        if not self.s3.bucket:
            return 0
        return self.originals_cache_max_bytes or self.cache_max_bytes

    def child_environment(self, environ: Mapping[str, str]) -> dict[str, str]:
        """What a process started from this one needs (lighttpd's backends, the pruner): the resolved
        paths, the URL, the config file, and every other setting ``environ`` sets, secrets left out
        (lighttpd copies those from its own environment)."""
        paths = self.paths
        env = {
            "HUIMAGES_HOME": str(paths.home),
            "HUIMAGES_CACHE_DIR": str(paths.cache_dir),
            "HUIMAGES_ORIGINALS_DIR": str(paths.originals_dir),
            "HUIMAGES_CATALOG": str(paths.catalog_file),
            "IMAGESERVERURL": self.server_url,
        }
        for spec in SETTINGS_SPECS:
            if spec.name in environ and spec.name not in env and not spec.secret:
                env[spec.name] = environ[spec.name]
        if "HUIMAGES_CONFIG" in environ:
            env["HUIMAGES_CONFIG"] = environ["HUIMAGES_CONFIG"]
        return env

    def serving_at(self, host: str, port: int) -> Settings:
        """These settings for a server on ``host:port``: its own URL is the one the helpers emit,
        unless ``IMAGESERVERURL`` names another (a proxy, a CDN host, a public name)."""
        if "IMAGESERVERURL" in self.given:
            return self
        if host in ("", "0.0.0.0", "::"):
            host = "127.0.0.1"
        shown = f"[{host}]" if ":" in host else host
        return dataclasses.replace(self, server_url=f"http://{shown}:{port}/")

    @classmethod
    def at(cls, home: Path | str, **changes: Any) -> Settings:
        """Settings with the data folder ``home`` (and any other field given), for embedding and tests."""
        return cls(paths=Paths.under(home), **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``environ`` (default ``os.environ``) and the config file."""
        env = dict(os.environ if environ is None else environ)
        values: dict[str, Any] = {}
        config_file = env.get("HUIMAGES_CONFIG")
        if config_file:
            values.update(_read_file(Path(config_file)))
            unknown = sorted(set(values) - set(_BY_NAME))
            if unknown:
                raise ConfigurationError(
                    unknown[0],
                    f"unknown setting in {config_file}; see docs/configuration.md or `huimages settings` for the list",
                )
        values.update({k: v for k, v in env.items() if k in _BY_NAME})
        fields: dict[str, Any] = {}
        # In table order, so a later name (S3BUCKET's old alias HUIMAGES3BUCKET) wins over an earlier one.
        for spec in SETTINGS_SPECS:
            if spec.name not in values or values[spec.name] == "":
                continue
            raw = values[spec.name]
            try:
                fields[spec.field] = spec.cast(raw)
            except (TypeError, ValueError) as exc:
                shown = "(hidden)" if spec.secret else repr(raw)
                raise ConfigurationError(spec.name, f"cannot use {shown}: {exc}") from None
        fields["client_mode"] = _client_mode(fields.get("client_mode", "auto"), values)
        fields["given"] = frozenset(name for name, value in values.items() if value != "")
        return cls._from_fields(fields)

    @classmethod
    def _from_fields(cls, fields: Mapping[str, Any]) -> Settings:
        """Settings from dotted field names (``limits.max_side``), grouped here."""
        groups: dict[str, dict[str, Any]] = {}
        top: dict[str, Any] = {}
        for dotted, value in fields.items():
            group, _, name = dotted.rpartition(".")
            if group:
                groups.setdefault(group, {})[name] = value
            else:
                top[name] = value
        paths = groups.pop("paths", {})
        top["paths"] = Paths.under(paths.pop("home", "huimages-data"), **paths)
        for group, values in groups.items():
            top[group] = _GROUPS[group](**values)
        return cls(**top)

    def value_of(self, spec: _Spec) -> Any:
        """The current value of one setting (for ``huimages settings`` and generated configs)."""
        value: Any = self
        for part in spec.field.split("."):
            value = getattr(value, part)
        return value


_GROUPS: dict[str, Callable[..., Any]] = {
    "limits": Limits,
    "s3": S3Settings,
    "couch": CouchSettings,
    "cdn": CdnSettings,
    "signing": SigningSettings,
}


@dataclasses.dataclass(frozen=True)
class _Spec:
    name: str
    field: str  # dotted: group.field, or a field of Settings itself
    cast: Callable[[Any], Any]
    help: str
    secret: bool = False  # never printed, never written into generated files


def _positive_int(raw: Any) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("must be a positive whole number")
    return value


def _positive_float(raw: Any) -> float:
    value = float(raw)
    if value <= 0:
        raise ValueError("must be a positive number")
    return value


def _non_negative_int(raw: Any) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("must not be negative")
    return value


def _non_negative_float(raw: Any) -> float:
    value = float(raw)
    if value < 0:
        raise ValueError("must not be negative")
    return value


def _bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be on or off (1/0, true/false, yes/no)")


def _log_format(raw: Any) -> str:
    value = str(raw).strip().lower()
    if value not in ("text", "json"):
        raise ValueError("must be text or json")
    return value


def _byte_size(raw: Any) -> int:
    from huimages.core.units import parse_bytes

    return parse_bytes(str(raw))


def _csv_list(raw: Any) -> tuple[str, ...]:
    items = raw if isinstance(raw, list) else str(raw).split(",")
    return tuple(str(item).strip() for item in items if str(item).strip())


def _sizes(raw: Any) -> dict[str, str]:
    """``name=WxH[!],...`` (or a TOML table) added to, or replacing, the named sizes."""
    merged = dict(DEFAULT_SIZES)
    if isinstance(raw, Mapping):
        merged.update({str(k): str(v) for k, v in raw.items()})
        return merged
    for item in str(raw).split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, spec = item.partition("=")
        if not sep:
            raise ValueError(f"{item!r} is not name=WxH")
        merged[name.strip()] = spec.strip()
    return merged


SETTINGS_SPECS: tuple[_Spec, ...] = (
    _Spec("IMAGESERVERURL", "server_url", str, "base URL the URL helpers emit"),
    _Spec("HUIMAGES_TITLE_URLS", "title_urls", _bool, "URLs carry the image's title, as huImages wrote them"),
    _Spec("HUIMAGESALTADDITION", "alt_addition", str, "text appended to generated alt texts (huImages' name)"),
    _Spec("HUIMAGES_HOME", "paths.home", Path, "data folder (cache, originals, catalog)"),
    _Spec("HUIMAGES_CACHE_DIR", "paths.cache_dir", Path, "derivative cache (lighttpd's document root)"),
    _Spec("HUIMAGES_ORIGINALS_DIR", "paths.originals_dir", Path, "filesystem originals store"),
    _Spec("HUIMAGES_CATALOG", "paths.catalog_file", Path, "SQLite catalog file (also holds the CDN queue)"),
    _Spec("HUIMAGES_JPEG_QUALITY", "jpeg_quality", int, "JPEG quality of derivatives, 1-95"),
    _Spec("HUIMAGES_FORMATS", "formats", _csv_list, "formats served by URL extension: jpeg,webp,avif,png"),
    _Spec("HUIMAGES_WEBP_QUALITY", "webp_quality", int, "WebP quality of derivatives, 1-100"),
    _Spec("HUIMAGES_AVIF_QUALITY", "avif_quality", int, "AVIF quality of derivatives, 1-100"),
    _Spec("HUIMAGES_AVIF_SPEED", "avif_speed", int, "AVIF encoder speed, 0 (smallest files) to 10 (fastest)"),
    _Spec("HUIMAGES_MASTER_SIDE", "master_side", _non_negative_int, "long side of each image's master; 0: none"),
    _Spec(
        "HUIMAGES_FOCUS",
        "focus",
        str,
        "how uploads find the focus of crops: auto (faces with the faces extra, then saliency), saliency, centre",
    ),
    _Spec("HUIMAGES_PRERENDER", "prerender", _csv_list, "sizes rendered at ingest: small,square,small.avif"),
    _Spec("HUIMAGES_MAX_SIDE", "limits.max_side", _positive_int, "largest width or height a URL may ask for"),
    _Spec("HUIMAGES_MAX_PIXELS", "limits.max_pixels", _positive_int, "largest original, in pixels"),
    _Spec("HUIMAGES_MAX_UPLOAD_BYTES", "limits.max_upload_bytes", _positive_int, "largest original, in bytes"),
    _Spec("HUIMAGES_MAX_FRAMES", "limits.max_frames", _positive_int, "most frames (or TIFF pages) of an original"),
    _Spec(
        "HUIMAGES_MAX_ANIMATION_PIXELS",
        "limits.max_animation_pixels",
        _positive_int,
        "most pixels of an animated derivative, frames x width x height",
    ),
    _Spec(
        "HUIMAGES_MAX_PIXELS_PER_BYTE",
        "limits.max_pixels_per_byte",
        _non_negative_int,
        "largest pixels per byte of an original over 4 megapixels; 0: no check",
    ),
    _Spec("HUIMAGES_LOCK_TIMEOUT", "limits.lock_timeout", _positive_float, "seconds to wait for a render in progress"),
    _Spec("HUIMAGES_SIZES", "sizes", _sizes, "named sizes to add or override: name=WxH[!],..."),
    _Spec("S3BUCKET", "s3.bucket", str, "S3 bucket of the originals (private); unset: filesystem store"),
    _Spec("HUIMAGESS3BUCKET", "s3.bucket", str, "the name huImages' example lighttpd.conf set (wins over S3BUCKET)"),
    _Spec("HUIMAGES3BUCKET", "s3.bucket", str, "old huImages name of S3BUCKET (wins over both)"),
    _Spec("AWS_ENDPOINT_URL", "s3.endpoint_url", str, "S3-compatible endpoint (standard AWS name)"),
    _Spec("AWS_ENDPOINT_URL_S3", "s3.endpoint_url", str, "S3 endpoint only (wins over AWS_ENDPOINT_URL)"),
    _Spec("AWS_DEFAULT_REGION", "s3.region", str, "S3 region"),
    _Spec("AWS_REGION", "s3.region", str, "S3 region (wins over AWS_DEFAULT_REGION)"),
    _Spec("AWS_ACCESS_KEY_ID", "s3.access_key_id", str, "S3 access key; unset: boto3's credential chain", True),
    _Spec("AWS_SECRET_ACCESS_KEY", "s3.secret_access_key", str, "S3 secret key", True),
    _Spec("HUIMAGES_ORIGINALS_CACHE_DIR", "paths.originals_cache_dir", Path, "local copies of S3 originals"),
    _Spec("COUCHSERVER", "couch.server", str, "CouchDB URL of the catalog; unset: SQLite", True),
    _Spec("HUIMAGESCOUCHSERVER", "couch.server", str, "old huImages name of COUCHSERVER (wins over it)", True),
    _Spec("HUIMAGES_COUCHDB_NAME", "couch.db", str, "CouchDB database of the image documents"),
    _Spec("HUIMAGES_CDN_COUCHDB_NAME", "couch.cdn_db", str, "CouchDB database of the CDN queue; default <db>_cdn"),
    _Spec("HUIMAGES_BACKEND_TIMEOUT", "backend_timeout", _positive_float, "seconds to wait for S3 or CouchDB"),
    _Spec("CDN_BUCKET", "cdn.bucket", str, "S3 bucket behind the CDN distribution; unset: no CDN"),
    _Spec("CDN_URL", "cdn.url", str, "the distribution's base URL, e.g. https://images.example.com"),
    _Spec("CDN_SIZES", "cdn.sizes", _csv_list, "sizes (URL tokens) that go to the CDN; default: all but o"),
    _Spec("CDN_CONCURRENCY", "cdn.concurrency", _positive_int, "uploads at once in a queue run"),
    _Spec("CDN_MAX_ATTEMPTS", "cdn.max_attempts", _positive_int, "failed uploads before a derivative is parked"),
    _Spec("CDN_RETRY_BASE", "cdn.retry_base", _non_negative_float, "seconds before the first retry; doubles"),
    _Spec("CDN_BATCH", "cdn.batch", _positive_int, "derivatives claimed per batch"),
    _Spec("CDN_LEASE_SECONDS", "cdn.lease_seconds", _positive_float, "how long a queue run's lease lasts unrenewed"),
    _Spec("CDN_LEASE_RENEW", "cdn.lease_renew", _positive_float, "seconds between a running run's lease renewals"),
    _Spec("CDN_LOOKUP_TTL", "cdn.lookup_ttl", _non_negative_float, "seconds a process caches 'is it uploaded'"),
    _Spec("CLOUDFRONT_DISTRIBUTION_ID", "cdn.cloudfront_distribution_id", str, "invalidate flushed sizes (optional)"),
    _Spec("HUIMAGES_ADMIN_TOKEN", "admin_token", str, "bearer token for admin URLs from other hosts", True),
    _Spec("HUIMAGES_UPLOAD_TOKEN", "upload_token", str, "bearer token of the images API (/images)", True),
    _Spec("HUIMAGES_CLIENT", "client_mode", str, "auto, local (this host reaches the store) or remote (over /images)"),
    _Spec(
        "HUIMAGES_REMOTE_CACHE_SECONDS",
        "remote_cache_seconds",
        _non_negative_float,
        "seconds a remote client keeps a record fetched from /images",
    ),
    _Spec("HUIMAGES_LOG_FORMAT", "log_format", _log_format, "text (access log in the combined format) or json"),
    _Spec(
        "HUIMAGES_CACHE_MAX_BYTES",
        "cache_max_bytes",
        _byte_size,
        "the server prunes its cache, least recently used first, beyond this (500M, 20G); 0: never",
    ),
    _Spec(
        "HUIMAGES_CACHE_PRUNE_INTERVAL",
        "cache_prune_interval",
        _positive_float,
        "seconds between the server's prunes (sooner when it wrote a tenth of the bound, not under a tenth of this)",
    ),
    _Spec(
        "HUIMAGES_ORIGINALS_CACHE_MAX_BYTES",
        "originals_cache_max_bytes",
        _byte_size,
        "with S3 originals: the server prunes its local copies of originals and masters beyond this; 0: the"
        " derivative cache's bound",
    ),
    _Spec(
        "HUIMAGES_HOUSEKEEPING_INTERVAL",
        "housekeeping_interval",
        _non_negative_float,
        "seconds between a server's housekeeping: deletes and uploads a fault left unfinished are finished; 0: never",
    ),
    _Spec("HUIMAGES_SIZE_POLICY", "signing.policy", str, "open (any size) or named (named and allowed sizes only)"),
    _Spec("HUIMAGES_ALLOWED_SIZES", "signing.allowed_sizes", _csv_list, "sizes allowed without a signature"),
    _Spec("HUIMAGES_URL_KEYS", "signing.keys", _csv_list, "URL signing keys, newest first (comma-separated)", True),
    _Spec("HUIMAGES_RENDER_TIMEOUT", "limits.render_timeout", _positive_float, "seconds a render may take"),
    _Spec(
        "HUIMAGES_UNSIGNED_RENDERS_PER_MINUTE",
        "limits.unsigned_renders_per_minute",
        _non_negative_int,
        "renders of unsigned, unnamed sizes per client address and minute; 0: no limit",
    ),
    _Spec(
        "HUIMAGES_UNSIGNED_MB_PER_MINUTE",
        "limits.unsigned_mb_per_minute",
        _non_negative_int,
        "MB those renders may write per client address and minute; 0: no limit",
    ),
    _Spec(
        "HUIMAGES_UNSIGNED_SIZES_PER_IMAGE",
        "limits.unsigned_sizes_per_image",
        _non_negative_int,
        "unsigned, unnamed sizes (with format) rendered per image at most; 0: no limit",
    ),
    _Spec(
        "HUIMAGES_RETRY_FAILED_AFTER",
        "limits.retry_failed_after",
        _non_negative_float,
        "seconds an original that failed to render is answered from memory; 0: never",
    ),
    _Spec(
        "HUIMAGES_RENDER_CONCURRENCY",
        "limits.render_concurrency",
        _non_negative_int,
        "renders at once per process; 0: one per core",
    ),
    _Spec("HUIMAGES_RENDER_WAIT", "limits.render_wait", _non_negative_float, "seconds a miss waits for a render slot"),
    _Spec("HUIMAGES_RENDER_QUEUE", "limits.render_queue", int, "misses that may wait for a slot; default 4 per slot"),
    _Spec(
        "HUIMAGES_LIGHTTPD", "lighttpd", str, "the lighttpd binary `huimages serve --lighttpd` runs; default: on PATH"
    ),
    _Spec(
        "MALLOC_ARENA_MAX",
        "malloc_arena_max",
        _positive_int,
        "glibc's malloc arenas per server process; default 1 (see huimages.http.fronts.malloc)",
    ),
)
_BY_NAME = {spec.name: spec for spec in SETTINGS_SPECS}


#: Settings that name a store: with any of them, ``HUIMAGES_CLIENT=auto`` means a local client.
_STORE_NAMES = frozenset(
    {
        "HUIMAGES_HOME",
        "HUIMAGES_ORIGINALS_DIR",
        "HUIMAGES_CATALOG",
        "S3BUCKET",
        "HUIMAGESS3BUCKET",
        "HUIMAGES3BUCKET",
        "COUCHSERVER",
        "HUIMAGESCOUCHSERVER",
    }
)


def _client_mode(mode: str, values: Mapping[str, Any]) -> str:
    """``auto``: remote when the upload token is set and no store is named, else local."""
    mode = str(mode).strip().lower()
    if mode not in ("auto", "local", "remote"):
        raise ConfigurationError("HUIMAGES_CLIENT", f"{mode!r} is none of auto, local, remote")
    if mode != "auto":
        return mode
    names_store = any(values.get(name) not in (None, "") for name in _STORE_NAMES)
    return "remote" if values.get("HUIMAGES_UPLOAD_TOKEN") and not names_store else "local"


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigurationError("HUIMAGES_CONFIG", f"no such file: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError("HUIMAGES_CONFIG", f"{path} is not valid TOML: {exc}") from None


#: The shortest admin or upload token start-up accepts (``./scripts/serve`` makes 32 characters).
MIN_TOKEN_LENGTH = 16


def _validate(settings: Settings) -> None:
    from huimages.core.sizes import parse_spec  # here, not at the top: sizes must not depend on config

    url = urlsplit(settings.server_url)
    if url.scheme not in ("http", "https") or not url.netloc:
        raise ConfigurationError(
            "IMAGESERVERURL", f"{settings.server_url!r} must be an absolute http(s) URL, e.g. http://127.0.0.1:8080/"
        )
    cdn = settings.cdn
    if cdn.lease_renew >= cdn.lease_seconds:
        raise ConfigurationError(
            "CDN_LEASE_RENEW", f"{cdn.lease_renew:g} s must be shorter than CDN_LEASE_SECONDS ({cdn.lease_seconds:g} s)"
        )
    if bool(cdn.bucket) != bool(cdn.url):
        raise ConfigurationError("CDN_URL", "CDN_BUCKET and CDN_URL go together: set both, or neither")
    if cdn.url:
        parts = urlsplit(cdn.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigurationError(
                "CDN_URL", f"{cdn.url!r} must be a fully qualified URL, e.g. https://images.example.com"
            )
    signing = settings.signing
    if settings.focus not in FOCUS_MODES:
        raise ConfigurationError("HUIMAGES_FOCUS", f"{settings.focus!r} is none of {', '.join(FOCUS_MODES)}")
    if signing.policy not in ("open", "named"):
        raise ConfigurationError("HUIMAGES_SIZE_POLICY", f"{signing.policy!r} is neither 'open' nor 'named'")
    for key in signing.keys:
        if len(key) < 16:
            raise ConfigurationError("HUIMAGES_URL_KEYS", "every key needs at least 16 characters (use random bytes)")
    for name, secret in (
        ("HUIMAGES_ADMIN_TOKEN", settings.admin_token),
        ("HUIMAGES_UPLOAD_TOKEN", settings.upload_token),
    ):
        if secret is not None and len(secret) < MIN_TOKEN_LENGTH:
            raise ConfigurationError(
                name,
                f"a token needs at least {MIN_TOKEN_LENGTH} characters, this one has {len(secret)};"
                " make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(24))'",
            )
    for token in signing.allowed_sizes:
        try:
            parse_spec(token, settings.limits.max_side)
        except ValueError as exc:
            raise ConfigurationError("HUIMAGES_ALLOWED_SIZES", f"{token}: {exc}") from None
    try:
        object.__setattr__(settings, "formats", parse_formats(settings.formats))
    except ValueError as exc:
        raise ConfigurationError("HUIMAGES_FORMATS", str(exc)) from None
    for token in settings.prerender:
        size, extension = split_format(token)
        if extension is not None and extension not in settings.formats:
            served = ", ".join(settings.formats)
            message = f"{token}: {extension!r} is not a format served here ({served})"
            raise ConfigurationError("HUIMAGES_PRERENDER", message)
        try:
            parse_spec(settings.sizes.get(size, size), settings.limits.max_side)
        except ValueError as exc:
            raise ConfigurationError("HUIMAGES_PRERENDER", f"{token}: {exc}") from None
    if settings.master_side and settings.master_side < 256:
        raise ConfigurationError(
            "HUIMAGES_MASTER_SIDE", "a master needs at least 256 pixels on its long side (0: none)"
        )
    if not 1 <= settings.jpeg_quality <= 95:
        raise ConfigurationError("HUIMAGES_JPEG_QUALITY", f"{settings.jpeg_quality} is outside 1-95")
    for name, value, low, high in (
        ("HUIMAGES_WEBP_QUALITY", settings.webp_quality, 1, 100),
        ("HUIMAGES_AVIF_QUALITY", settings.avif_quality, 1, 100),
        ("HUIMAGES_AVIF_SPEED", settings.avif_speed, 0, 10),
    ):
        if not low <= value <= high:
            raise ConfigurationError(name, f"{value} is outside {low}-{high}")
    for name, spec in settings.sizes.items():
        if not name.isascii() or not name.isalpha() or not name.islower() or name == "o":
            raise ConfigurationError("HUIMAGES_SIZES", f"size name {name!r} must be lower-case ASCII letters, not 'o'")
        try:
            parse_spec(spec, settings.limits.max_side)
        except ValueError as exc:
            raise ConfigurationError("HUIMAGES_SIZES", f"{name}={spec}: {exc}") from None
