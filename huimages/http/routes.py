"""One routing table for the app, the images API and the web interface.

A route is a path pattern, the methods it takes and its handler. ``<name>``
in a pattern matches one path segment and ``<name:a|b>`` one of the given
words; the matched values reach the handler as ``request.params``. A path
some route matches, with another method, answers 405 with ``Allow`` naming
every method its routes take (HEAD wherever GET is), before a handler reads
any body. A path no route matches goes to the fallback (the image URLs, whose
grammar is their own), which answers 404 for anything it does not know.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping

from huimages.http.kit import Environ, HttpError, StartResponse


@dataclasses.dataclass
class Request:
    """One request as a handler gets it: the WSGI environ, the decoded path and query, and the path's parameters."""

    environ: Environ
    start_response: StartResponse
    path: str
    query: str
    method: str
    params: Mapping[str, str] = dataclasses.field(default_factory=dict)


Handler = Callable[[Request], Iterable[bytes]]
_PARAMETER = re.compile(r"<(\w+)(?::([\w|]+))?>")


@dataclasses.dataclass(frozen=True)
class Route:
    pattern: str
    methods: tuple[str, ...]
    handler: Handler

    def regex(self) -> re.Pattern[str]:
        parts, last = [], 0
        for found in _PARAMETER.finditer(self.pattern):
            parts.append(re.escape(self.pattern[last : found.start()]))
            name, words = found.group(1), found.group(2)
            parts.append(f"(?P<{name}>{words if words else '[^/]+'})")
            last = found.end()
        parts.append(re.escape(self.pattern[last:]))
        return re.compile("".join(parts))


class Router:
    def __init__(self, routes: Iterable[Route], fallback: Handler) -> None:
        self.routes = [(route, route.regex()) for route in routes]
        self.fallback = fallback  # for a path no route matches (the image URLs, whose grammar is their own)
        # The first path segments the routes begin with: an image URL, which starts with a size, skips the table.
        self.heads = frozenset(_head(route.pattern) for route, _ in self.routes)

    def resolve(self, path: str, method: str) -> tuple[Handler, dict[str, str]]:
        """The handler of ``method`` on ``path`` and the path's parameters (the fallback where no route matches);
        405 with ``Allow`` for a path whose routes take other methods."""
        if _head(path) not in self.heads:
            return self.fallback, {}
        allowed: list[str] = []
        for route, regex in self.routes:
            found = regex.fullmatch(path)
            if found is None:
                continue
            methods = (*route.methods, "HEAD") if "GET" in route.methods else route.methods
            if method in methods:
                return route.handler, found.groupdict()
            allowed += [m for m in methods if m not in allowed]
        if not allowed:
            return self.fallback, {}
        order = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
        allow = ", ".join(sorted(allowed, key=lambda m: order.index(m) if m in order else len(order)))
        raise HttpError("405 Method Not Allowed", f"{method} is not allowed here", [("Allow", allow)])


def _head(path: str) -> str:
    """The first segment of a path: ``ui`` of ``/ui/images/x``, ``healthz`` of ``/healthz``."""
    return path[1:].partition("/")[0]
