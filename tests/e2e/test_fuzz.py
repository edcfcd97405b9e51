"""Hostile input: fuzzed HTTP requests, WebSocket frames and raw TCP against the real daemon, and
fuzzed YAML against the config loader. Also the camera parameter (a path component), Host
headers (DNS rebinding) and login redirect targets (open redirects).

The daemon runs as a user would run it (a subprocess on a loopback port, demo camera, a token
for the API). Requests are written byte by byte on raw sockets so nothing in a client library
cleans them up first. The oracle: never a 5xx, JSON errors from the API, no file outside the
storage layout served, and the camera still delivering frames afterwards.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import os
import re
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlencode, urljoin, urlsplit

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from motiond.config import (
    AuthConfig,
    CameraConfig,
    CaptureConfig,
    ConfigError,
    HookConfig,
    MotionConfig,
    OverlayConfig,
    RecordConfig,
    StorageConfig,
    WebConfig,
    parse_config,
)
from motiond.web.auth import hash_password, hash_token
from motiond.web.bounds import json_depth
from tests.fixtures.daemon import RunningDaemon

TOKEN = "fuzz-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
USER, PASSWORD = "fuzz", "fuzz password 123"
IO_TIMEOUT = 10.0
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)


def start_daemon(tmp: Path) -> RunningDaemon:
    """The daemon on the demo camera with an API token, its camera online."""
    running = RunningDaemon(
        tmp,
        {
            "cameras": [
                {
                    "name": "cam",
                    "source": "demo",
                    "capture": {"width": 320, "height": 240, "fps": 15},
                }
            ],
        },
    )
    config = yaml.safe_load(running.config_path.read_text())
    config["web"]["auth"] = {
        "tokens": [{"name": "fuzz", "token_hash": hash_token(TOKEN)}],
        "users": [{"name": USER, "password_hash": hash_password(PASSWORD)}],
    }
    running.config_path.write_text(yaml.safe_dump(config))
    running.start()
    try:
        running.wait_for(lambda: camera_status(running)["online"], 20, "the demo camera")
    except BaseException:
        running.stop()
        raise
    return running


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    running = start_daemon(tmp_path_factory.mktemp("fuzz"))
    try:
        yield running
    finally:
        assert running.stop() == 0, running.log()
    log = running.log()
    assert "Traceback" not in log and "Uncaught exception" not in log, log


def cookie_secret(daemon: RunningDaemon) -> str:
    return (daemon.storage / ".cookie-secret").read_text().strip()


# -- a raw HTTP/1.1 client ----------------------------------------------------------------------


def raw_exchange(port: int, request: bytes, timeout: float = IO_TIMEOUT) -> bytes:
    """Send ``request`` as it is, return everything the server sends until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        # No half-close: "Connection: close" ends the exchange. The server may refuse
        # before it has read it all.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        else:
            raise AssertionError(f"no end of response within {timeout} s: {request[:200]!r}")
    return b"".join(chunks)


