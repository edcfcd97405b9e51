"""A fake HTTP camera: serves JPEG frames as an MJPEG stream, for tests and benchmarks.

    python -m testbed.mjpeg_server --input ../shared/data/vtest.avi --size 1280x720 --fps 15

``/stream.mjpg`` streams ``multipart/x-mixed-replace`` paced at ``fps`` (every client gets the
frames from the first, looped forever); ``/snapshot.jpg`` answers one JPEG (the next in turn).
JPEGs are encoded once up front, so the server itself costs little CPU beside what it serves.
Failure knobs for tests: ``stall()``/``resume()``, ``drop_connections()``, ``set_available()``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import itertools
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType

import cv2

FrameSupply = Callable[[], Iterator[bytes]] | list[bytes]

_INDEX_PAGE = b"""<!doctype html><title>mjpeg_server</title>
<img src="/stream.mjpg" alt="stream"><p><a href="/snapshot.jpg">snapshot</a></p>
"""


class MjpegServer:
    """Serves ``frames`` (JPEG bytes, looped) over HTTP on a daemon thread."""

    def __init__(
        self,
        frames: FrameSupply,
        fps: float,
        host: str = "127.0.0.1",
        port: int = 0,
        boundary: str = "frame",
        *,
        send_content_length: bool = True,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        if isinstance(frames, list) and not frames:
            raise ValueError("frames: need at least one JPEG")
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        self._frames = frames
        self.fps = fps
        self.host = host
        self.port = port
        self.boundary = boundary
        self.send_content_length = send_content_length
        self._auth_header = (
            "Basic " + base64.b64encode(":".join(credentials).encode()).decode()
            if credentials
            else None
        )
        self.url = ""
        self.snapshot_url = ""
        self.frames_sent = 0
        self._lock = threading.Lock()  # guards frames_sent, _connections, _snapshots; any thread
        self._connections: set[socket.socket] = set()
        self._snapshots: Iterator[bytes] | None = None
        self._flowing = threading.Event()  # cleared while stalled
        self._flowing.set()
        self._stopping = threading.Event()
        self._available = True
        self._generation = 0  # bumped by drop_connections(); older streams end
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("MjpegServer already started")
        server = _Server((self.host, self.port), _Handler)
        server.owner = self
        self._server = server
        self.port = server.server_address[1]
        self.url = f"http://{self.host}:{self.port}/stream.mjpg"
        self.snapshot_url = f"http://{self.host}:{self.port}/snapshot.jpg"
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"mjpeg-server-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stall(self) -> None:
        """Keep connections open but send nothing (new ones get no response either)."""
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def drop_connections(self) -> None:
        """Close every open client connection now."""
        with self._lock:
            self._generation += 1
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def set_available(self, available: bool) -> None:
        """When False, new requests are answered 503 (a camera that is gone)."""
        self._available = available

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()
        self._flowing.set()
        self._server.shutdown()
        self.drop_connections()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> MjpegServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- used by the handler threads --------------------------------------------------------

    def _frame_iterator(self) -> Iterator[bytes]:
        if isinstance(self._frames, list):
            return itertools.cycle(self._frames)
        return _loop_forever(self._frames)

    def _next_snapshot(self) -> bytes:
        with self._lock:
            if self._snapshots is None:
                self._snapshots = self._frame_iterator()
            self.frames_sent += 1
            return next(self._snapshots)

    def _count_sent(self) -> None:
        with self._lock:
            self.frames_sent += 1

    def _register(self, connection: socket.socket) -> int:
        with self._lock:
            self._connections.add(connection)
            return self._generation

    def _unregister(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)

    def _still_wanted(self, generation: int) -> bool:
        return not self._stopping.is_set() and generation == self._generation

    def _wait_until_flowing(self, generation: int) -> bool:
        """Block while stalled; False when the connection should end instead."""
        while not self._flowing.wait(0.05):
            if not self._still_wanted(generation):
                return False
        return self._still_wanted(generation)


def _loop_forever(supply: Callable[[], Iterator[bytes]]) -> Iterator[bytes]:
    while True:
        empty = True
        for frame in supply():
            empty = False
            yield frame
        if empty:
            raise ValueError("frames: the frame supply produced nothing")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: MjpegServer

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"
    timeout = 30  # a client that stops reading is dropped after this long

    def setup(self) -> None:
        super().setup()
        self.generation = self.server.owner._register(self.connection)

    def finish(self) -> None:
        self.server.owner._unregister(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        owner = self.server.owner
        if not owner._wait_until_flowing(self.generation):
            return
        if not owner._available:
            self.send_error(503, "Camera unavailable")
            return
        if owner._auth_header and self.headers.get("Authorization") != owner._auth_header:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="camera"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path = self.path.partition("?")[0]
        if path == "/stream.mjpg":
            self._stream(owner)
        elif path == "/snapshot.jpg":
            self._send(200, "image/jpeg", owner._next_snapshot())
        elif path == "/":
            self._send(200, "text/html; charset=utf-8", _INDEX_PAGE)
        else:
            self.send_error(404)

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _stream(self, owner: MjpegServer) -> None:
        boundary = owner.boundary.encode()
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={owner.boundary}")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        interval = 1.0 / owner.fps
        due = time.monotonic()
        try:
            for jpeg in owner._frame_iterator():
                delay = due - time.monotonic()
                if delay > 0 and owner._stopping.wait(delay):
                    return
                if not owner._wait_until_flowing(self.generation):
                    return
                headers = b"--" + boundary + b"\r\nContent-Type: image/jpeg\r\n"
                if owner.send_content_length:
                    headers += b"Content-Length: %d\r\n" % len(jpeg)
                self.wfile.write(b"".join((headers, b"\r\n", jpeg, b"\r\n")))
                owner._count_sent()
                due += interval
                now = time.monotonic()
                if now - due > interval:
                    due = now  # after a stall or a slow client: no burst to catch up
        except OSError:
            return  # the client went away, or drop_connections() shut the socket


def jpeg_frames_from_video(
    path: str,
    size: tuple[int, int] | None = None,
    quality: int = 80,
    limit: int | None = None,
) -> list[bytes]:
    """Decode ``path`` and JPEG-encode each frame, resized to ``size`` (width, height) if given."""
    video = cv2.VideoCapture(path)
    if not video.isOpened():
        raise OSError(f"cannot open video {path}")
    frames: list[bytes] = []
    try:
        while limit is None or len(frames) < limit:
            ok, image = video.read()
            if not ok:
                break
            height, width = image.shape[:2]
            if size is not None and size != (width, height):
                shrinking = size[0] * size[1] < width * height
                interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
                image = cv2.resize(image, size, interpolation=interpolation)
            ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
            if not ok:
                raise ValueError(f"JPEG encoding failed for frame {len(frames)} of {path}")
            frames.append(encoded.tobytes())
    finally:
        video.release()
    if not frames:
        raise ValueError(f"no frames decoded from {path}")
    return frames


def parse_size(text: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT`` (e.g. ``1280x720``) as (width, height), for argparse."""
    width, _, height = text.lower().partition("x")
    try:
        return int(width), int(height)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WIDTHxHEIGHT, got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True, help="video file to serve")
    parser.add_argument("--size", type=parse_size, help="resize to WIDTHxHEIGHT, e.g. 1280x720")
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--quality", type=int, default=80, help="JPEG quality")
    parser.add_argument("--limit", type=int, help="use only the first N frames")
    args = parser.parse_args(argv)

    frames = jpeg_frames_from_video(args.input, args.size, args.quality, args.limit)
    average_kb = sum(len(f) for f in frames) / len(frames) / 1024
    print(f"{len(frames)} frames, {average_kb:.0f} KiB each on average", file=sys.stderr)
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    # Before the URL is printed: whoever reads it may signal us at once.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    server = MjpegServer(frames, args.fps, args.host, args.port)
    server.start()
    print(server.url, flush=True)
    while not done.wait(1.0):
        pass
    server.stop()
    print(f"stopped after {server.frames_sent} frames", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
