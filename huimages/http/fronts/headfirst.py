"""gunicorn's threaded worker, with each request's head read before a thread takes the connection.

gunicorn's ``gthread`` worker hands a connection to a thread as soon as its
first byte arrives, and the thread then waits, blocking, for the rest of the
head. 32 clients that send a header line every few seconds hold all 32
threads of two workers, and cached hits queue behind them. Here the worker's
event loop (which already accepts connections and watches kept-alive ones)
reads each head without blocking, and submits the connection to the thread
pool only once the blank line that ends the head has arrived:

- a head must arrive whole within ``HEAD_SECONDS`` of its first wait, and be
  at most ``MAX_HEAD_BYTES``; otherwise the connection is closed, having
  cost no thread;
- once a thread has it, a request whose body stalls (no byte) for
  ``STALL_SECONDS`` ends: the app answers 408. (Only requests with a body get
  the socket timeout: with one, Python polls the socket before every read and
  send, and a cache hit's ``sendfile`` goes through a selector.)

The cost: one non-blocking ``recv`` in the event loop per request instead of
one in a thread (the thread parses the head from memory). Tied to the
internals of gunicorn's ``gthread`` (``TConn``, the poller, the pending queue),
so setup.cfg pins gunicorn's major version and the tests run it for real.
"""

from __future__ import annotations

import errno
import re
import selectors
import socket
import time
from functools import partial
from typing import Any

from gunicorn.workers.gthread import TConn, ThreadWorker

HEAD_SECONDS = 10.0  # a request line and its headers, from the first wait for them
STALL_SECONDS = 30.0  # a request body that moves no byte for this long ends the request
MAX_HEAD_BYTES = 64 * 1024  # gunicorn's own limits (4 KiB line, 100 fields of 8 KiB) refuse less than this

_END_OF_HEAD = re.compile(rb"\r?\n\r?\n")


class HeadFirstWorker(ThreadWorker):  # type: ignore[misc]
    """``gthread``, but a thread takes a connection only with its request's whole head in hand."""

    def accept(self, listener: socket.socket) -> None:
        try:
            sock, address = listener.accept()
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                return
            raise
        self.nr_conns += 1
        conn = TConn(self.cfg, sock, address, listener.getsockname())  # non-blocking from here
        self._read_head(conn, b"", waiting=False)

    def on_client_socket_readable(self, conn: TConn, client: socket.socket) -> None:
        """A kept-alive connection has more to read: its next head is read here, not in a thread."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._read_head(conn, b"", waiting=False)

    def finish_request(self, conn: TConn, fs: Any) -> None:
        """After an answer: bytes of a next request already read (pipelined) wait here too until their head is whole."""
        unreader = getattr(conn.parser, "unreader", None)
        kept = self.alive and not fs.cancelled() and fs.exception() is None and fs.result() is True
        if kept and unreader is not None and unreader.buf.getbuffer().nbytes:
            buffered = unreader.take_buffered()
            if _END_OF_HEAD.search(buffered) is None:
                conn.sock.setblocking(False)
                self._read_head(conn, buffered, waiting=False)
                return
            unreader.unread(buffered)
        super().finish_request(conn, fs)

    def _read_head(self, conn: TConn, head: bytes, *, waiting: bool) -> None:
        """Read what has arrived; a whole head goes to the thread pool, a partial one waits (``waiting``: it does)."""
        try:
            data = conn.sock.recv(MAX_HEAD_BYTES)
        except (BlockingIOError, InterruptedError):
            data = None
        except OSError:
            data = b""
        if data == b"":  # closed by the client
            self._drop(conn, waiting)
            return
        if data:
            head += data
        if _END_OF_HEAD.search(head) is None:
            if len(head) > MAX_HEAD_BYTES:
                self._drop(conn, waiting)
            elif waiting:
                conn.head = head
            else:  # from now on the event loop reads it, until the head is whole or its time is up
                conn.head = head
                conn.timeout = time.monotonic() + HEAD_SECONDS  # murder_pending closes it after that
                self.pending_conns.append(conn)
                self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_head_readable, conn))
            return
        if waiting:
            self.poller.unregister(conn.sock)
            self.pending_conns.remove(conn)
        conn.init()  # the parser, on a blocking socket (plain HTTP: nothing here can block)
        conn.parser.unreader.unread(head)
        conn.head = b""
        conn.data_ready = True
        self.enqueue_req(conn)

    def _on_head_readable(self, conn: TConn, _client: socket.socket) -> None:
        self._read_head(conn, conn.head, waiting=True)

    def _drop(self, conn: TConn, waiting: bool) -> None:
        if waiting:
            self.poller.unregister(conn.sock)
            self.pending_conns.remove(conn)
        self.nr_conns -= 1
        conn.close()

    def handle_request(self, req: Any, conn: TConn) -> bool:
        if _has_body(req):  # a stalled body ends the request (a timeout costs a poll() per read: bodies only)
            conn.sock.settimeout(STALL_SECONDS)
        return bool(super().handle_request(req, conn))


def _has_body(req: Any) -> bool:
    for name, value in req.headers:
        if name == "TRANSFER-ENCODING" or (name == "CONTENT-LENGTH" and value.strip() not in ("", "0")):
            return True
    return False
