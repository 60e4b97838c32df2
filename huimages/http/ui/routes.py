"""The web interface's part of the routing table, without loading the interface (or Jinja2) until a request needs it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from huimages.http.routes import Handler, Request, Route

if TYPE_CHECKING:
    from huimages.http.ui.app import WebInterface


def interface_routes(interface: Callable[[], WebInterface]) -> list[Route]:
    def open_to_all(name: str) -> Handler:
        def handle(request: Request) -> Iterable[bytes]:
            handler: Handler = getattr(interface(), name)
            return handler(request)

        return handle

    def signed_in(name: str) -> Handler:
        def handle(request: Request) -> Iterable[bytes]:
            return interface().signed_in(request, name)

        return handle

    return [
        Route("/ui", ("GET",), open_to_all("to_start")),
        Route("/ui/static/<name>", ("GET",), open_to_all("static")),
        Route("/ui/signin", ("GET", "POST"), open_to_all("signin")),
        Route("/ui/", ("GET",), signed_in("browse")),
        Route("/ui/upload", ("GET", "POST"), signed_in("upload")),
        Route("/ui/status", ("GET",), signed_in("status")),
        Route("/ui/status/requeue", ("POST",), signed_in("requeue")),
        Route("/ui/random", ("GET",), signed_in("random")),
        Route("/ui/signout", ("POST",), signed_in("signout")),
        Route("/ui/images/<id>", ("GET",), signed_in("image")),
        Route("/ui/images/<id>/<direction:next|previous>", ("GET",), signed_in("neighbour")),
        Route("/ui/images/<id>/title", ("POST",), signed_in("title")),
        Route("/ui/images/<id>/focus", ("POST",), signed_in("focus")),
        Route("/ui/images/<id>/delete", ("GET", "POST"), signed_in("delete")),
    ]
