"""Frame sources: V4L2 devices, network URLs, video files and the built-in demo.

    source = open_source(capture_config, stop_event)   # builds, does not open
    source.open()          # raises SourceError; bounded by capture.open_timeout
    frame = source.read()  # a Frame, or None when the stream ended (or stop_event was set while
                           # waiting for a frame to be due); raises SourceError on failure;
                           # bounded by capture.read_timeout
    source.close()         # idempotent

A source belongs to one thread, the one that reads it: open, read and close are not thread-safe.
Nothing blocks without a bound: pacing waits on the stop event, network reads have timeouts.

Frame times are taken when a frame arrives (``time.monotonic()``, ``time.time()``), except for
a file read as fast as it decodes (``realtime`` False): then ``mono`` is the file's own
timestamp, continued across loops, and ``wall`` is the wall time at open plus that.
"""

from __future__ import annotations

import threading
from urllib.parse import urlsplit

from motiond.capture.sources.base import (
    DEFAULT_FPS,
    DEFAULT_SNAPSHOT_FPS,
    MAX_PART_BYTES,
    Source,
    SourceError,
    redact_url,
)
from motiond.capture.sources.demo import DemoSource
from motiond.capture.sources.files import FileSource
from motiond.capture.sources.mjpeg import MjpegHttpSource, MultipartReader, VideoStreamError
from motiond.capture.sources.opencv import OpenCVSource
from motiond.capture.sources.pyav import PyAVSource
from motiond.config import CaptureConfig
from motiond.frames import Frame


def open_source(capture: CaptureConfig, stop: threading.Event, audio: bool = False) -> Source:
    """The source for ``capture.kind``, not yet opened. A network camera's main stream is
    decoded for detection unless it has a ``detect_source``; ``audio`` reads its sound too."""
    if capture.kind == "demo":
        return DemoSource(capture, stop)
    if capture.kind == "file":
        return FileSource(capture, stop)
    if capture.kind == "url":
        decode = capture.detect_source is None
        if urlsplit(capture.source).scheme.lower() in ("http", "https"):
            return HttpSource(capture, stop, decode=decode, audio=audio)
        return PyAVSource(capture, stop, decode=decode, audio=audio)
    return OpenCVSource(capture, stop)


class HttpSource:
    """An HTTP(S) camera: MJPEG streams and JPEG snapshots through our own reader, coded video
    (MPEG-TS, MP4 ...) through libavformat, chosen by the Content-Type at the first open."""

    realtime = True

    def __init__(
        self, capture: CaptureConfig, stop: threading.Event, *, decode: bool, audio: bool
    ) -> None:
        self._capture = capture
        self._stop = stop
        self._decode = decode
        self._audio = audio
        # The reader in use: MJPEG until the server says it sends coded video.
        self.reader: MjpegHttpSource | PyAVSource = MjpegHttpSource(capture, stop)
        self.description = self.reader.description

    @property
    def garbled_parts(self) -> int:
        return self.reader.garbled_parts

    def open(self) -> None:
        if isinstance(self.reader, MjpegHttpSource):
            try:
                self.reader.open()
            except VideoStreamError:
                self.reader = PyAVSource(
                    self._capture, self._stop, decode=self._decode, audio=self._audio
                )
            else:
                self.description = self.reader.description
                return
        self.reader.open()
        self.description = self.reader.description

    def read(self) -> Frame | None:
        return self.reader.read()

    def close(self) -> None:
        self.reader.close()


__all__ = [
    "DEFAULT_FPS",
    "DEFAULT_SNAPSHOT_FPS",
    "MAX_PART_BYTES",
    "DemoSource",
    "FileSource",
    "HttpSource",
    "MjpegHttpSource",
    "MultipartReader",
    "OpenCVSource",
    "PyAVSource",
    "Source",
    "SourceError",
    "open_source",
    "redact_url",
]
