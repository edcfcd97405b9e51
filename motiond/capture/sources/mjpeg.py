"""HTTP MJPEG streams and JPEG snapshot URLs, read with the standard library."""

from __future__ import annotations

import base64
import contextlib
import http.client
import logging
import socket
import ssl
import threading
import time
from urllib.parse import SplitResult, unquote, urlsplit

from motiond.capture.sources.base import (
    DEFAULT_SNAPSHOT_FPS,
    MAX_PART_BYTES,
    MAX_PART_HEADERS,
    READ_CHUNK,
    FrameMaker,
    Pacer,
    Source,
    SourceError,
    describe_error,
    redact_url,
)
from motiond.config.capture import CaptureConfig
from motiond.frames import Frame, FrameDecodeError

logger = logging.getLogger(__name__)

# Content types of coded video over HTTP (MPEG-TS, MP4, HLS playlists), read by libavformat.
VIDEO_STREAM_TYPES = frozenset(
    {"application/octet-stream", "application/vnd.apple.mpegurl", "application/x-mpegurl"}
)


class VideoStreamError(SourceError):
    """The URL serves coded video, not MJPEG or JPEG snapshots."""


class MultipartReader:
    """Splits a ``multipart/x-mixed-replace`` byte stream into part bodies, without copying much.

    Feed it bytes as they arrive; ``next_part()`` returns each complete body. A part with a
    Content-Length is cut by length, otherwise at the next boundary. ``boundary`` None means
    "take it from the first ``--`` line" (cameras that leave it out of the Content-Type).
    """

    def __init__(self, boundary: bytes | None) -> None:
        # Some cameras declare boundary=--foo and then write --foo instead of ----foo; matching
        # the declared string itself finds both (and a "--" left before it is not body).
        self._sloppy = bool(boundary and boundary.startswith(b"--"))
        self._delimiter = (boundary if self._sloppy else b"--" + boundary) if boundary else None
        self._buffer = bytearray()
        self._in_body = False
        self._length: int | None = None
        self._scan_from = 0
        self.finished = False  # the closing boundary was seen

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next_part(self) -> bytes | None:
        """The next complete part's body, or None until more bytes are fed."""
        if not self._in_body and not self._start_part():
            return None
        buffer = self._buffer
        if self._length is not None:
            if len(buffer) < self._length:
                return None
            end = self._length
            body_end = end
        else:
            assert self._delimiter is not None
            end = buffer.find(self._delimiter, self._scan_from)
            if end < 0:
                if len(buffer) > MAX_PART_BYTES:
                    raise SourceError(f"multipart part larger than {MAX_PART_BYTES} bytes")
                self._scan_from = max(0, len(buffer) - len(self._delimiter))
                return None
            body_end = end
            if self._sloppy and buffer.endswith(b"--", 0, body_end):
                body_end -= 2
            if buffer.endswith(b"\r\n", 0, body_end):
                body_end -= 2
            elif buffer.endswith(b"\n", 0, body_end):
                body_end -= 1
        with memoryview(buffer) as view:
            body = bytes(view[:body_end])
        del buffer[:end]
        self._in_body = False
        return body

    def _start_part(self) -> bool:
        """Consume up to the end of the next part's headers; False when more bytes are needed."""
        buffer = self._buffer
        if self._delimiter is None and not self._detect_delimiter():
            return False
        assert self._delimiter is not None
        start = buffer.find(self._delimiter)
        if start < 0:
            # Nothing but preamble or garbage: keep only what could begin a delimiter.
            del buffer[: max(0, len(buffer) - len(self._delimiter) + 1)]
            return False
        if start > 0:
            del buffer[:start]  # garbage before the delimiter
            start = 0
        after = start + len(self._delimiter)
        if len(buffer) < after + 2:
            return False
        if buffer[after : after + 2] == b"--":
            self.finished = True
            del buffer[:]
            return False
        header_end = buffer.find(b"\r\n\r\n", after)
        separator = 4
        bare_end = buffer.find(b"\n\n", after)  # some cameras end lines with a bare LF
        if bare_end >= 0 and (header_end < 0 or bare_end < header_end):
            header_end, separator = bare_end, 2
        if header_end < 0:
            if len(buffer) - after > MAX_PART_HEADERS:
                raise SourceError("multipart part headers too long")
            return False
        self._length = _content_length(bytes(buffer[after:header_end]))
        del buffer[: header_end + separator]
        self._in_body = True
        self._scan_from = 0
        return True

    def _detect_delimiter(self) -> bool:
        """Take the delimiter from the first non-blank line; False when it is incomplete."""
        while True:
            line_end = self._buffer.find(b"\n", 0, MAX_PART_HEADERS)
            if line_end < 0:
                if len(self._buffer) >= MAX_PART_HEADERS:
                    raise SourceError("no multipart boundary in the stream")
                return False
            line = bytes(self._buffer[:line_end]).strip()
            if line:
                break
            del self._buffer[: line_end + 1]
        if not line.startswith(b"--"):
            raise SourceError("no multipart boundary in the stream")
        self._delimiter = line
        return True


