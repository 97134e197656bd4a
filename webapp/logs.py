"""Log lines an operator can read and a machine can parse: one JSON object a line (LOG_FORMAT=json, the
default in production) or plain text (the default elsewhere), every line carrying the request id of
the request or job it belongs to.

The request id lives in a context variable: the web sets it for each request (webapp.web.request_log,
from a sane X-Request-ID or a new one), and the dispatcher carries it into the job that sends what the
request queued (webapp.messaging.dispatch), so a request's lines and its sends' lines share it.

What goes into a line is chosen by the code that logs it (`fields`): ids, names, numbers, never a
message's text, a password, a token, a cookie or a URL's path or query (the booking link's token is in
its path: a request line names the route's rule, /book/<token>, not the path).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

FORMATS = ("json", "text")
REQUEST_ID: ContextVar[str | None] = ContextVar("relay_request_id", default=None)
# What we accept from a client or a proxy as a request id: short, and nothing a log reader or a header
# could be tricked by (no spaces, quotes, newlines or control characters).
_SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")
# The key under which `fields` hands a line's own fields to the formatters (one key, so that no field
# can collide with LogRecord's attributes).
_FIELDS = "relay_fields"
# Our loggers: relay.* and the Flask app's (named after the package).
OWN_LOGGERS = ("relay", "webapp")


def new_request_id() -> str:
    return uuid.uuid4().hex


def request_id_from(header: str | None) -> str:
    """The client's X-Request-ID if it is sane (1–100 letters, digits, . _ : -), else a new one."""
    if header and _SANE_ID.fullmatch(header):
        return header
    return new_request_id()


def request_id() -> str | None:
    """The id of the request or job this code runs for, if any."""
    return REQUEST_ID.get()


@contextmanager
def bound(value: str | None) -> Iterator[str]:
    """Lines logged inside carry this request id (a new one when None): a job's, a thread's."""
    value = value or new_request_id()
    token = REQUEST_ID.set(value)
    try:
        yield value
    finally:
        REQUEST_ID.reset(token)


def fields(**values: Any) -> dict[str, Any]:
    """`extra=` for a logging call: the line's own fields (request, send attempt), in this order."""
    return {_FIELDS: values}


def _utc(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC), level, logger, msg, request_id, the line's fields, and the
    exception's traceback as one string."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _utc(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": REQUEST_ID.get(),
        }
        own: Mapping[str, Any] = getattr(record, _FIELDS, None) or {}
        line.update(own)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """For a person at a terminal: time, level, logger, the message, then the fields as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s%(own)s")

    def format(self, record: logging.LogRecord) -> str:
        own: Mapping[str, Any] = getattr(record, _FIELDS, None) or {}
        record.request_id = REQUEST_ID.get() or "-"
        record.own = "".join(f" {key}={value}" for key, value in own.items())
        return super().format(record)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The process's own stderr (file descriptor 2), not whatever sys.stderr is replaced with for a
    while: a command's output captured by a test, or a CLI's echo, is never mixed with the log."""

    def __init__(self) -> None:
        super().__init__(sys.__stderr__ or sys.stderr)


class _NoDevServerAccessLine(logging.Filter):
    """Werkzeug's development server logs each request's path and query ("GET /book/<the token> …"):
    our request line replaces it. Its other lines (the address it serves on) stay."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == "werkzeug" and str(record.msg).rstrip().endswith('"%s" %s %s'))


class _OwnDebugOnly(logging.Filter):
    """LOG_LEVEL=DEBUG shows Relay's own debug lines, never a library's: a provider SDK's debug line
    holds the whole request it sends, the message's text included."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.INFO or record.name.split(".")[0] in OWN_LOGGERS


def configure(log_format: str, level: str = "INFO") -> None:
    """Send the process's log lines to stderr in this format: one handler on the root logger, set up
    once per process (each create_app adjusts it)."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _StderrHandler)), None)
    if handler is None:
        handler = _StderrHandler()
        handler.addFilter(_NoDevServerAccessLine())
        handler.addFilter(_OwnDebugOnly())
        root.addHandler(handler)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root.setLevel(level)
