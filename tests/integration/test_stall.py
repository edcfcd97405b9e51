"""Stalled IP streams end through the watchdog (capture/stall.py), not PyAV's read timeout.

Against the real RTSP test camera: each source finds its own connection even when several open
to one server at once, shutting one down ends that stream only, a stall ends within
read_timeout, and nothing is left open after close.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Iterator

import pytest

from motiond.capture import stall
from motiond.capture.sources.base import SourceError
from motiond.capture.sources.pyav import PyAVSource
from motiond.config.capture import CaptureConfig
from testbed.camera_video import CameraVideo
from tests.fixtures.rtsp import CameraMediaCache, StartRtspCamera


@pytest.fixture
def stop() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


def video(camera_media: CameraMediaCache) -> CameraVideo:
    return camera_media(width=320, height=180, seconds=6.0)


def source(url: str, stop: threading.Event, read_timeout: float = 5.0) -> PyAVSource:
    capture = CaptureConfig(
        source=url, kind="url", rtsp_transport="tcp", read_timeout=read_timeout, open_timeout=10.0
    )
    return PyAVSource(capture, stop, decode=False)


def sockets() -> set[int]:
    return set(stall._sockets())


def test_sources_opened_at_once_to_one_server_each_find_their_own_connection(
    camera_media: CameraMediaCache, rtsp_camera: StartRtspCamera, stop: threading.Event
) -> None:
    camera = rtsp_camera({"/main": video(camera_media), "/sub": video(camera_media)}, loop=True)
    before = sockets()
    sources = [source(camera.url(m), stop) for m in ("/main", "/sub", "/main", "/sub")]
    threads = [threading.Thread(target=s.open) for s in sources]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    try:
        guards = [s._guard for s in sources]
        assert all(g is not None and len(g.connections) == 1 for g in guards)
        local_ports = {g.connections[0].getsockname()[1] for g in guards if g is not None}
        assert len(local_ports) == 4, "two sources took the same connection"
        # Read without PyAV's timeout (its callback takes the GIL for every check).
        assert all(s._container.read_timeout is None for s in sources)
        for s in sources:
            assert s.read() is not None
        # Shutting down the first one's connection ends its stream, and only its stream.
        first, others = sources[0], sources[1:]
        assert guards[0] is not None
        guards[0].fire()
        with pytest.raises(SourceError, match="timed out"):
            for _ in range(100):
                first.read()
        for s in others:
            assert all(s.read() is not None for _ in range(20))
    finally:
        for s in sources:
            s.close()
    assert sockets() <= before, "a connection or its duplicate was left open"


def test_a_stall_with_the_connection_open_ends_within_read_timeout(
    camera_media: CameraMediaCache, rtsp_camera: StartRtspCamera, stop: threading.Event
) -> None:
    camera = rtsp_camera({"/main": video(camera_media)}, stall_after=1.0)
    stalled = source(camera.url("/main"), stop, read_timeout=1.0)
    stalled.open()
    try:
        assert stalled._guard is not None and stalled._guard.connections
        times = [time.monotonic()]
        with pytest.raises(SourceError, match=r"timed out \(no packet for 1 s\)"):
            while True:
                stalled.read()
                times.append(time.monotonic())
        times.append(time.monotonic())
    finally:
        stalled.close()
    assert camera.stalled
    assert times[-2] - times[0] >= 0.5, "packets came before the stall"
    # One read waited read_timeout (the watchdog's tick more) and the stream ended; without a
    # bound it would wait for TCP's keepalive, minutes. The margin is for a busy machine.
    longest = max(b - a for a, b in itertools.pairwise(times))
    assert 1.0 <= longest < 1.0 + stall.TICK + 2.0


def test_a_url_without_a_tcp_address_keeps_pyavs_read_timeout(
    camera_media: CameraMediaCache, stop: threading.Event
) -> None:
    path = video(camera_media).path
    local = source(os.fspath(path), stop)
    local.open()
    try:
        assert local._guard is None
        assert local._container.read_timeout == 5.0
        assert local.read() is not None
    finally:
        local.close()
