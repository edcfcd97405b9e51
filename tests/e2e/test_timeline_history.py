"""Offline spans on the timeline from the real daemon: a camera served by this process stalls
and comes back, the daemon is stopped and started again, and GET /api/timeline shows each
outage (the start until the first frame, the stall, and the time the daemon was not running)
from the camera history on disk, also after the restart."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed.mjpeg_server import MjpegServer
from tests.fixtures.daemon import RunningDaemon
from tests.fixtures.mjpeg import FPS, still_jpegs

pytestmark = pytest.mark.slow

SLACK = 2.5  # seconds between what the test sees and what the daemon writes down


@pytest.fixture
def server() -> Iterator[MjpegServer]:
    jpegs = still_jpegs()
    mjpeg = MjpegServer(lambda: iter(jpegs), FPS)
    mjpeg.start()
    yield mjpeg
    mjpeg.stop()


def test_outages_on_the_timeline_survive_a_restart(tmp_path: Path, server: MjpegServer) -> None:
    capture = {"fps": FPS, "read_timeout": "1s", "stall_timeout": "2s", "open_timeout": "1s"}
    daemon = RunningDaemon(
        tmp_path, {"cameras": [{"name": "cam", "source": server.url, "capture": capture}]}
    )
    began = time.time()
    daemon.start()
    try:

        def online() -> bool:
            return bool(daemon.camera()["online"])

        daemon.wait_for(online, 20, "camera online")
        first_frames = time.time()
        server.stall()
        stalled = time.time()
        daemon.wait_for(lambda: not online(), 10, "camera offline")
        time.sleep(1.5)
        server.resume()
        daemon.wait_for(online, 15, "camera back online")
        back = time.time()
        time.sleep(0.5)  # the history thread writes the line
        query = f"/api/timeline?camera=cam&since={began - 60}&until={time.time() + 60}"
        startup, outage = daemon.json(query)["offline"]
        # Offline from the start until the first frame, then the stall.
        assert began <= startup["start"] <= startup["end"] <= first_frames, (startup, began)
        assert stalled - 0.1 <= outage["start"] <= stalled + SLACK, (outage, stalled)
        assert back - SLACK <= outage["end"] <= back + 0.1, (outage, back)
    finally:
        assert daemon.stop() == 0
    stopped = time.time()
    time.sleep(1.0)
    daemon.start()
    try:
        daemon.wait_for(lambda: bool(daemon.camera()["online"]), 20, "camera online again")
        restarted = time.time()
        time.sleep(0.5)
        query = f"/api/timeline?camera=cam&since={began - 60}&until={time.time() + 60}"
        *first, gap = daemon.json(query)["offline"]
        assert first == [startup, outage]  # read back from disk by the new process
        assert stopped - SLACK <= gap["start"] <= stopped, (gap, stopped)  # "stopped"
        assert restarted - SLACK <= gap["end"] <= restarted + 0.1, (gap, restarted)
        lines = "".join(p.read_text() for p in (daemon.storage / "history" / "cam").iterdir())
        assert '"event":"offline","detail":"stopped"' in lines
    finally:
        daemon.stop()
