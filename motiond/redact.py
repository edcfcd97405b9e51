"""Secrets out of what is logged or printed: URLs, free text, and the effective config.

Camera URLs carry passwords (``rtsp://user:pass@``, ``?user=admin&pwd=...``), hook URLs carry
tokens (a bot token in the path, a token as the URL's user part), a hook's error output may
repeat them, and the config holds password and token hashes. Everything that logs or prints one
of these passes it through here first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

MASK = "***"
REDACTED = "<redacted>"

# Query parameters and config keys whose values are secrets.
_SECRET_NAMES = re.compile(
    r"(?:^|_|-)(?:pass|passwd|password|passphrase|pwd|token|secret|credentials?|apikey"
    r"|api_key|access_key|signature|hash)$"
    r"|^(?:key|sig|auth|pw|authorization)$"
    r"|^(?:password|passwd|pwd|token|secret|apikey|api_key|access_token|auth_token)",
    re.IGNORECASE,
)
# A path segment that looks like a token: a bot token ("bot123456:AAE..."), or a long run of
# letters and digits (webhook ids, Slack and Discord webhook secrets).
_TOKEN_SEGMENT = re.compile(
    r"[^/]*[0-9]+:[A-Za-z0-9_-]{20,}|(?=[^/]*[0-9])(?=[^/]*[A-Za-z])[A-Za-z0-9_-]{24,}"
)
_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]+")
_ASSIGNMENT_IN_TEXT = re.compile(
    r"(?P<name>\b[A-Za-z_-]*(?:pass|passwd|password|pwd|token|secret|api_?key)[A-Za-z_-]*)"
    r"(?P<sep>\s*[=:]\s*)(?P<value>[^\s&,;\"']+)",
    re.IGNORECASE,
)


def is_secret_name(name: str) -> bool:
    """True for a query parameter or config key that names a secret (``pwd``, ``token_hash``)."""
    return _SECRET_NAMES.search(name) is not None


def redact_url(url: str) -> str:
    """``url`` without its secrets: the user part (``user:***@``, a bare token ``***@``), secret
    query values, and path segments that look like tokens."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a malformed port)
    except ValueError:
        return f"<a malformed URL, {len(url)} characters>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{host}" if has_password else f"{MASK}@{host}"
    path = "/".join(
        MASK if _TOKEN_SEGMENT.fullmatch(segment) else segment for segment in parts.path.split("/")
    )
    query = "&".join(_redact_parameter(piece) for piece in parts.query.split("&"))
    fragment = _redact_parameter(parts.fragment) if "=" in parts.fragment else parts.fragment
    return urlunsplit((parts.scheme, netloc, path, query, fragment))


def _redact_parameter(piece: str) -> str:
    name, equals, _ = piece.partition("=")
    if equals and is_secret_name(unquote(name)):
        return f"{name}={MASK}"
    return piece


def redact_text(text: str) -> str:
    """Free text (an error message, a command's output) with URLs and ``password=...``-like
    assignments redacted."""
    text = _URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), text)
    return _ASSIGNMENT_IN_TEXT.sub(lambda m: f"{m['name']}{m['sep']}{MASK}", text)


def redact_config(data: Any, key: str = "") -> Any:
    """Plain config data (mappings, lists, scalars) with secrets hidden: values under secret
    keys replaced, URLs and free text redacted."""
    if isinstance(data, Mapping):
        return {k: redact_config(v, str(k)) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [redact_config(item, key) for item in data]
    if isinstance(data, str):
        if data and is_secret_name(key):
            return REDACTED
        return redact_text(data)
    return data