def build_request(
    method: str,
    target: str,
    headers: dict[str, str],
    body: bytes,
    *,
    length: bool = True,
    host: str = "127.0.0.1",
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if length and body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body


def parse_response(raw: bytes) -> tuple[int, dict[str, str], bytes] | None:
    """(status, headers, body), or None when the server closed without answering."""
    if not raw:
        return None
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    match = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
    assert match, f"not an HTTP response: {raw[:200]!r}"
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(match.group(1)), headers, body


def decoded_body(headers: dict[str, str], body: bytes) -> bytes:
    if headers.get("transfer-encoding") == "chunked":
        out, rest = b"", body
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                break
            out, rest = out + rest[:size], rest[size + 2 :]
        body = out
    if headers.get("content-encoding") == "gzip":
        import gzip

        body = gzip.decompress(body)
    return body


def api_get(daemon: RunningDaemon, path: str) -> Any:
    response = parse_response(raw_exchange(daemon.port, build_request("GET", path, AUTH, b"")))
    assert response is not None and response[0] == 200, response
    return json.loads(decoded_body(response[1], response[2]))


def camera_status(daemon: RunningDaemon) -> dict[str, Any]:
    (camera,) = api_get(daemon, "/api/cameras")
    return camera  # type: ignore[no-any-return]


def assert_still_recording(daemon: RunningDaemon) -> None:
    """The daemon answers and the camera keeps delivering frames."""
    assert daemon.alive(), daemon.log()
    frames = camera_status(daemon)["frames"]
    daemon.wait_for(lambda: camera_status(daemon)["frames"] > frames + 5, 10, "more frames")
    status, _ = daemon.get("/healthz")
    assert status == 200


# -- HTTP fuzzing --------------------------------------------------------------------------------

API_PATHS = [
    "/",
    "/clips",
    "/login",
    "/logout",
    "/healthz",
    "/metrics",
    "/api/session",
    "/api/cameras",
    "/api/cameras/{name}/arm",
    "/api/cameras/{name}/disarm",
    "/api/cameras/{name}/snapshot",
    "/api/clips",
    "/api/clips/{clip_id}",
    "/api/snapshots",
    "/media/{file}",
    "/static/{file}",
    "/ws/live/{name}",
]
HOSTILE_SEGMENTS = [
    "cam",
    "..",
    "%2e%2e",
    "..%2f..%2f..%2fetc%2fpasswd",
    "../../../../etc/passwd",
    ".cookie-secret",
    "..%2f.cookie-secret",
    "%2e%2e/%2e%2e/motiond.yaml",
    "clips/cam/2026-01-01/000000Z.mp4",
    "cam/2026-01-01/120000Z",
    "%00",
    "%ff%fe",
    "\u00e9\u4e2d\U0001f600",
    "a" * 5000,
    "//etc/passwd",
    "app.css",
    "..\\..\\windows",
    "%252e%252e",
]
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT"]
QUERY_KEYS = ["camera", "since", "until", "limit", "offset", "kind", "download", "width", "fps"]
HEADER_NAMES = [
    "Content-Type",
    "Accept",
    "Accept-Encoding",
    "Cookie",
    "Range",
    "If-None-Match",
    "If-Modified-Since",
    "X-Forwarded-For",
    "X-Forwarded-Prefix",
    "X-Motiond",
    "Origin",
    "Expect",
    "Transfer-Encoding",
]
header_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.sampled_from("\t\u00e9"),
    max_size=200,
)
any_text = st.text(max_size=60)
segment = st.sampled_from(HOSTILE_SEGMENTS) | any_text.map(lambda t: quote(t, safe=""))
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | any_text,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.sampled_from(["keep", "type", "id", "x"]) | any_text, children, max_size=5
        )
    ),
    max_leaves=20,
)
bodies = st.one_of(
    st.just(b""),
    st.binary(max_size=2000),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.sampled_from([b'{"keep": true}', b'{"keep": "yes"}', b"{", b"\xff\xfe{}", b"[]"]),
    st.integers(min_value=60_000, max_value=200_000).map(lambda n: b"x" * n),
)


@st.composite
def targets(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from(["*", "http://evil.example/", "/" + "a" * 20000, ""]))
    template = draw(st.sampled_from(API_PATHS))
    for name in ("{name}", "{clip_id}", "{file}"):
        while name in template:
            template = template.replace(name, draw(segment), 1)
    if draw(st.booleans()):
        template += "/" + draw(segment)
    query = draw(
        st.dictionaries(
            st.sampled_from(QUERY_KEYS) | any_text, any_text | st.sampled_from(["-1", "1e999"])
        )
    )
    return template + ("?" + urlencode(query) if query else "")


@st.composite
def headers(draw: st.DrawFn) -> dict[str, str]:
    result = draw(st.dictionaries(st.sampled_from(HEADER_NAMES), header_text, max_size=4))
    auth = draw(
        st.sampled_from(["good", "none", "basic-junk", "bearer-junk", "basic-bad", "weird"])
    )
    if auth == "good":
        result.update(AUTH)
    elif auth == "basic-junk":
        result["Authorization"] = "Basic " + draw(header_text)
    elif auth == "basic-bad":
        creds = base64.b64encode(draw(st.binary(max_size=40))).decode()
        result["Authorization"] = f"Basic {creds}"
    elif auth == "bearer-junk":
        result["Authorization"] = "Bearer " + draw(header_text)
    elif auth == "weird":
        result["Authorization"] = draw(header_text)
    if draw(st.booleans()):
        result["Content-Type"] = "application/json"
    return result


@FUZZ
@given(
    method=st.sampled_from(METHODS) | st.text(st.sampled_from("ABCXYZ-_"), min_size=1, max_size=9),
    target=targets(),
    request_headers=headers(),
    body=bodies,
)
def test_fuzzed_http_requests_never_get_a_5xx(
    daemon: RunningDaemon, method: str, target: str, request_headers: dict[str, str], body: bytes
) -> None:
    request = build_request(method, target, request_headers, body)
    raw = raw_exchange(daemon.port, request)
    if not raw:
        # Closing is an answer only for what a server may refuse unread.
        assert len(request) > 16 * 1024 or len(body) > 64 * 1024, request[:300]
        return
    check_response(daemon, method, target, raw)