def _content_length(headers: bytes) -> int | None:
    for line in headers.splitlines():
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            try:
                length = int(value.strip())
            except ValueError:
                return None
            if length > MAX_PART_BYTES:
                raise SourceError(f"multipart part of {length} bytes is too large")
            return length if length >= 0 else None
    return None


def _boundary_param(content_type: str) -> bytes | None:
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "boundary":
            value = value.strip().strip('"')
            return value.encode("latin-1") if value else None
    return None


class MjpegHttpSource(Source):
    """An HTTP(S) camera: a ``multipart/x-mixed-replace`` MJPEG stream, or a JPEG snapshot URL.

    Stream parts become frames with their bytes unchanged (no decode unless rotate/flip are
    set). Parts that are not JPEG are skipped and counted in ``garbled_parts``. A URL that
    answers with a single ``image/jpeg`` is polled at ``capture.fps`` (default 5). Basic auth
    comes from ``user:pass@`` in the URL. The stream ending (closing boundary, connection
    closed) makes read() return None; no complete frame within ``read_timeout`` (stall,
    garbage) raises SourceError. ``open_timeout`` bounds connecting and each wait for the
    response's headers (a socket timeout, not one deadline for the whole exchange).
    """

    realtime = True

    def __init__(self, capture: CaptureConfig, stop: threading.Event) -> None:
        self._capture_config = capture
        self._stop = stop
        url = urlsplit(capture.source)
        self._url = url
        self.description = f"{redact_url(capture.source)} (MJPEG)"
        self._headers = {"User-Agent": "motiond", "Accept": "multipart/x-mixed-replace, image/jpeg"}
        if url.username is not None:
            credentials = f"{unquote(url.username)}:{unquote(url.password or '')}"
            token = base64.b64encode(credentials.encode("utf-8")).decode("ascii")
            self._headers["Authorization"] = f"Basic {token}"
        self.garbled_parts = 0
        self.snapshot_mode = False
        self._frames = FrameMaker(capture)
        self._pacer = Pacer(capture.fps or DEFAULT_SNAPSHOT_FPS, stop)
        self._connection: http.client.HTTPConnection | None = None
        self._response: http.client.HTTPResponse | None = None
        self._socket: socket.socket | None = None
        self._parts: MultipartReader | None = None
        self._first_snapshot: tuple[bytes, float, float] | None = None
        self._ended = False

    def open(self) -> None:
        self.close()
        self._frames.seq = 0
        self._ended = False
        self.garbled_parts = 0
        capture = self._capture_config
        response = self._request(capture.open_timeout)
        content_type = response.getheader("Content-Type") or ""
        mime = content_type.partition(";")[0].strip().lower()
        if mime.startswith("multipart/"):
            self.snapshot_mode = False
            self._parts = MultipartReader(_boundary_param(content_type))
            self._response = response
        elif mime in ("image/jpeg", "image/jpg"):
            self.snapshot_mode = True
            self.description = f"{redact_url(capture.source)} (JPEG snapshots)"
            self._first_snapshot = (self._read_body(response), time.monotonic(), time.time())
            self._pacer = Pacer(capture.fps or DEFAULT_SNAPSHOT_FPS, self._stop)
            self._pacer.wait()  # the first snapshot counts as the first poll
        elif mime.startswith("video/") or mime in VIDEO_STREAM_TYPES:
            self.close()
            raise VideoStreamError(f"{self.description}: a video stream ({mime})")
        else:
            self.close()
            raise SourceError(
                f"{self.description}: unexpected content type {content_type!r} "
                "(want multipart/x-mixed-replace, image/jpeg or a video stream)"
            )
        self._set_timeout(capture.read_timeout)
        logger.info("opened %s", self.description)

    def _request(self, timeout: float) -> http.client.HTTPResponse:
        """GET the URL on the open connection (made if needed); raises SourceError unless 200."""
        if self._connection is None:
            self._connection = self._new_connection(timeout)
        connection = self._connection
        target = self._url.path or "/"
        if self._url.query:
            target += "?" + self._url.query
        try:
            connection.request("GET", target, headers=self._headers)
            # Kept because http.client forgets the socket once the response owns it.
            self._socket = connection.sock
            response = connection.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise SourceError(f"cannot get {self.description}: {describe_error(exc)}") from exc
        if response.status != 200:
            self.close()
            raise SourceError(f"{self.description}: HTTP {response.status} {response.reason}")
        return response

    def _new_connection(self, timeout: float) -> http.client.HTTPConnection:
        url: SplitResult = self._url
        try:
            port = url.port
        except ValueError as exc:
            raise SourceError(f"{self.description}: bad port in URL") from exc
        if not url.hostname:
            raise SourceError(f"{self.description}: no host in URL")
        if url.scheme.lower() == "https":
            context = ssl.create_default_context()
            return http.client.HTTPSConnection(url.hostname, port, timeout=timeout, context=context)
        return http.client.HTTPConnection(url.hostname, port, timeout=timeout)

    def _set_timeout(self, seconds: float) -> None:
        if self._connection is not None:
            self._connection.timeout = seconds  # used when http.client reconnects for a poll
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.settimeout(seconds)

    def read(self) -> Frame | None:
        if self._connection is None and self._response is None:
            raise SourceError(f"{self.description} is not open")
        if self._ended:
            return None
        if self.snapshot_mode:
            return self._read_snapshot()
        return self._read_stream()

    def _read_stream(self) -> Frame | None:
        assert self._parts is not None and self._response is not None
        timeout = self._capture_config.read_timeout
        deadline = time.monotonic() + timeout
        while True:
            body = self._parts.next_part()
            if body is not None:
                mono, wall = time.monotonic(), time.time()
                try:
                    return self._frames.jpeg(body, mono, wall)
                except FrameDecodeError:
                    self.garbled_parts += 1
                    logger.debug(
                        "%s: skipped a garbled part (%d bytes)", self.description, len(body)
                    )
                    continue
            if self._parts.finished:
                self._ended = True
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SourceError(f"{self.description}: no frame for {timeout:g} s")
            self._set_timeout(min(remaining, timeout))
            try:
                chunk = self._response.read1(READ_CHUNK)
            except TimeoutError as exc:
                raise SourceError(f"{self.description}: no frame for {timeout:g} s") from exc
            except http.client.IncompleteRead:
                chunk = b""
            except (OSError, http.client.HTTPException) as exc:
                raise SourceError(f"{self.description}: {describe_error(exc)}") from exc
            if not chunk:
                self._ended = True
                return None
            self._parts.feed(chunk)

    def _read_snapshot(self) -> Frame | None:
        timeout = self._capture_config.read_timeout
        deadline = time.monotonic() + timeout
        while True:
            if self._first_snapshot is not None:
                body, mono, wall = self._first_snapshot
                self._first_snapshot = None
            else:
                if not self._pacer.wait():
                    return None
                body = self._read_body(self._request(timeout))
                mono, wall = time.monotonic(), time.time()
            try:
                return self._frames.jpeg(body, mono, wall)
            except FrameDecodeError:
                self.garbled_parts += 1
                if time.monotonic() > deadline:
                    raise SourceError(
                        f"{self.description}: no valid JPEG for {timeout:g} s"
                    ) from None

    def _read_body(self, response: http.client.HTTPResponse) -> bytes:
        try:
            body = response.read(MAX_PART_BYTES + 1)
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise SourceError(f"{self.description}: {describe_error(exc)}") from exc
        if len(body) > MAX_PART_BYTES:
            self.close()
            raise SourceError(f"{self.description}: snapshot larger than {MAX_PART_BYTES} bytes")
        return body

    def close(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)
            self._socket = None
        if self._response is not None:
            self._response.close()
            self._response = None
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self._parts = None
        self._first_snapshot = None
