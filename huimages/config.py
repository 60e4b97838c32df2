"""Settings: one frozen object, read once from the environment (and a file).

Every setting has exactly one name, used both as the environment variable and
as the key in the optional TOML file named by ``HUIMAGES_CONFIG``; the
environment wins over the file. Nothing here runs at import time: callers build
``Settings.from_env()`` once and pass the object down.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from huimages.errors import ConfigurationError

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
class Settings:
    """Everything huimages can be told. Paths are absolute after ``from_env``."""

    server_url: str = "http://127.0.0.1:8080/"
    home: Path = Path("huimages-data")
    cache_dir: Path | None = None
    originals_dir: Path | None = None
    catalog_path: Path | None = None
    jpeg_quality: int = 85
    max_side: int = 4096
    max_pixels: int = 50_000_000
    max_upload_bytes: int = 64 * 1024 * 1024
    lock_timeout: float = 60.0
    sizes: Mapping[str, str] = dataclasses.field(default_factory=lambda: dict(DEFAULT_SIZES))
    # Production backends: S3 originals when s3_bucket is set, CouchDB when couch_server is.
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    aws_access_key_id: str | None = dataclasses.field(default=None, repr=False)
    aws_secret_access_key: str | None = dataclasses.field(default=None, repr=False)
    originals_cache_dir: Path | None = None
    couch_server: str | None = dataclasses.field(default=None, repr=False)  # may carry a password
    couch_db: str = "huimages"
    backend_timeout: float = 10.0
    # CDN offload: derivatives uploaded to cdn_bucket, served from cdn_url once uploaded.
    cdn_bucket: str | None = None
    cdn_url: str | None = None
    cdn_sizes: tuple[str, ...] | None = None  # None: every size but o
    cdn_concurrency: int = 8
    cdn_max_attempts: int = 8
    cdn_retry_base: float = 30.0
    cdn_batch: int = 200
    cdn_lease_seconds: float = 300.0
    cdn_lookup_ttl: float = 10.0
    cloudfront_distribution_id: str | None = None
    admin_token: str | None = dataclasses.field(default=None, repr=False)
    # Abuse resistance: which sizes render, and how long a render may take.
    size_policy: str = "open"
    allowed_sizes: tuple[str, ...] = ()
    url_keys: tuple[str, ...] = dataclasses.field(default=(), repr=False)
    render_timeout: float = 30.0

    def __post_init__(self) -> None:
        home = Path(self.home).absolute()
        if not self.server_url.endswith("/"):
            object.__setattr__(self, "server_url", self.server_url + "/")
        if self.cdn_url:
            object.__setattr__(self, "cdn_url", self.cdn_url.rstrip("/"))
        object.__setattr__(self, "home", home)
        for name, default in (
            ("cache_dir", "cache"),
            ("originals_dir", "originals"),
            ("catalog_path", "catalog.sqlite3"),
            ("originals_cache_dir", "originals-cache"),
        ):
            value = getattr(self, name)
            object.__setattr__(self, name, Path(value).absolute() if value else home / default)
        _validate(self)

    @property
    def cache(self) -> Path:
        assert self.cache_dir is not None
        return self.cache_dir

    @property
    def originals(self) -> Path:
        assert self.originals_dir is not None
        return self.originals_dir

    @property
    def catalog(self) -> Path:
        assert self.catalog_path is not None
        return self.catalog_path

    @property
    def originals_cache(self) -> Path:
        assert self.originals_cache_dir is not None
        return self.originals_cache_dir

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
                raise ConfigurationError(unknown[0], f"unknown setting in {config_file}; see README for the list")
        values.update({k: v for k, v in env.items() if k in _BY_NAME})
        kwargs: dict[str, Any] = {}
        # In table order, so a later name (S3BUCKET's old alias HUIMAGES3BUCKET) wins over an earlier one.
        for spec in SETTINGS_SPECS:
            if spec.name not in values or values[spec.name] == "":
                continue
            raw = values[spec.name]
            try:
                kwargs[spec.field] = spec.cast(raw)
            except (TypeError, ValueError) as exc:
                shown = "(hidden)" if spec.secret else repr(raw)
                raise ConfigurationError(spec.name, f"cannot use {shown}: {exc}") from None
        return cls(**kwargs)

    def with_overrides(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True)
class _Spec:
    name: str
    field: str
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


def _non_negative_float(raw: Any) -> float:
    value = float(raw)
    if value < 0:
        raise ValueError("must not be negative")
    return value


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
    _Spec("HUIMAGES_HOME", "home", Path, "data folder (cache, originals, catalog)"),
    _Spec("HUIMAGES_CACHE_DIR", "cache_dir", Path, "derivative cache (lighttpd's document root)"),
    _Spec("HUIMAGES_ORIGINALS_DIR", "originals_dir", Path, "filesystem originals store"),
    _Spec("HUIMAGES_CATALOG", "catalog_path", Path, "SQLite catalog file"),
    _Spec("HUIMAGES_JPEG_QUALITY", "jpeg_quality", int, "JPEG quality of derivatives, 1-95"),
    _Spec("HUIMAGES_MAX_SIDE", "max_side", _positive_int, "largest width or height a URL may ask for"),
    _Spec("HUIMAGES_MAX_PIXELS", "max_pixels", _positive_int, "largest original, in pixels"),
    _Spec("HUIMAGES_MAX_UPLOAD_BYTES", "max_upload_bytes", _positive_int, "largest original, in bytes"),
    _Spec("HUIMAGES_LOCK_TIMEOUT", "lock_timeout", _positive_float, "seconds to wait for a render in progress"),
    _Spec("HUIMAGES_SIZES", "sizes", _sizes, "named sizes to add or override: name=WxH[!],..."),
    _Spec("S3BUCKET", "s3_bucket", str, "S3 bucket of the originals (private); unset: filesystem store"),
    _Spec("HUIMAGES3BUCKET", "s3_bucket", str, "old huImages name of S3BUCKET (wins over it)"),
    _Spec("AWS_ENDPOINT_URL", "s3_endpoint_url", str, "S3-compatible endpoint (standard AWS name)"),
    _Spec("AWS_ENDPOINT_URL_S3", "s3_endpoint_url", str, "S3 endpoint only (wins over AWS_ENDPOINT_URL)"),
    _Spec("AWS_DEFAULT_REGION", "s3_region", str, "S3 region"),
    _Spec("AWS_REGION", "s3_region", str, "S3 region (wins over AWS_DEFAULT_REGION)"),
    _Spec("AWS_ACCESS_KEY_ID", "aws_access_key_id", str, "S3 access key; unset: boto3's credential chain", True),
    _Spec("AWS_SECRET_ACCESS_KEY", "aws_secret_access_key", str, "S3 secret key", True),
    _Spec("HUIMAGES_ORIGINALS_CACHE_DIR", "originals_cache_dir", Path, "local copies of S3 originals"),
    _Spec("COUCHSERVER", "couch_server", str, "CouchDB URL of the catalog; unset: SQLite", True),
    _Spec("HUIMAGESCOUCHSERVER", "couch_server", str, "old huImages name of COUCHSERVER (wins over it)", True),
    _Spec("HUIMAGES_COUCHDB_NAME", "couch_db", str, "CouchDB database name"),
    _Spec("HUIMAGES_BACKEND_TIMEOUT", "backend_timeout", _positive_float, "seconds to wait for S3 or CouchDB"),
    _Spec("CDN_BUCKET", "cdn_bucket", str, "S3 bucket behind the CDN distribution; unset: no CDN"),
    _Spec("CDN_URL", "cdn_url", str, "the distribution's base URL, e.g. https://images.example.com"),
    _Spec("CDN_SIZES", "cdn_sizes", _csv_list, "sizes (URL tokens) that go to the CDN; default: all but o"),
    _Spec("CDN_CONCURRENCY", "cdn_concurrency", _positive_int, "uploads at once in a queue run"),
    _Spec("CDN_MAX_ATTEMPTS", "cdn_max_attempts", _positive_int, "failed uploads before a derivative is parked"),
    _Spec("CDN_RETRY_BASE", "cdn_retry_base", _non_negative_float, "seconds before the first retry; doubles"),
    _Spec("CDN_BATCH", "cdn_batch", _positive_int, "derivatives claimed per batch"),
    _Spec("CDN_LEASE_SECONDS", "cdn_lease_seconds", _positive_float, "how long a queue run's lease lasts"),
    _Spec("CDN_LOOKUP_TTL", "cdn_lookup_ttl", _non_negative_float, "seconds a process caches 'is it uploaded'"),
    _Spec("CLOUDFRONT_DISTRIBUTION_ID", "cloudfront_distribution_id", str, "invalidate flushed sizes (optional)"),
    _Spec("HUIMAGES_ADMIN_TOKEN", "admin_token", str, "bearer token for admin URLs from other hosts", True),
    _Spec("HUIMAGES_SIZE_POLICY", "size_policy", str, "open (any size) or named (named and allowed sizes only)"),
    _Spec("HUIMAGES_ALLOWED_SIZES", "allowed_sizes", _csv_list, "sizes allowed without a signature: WxH[!],..."),
    _Spec("HUIMAGES_URL_KEYS", "url_keys", _csv_list, "URL signing keys, newest first (comma-separated)", True),
    _Spec("HUIMAGES_RENDER_TIMEOUT", "render_timeout", _positive_float, "seconds a render may take (503 after)"),
)
_BY_NAME = {spec.name: spec for spec in SETTINGS_SPECS}


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigurationError("HUIMAGES_CONFIG", f"no such file: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError("HUIMAGES_CONFIG", f"{path} is not valid TOML: {exc}") from None


def _validate(settings: Settings) -> None:
    from huimages.sizes import parse_spec  # here, not at the top: sizes must not depend on config

    url = urlsplit(settings.server_url)
    if url.scheme not in ("http", "https") or not url.netloc:
        raise ConfigurationError(
            "IMAGESERVERURL", f"{settings.server_url!r} must be an absolute http(s) URL, e.g. http://127.0.0.1:8080/"
        )
    if bool(settings.cdn_bucket) != bool(settings.cdn_url):
        raise ConfigurationError("CDN_URL", "CDN_BUCKET and CDN_URL go together: set both, or neither")
    if settings.cdn_url:
        cdn = urlsplit(settings.cdn_url)
        if cdn.scheme not in ("http", "https") or not cdn.netloc:
            raise ConfigurationError(
                "CDN_URL", f"{settings.cdn_url!r} must be a fully qualified URL, e.g. https://images.example.com"
            )
    if settings.size_policy not in ("open", "named"):
        raise ConfigurationError("HUIMAGES_SIZE_POLICY", f"{settings.size_policy!r} is neither 'open' nor 'named'")
    for key in settings.url_keys:
        if len(key) < 16:
            raise ConfigurationError("HUIMAGES_URL_KEYS", "every key needs at least 16 characters (use random bytes)")
    for token in settings.allowed_sizes:
        try:
            parse_spec(token, settings.max_side)
        except ValueError as exc:
            raise ConfigurationError("HUIMAGES_ALLOWED_SIZES", f"{token}: {exc}") from None
    if not 1 <= settings.jpeg_quality <= 95:
        raise ConfigurationError("HUIMAGES_JPEG_QUALITY", f"{settings.jpeg_quality} is outside 1-95")
    for name, spec in settings.sizes.items():
        if not name.isascii() or not name.isalpha() or not name.islower() or name == "o":
            raise ConfigurationError("HUIMAGES_SIZES", f"size name {name!r} must be lower-case ASCII letters, not 'o'")
        try:
            parse_spec(spec, settings.max_side)
        except ValueError as exc:
            raise ConfigurationError("HUIMAGES_SIZES", f"{name}={spec}: {exc}") from None
