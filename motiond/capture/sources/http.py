"""An HTTP(S) camera, whatever it sends: MJPEG streams and JPEG snapshots through our own
reader (mjpeg.py), coded video (MPEG-TS, MP4 ...) through libavformat (pyav.py), chosen by
the Content-Type at the first open."""

from __future__ import annotations

import threading

from motiond.capture.sources.base import Source
from motiond.capture.sources.mjpeg import MjpegHttpSource, VideoStreamError
from motiond.capture.sources.pyav import PyAVSource
from motiond.config.capture import CaptureConfig
from motiond.frames import Frame


class HttpSource(Source):
    """An HTTP(S) camera: MJPEG until the server says it sends coded video."""

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
        self.garbled_parts = 0  # the reader's, as of its last read

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
        try:
            return self.reader.read()
        finally:
            self.garbled_parts = self.reader.garbled_parts

    def close(self) -> None:
        self.reader.close()