def check_response(daemon: RunningDaemon, method: str, target: str, raw: bytes) -> None:
    """The oracle for one answered request: no 5xx, JSON API errors, nothing leaked."""
    response = parse_response(raw)
    assert response is not None, (method, target)
    status, response_headers, raw_body = response
    assert status < 500, (status, method, target, raw_body[:300])
    if method == "HEAD" or status in (204, 304) or not raw_body:
        return
    content = decoded_body(response_headers, raw_body)
    assert cookie_secret(daemon).encode() not in content
    assert b"token_hash" not in content and b"Traceback" not in content
    path = target.partition("?")[0]
    if path.startswith("/api/") and status >= 400:
        assert response_headers.get("content-type", "").startswith("application/json")
        assert "error" in json.loads(content)
    if path.startswith(("/media/", "/static/")) and status == 200:
        assert ".." not in path and "%2e" not in path.lower(), path


def test_every_route_with_every_method_and_hostile_segments(daemon: RunningDaemon) -> None:
    """The systematic half of the fuzzing: all routes x methods x the nastiest segments."""
    segments = ["cam", "..", "%2e%2e", ".cookie-secret", "..%2f..%2fmotiond.yaml", "\u00e9" * 3]
    body = b'{"keep": true}'
    for template in API_PATHS:
        for value in segments:
            target = re.sub(r"\{[a-z_]+\}", quote(value, safe="%/"), template)
            for method in METHODS:
                headers = {**AUTH, "Content-Type": "application/json"}
                request = build_request(method, target, headers, body if method != "GET" else b"")
                check_response(daemon, method, target, raw_exchange(daemon.port, request))


@pytest.mark.parametrize(
    "query",
    [
        "since=0001-01-01",  # naive: moving it into local time overflows
        "until=0001-01-01T00:00",
        "since=9999-12-31T23:59:59",
        "since=0001-01-01T00:00:00%2B14:00",
        "since=nan",
        "until=1e999",
        "limit=%EF%BC%91%EF%BC%90",
        "offset=99999999999999999999",
    ],
)
def test_clip_list_time_bounds_at_the_edges(daemon: RunningDaemon, query: str) -> None:
    target = f"/api/clips?{query}"
    raw = raw_exchange(daemon.port, build_request("GET", target, AUTH, b""))
    check_response(daemon, "GET", target, raw)


# Numbers as an attacker writes them: signs doubled, thousands of digits, other scripts' digits.
HOSTILE_NUMBERS = [
    *("--5", "-5", "+5", "-0", "+-1", "5-", "1e3", "0x10", "1_000", "5.0", " 5", "5\u00a0"),
    *("\u0663", "\uff19", "\u00b2", "9" * 20, "5" * 5000, "-" + "9" * 5000, "+" + "1" * 3000),
    *("0" * 4000 + "7", "1e99999", "-1e-99999", "-" * 3000, "nan", "-inf", "1" * 320 + ".5"),
]


@pytest.mark.parametrize("path", ["/api/clips", "/api/snapshots"])
@pytest.mark.parametrize("key", ["limit", "offset", "since", "until"])
def test_hostile_numbers_get_a_4xx_with_a_reason(
    daemon: RunningDaemon, path: str, key: str
) -> None:
    for value in HOSTILE_NUMBERS:
        target = f"{path}?{urlencode({key: value})}"
        raw = raw_exchange(daemon.port, build_request("GET", target, AUTH, b""))
        check_response(daemon, "GET", target, raw)
        response = parse_response(raw)
        assert response is not None
        status, headers, body = response
        assert status in (200, 400), (target[:80], status)
        if status == 400:
            assert json.loads(decoded_body(headers, body))["error"], target[:80]


DEEP_BODIES = [
    b"[" * 20000,
    b'{"keep": ' * 5000,
    b"[" * 2000 + b"]" * 2000,
    b"[" * 40 + b"]" * 40,
    b'{"keep": ' + b"[" * 100 + b"]" * 100 + b"}",
    b'{"keep": 1' + b"0" * 5000 + b"}",
    b'{"keep": -' + b"9" * 4000 + b"}",
    b'{"keep": true, "x": ' + b'"' + b"a" * 60000 + b'"}',
    json.dumps({"keep": {str(n): n for n in range(3000)}}).encode(),
]


