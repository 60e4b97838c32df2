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
    lighttpd: str = ""  # the binary (HUIMAGES_LIGHTTPD); empty: found on PATH

    @classmethod
    def from_settings(
        cls, settings: Settings, environ: Mapping[str, str] | None = None, **options: object
    ) -> FrontConfig:
        limits = settings.limits
        options.setdefault(  # the longest a miss can take: waiting for a lock or a slot, then rendering
            "read_timeout", math.ceil(limits.lock_timeout + limits.render_wait + limits.render_timeout) + 30
        )
        options.setdefault("max_request_kb", math.ceil(limits.max_upload_bytes / 1024) + 64)  # and form fields
        options.setdefault("lighttpd", settings.lighttpd)
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
    """The lighttpd config text for ``cfg`` (lighttpd 1.4.56 or newer), from ``lighttpd.conf.j2`` beside this file."""
    import jinja2

    templates = jinja2.Environment(
        loader=jinja2.FileSystemLoader(FRONTS_DIR),
        autoescape=False,  # a config file, not HTML: every value is quoted by the quote filter instead
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    templates.filters["quote"] = _quote
    # lighttpd names the sockets of the backends it spawns <socket>-0, -1, ...: the queue's block uses them too.
    spawned = [Path(f"{cfg.socket}-{n}") for n in range(cfg.processes)]
    return templates.get_template("lighttpd.conf.j2").render(
        cfg=cfg,
        environment=sorted(cfg.environment.items()),
        copied=(*SECRET_NAMES, "MALLOC_ARENA_MAX"),
        sockets=spawned if cfg.external_socket is None else [cfg.external_socket],
        HIT_MAX_AGE=HIT_MAX_AGE,
        TEMP_SUFFIX=TEMP_SUFFIX,
    )


def find_lighttpd(configured: str = "") -> str | None:
    """``configured`` (the setting ``HUIMAGES_LIGHTTPD``) if given, else lighttpd on PATH or in the sbin folders."""
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    return shutil.which("lighttpd") or next(
        (p for p in ("/usr/sbin/lighttpd", "/usr/local/sbin/lighttpd") if os.access(p, os.X_OK)), None
    )


def missing_parts(configured: str = "") -> list[str]:
    """What is missing to run the front, in plain words (empty when nothing is)."""
    problems = []
    if find_lighttpd(configured) is None:
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
    problems = missing_parts(cfg.lighttpd)
    if problems:
        raise FrontUnavailable("; ".join(problems))
    exe = find_lighttpd(cfg.lighttpd)
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
