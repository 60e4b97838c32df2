"""The project installed from its wheel into a fresh venv: lighttpd spawns the installed FastCGI entry."""

import os
import site
import subprocess
import sys
from pathlib import Path

import pytest

from huimages.core.urls import LIGHTTPD_HIT_CACHE_CONTROL
from huimages.http.fronts.lighttpd import missing_parts
from tests.imagetools import decode, jpeg
from tests.servers import REPO, free_port, get, running

pytestmark = pytest.mark.integration


def build_venv(tmp_path: Path) -> Path:
    """A venv with only huimages' wheel in it; its dependencies come from the test venv (no downloads)."""
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(dist), "."],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    [wheel] = dist.glob("huimages-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", str(wheel)],
        check=True,
        capture_output=True,
    )
    [packages] = (venv / "lib").glob("python3*/site-packages")
    # A path line, not a site dir: the test venv's own .pth files (its editable huimages) are not read.
    (packages / "test-dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return venv


def test_lighttpd_spawns_the_installed_entry(tmp_path: Path) -> None:
    problems = missing_parts()
    if problems:  # never a skip: ./scripts/test installs lighttpd
        pytest.fail("; ".join(problems))
    venv = build_venv(tmp_path)
    installed = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    outside = tmp_path / "elsewhere"  # not the checkout: nothing may be imported from it
    outside.mkdir()
    port = free_port()
    env = {
        "HUIMAGES_HOME": str(tmp_path / "home"),
        "IMAGESERVERURL": f"http://127.0.0.1:{port}/",
        "PYTHONPATH": "",
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
    }
    found = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import huimages; print(huimages.__file__)"],
        env={**os.environ, **env},
        cwd=outside,
        capture_output=True,
        text=True,
        check=True,
    )
    assert found.stdout.strip() == str(installed / "huimages" / "__init__.py")

    config = subprocess.run(
        [str(venv / "bin" / "huimages"), "lighttpd-config", "--port", str(port)],
        env={**os.environ, **env},
        cwd=outside,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f'"bin-path" => "{venv / "bin" / "python"} {installed / "huimages" / "server.py"}"' in config

    upload = subprocess.run(
        [str(venv / "bin" / "huimages"), "upload", str(_photo(tmp_path))],
        env={**os.environ, **env},
        cwd=outside,
        capture_output=True,
        text=True,
        check=True,
    )
    image_id = upload.stdout.split()[0]
    argv = [str(venv / "bin" / "huimages"), "serve", "--lighttpd", "--port", str(port), "--workers", "1"]
    with running(argv, port, tmp_path / "front.log", env, cwd=outside):
        status, headers, body = get(port, f"/240x160/{image_id}.jpeg")
        assert status == 200, body[:300]
        assert decode(body).size == (240, 160)
        status, headers, _ = get(port, f"/240x160/{image_id}.jpeg")  # now a static hit
        assert status == 200 and headers["cache-control"] == LIGHTTPD_HIT_CACHE_CONTROL


def _photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.jpeg"
    path.write_bytes(jpeg(600, 400))
    return path
