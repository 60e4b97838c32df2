"""Log lines an operator can use: plain text, or one JSON object a line (``HUIMAGES_LOG_FORMAT=json``).

``huimages serve`` writes an access log: the combined format (what web log
tools read), or with json one object a request with its method, path,
status, bytes, duration and the milliseconds spent rendering. No line carries
a secret: request headers are not logged, and errors name backends by host,
never by a URL with credentials.
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
from typing import Any

#: The fields of an access log record, in the order a JSON line shows them.
REQUEST_FIELDS = ("method", "path", "status", "bytes", "duration_ms", "render_ms", "remote")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, and a request's fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in REQUEST_FIELDS:
            if hasattr(record, field):
                entry[field] = getattr(record, field)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def configure(log_format: str) -> None:
    """Every line of this process in ``log_format``: the root logger's handlers get its formatter."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig()
    for handler in root.handlers:
        handler.setFormatter(formatter(log_format))


def announce(message: str, log_format: str) -> None:
    """A line a command writes to standard error whatever the log level (the address a server listens on)."""
    if log_format == "json":
        record = logging.makeLogRecord(
            {"name": "huimages", "levelname": "INFO", "levelno": logging.INFO, "msg": message}
        )
        message = JsonFormatter().format(record)
    print(message, file=sys.stderr, flush=True)
