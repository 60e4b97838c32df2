"""Start and stop real servers for tests: free loopback ports, stopped by PID."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
import wsgiref.simple_server
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from huimages.config import Settings

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(
        f"server did not listen on {port} within {timeout} s:\n{log.read_text(errors='replace')[-3000:]}"
    )


def stop(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


@contextlib.contextmanager
def running(
    argv: Sequence[str], port: int, log: Path, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,  # its own process group, so stop() reaches every worker
        )
    try:
        wait_for_port(port, proc, log)
        yield proc
    finally:
        stop(proc)


@contextlib.contextmanager
def huimages_serve(
    home: Path, front: str = "gunicorn", env: Mapping[str, str] | None = None, workers: int = 2
) -> Iterator[tuple[int, dict[str, str]]]:
    """``huimages serve`` on a free port with its data in ``home`` (``front="lighttpd"``: with ``--lighttpd``).

    Yields the port and the environment it runs with (its ``IMAGESERVERURL`` on
    that port); it logs to ``home/serve.log``.
    """
    port = free_port()
    environ = {"HUIMAGES_HOME": str(home), "IMAGESERVERURL": f"http://127.0.0.1:{port}/", **(env or {})}
    argv = [sys.executable, "-m", "huimages", "serve", "--port", str(port), "--workers", str(workers)]
    if front == "lighttpd":
        argv.append("--lighttpd")
    with running(argv, port, home / "serve.log", environ):
        yield port, environ


def get(
    port: int,
    path: str,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    timeout: float = 60,
    body: bytes | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One request to a server on 127.0.0.1: status, headers (lower-case names), body."""
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


REPO = Path(__file__).resolve().parent.parent


def free_port_pair() -> int:
    """A free port whose +10000 neighbour is free too (SeaweedFS puts gRPC there)."""
    import random

    for _ in range(200):
        port = random.randint(20000, 55000)
        try:
            for candidate in (port, port + 10000):
                with socket.socket() as sock:
                    sock.bind((LOOPBACK, candidate))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair found")


