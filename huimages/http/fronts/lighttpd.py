"""The production front: a lighttpd config, and running lighttpd with it.

lighttpd's document root is the derivative cache, so every hit is a static
file and never reaches Python, under any URL form huImages wrote. Anything
that is not a file (a miss, an error, ``/healthz``, ``/processqueue``) goes to
the FastCGI backends through lighttpd's 404 handler, as in huImages' config;
lighttpd spawns them from the package's ``huimages/server.py``. Hits get
their ``Cache-Control`` from mod_expire, keyed on the image content type: the
app's own answers (which carry their own header, ``no-store`` on errors) are
left as they are. A backend that dies mid-request or does not answer within
``read_timeout`` gives a plain 503 with ``Retry-After`` (a small mod_magnet
script, ``backend-error.lua``, run only on those answers), not lighttpd's
500 page.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from huimages.backends.files import TEMP_SUFFIX
from huimages.config import SETTINGS_SPECS, Settings
from huimages.core.urls import HIT_MAX_AGE
from huimages.errors import HuImagesError
from huimages.telemetry import metrics

FRONTS_DIR = Path(__file__).resolve().parent
PACKAGE_DIR = FRONTS_DIR.parent.parent  # huimages/, where lighttpd's bin-path server.py lives
INSTALL_HINT = "install it with: apt-get install lighttpd lighttpd-modules-lua"
#: Where Debian's lighttpd keeps its modules; mod_magnet comes with lighttpd-modules-lua.
MODULE_DIRS = (Path("/usr/lib/lighttpd"), Path("/usr/local/lib/lighttpd"), Path("/usr/lib64/lighttpd"))
SECRET_NAMES = (*(spec.name for spec in SETTINGS_SPECS if spec.secret), "AWS_SESSION_TOKEN", "AWS_PROFILE")


class FrontUnavailable(HuImagesError):
    """lighttpd (or a module of it) is missing, or refused the generated config."""


@dataclasses.dataclass(frozen=True)
class FrontConfig:
    """Everything the generated lighttpd config depends on."""

    cache_dir: Path
    run_dir: Path
    environment: Mapping[str, str]
    host: str = "127.0.0.1"
    port: int = 8080
    processes: int = 2
    python: str = sys.executable
    server_py: Path = PACKAGE_DIR / "server.py"
    external_socket: Path | None = None  # a backend started with `huimages fcgi --socket`
    errorlog: Path | None = None
    read_timeout: int = 130  # seconds a backend may stay silent on a request (not /processqueue)
    max_request_kb: int = 65600  # lighttpd's own bound on a request body (the app's is exact)

    @classmethod
    def from_settings(
        cls, settings: Settings, environ: Mapping[str, str] | None = None, **options: object
    ) -> FrontConfig:
        limits = settings.limits
        options.setdefault(  # the longest a miss can take: waiting for a lock or a slot, then rendering
            "read_timeout", math.ceil(limits.lock_timeout + limits.render_wait + limits.render_timeout) + 30
        )
        options.setdefault("max_request_kb", math.ceil(limits.max_upload_bytes / 1024) + 64)  # and form fields
        return cls(
            cache_dir=settings.paths.cache_dir,
            run_dir=settings.paths.run_dir,
            environment=settings.child_environment(os.environ if environ is None else environ),
            **options,  # type: ignore[arg-type]
        )

    @property
    def error_script(self) -> Path:
        """The mod_magnet script that turns lighttpd's backend errors into 503, beside ``server_py``."""
        return self.server_py.parent / "http" / "fronts" / "backend-error.lua"

    @property
    def body_script(self) -> Path:
        """The mod_magnet script that refuses chunked request bodies before they are read."""
        return self.server_py.parent / "http" / "fronts" / "request-body.lua"

    @property
    def uploads(self) -> Path:
        """Where lighttpd keeps request bodies it buffers (``server.upload-dirs``), in the run folder."""
        return self.run_dir / "uploads"

    @property
    def socket(self) -> Path:
        return self.external_socket or self.run_dir / "fastcgi.sock"


def _quote(value: object) -> str:
    text = str(value)
    if '"' in text or "\n" in text:
        raise ValueError(f"cannot put {text!r} into a lighttpd config string")
    return f'"{text}"'


