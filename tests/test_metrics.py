"""/metrics: Prometheus' text format, counted in every process of a host and summed."""

import re
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from huimages.client import Client
from huimages.config import Settings
from huimages.http.app import create_app
from huimages.ops.cli import main
from huimages.serving.service import ImageService
from tests.imagetools import jpeg
from tests.servers import FaultProxy, PouchCouch, SeaweedS3, get, huimages_serve
from tests.wsgi import call

TOKEN = "metrics-admin-token"


def samples(text: str) -> dict[str, float]:
    """``name{labels}`` -> value, from the exposition text."""
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            found[key] = float(value)
    return found


def value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for key, number in samples(text).items():
        metric, _, rest = key.partition("{")
        if metric != name:
            continue
        pairs = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        if all(pairs.get(k) == v for k, v in labels.items()):
            total += number
    return total


def test_metrics_count_renders_responses_and_backend_calls(tmp_path: Path) -> None:
    settings = Settings.from_env({"HUIMAGES_HOME": str(tmp_path), "HUIMAGES_ADMIN_TOKEN": TOKEN})
    app = create_app(service=ImageService.from_settings(settings))
    before = call(app, "/metrics", REMOTE_ADDR="127.0.0.1").text
    image_id = Client(service=app.service).save_image(jpeg(640, 480))
    for path in ("/small/ID.jpeg", "/small/ID.webp", "/300x200/ID.jpeg", "/small/ID.jpeg", "/o/ID.jpeg"):
        assert call(app, path.replace("ID", image_id)).status == 200
    assert call(app, f"/small/{'A' * 32}01.jpeg").status == 404
    response = call(app, "/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    after = response.text

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("huimages_renders_total", kind="named", format="jpeg", outcome="ok") == 1
    assert delta("huimages_renders_total", kind="named", format="webp", outcome="ok") == 1
    assert delta("huimages_renders_total", kind="custom", outcome="ok") == 1
    assert delta("huimages_renders_total", kind="original", outcome="ok") == 1
    assert delta("huimages_render_seconds_count", source="master") == 3
    assert delta("huimages_render_seconds_count", source="original") == 1  # o reads the original
    assert delta("huimages_decode_seconds_count") == 4
    assert delta("huimages_cache_written_bytes_total") > 1000
    assert delta("huimages_http_responses_total", status="200") == 6  # five images and the first /metrics
    assert delta("huimages_http_responses_total", status="404") == 1
    assert delta("huimages_backend_calls_total", backend="sqlite catalog", operation="query") > 0
    assert value(after, "huimages_renders_in_flight") == 0
    assert "huimages_cdn_queue_items" not in after  # no CDN configured

    far = "203.0.113.7"  # a value in the WSGI environ only
    assert call(app, "/metrics", REMOTE_ADDR=far).status == 403
    assert call(app, "/metrics", REMOTE_ADDR=far, HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status == 200
    assert call(app, "/metrics", REMOTE_ADDR=far, HTTP_AUTHORIZATION="Bearer wrong").status == 403


@pytest.mark.integration
def test_queue_figures_when_scraped(tmp_path: Path, seaweed: SeaweedS3) -> None:
    env = {
        "HUIMAGES_HOME": str(tmp_path),
        "CDN_BUCKET": seaweed.new_bucket(),
        "CDN_URL": "https://cdn.test",
        **{k: v for k, v in seaweed.settings_env("unused").items() if k != "S3BUCKET"},
    }
    client = Client(Settings.from_env(env))
    app = create_app(service=client.service)
    image_id = client.save_image(jpeg(300, 200))
    for size in ("small", "square"):
        assert call(app, f"/{size}/{image_id}.jpeg").status == 200
    text = call(app, "/metrics", REMOTE_ADDR="127.0.0.1").text
    assert value(text, "huimages_cdn_queue_items", state="queued") == 2
    assert "uploaded" not in {s for s in re.findall(r'state="(\w+)"', text)}  # history is not a queue figure
    uploads = value(text, "huimages_cdn_uploads_total")
    assert 0 <= value(text, "huimages_cdn_queue_oldest_age_seconds") < 60
    assert call(app, "/processqueue", REMOTE_ADDR="127.0.0.1").status == 200
    text = call(app, "/metrics", REMOTE_ADDR="127.0.0.1").text
    assert value(text, "huimages_cdn_queue_items", state="queued") == 0
    assert value(text, "huimages_cdn_uploads_total") == uploads + 2
    assert value(text, "huimages_cdn_queue_oldest_age_seconds") == 0
    assert value(text, "huimages_backend_calls_total", backend="cdn bucket") >= 2
    assert value(text, "huimages_backend_up", backend="sqlite cdn queue") == 1
    exported = exported_names(text)
    queried = {name for expr in dashboard_queries() for name in re.findall(r"\bhuimages_\w+", expr)}
    assert queried and queried <= exported, queried - exported


@pytest.mark.integration
@pytest.mark.faults
def test_a_scrape_with_the_queue_store_down_answers_every_other_figure(
    tmp_path: Path, seaweed: SeaweedS3, pouch: PouchCouch
) -> None:
    proxy = FaultProxy(pouch.port)
    env = {
        "HUIMAGES_HOME": str(tmp_path),
        "CDN_BUCKET": seaweed.new_bucket(),
        "CDN_URL": "https://cdn.test",
        "COUCHSERVER": pouch.url.replace(str(pouch.port), str(proxy.port)),
        "HUIMAGES_COUCHDB_NAME": pouch.new_database(),
        "HUIMAGES_BACKEND_TIMEOUT": "2",
        **{k: v for k, v in seaweed.settings_env("unused").items() if k != "S3BUCKET"},
    }
    client = Client(Settings.from_env(env))
    app = create_app(service=client.service)
    image_id = client.save_image(jpeg(300, 200))
    assert call(app, f"/small/{image_id}.jpeg").status == 200
    proxy.mode = "drop"
    try:
        answer = call(app, "/metrics", REMOTE_ADDR="127.0.0.1")
        assert answer.status == 200, answer.text
        assert value(answer.text, "huimages_backend_up", backend="couchdb cdn queue") == 0
        assert "huimages_cdn_queue_items" not in answer.text
        assert value(answer.text, "huimages_renders_total", outcome="ok") >= 1  # the rest is there
        shown = CliRunner(env=env).invoke(main, ["queue"])
        assert shown.exit_code == 1 and "derivatives per state: not read (couchdb cdn queue" in shown.output
        assert "the queue run: not read" in shown.output  # each figure on its own
    finally:
        proxy.mode = "pass"
    answer = call(app, "/metrics", REMOTE_ADDR="127.0.0.1")
    assert value(answer.text, "huimages_backend_up", backend="couchdb cdn queue") == 1
    assert value(answer.text, "huimages_cdn_queue_items", state="queued") == 1


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def dashboard_queries() -> list[str]:
    import json

    dashboard = json.loads((EXAMPLES / "grafana-dashboard.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def exported_names(text: str) -> set[str]:
    """Every series name /metrics can show, from its TYPE lines (a counter never incremented has no sample yet)."""
    suffixes = {"histogram": ("_bucket", "_count", "_sum")}  # a counter's TYPE line names its _total series
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            names.update(name + suffix for suffix in suffixes.get(kind, ("",)))
    return names


def test_the_example_prometheus_config_scrapes_metrics_with_the_token() -> None:
    text = (EXAMPLES / "prometheus.yml").read_text()
    assert "metrics_path: /metrics" in text and "type: Bearer" in text


@pytest.mark.integration
@pytest.mark.parametrize("front", ["gunicorn", "lighttpd"])
def test_every_worker_is_counted(tmp_path: Path, front: str) -> None:
    sizes = [f"{100 + 10 * n}x{100 + 10 * n}" for n in range(12)]
    with huimages_serve(tmp_path, front) as (port, env):
        image_id = Client(Settings.from_env(env)).save_image(jpeg(800, 600))
        for size in sizes:  # spread over both workers (keep-alive off: a new connection each)
            assert get(port, f"/{size}/{image_id}.jpeg")[0] == 200
        status, _, body = get(port, "/metrics")
        if front == "lighttpd":  # the hits lighttpd serves itself are counted by lighttpd
            for _ in range(3):
                assert get(port, f"/{sizes[0]}/{image_id}.jpeg")[0] == 200
            time.sleep(1.5)  # lighttpd adds up its counters once a second
            lighttpd_status = get(port, "/server-status?auto")
            assert lighttpd_status[0] == 200
            accesses = int(re.search(rb"Total Accesses: (\d+)", lighttpd_status[2]).group(1))  # type: ignore[union-attr]
            assert accesses >= len(sizes) + 4
    assert status == 200
    text = body.decode()
    assert value(text, "huimages_renders_total", kind="custom", outcome="ok") == len(sizes)
    assert value(text, "huimages_render_seconds_count") == len(sizes)
    if front == "gunicorn":  # lighttpd serves nothing else from Python here; gunicorn answers hits too
        assert value(text, "huimages_http_responses_total", status="200") >= len(sizes)


def test_first_use_from_many_threads_at_once() -> None:
    """A new FastCGI backend's first requests arrive together: the metrics are made once."""
    import subprocess

    code = (
        "import threading, huimages.telemetry.metrics as m\n"
        "start = threading.Barrier(16)\n"
        "def use():\n    start.wait(); m.get().responses.labels('200').inc()\n"
        "threads = [threading.Thread(target=use) for _ in range(16)]\n"
        "[t.start() for t in threads]; [t.join() for t in threads]\n"
        "assert m.get().responses.labels('200')._value.get() == 16\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
