"""The README's commands: scripts/serve must pass its arguments on to `huimages serve`."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.imagetools import jpeg
from tests.servers import free_port, get, running

REPO = Path(__file__).resolve().parent.parent


def test_serve_script_passes_its_arguments(tmp_path: Path) -> None:
    # Arguments must not leak into the bootstrap (a sourced script sees its caller's arguments).
    result = subprocess.run(
        [str(REPO / "scripts" / "serve"), "--port", "1", "--help"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "HUIMAGES_HOME": str(tmp_path)},
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    assert "--lighttpd" in result.stdout and "Usage: huimages serve" in result.stdout


@pytest.mark.integration
@pytest.mark.parametrize("how", ["scripts/serve", "huimages serve", "huimages serve --lighttpd"])
def test_the_urls_a_server_emits_are_on_its_port(tmp_path: Path, how: str) -> None:
    """Without IMAGESERVERURL the helpers name the server's own port, not the default 8080."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "IMAGESERVERURL"}
    env.update(HUIMAGES_HOME=str(tmp_path), HUIMAGES_UPLOAD_TOKEN="upload-token-of-the-port-test")
    command = (
        [str(REPO / "scripts" / "serve")] if how == "scripts/serve" else [sys.executable, "-m", "huimages", "serve"]
    )
    argv = [*command, "--port", str(port), "--workers", "1", *(["--lighttpd"] if "lighttpd" in how else [])]
    with running(argv, port, tmp_path / "serve.log", env, cwd=tmp_path):
        headers = {"Authorization": "Bearer upload-token-of-the-port-test", "Content-Type": "image/jpeg"}
        status, _, body = get(port, "/images", "POST", headers, body=jpeg(120, 90))
    assert status == 201, body
    urls = json.loads(body)["urls"]
    assert urls["small"].startswith(f"http://127.0.0.1:{port}/240x160/"), urls