def render_config(cfg: FrontConfig) -> str:
    """The lighttpd config text for ``cfg`` (lighttpd 1.4.56 or newer)."""
    env_lines = ",\n".join(f"            {_quote(k)} => {_quote(v)}" for k, v in sorted(cfg.environment.items()))
    if cfg.external_socket is None:
        backend = f"""        "socket" => {_quote(cfg.socket)},
        # lighttpd starts and restarts the backends itself; one per core.
        "bin-path" => {_quote(f"{cfg.python} {cfg.server_py}")},
        "max-procs" => {cfg.processes},
        "bin-environment" => (
{env_lines}
        ),
        # Secrets are never written here: lighttpd passes them on from its own environment
        # (and glibc's MALLOC_ARENA_MAX, when the operator sets one: see huimages.http.fronts.malloc).
        "bin-copy-environment" => ( {", ".join(_quote(n) for n in (*SECRET_NAMES, "MALLOC_ARENA_MAX"))} ),"""
        # The same spawned backends (lighttpd names their sockets <socket>-0, -1, ...), without a read timeout.
        sockets = [Path(f"{cfg.socket}-{n}") for n in range(cfg.processes)]
    else:
        backend = f"""        # A backend started separately: huimages fcgi --socket {cfg.external_socket}
        "socket" => {_quote(cfg.external_socket)},"""
        sockets = [cfg.external_socket]
    queue_backends = ",\n".join(
        f"""        ( "socket" => {_quote(path)}, "check-local" => "disable", "fix-root-scriptname" => "enable" )"""
        for path in sockets
    )
    errorlog = f"server.errorlog = {_quote(cfg.errorlog)}\n" if cfg.errorlog else ""
    return f"""# huimages front: lighttpd serves cache hits, FastCGI renders the misses.
# Generated by `huimages lighttpd-config`; regenerate it after changing settings.
# Check it with `lighttpd -tt -f FILE`; run it with `lighttpd -D -f FILE`.
# Needs the Debian package lighttpd (tested with 1.4.69, Debian 12).

server.modules = ( "mod_access", "mod_expire", "mod_rewrite", "mod_fastcgi", "mod_magnet", "mod_status" )

server.bind = {_quote(cfg.host)}
server.port = {cfg.port}
# The document root is the derivative cache: <size>/<id>.jpeg, exactly the URL path.
server.document-root = {_quote(cfg.cache_dir)}
{errorlog}
# Production: run as an unprivileged user. lighttpd then starts the backends
# as that user too; the cache, originals, catalog and run folders must be
# writable by it. lighttpd creates the FastCGI socket of the backends it
# spawns itself; a backend started separately (`huimages fcgi --socket`)
# creates its socket group-writable (umask 002), so put lighttpd's user in
# that backend's group.
#   server.username  = "www-data"
#   server.groupname = "www-data"

mimetype.assign = ( ".jpeg" => "image/jpeg", ".webp" => "image/webp", ".avif" => "image/avif" )
static-file.etags = "enable"
# IDs are content addresses, so ETag and Last-Modified stay valid forever;
# leave the inode out so a copied cache keeps its ETags.
etag.use-inode = "disable"

# Cache hits: a year in every cache (IDs are content addresses, so a file
# never changes). mod_expire only adds the header where the response has
# none, keyed on the type: the app's answers keep theirs (no-store on errors).
expire.mimetypes = ( "image/" => "access plus {HIT_MAX_AGE} seconds" )

# Hidden files are never served: the app answers them with 404. They are the
# state folder at the top (/.huimages: locks, failed renders, budgets) and the
# temporary files of writes in progress (*.tmp). lighttpd has already merged
# slashes and removed dot segments, so a prefix and a suffix catch every way to
# them; string comparisons, where a regular expression on every hit would cost
# more than the rest of this config. /processqueue goes to the app too.
$HTTP["url"] =^ "/." {{
    url.rewrite-once = ( "^(.*)$" => "/_huimages$1" )
}}
$HTTP["url"] =$ "{TEMP_SUFFIX}" {{
    url.rewrite-once = ( "^(.*)$" => "/_huimages$1" )
}}
$HTTP["url"] =^ "/processqueue" {{
    url.rewrite-once = ( "^(.*)$" => "/_huimages$1" )
}}
# huImages' URL forms /<size>/<id>/<title>.jpeg, /<size>/<id>.jpg and
# /<size>/<id> are the file /<size>/<id>.jpeg, and /<size>/<id>/<title>.webp
# (or .avif) is /<size>/<id>.webp, so once the file exists they are static
# hits too. Only a path that is not a file is matched against them: a hit at
# the canonical URL never is. (Named sizes such as /small/ are links to their
# numeric folder, made by the app.)
url.rewrite-if-not-file = (
    "^/([^/?]+)/([A-Z2-7]{{32}}01)(/[^/?]+\\.jpe?g|\\.jpg)?(\\?.*)?$" => "/$1/$2.jpeg$4",
    "^/([^/?]+)/([A-Z2-7]{{32}}01)/[^/?]+\\.(webp|avif)(\\?.*)?$" => "/$1/$2.$3$4",
)
# Only GET and HEAD read a cached file: every other method goes to the app,
# which answers 405 with Allow on image paths (and runs the queue on POST
# /processqueue).
# (Two string comparisons: cheaper per hit than a regular expression.)
# A chunked body is refused (411) before it is read: lighttpd would store it
# whole before the app could check its token (request-body.lua).
$HTTP["request-method"] != "GET" {{
    $HTTP["request-method"] != "HEAD" {{
        url.rewrite-once = ( "^(.*)$" => "/_huimages$1" )
        magnet.attract-raw-url-to = ( {_quote(cfg.body_script)} )
    }}
}}
# Whatever is not a file (a miss, /healthz, /processqueue) goes to the app,
# as in huImages' config; the app sees the URI as the client sent it.
server.error-handler-404 = "/_huimages/"

# Cache hits never reach Python, so the app's /metrics cannot count them:
# lighttpd's own counters (Total Accesses, bytes) are at /server-status?auto,
# from this host only (updated once a second). Hits = lighttpd's accesses minus
# huimages_http_responses_total of /metrics.
$HTTP["remote-ip"] == "127.0.0.1" {{
    status.status-url = "/server-status"
}}

# The app routes on REQUEST_URI, the URI as the client sent it.
# Uploads (POST /images): lighttpd refuses a body over this (413) from its
# Content-Length; under it, the body streams to the app as it comes, so the
# app checks the token and refuses a body over HUIMAGES_MAX_UPLOAD_BYTES
# before reading it. Chunked bodies are refused before they are read (above).
server.max-request-size = {cfg.max_request_kb}
server.upload-dirs = ( {_quote(cfg.uploads)} )

$HTTP["url"] =^ "/_huimages/" {{
    $REQUEST_HEADER["Content-Length"] =~ "^[0-9]+$" {{
        server.stream-request-body = 2
    }}
    fastcgi.balance = "least-connection"
    fastcgi.server = ( "/" => ((
{backend}
        "check-local" => "disable",
        "fix-root-scriptname" => "enable",
        # A backend that stays silent this long (stopped, hung) answers 503, as one that died does.
        "read-timeout" => {cfg.read_timeout},
    )))
    # lighttpd's own 500 (a backend died mid-request) and 504 (read-timeout)
    # become a plain 503 with Retry-After; the app's answers pass unchanged.
    magnet.attract-response-start-to = ( {_quote(cfg.error_script)} )
}}
# /processqueue runs the CDN upload queue: only from this host (every way to it
# has been rewritten to /_huimages/processqueue by now). A run lasts as long as
# its queue: the same backends, with no read timeout. (One block, after the one
# above: lighttpd merges blocks with the same condition into the first one's
# place, and this block's fastcgi.server must come after that one's.)
$HTTP["url"] =^ "/_huimages/processqueue" {{
    fastcgi.server = ( "/" => (
{queue_backends}
    ))
    $HTTP["remote-ip"] != "127.0.0.0/8" {{
        $HTTP["remote-ip"] != "::1" {{
            url.access-deny = ( "" )
        }}
    }}
}}
"""