def test_deep_and_big_json_bodies_get_a_4xx_with_a_reason(daemon: RunningDaemon) -> None:
    headers = {**AUTH, "Content-Type": "application/json"}
    for body in DEEP_BODIES:
        for method, target in (
            ("PATCH", "/api/clips/cam/2026-01-01/120000Z.mp4"),
            ("POST", "/api/cameras/cam/arm"),
        ):
            raw = raw_exchange(daemon.port, build_request(method, target, headers, body))
            check_response(daemon, method, target, raw)
            response = parse_response(raw)
            assert response is not None
            if method == "PATCH":
                status, response_headers, content = response
                assert status == 400, (body[:40], status)
                assert json.loads(decoded_body(response_headers, content))["error"]


def test_log_lines_do_not_repeat_long_uris(daemon: RunningDaemon) -> None:
    target = "/api/clips?limit=" + "5" * 8000
    for _ in range(3):
        raw_exchange(daemon.port, build_request("GET", target, AUTH, b""))
    longest = max(len(line) for line in daemon.log().splitlines())
    assert longest < 1000, longest


def test_http_fuzzing_left_the_camera_running(daemon: RunningDaemon) -> None:
    # Fuzzing may have disarmed it; frames flow either way.
    assert_still_recording(daemon)


# -- raw TCP abuse -------------------------------------------------------------------------------


def status_or_closed(raw: bytes) -> int | None:
    response = parse_response(raw)
    return None if response is None else response[0]


@pytest.mark.parametrize(
    "request_bytes",
    [
        pytest.param(build_request("GET", "/healthz", {"X-Big": "a" * 20_000}, b""), id="header"),
        pytest.param(
            build_request("GET", "/healthz", {f"X-{i}": "b" * 100 for i in range(300)}, b""),
            id="many-headers",
        ),
        pytest.param(b"GET /" + b"c" * 70_000 + b" HTTP/1.1\r\n\r\n", id="request-line"),
        pytest.param(
            build_request(
                "POST", "/api/clips/x", {**AUTH, "Content-Length": str(10**15)}, b"{}", length=False
            ),
            id="content-length",
        ),
        pytest.param(
            build_request("PATCH", "/api/clips/x", AUTH, b"{" + b" " * 100_000 + b"}"), id="body"
        ),
        pytest.param(
            build_request(
                "POST",
                "/api/cameras/cam/arm",
                {**AUTH, "Transfer-Encoding": "chunked", "Content-Type": "application/json"},
                b"ffffffffffff\r\nxx\r\n",
                length=False,
            ),
            id="chunk-size",
        ),
        pytest.param(
            build_request("GET", "/healthz", {"Content-Length": "-5"}, b"", length=False),
            id="negative-length",
        ),
        pytest.param(
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(500) + b"\r\n\r\n",
            id="tls",
        ),
        pytest.param(b"\x00" * 1000 + b"\r\n\r\n", id="nul"),
        pytest.param(b"GET /healthz\r\n\r\n", id="http-0.9"),
        pytest.param(b"GET /healthz HTTP/9.9\r\n\r\n", id="http-9.9"),
    ],
)
def test_oversized_or_malformed_requests_get_a_4xx_or_a_close(
    daemon: RunningDaemon, request_bytes: bytes
) -> None:
    status = status_or_closed(raw_exchange(daemon.port, request_bytes))
    assert status is None or 400 <= status < 500, status
    status, _ = daemon.get("/healthz")
    assert status == 200