class ManagedServer:
    """A server process that can be stopped and started again on the same ports and data."""

    def __init__(self, argv: Sequence[str], port: int, log: Path, cwd: Path | None = None) -> None:
        self.argv, self.port, self.log, self.cwd = list(argv), port, log, cwd
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, ready: float = 60.0) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.cwd,
                start_new_session=True,
            )
        wait_for_port(self.port, self.proc, self.log, ready)

    def kill(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None


class SeaweedS3(ManagedServer):
    """SeaweedFS (master, volume, filer, S3 gateway) with credential checking.

    Its S3 gateway's Iceberg catalog and Lance namespace servers (127.0.0.1:8181
    and :9101 by default) are turned off, so several instances (two test runs,
    or a test run beside a server) can share a machine.
    """

    ACCESS_KEY = "huimages-test"
    SECRET_KEY = "huimages-test-secret"

    def __init__(self, workdir: Path) -> None:
        weed = Path(sys.executable).parent / "weed"
        if not weed.exists():
            raise RuntimeError(f"{weed} is missing: install the test extras (pip install -e '.[test]')")
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "data").mkdir(exist_ok=True)
        (workdir / "logs").mkdir(exist_ok=True)
        identity = {
            "identities": [
                {
                    "name": "test",
                    "credentials": [{"accessKey": self.ACCESS_KEY, "secretKey": self.SECRET_KEY}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        (workdir / "s3.json").write_text(json.dumps(identity))
        self.ports = [free_port_pair() for _ in range(4)]
        master, volume, filer, s3 = self.ports
        argv = [
            str(weed),
            f"-logdir={workdir / 'logs'}",
            "server",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-dir={workdir / 'data'}",
            f"-master.port={master}",
            f"-volume.port={volume}",
            "-filer",
            f"-filer.port={filer}",
            f"-filer.localSocket={workdir / 'f.sock'}",
            "-s3",
            f"-s3.port={s3}",
            f"-s3.localSocket={workdir / 's3.sock'}",
            f"-s3.config={workdir / 's3.json'}",
            "-s3.port.iceberg=0",  # no Iceberg catalog server (else on 8181, whatever the other ports)
            "-s3.port.lance=0",  # no Lance namespace server (else on 9101)
            "-master.volumeSizeLimitMB=64",
            "-volume.max=1000",  # every bucket is a collection with volumes of its own (sparse files)
        ]
        super().__init__(argv, s3, workdir / "weed.log")
        self.endpoint = f"http://{LOOPBACK}:{s3}"

    def start(self, ready: float = 60.0) -> None:
        super().start(ready)
        deadline = time.monotonic() + ready
        while True:  # the gateway listens before the filer behind it is ready
            try:
                self.client().list_buckets()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def kill(self) -> None:
        super().kill()
        for port in self.ports:
            for sock in Path("/tmp").glob(f"seaweedfs-*-grpc-{port + 10000}.sock"):
                sock.unlink(missing_ok=True)

    def client(self, secret: str | None = None) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.ACCESS_KEY,
            aws_secret_access_key=secret or self.SECRET_KEY,
            config=Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=2),
        )

    def new_bucket(self) -> str:
        import uuid

        name = f"test-{uuid.uuid4().hex[:16]}"
        client = self.client()
        client.create_bucket(Bucket=name)
        # SeaweedFS makes a bucket's volumes at its first write, which can take longer than the
        # short backend timeouts of the fault tests: one write here, so that tests time their own.
        client.put_object(Bucket=name, Key=".warm", Body=bytes(256 * 1024))  # not inlined in the filer
        client.delete_object(Bucket=name, Key=".warm")
        return name

    def settings_env(self, bucket: str) -> dict[str, str]:
        return {
            "S3BUCKET": bucket,
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": self.SECRET_KEY,
        }


class PouchCouch(ManagedServer):
    """pouchdb-server speaking the CouchDB API; on disk so a restart keeps the data."""

    def __init__(self, workdir: Path) -> None:
        binary = REPO / ".test-servers" / "node_modules" / ".bin" / "pouchdb-server"
        if not binary.exists():
            raise RuntimeError(f"{binary} is missing: ./scripts/test installs it with npm")
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "config.json").write_text("{}")
        (workdir / "db").mkdir(exist_ok=True)
        port = free_port()
        argv = [
            str(binary),
            "-o",
            LOOPBACK,
            "-p",
            str(port),
            "-d",
            f"{workdir / 'db'}/",
            "-c",
            str(workdir / "config.json"),
        ]
        super().__init__(argv, port, workdir / "pouchdb.log", cwd=workdir)
        self.url = f"http://{LOOPBACK}:{port}/"

    def new_database(self) -> str:
        import uuid

        return f"huimages_{uuid.uuid4().hex[:12]}"


class FaultProxy:
    """A loopback TCP proxy in front of a test server, with a fault to switch on and off.

    ``mode``: ``"pass"`` (every answer held back by ``delay`` seconds, a
    network round trip), ``"503"`` (answers every request with an HTTP 503
    itself), ``"drop"`` (resets every connection without a byte), ``"hang"``
    (accepts, reads, and never answers: a hung server). Switching
    to a fault also resets the connections open at the time (kept-alive ones
    too), as a failing backend does.
    """

    def __init__(self, target_port: int, delay: float = 0.0) -> None:
        self.port, self.target_port, self.delay = free_port(), target_port, delay
        self._mode = "pass"
        self._open: set[Any] = set()  # transports of the connections being passed on
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._serve, args=(ready,), daemon=True).start()
        ready.wait(10)

    def _serve(self, ready: threading.Event) -> None:
        async def pipe(reader: Any, writer: Any, delay: float) -> None:
            try:
                while data := await reader.read(65536):
                    if delay:
                        await asyncio.sleep(delay)
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.close()

        async def refuse(client_reader: Any, client_writer: Any) -> None:
            if self._mode == "503":
                with contextlib.suppress(ConnectionError, OSError, asyncio.IncompleteReadError):
                    await client_reader.readuntil(b"\r\n\r\n")
                    body = b"the test proxy answers 503"
                    head = f"HTTP/1.1 503 Service Unavailable\r\nContent-Length: {len(body)}\r\nConnection: close"
                    client_writer.write(head.encode() + b"\r\n\r\n" + body)
                    await client_writer.drain()
                client_writer.close()
            elif self._mode == "hang":
                with contextlib.suppress(ConnectionError, OSError):
                    while await client_reader.read(65536):  # read all it sends, answer nothing
                        pass
                client_writer.close()
            else:
                client_writer.transport.abort()  # RST: the connection dropped

        async def handle(client_reader: Any, client_writer: Any) -> None:
            if self._mode != "pass":
                await refuse(client_reader, client_writer)
                return
            upstream_reader, upstream_writer = await asyncio.open_connection(LOOPBACK, self.target_port)
            self._open.add(client_writer.transport)
            try:
                await asyncio.gather(
                    pipe(client_reader, upstream_writer, 0.0), pipe(upstream_reader, client_writer, self.delay)
                )
            finally:
                self._open.discard(client_writer.transport)

        async def main() -> None:
            server = await asyncio.start_server(handle, LOOPBACK, self.port)
            ready.set()
            async with server:
                await server.serve_forever()

        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(main())

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, mode: str) -> None:
        assert mode in ("pass", "503", "drop", "hang"), mode
        self._mode = mode
        if mode != "pass":
            done = threading.Event()

            def reset() -> None:
                for transport in list(self._open):
                    transport.abort()
                done.set()

            self.loop.call_soon_threadsafe(reset)
            done.wait(5)

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"


class _QuietHandler(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # the tests read answers, not access logs
        pass


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, wsgiref.simple_server.WSGIServer):
    daemon_threads = True


@contextlib.contextmanager
def wsgi_thread(app: Any) -> Iterator[str]:
    """A WSGI app on a free 127.0.0.1 port, served by threads of this process; yields its base URL.

    For tests that need many fresh servers (one per test and store): a real
    HTTP server on a real socket, started in milliseconds.
    """
    server = wsgiref.simple_server.make_server(
        LOOPBACK, 0, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def site_settings(home: Path, **env: str) -> Settings:
    """A site's settings built the way production builds them, from environment names; URLs on http://img.test/."""
    return Settings.from_env({"HUIMAGES_HOME": str(home), "IMAGESERVERURL": "http://img.test/", **env})


def backend_settings(
    home: Path, s3: SeaweedS3 | None = None, couch: PouchCouch | None = None, **extra: str
) -> Settings:
    """Settings for real backends (an S3 bucket and a CouchDB database of their own), from the environment."""
    env: dict[str, str] = {}
    if s3 is not None:
        env |= s3.settings_env(s3.new_bucket())
    if couch is not None:
        env |= {"COUCHSERVER": couch.url, "HUIMAGES_COUCHDB_NAME": couch.new_database()}
    return site_settings(home, **env, **extra)
