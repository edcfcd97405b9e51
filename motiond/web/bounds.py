"""Bounds on what the web side takes in and gives out: JSON documents nested at most
``MAX_JSON_DEPTH`` deep, URIs cut short in log lines, disk failures as 503/507 with a reason.
"""

from __future__ import annotations

import errno
import json
import logging
from typing import Any

import tornado.httputil
import tornado.web

logger = logging.getLogger(__name__)
access_log = logging.getLogger("tornado.access")

MAX_JSON_DEPTH = 32  # nesting of a JSON body or WebSocket message
MAX_LOGGED_URI = 200  # characters of a request's URI in a log line


def parse_json(data: bytes | str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """A JSON document nested at most ``max_depth`` deep; ValueError with the reason."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise ValueError(f"JSON nested deeper than {max_depth}") from None
    except (ValueError, UnicodeDecodeError):
        raise ValueError("not JSON") from None
    if json_depth(value) > max_depth:
        raise ValueError(f"JSON nested deeper than {max_depth}")
    return value


def json_depth(value: Any) -> int:
    """How deep lists and objects nest in a parsed JSON value (a scalar: 0). Iterative."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth + 1)
            stack.extend((child, depth + 1) for child in item)
    return deepest


def request_summary(request: tornado.httputil.HTTPServerRequest) -> str:
    """Method, URI (cut to MAX_LOGGED_URI characters, control characters escaped) and client:
    a log line never repeats an attacker's URI at length."""
    uri = request.uri or ""
    if len(uri) > MAX_LOGGED_URI:
        uri = f"{uri[:MAX_LOGGED_URI]}...({len(uri)} characters)"
    uri = uri.encode("unicode_escape").decode("ascii")
    method = (request.method or "")[:16].encode("unicode_escape").decode("ascii")
    return f"{method} {uri} ({request.remote_ip})"


def log_request(handler: tornado.web.RequestHandler) -> None:
    """The application's access log line (Tornado's, with ``request_summary``)."""
    status = handler.get_status()
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    milliseconds = 1000.0 * handler.request.request_time()
    access_log.log(level, "%d %s %.2fms", status, request_summary(handler.request), milliseconds)


def disk_error(exc: OSError) -> tornado.web.HTTPError:
    """The answer for a failed file operation: 507 when storage is full, else 503."""
    reason = exc.strerror or type(exc).__name__
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return tornado.web.HTTPError(507, reason=f"storage is full: {reason}")
    logger.warning("web: file operation failed: %s", exc)
    return tornado.web.HTTPError(503, reason=f"storage is not usable now: {reason}")
