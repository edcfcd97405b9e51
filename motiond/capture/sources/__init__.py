"""Frame sources: V4L2 devices, network URLs, video files and the built-in demo.

    source = open_source(capture_config, stop_event)   # builds, does not open
    source.open()          # raises SourceError; bounded by capture.open_timeout
    frame = source.read()  # a Frame, or None when the stream ended (or stop_event was set while
                           # waiting for a frame to be due); raises SourceError on failure;
                           # bounded by capture.read_timeout
    source.close()         # idempotent
    source.garbled_parts   # parts skipped as not pictures, since the source was made

``open_source`` is the ``SourceFactory`` the capture loop uses unless it is given another.

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
    SourceFactory,
    redact_url,
)
from motiond.capture.sources.demo import DemoSource
from motiond.capture.sources.files import FileSource
from motiond.capture.sources.http import HttpSource
from motiond.capture.sources.mjpeg import MjpegHttpSource, MultipartReader
from motiond.capture.sources.opencv import OpenCVSource
from motiond.capture.sources.pyav import PyAVSource
from motiond.config.capture import CaptureConfig


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
    "SourceFactory",
    "open_source",
    "redact_url",
]