def find_lighttpd() -> str | None:
    """``HUIMAGES_LIGHTTPD`` if set, else lighttpd on PATH or in the usual sbin folders."""
    configured = os.environ.get("HUIMAGES_LIGHTTPD")
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    return shutil.which("lighttpd") or next(
        (p for p in ("/usr/sbin/lighttpd", "/usr/local/sbin/lighttpd") if os.access(p, os.X_OK)), None
    )


def missing_parts() -> list[str]:
    """What is missing to run the front, in plain words (empty when nothing is)."""
    problems = []
    if find_lighttpd() is None:
        problems.append(f"lighttpd is not installed; {INSTALL_HINT}")
    elif not any((folder / "mod_magnet.so").is_file() for folder in MODULE_DIRS):
        problems.append(f"lighttpd's mod_magnet is not installed; {INSTALL_HINT}")
    return problems


def write_config(cfg: FrontConfig) -> Path:
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    cfg.cache_dir.mkdir(parents=True, exist_ok=True)
    cfg.uploads.mkdir(mode=0o700, exist_ok=True)
    path = cfg.run_dir / "lighttpd.conf"
    path.write_text(render_config(cfg))
    return path


def run_front(cfg: FrontConfig) -> int:
    """Run lighttpd in the foreground with ``cfg``; SIGINT/SIGTERM stop it and its backends."""
    problems = missing_parts()
    if problems:
        raise FrontUnavailable("; ".join(problems))
    exe = find_lighttpd()
    assert exe is not None
    conf = write_config(cfg)
    metrics.use_folder(cfg.run_dir / "metrics", wipe=True)  # the backends' values start from zero
    check = subprocess.run([exe, "-tt", "-f", str(conf)], capture_output=True, text=True)
    if check.returncode != 0:
        raise FrontUnavailable(f"lighttpd refused {conf}: {(check.stderr or check.stdout).strip()}")
    proc = subprocess.Popen([exe, "-D", "-f", str(conf)])

    def forward(signum: int, _frame: object) -> None:
        proc.send_signal(signal.SIGTERM)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, forward)
    return proc.wait()
