"""Logs an operator can use: the combined access log by default, JSON lines on request, no secrets."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from huimages.client import Client
from huimages.config import Settings
from huimages.serving.policy import sign
from tests.imagetools import jpeg
from tests.servers import free_port, get, running

pytestmark = pytest.mark.integration

ADMIN = "admin-token-SECRET-1"
URL_KEY = "url-key-SECRET-2"
AWS = "aws-key-SECRET-3"


def serve(tmp_path: Path, **extra: str) -> tuple[list[str], int, dict[str, str], str]:
    port = free_port()
    env = {"HUIMAGES_HOME": str(tmp_path), "IMAGESERVERURL": f"http://127.0.0.1:{port}/", **extra}
    image_id = Client(Settings.from_env(env)).save_image(jpeg(500, 400))
    argv = [sys.executable, "-m", "huimages", "serve", "--port", str(port), "--workers", "1"]
    return argv, port, env, image_id


def test_the_access_log_is_in_the_combined_format(tmp_path: Path) -> None:
    argv, port, env, image_id = serve(tmp_path)
    log = tmp_path / "serve.log"
    with running(argv, port, log, env):
        assert get(port, f"/small/{image_id}.jpeg", headers={"User-Agent": "probe/1.0"})[0] == 200
        assert get(port, "/nothing-here")[0] == 404
    lines = log.read_text().splitlines()
    combined = re.compile(r'^127\.0\.0\.1 - - \[[^]]+\] "GET (\S+) HTTP/1\.1" (\d{3}) (\d+) "([^"]*)" "([^"]*)"$')
    requests = [m.groups() for line in lines if (m := combined.match(line))]
    assert (f"/small/{image_id}.jpeg", "200") == requests[0][:2] and requests[0][4] == "probe/1.0"
    assert int(requests[0][2]) > 1000  # the image's bytes (sent with sendfile)
    assert requests[1][:2] == ("/nothing-here", "404")


def test_json_lines_with_request_fields_and_no_secrets(tmp_path: Path) -> None:
    argv, port, env, image_id = serve(
        tmp_path,
        HUIMAGES_LOG_FORMAT="json",
        HUIMAGES_ADMIN_TOKEN=ADMIN,
        HUIMAGES_URL_KEYS=URL_KEY,
        HUIMAGES_SIZE_POLICY="named",
        AWS_SECRET_ACCESS_KEY=AWS,
    )
    log = tmp_path / "serve.log"
    signed = f"/300x300/{image_id}.jpeg?s={sign(f'/300x300/{image_id}.jpeg', URL_KEY)}"
    with running(argv, port, log, env):
        assert get(port, f"/small/{image_id}.jpeg")[0] == 200  # a miss: rendered
        assert get(port, f"/small/{image_id}.jpeg")[0] == 200  # a hit
        assert get(port, signed)[0] == 200
        assert get(port, f"/301x301/{image_id}.jpeg")[0] == 403  # unsigned: refused, and logged
        assert get(port, "/metrics", headers={"Authorization": f"Bearer {ADMIN}"})[0] == 200
        assert get(port, "/metrics", headers={"Authorization": "Bearer wrong-SECRET-4"})[0] == 200  # from this host
    text = log.read_text()
    assert "SECRET" not in text
    entries = [json.loads(line) for line in text.splitlines() if line.strip()]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(entry) for entry in entries)
    access = [e for e in entries if "path" in e]
    assert [(e["method"], e["path"].split("?")[0], e["status"]) for e in access] == [
        ("GET", f"/small/{image_id}.jpeg", 200),
        ("GET", f"/small/{image_id}.jpeg", 200),
        ("GET", f"/300x300/{image_id}.jpeg", 200),
        ("GET", f"/301x301/{image_id}.jpeg", 403),
        ("GET", "/metrics", 200),
        ("GET", "/metrics", 200),
    ]
    assert access[0]["render_ms"] > 0 and access[1]["render_ms"] is None  # a miss, then a hit
    assert all(e["bytes"] > 0 and e["duration_ms"] >= 0 and e["remote"] == "127.0.0.1" for e in access), access


def test_cli_json_logs_name_no_credentials(tmp_path: Path) -> None:
    closed = free_port()  # nothing listens there: CouchDB "does not answer"
    env = {
        **os.environ,
        "HUIMAGES_HOME": str(tmp_path),
        "HUIMAGES_LOG_FORMAT": "json",
        "COUCHSERVER": f"http://admin:couch-SECRET-5@127.0.0.1:{closed}/",
        "HUIMAGES_BACKEND_TIMEOUT": "2",
    }
    photo = tmp_path / "photo.jpeg"
    photo.write_bytes(jpeg(100, 80))
    stale = tmp_path / "cache" / "240x160" / ".x.jpeg.ab12.tmp"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"partial")
    os.utime(stale, (0, 0))
    outputs = []
    for command in (["upload", str(photo)], ["prune"]):
        done = subprocess.run(
            [sys.executable, "-m", "huimages", "-v", *command], env=env, capture_output=True, text=True, timeout=60
        )
        outputs.append(done.stdout + done.stderr)
        logged = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
        if command == ["prune"]:
            assert [e["message"].split(" (")[0] for e in logged] == ["removed 1 stale temporary files"], done.stderr
    assert "no answer from database huimages at 127.0.0.1" in outputs[0]  # the host, never the URL
    assert "SECRET" not in "".join(outputs)
