"""The live page plays the camera's own H.264 in Chromium, at the live edge, and falls back to JPEG
pictures where it cannot (an MJPEG camera; H.265, which this Chromium does not play).

The real daemon with three cameras: GStreamer's RTSP server serving an H.264 main + sub stream
(GOP 1 s) and an H.265 stream, and the testbed's MJPEG camera; ``tests/browser/live_video.mjs``
drives Debian's Chromium (headless) through the live page and the all-cameras grid.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from testbed.mjpeg_server import MjpegServer
from tests.fixtures.browser import BROWSER_DIR, install_playwright, require_browser_tools
from tests.fixtures.daemon import RunningDaemon
from tests.fixtures.mjpeg import still_jpegs
from tests.fixtures.rtsp import CameraMediaCache, StartRtspCamera

pytestmark = pytest.mark.slow

SECONDS = 30


@pytest.fixture
def mjpeg_camera() -> Iterator[MjpegServer]:
    server = MjpegServer(still_jpegs(), fps=10)
    server.start()
    yield server
    server.stop()


def run_browser(settings: dict[str, Any]) -> dict[str, Any]:
    node, npm = require_browser_tools()
    install_playwright(npm)
    ran = subprocess.run(
        [node, str(BROWSER_DIR / "live_video.mjs"), json.dumps(settings)],
        cwd=BROWSER_DIR,
        capture_output=True,
        text=True,
        timeout=SECONDS + 120,
        check=False,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    result: dict[str, Any] = json.loads(ran.stdout.strip().splitlines()[-1])
    return result


def test_chromium_plays_the_h264_live_at_its_edge_and_shows_jpeg_where_it_cannot(
    tmp_path: Path,
    camera_media: CameraMediaCache,
    rtsp_camera: StartRtspCamera,
    mjpeg_camera: MjpegServer,
) -> None:
    main, sub = camera_media.pair(main=(1280, 720), sub=(320, 180), seconds=12.0, gop=15)
    hevc = camera_media(width=640, height=360, seconds=12.0, codec="hevc", gop=15)
    server = rtsp_camera({"/main": main, "/sub": sub, "/hevc": hevc}, loop=True)
    daemon = RunningDaemon(
        tmp_path,
        {
            "cameras": [
                {
                    "name": "door",
                    "source": server.url("/main"),
                    "capture": {"detect_source": server.url("/sub")},
                },
                {"name": "garden", "source": server.url("/hevc")},
                {"name": "garage", "source": mjpeg_camera.url},
            ]
        },
    )
    daemon.start()
    try:
        daemon.wait_for(
            lambda: all(c["online"] for c in daemon.json("/api/cameras")), 30, "cameras online"
        )
        result = run_browser(
            {
                "base": daemon.base,
                "video": "door",
                "seconds": SECONDS,
                "jpeg": ["garage", "garden"],
                "grid": True,
                "gridVideo": ["door"],
            }
        )
    finally:
        daemon.stop()
    (tmp_path / "browser.json").write_text(json.dumps(result, indent=1))
    assert result["ok"], result
    assert result["errors"] == [], result["errors"]
    assert result["mime"].startswith('video/mp4; codecs="avc1.')
    samples = result["samples"]
    assert len(samples) == SECONDS
    # It plays: the video, not the canvas, shows the picture; time and frames keep growing.
    assert all(s["view"] == "video" and not s["hidden"] and s["canvasHidden"] for s in samples)
    times = [s["currentTime"] for s in samples]
    frames = [s["frames"] for s in samples]
    assert all(b > a for a, b in pairwise(times)), times
    assert all(b > a for a, b in pairwise(frames)), frames
    assert frames[-1] - frames[0] >= 10 * (SECONDS - 1)  # 15 fps served, some slack
    # At the live edge, every second of the 30.
    assert all(s["behind"] is not None and s["behind"] < 1.0 for s in samples), samples
    # The overlay lies on the video and keeps drawing; a mask drawn on it is in main-stream
    # pixels (1280x720: a tenth to four tenths of each side).
    overlay = result["overlay"]
    assert overlay["drawsAfter"] > overlay["drawsBefore"], overlay
    for side in ("x", "y", "width", "height"):
        assert overlay["layerBox"][side] == pytest.approx(overlay["videoBox"][side], abs=2)
    corners = re.search(
        r"- \[\[(\d+), (\d+)\], \[(\d+), (\d+)\], \[(\d+), (\d+)\]\]", overlay["yaml"]
    )
    assert corners, overlay["yaml"]
    expected = (128, 72, 512, 72, 512, 288)
    assert all(
        abs(int(got) - want) <= 2 for got, want in zip(corners.groups(), expected, strict=True)
    )
    # The switch: the sub stream (320x180) plays, then the main stream (1280x720) again.
    sub_view, main_view = result["streams"]
    assert (sub_view["stream"], sub_view["width"], sub_view["height"]) == ("sub", 320, 180)
    assert (main_view["stream"], main_view["width"], main_view["height"]) == ("main", 1280, 720)
    assert sub_view["framesInASecond"] >= 8 and main_view["framesInASecond"] >= 8
    # JPEG pictures for the MJPEG camera and for H.265, saying why.
    garage, garden = result["jpeg"]["garage"], result["jpeg"]["garden"]
    assert garage["view"] == "jpeg" and garage["videoHidden"] and garage["canvasFrames"] >= 3
    assert "pictures" in garage["refused"]
    assert garden["view"] == "jpeg" and garden["videoHidden"] and garden["canvasFrames"] >= 3
    assert garden["refused"].startswith('this browser cannot play video/mp4; codecs="hvc1.')
    # The grid: a tile per camera, each with a picture, each leading to its full view.
    tiles = {tile["camera"]: tile for tile in result["grid"]}
    assert set(tiles) == {"door", "garden", "garage"}
    assert tiles["door"]["view"] == "video"
    assert tiles["door"]["href"] == "?camera=door"