def test_slowloris_connections_do_not_block_others(daemon: RunningDaemon) -> None:
    """Half-sent requests hold a connection each, never the server. They are dropped after
    web.idle_timeout (15 s; tests/e2e/test_connections.py checks that with a shorter one).
    """
    slow: list[socket.socket] = []
    try:
        for index in range(50):
            sock = socket.create_connection(("127.0.0.1", daemon.port), timeout=5)
            sock.sendall(b"GET /api/cameras HTTP/1.1\r\nHost: x\r\nX-Slow-%d: " % index)
            slow.append(sock)
        for _ in range(3):
            for sock in slow:
                sock.sendall(b"a")
            started = time.monotonic()
            status, _ = daemon.get("/healthz")
            assert status == 200 and time.monotonic() - started < 2
            time.sleep(0.2)
        # A slow body is bounded the same way; the daemon still answers meanwhile.
        sock = socket.create_connection(("127.0.0.1", daemon.port), timeout=5)
        sock.sendall(build_request("PATCH", "/api/clips/x", AUTH, b"")[:-2])
        sock.sendall(b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
        slow.append(sock)
        assert camera_status(daemon)["online"]
    finally:
        for sock in slow:
            sock.close()
    assert_still_recording(daemon)


# -- WebSocket -----------------------------------------------------------------------------------


class RawWebSocket:
    """A minimal client that can send any frame, valid or not."""

    def __init__(self, port: int, path: str = "/ws/live/cam") -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        key = base64.b64encode(os.urandom(16)).decode()
        request = build_request(
            "GET",
            path,
            {
                **AUTH,
                "Upgrade": "websocket",
                "Connection": "Upgrade",
                "Sec-WebSocket-Key": key,
                "Sec-WebSocket-Version": "13",
            },
            b"",
        ).replace(b"Connection: close\r\n", b"")
        self.sock.sendall(request)
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            assert chunk, "closed during the handshake"
            self.buffer += chunk
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        self.closed = False

    def send_frame(
        self, opcode: int, payload: bytes, *, fin: bool = True, masked: bool = True
    ) -> None:
        header = bytes([(0x80 if fin else 0) | opcode])
        mask_bit = 0x80 if masked else 0
        if len(payload) < 126:
            header += bytes([mask_bit | len(payload)])
        elif len(payload) < 65536:
            header += bytes([mask_bit | 126]) + struct.pack("!H", len(payload))
        else:
            header += bytes([mask_bit | 127]) + struct.pack("!Q", len(payload))
        if masked:
            mask = os.urandom(4)
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            header += mask
        try:
            self.sock.sendall(header + payload)
        except (BrokenPipeError, ConnectionResetError):
            self.closed = True

    def read_frame(self, timeout: float = IO_TIMEOUT) -> tuple[int, bytes] | None:
        """(opcode, payload) of the next frame; None once the server closed."""
        self.sock.settimeout(timeout)
        try:
            while True:
                frame = self._parse()
                if frame is not None:
                    return frame
                chunk = self.sock.recv(65536)
                if not chunk:
                    self.closed = True
                    return None
                self.buffer += chunk
        except ConnectionResetError:
            self.closed = True
            return None

    def _parse(self) -> tuple[int, bytes] | None:
        data = self.buffer
        if len(data) < 2:
            return None
        opcode, length, offset = data[0] & 0x0F, data[1] & 0x7F, 2
        if length == 126:
            if len(data) < 4:
                return None
            length, offset = struct.unpack("!H", data[2:4])[0], 4
        elif length == 127:
            if len(data) < 10:
                return None
            length, offset = struct.unpack("!Q", data[2:10])[0], 10
        if len(data) < offset + length:
            return None
        self.buffer = data[offset + length :]
        return opcode, data[offset : offset + length]

    def wait_pong_or_close(self, ping_id: int, timeout: float = IO_TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            frame = self.read_frame(max(0.1, deadline - time.monotonic()))
            if frame is None:
                return "closed"
            opcode, payload = frame
            if opcode == 0x8:
                return "closed"
            if opcode == 0x1 and json.loads(payload).get("id") == ping_id:
                return "pong"
        raise AssertionError("neither a pong nor a close")

    def binary_frames(self, count: int, timeout: float = IO_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        seen = 0
        while seen < count:
            assert time.monotonic() < deadline, f"{seen} of {count} frames"
            frame = self.read_frame(deadline - time.monotonic())
            assert frame is not None and frame[0] != 0x8, "the watcher was closed"
            seen += frame[0] == 0x2

    def close(self) -> None:
        self.sock.close()


ws_messages = st.lists(
    st.one_of(
        st.tuples(st.just(0x1), st.text(max_size=300).map(str.encode)),
        st.tuples(st.just(0x1), st.binary(max_size=300)),  # mostly invalid UTF-8
        st.tuples(st.just(0x2), st.binary(max_size=300)),
        st.tuples(st.just(0x1), json_values.map(lambda v: json.dumps(v).encode())),
        st.tuples(st.just(0x1), st.integers(4097, 70_000).map(lambda n: b"[" + b"1," * (n // 2))),
        st.tuples(st.sampled_from([0x3, 0x7, 0xB, 0xF, 0x0]), st.binary(max_size=50)),
        st.tuples(st.just(0x9), st.binary(max_size=200)),  # ping, maybe over 125 bytes
    ),
    min_size=1,
    max_size=4,
)


@pytest.fixture(scope="module")
def watcher(daemon: RunningDaemon) -> Iterator[RawWebSocket]:
    """A well-behaved viewer that must keep getting frames whatever the others send."""
    socket_ = RawWebSocket(daemon.port)
    yield socket_
    socket_.close()


@FUZZ
@given(messages=ws_messages, masked=st.booleans())
def test_fuzzed_websocket_messages_close_or_are_ignored(
    daemon: RunningDaemon, watcher: RawWebSocket, messages: list[tuple[int, bytes]], masked: bool
) -> None:
    viewer = RawWebSocket(daemon.port)
    try:
        for opcode, payload in messages:
            viewer.send_frame(opcode, payload, masked=masked)
        viewer.send_frame(0x1, b'{"type": "ping", "id": 7}')
        outcome = viewer.wait_pong_or_close(7)
        harmless = masked and all(
            opcode == 0x1 and _is_json_text(payload) and len(payload) <= 4096
            for opcode, payload in messages
        )
        if harmless:
            assert outcome == "pong"
    finally:
        viewer.close()
    watcher.binary_frames(1)


def _is_json_text(payload: bytes) -> bool:
    """Valid JSON nested at most 32 deep (what the live view answers instead of closing)."""
    try:
        value = json.loads(payload.decode("utf-8"))
    except (ValueError, RecursionError):
        return False
    return json_depth(value) <= 32


@pytest.mark.parametrize(
    ("payload", "codes"),
    [
        (b"[" * 4000, {1003}),
        (b"[" * 2000 + b"]" * 2000, {1003}),
        (b'{"type": "ping", "id": ' + b"[" * 40 + b"]" * 40 + b"}", {1003}),
        (b'{"type": "ping", "id": "' + b"x" * 100_000 + b'"}', {1009}),
        (b"[" * 100_000, {1009}),
    ],
    ids=["unclosed", "deep", "deep-id", "big", "big-deep"],
)
def test_deep_or_big_websocket_messages_close_with_a_code(
    daemon: RunningDaemon, watcher: RawWebSocket, payload: bytes, codes: set[int]
) -> None:
    viewer = RawWebSocket(daemon.port)
    try:
        viewer.send_frame(0x1, payload)
        code = None
        while (frame := viewer.read_frame()) is not None:
            if frame[0] == 0x8:
                code = struct.unpack("!H", frame[1][:2])[0]
                break
        assert code in codes, code
    finally:
        viewer.close()
    fresh = RawWebSocket(daemon.port)
    try:
        fresh.send_frame(0x1, b'{"type": "ping", "id": 8}')
        assert fresh.wait_pong_or_close(8) == "pong"
    finally:
        fresh.close()
    watcher.binary_frames(1)
    assert "Traceback" not in daemon.log()


def test_websocket_abuse_left_the_camera_and_viewers_running(
    daemon: RunningDaemon, watcher: RawWebSocket
) -> None:
    watcher.binary_frames(10)
    assert_still_recording(daemon)
    status, _ = daemon.get("/healthz")
    assert status == 200
    assert "Traceback" not in daemon.log()


# -- the camera parameter, Host headers, redirect targets ----------------------------------------

HOSTILE_CAMERAS = [
    *("cam", "nope", "..", "../..", "*", "**", "?", "[c]am", "../../outside/x", "cam/.."),
    *("../../../../usr/share/**", "cam/../../..", "cam\n", "cam\x00", "c\u0430m", "CAM", " cam"),
    *("a" * 65, "%2e%2e", "cam/2026-01-01", "~root", "/etc", "cam/*/*", "\\..\\.."),
]


@FUZZ
@given(
    camera=st.sampled_from(HOSTILE_CAMERAS) | st.text(max_size=70),
    path=st.sampled_from(["/api/snapshots", "/api/clips"]),
    kind=st.sampled_from(["", "warn", "snapshot"]),
)
def test_fuzzed_camera_parameters_list_only_that_cameras_files(
    daemon: RunningDaemon, camera: str, path: str, kind: str
) -> None:
    """A camera parameter names a configured camera or gets a 4xx: it never walks, lists or
    probes anything but that camera's part of the storage layout."""
    query = {"camera": camera, **({"kind": kind} if kind else {})}
    target = f"{path}?{urlencode(query)}"
    response = parse_response(raw_exchange(daemon.port, build_request("GET", target, AUTH, b"")))
    assert response is not None
    status, headers, raw_body = response
    data = json.loads(decoded_body(headers, raw_body))
    if camera not in ("cam", ""):  # "": no filter
        assert status in (400, 404) and "error" in data, (camera, status, data)
        return
    assert status == 200, data
    for item in data.get("snapshots", []):
        assert re.fullmatch(
            r"media/(warn|snapshots)/cam/[0-9-]{10}/[0-9]{6}Z[-a-z0-9]*\.jpg", item["url"]
        )
    for clip in data.get("clips", []):
        assert clip["camera"] == "cam"


HOSTS = [
    *("127.0.0.1", "localhost", "LocalHost", "localhost.", "[::1]", "127.0.0.1:{port}"),
    *("localhost:{port}", "[::1]:{port}", "rebind.evil.example", "rebind.evil.example:{port}"),
    *("127.0.0.1.evil.example", "localhost.evil.example", "evil.example@127.0.0.1", "127.1"),
    *("2130706433", "0x7f.0.0.1", "[::ffff:127.0.0.1]", "::1", "", " ", "127.0.0.1 evil"),
    *("127.0.0.1:{port}:{port}", "[::1", "xn--e1afmkfd.example", "\u00e9.example", "*"),
]
LOOPBACK_HOST = re.compile(r"(?:localhost|127\.0\.0\.1|\[::1\])\.?(?::[0-9]{1,5})?", re.IGNORECASE)


@pytest.fixture(scope="module")
def open_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    """The daemon as most people run it: no auth, on loopback."""
    running = RunningDaemon(
        tmp_path_factory.mktemp("open"),
        {"cameras": [{"name": "cam", "source": "demo", "capture": {"width": 160, "height": 120}}]},
    )
    running.start()
    try:
        running.wait_for(lambda: running.get("/healthz")[0] == 200, 20, "the demo camera")
        yield running
    finally:
        assert running.stop() == 0, running.log()


@FUZZ
@given(
    host=st.sampled_from(HOSTS) | header_text,
    target=st.sampled_from(["/api/clips", "/api/cameras", "/", "/healthz", "/static/app.css"]),
    method=st.sampled_from(["GET", "POST"]),
)
def test_fuzzed_host_headers_reach_nothing_without_auth(
    open_daemon: RunningDaemon, host: str, target: str, method: str
) -> None:
    """DNS rebinding: without auth only loopback names (and the listen address) are answered."""
    host = host.replace("{port}", str(open_daemon.port))
    path = "/api/cameras/cam/disarm" if method == "POST" else target
    headers = {"Content-Type": "application/json", "Origin": f"http://{host}"}
    raw = raw_exchange(open_daemon.port, build_request(method, path, headers, b"{}", host=host))
    response = parse_response(raw)
    assert response is not None
    status = response[0]
    assert status < 500 or (status == 503 and path == "/healthz"), (host, path, status)
    if LOOPBACK_HOST.fullmatch(host.strip(" \t")):  # the server strips what surrounds a value
        assert status != 421, (host, path)
    else:
        assert status in (400, 421), (host, path, status)


def websocket_handshake_status(port: int, host: str, origin: str) -> int:
    key = base64.b64encode(os.urandom(16)).decode()
    headers = {
        **AUTH,
        "Origin": origin,
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": key,
        "Sec-WebSocket-Version": "13",
    }
    request = build_request("GET", "/ws/live/cam", headers, b"", host=host)
    with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as sock:
        sock.sendall(request.replace(b"Connection: close\r\n", b""))
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(65536)
            if not chunk:
                break
            head += chunk
    match = re.match(rb"HTTP/1\.1 (\d{3})", head)
    assert match, head[:200]
    return int(match.group(1))


@FUZZ
@given(host=st.sampled_from(HOSTS) | header_text, same_origin=st.booleans())
def test_fuzzed_host_and_origin_open_the_live_view_only_for_this_server(
    daemon: RunningDaemon, host: str, same_origin: bool
) -> None:
    """With auth too, the live view opens only for a loopback Host and a matching Origin."""
    host = host.replace("{port}", str(daemon.port))
    origin = f"http://{host}" if same_origin else f"http://127.0.0.1:{daemon.port}"
    status = websocket_handshake_status(daemon.port, host, origin)
    assert status < 500, (host, status)
    if status == 101:
        assert LOOPBACK_HOST.fullmatch(host.strip(" \t")), host
        assert urlsplit(origin).netloc.lower() == host.lower()


REDIRECTS = [
    *("/", "/clips", "/clips?camera=cam#x", "//evil.example", "///evil.example", "/\\evil.example"),
    *("/\\/evil.example", "\\\\evil.example", "/\t/evil.example", "/\n/evil.example", " /x"),
    *("https://evil.example/", "http:evil.example", "javascript:alert(1)", "/%2F%2Fevil"),
    *("/%5Cevil.example", "/.\\evil", "/x\x00y", "\u3002evil", "/\u00e9\u4e2d", "evil.example"),
]


@pytest.fixture(scope="module")
def login_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    """A daemon of its own: the other tests' wrong passwords from 127.0.0.1 would have it
    answer 429 (too many failed logins) to the right one, as it should."""
    running = start_daemon(tmp_path_factory.mktemp("login"))
    try:
        yield running
    finally:
        assert running.stop() == 0, running.log()


@FUZZ
@given(
    target=st.sampled_from(REDIRECTS) | st.text(max_size=60) | st.text(max_size=60).map("/".__add__)
)
def test_fuzzed_login_redirect_targets_stay_on_this_site(
    login_daemon: RunningDaemon, target: str
) -> None:
    daemon = login_daemon
    body = urlencode({"username": USER, "password": PASSWORD, "next": target}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Motiond": "1"}
    response = parse_response(
        raw_exchange(daemon.port, build_request("POST", "/login", headers, body))
    )
    assert response is not None
    status, response_headers, _ = response
    assert status == 302, (target, status)
    location = response_headers["location"]
    assert location in ("/", target) or unquote(location) == target, (target, location)
    # Where a browser would go: it reads "\\" as "/" and drops tabs and newlines.
    browser_view = re.sub(r"[\t\n\r]", "", location.replace("\\", "/"))
    base = f"http://127.0.0.1:{daemon.port}/"
    assert urlsplit(urljoin(base, browser_view)).netloc == f"127.0.0.1:{daemon.port}", location


# -- the config loader ---------------------------------------------------------------------------


def _field_names(*classes: type) -> list[str]:
    return sorted({f.name for cls in classes for f in dataclasses.fields(cls)})


CONFIG_KEYS = [
    *_field_names(
        CameraConfig,
        CaptureConfig,
        MotionConfig,
        RecordConfig,
        OverlayConfig,
        HookConfig,
        StorageConfig,
        WebConfig,
        AuthConfig,
    ),
    "cameras",
    "storage",
    "web",
    "hooks",
    "log_level",
    "on_clip_end",
    "on_camera_offline",
    "users",
    "tokens",
]
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(
        [
            *("2s", "500ms", "20GB", "5%", "-1s", "1e309", "demo", "/dev/video0", "0"),
            *("nan s", "infs", "1e309GB", "nanGB", "nan%", "1e400%", "-0s", "9" * 400),
        ]
    )
)
yaml_documents = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(CONFIG_KEYS) | st.text(max_size=8), children, max_size=6)
    ),
    max_leaves=30,
)


@st.composite
def config_documents(draw: st.DrawFn) -> object:
    """Mostly the right shape (cameras with a source) with random values, sometimes anything."""
    if draw(st.integers(0, 4)) == 0:
        return draw(yaml_documents)
    camera = {"name": draw(st.sampled_from(["cam", "a b", "", "x" * 80])), "source": "demo"}
    camera.update(draw(st.dictionaries(st.sampled_from(CONFIG_KEYS), yaml_documents, max_size=4)))
    document: dict[str, object] = {"cameras": [camera]}
    for section in ("storage", "web", "hooks"):
        if draw(st.booleans()):
            document[section] = draw(
                st.dictionaries(st.sampled_from(CONFIG_KEYS), yaml_documents, max_size=4)
            )
    return document


@settings(max_examples=200, deadline=None, database=None)
@given(document=config_documents())
def test_fuzzed_config_documents_load_or_raise_config_error(
    document: object, tmp_path_factory: pytest.TempPathFactory
) -> None:
    text = yaml.safe_dump(document, allow_unicode=True)
    _load(text, tmp_path_factory.getbasetemp())


@settings(max_examples=200, deadline=None, database=None)
@given(text=st.text(max_size=300) | st.sampled_from(["a: [", "!!python/object:os.system {}", "*x"]))
def test_fuzzed_config_text_loads_or_raises_config_error(
    text: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    _load(text, tmp_path_factory.getbasetemp())


def _load(text: str, base: Path) -> None:
    try:
        parse_config(text, base=base)
    except ConfigError as error:
        assert str(error)
