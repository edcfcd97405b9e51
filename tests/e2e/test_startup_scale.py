"""Start-up with 30,000 clips on disk: the web side answers and the camera records while the
clip index is still loading in the background (the timings: scripts/bench_startup.py)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from testbed.many_clips import write_many_clips
from tests.fixtures.daemon import RunningDaemon
from tests.fixtures.video import write_test_video

pytestmark = pytest.mark.slow

CLIPS = 30_000


def line_of(log: str, pattern: str) -> int:
    """The number of the first log line matching ``pattern``."""
    for number, line in enumerate(log.splitlines()):
        if re.search(pattern, line):
            return number
    raise AssertionError(f"{pattern!r} not in the log:\n{log[-3000:]}")


def test_30000_clips_the_web_and_the_camera_are_up_while_the_index_loads(
    tmp_path: Path,
) -> None:
    write_many_clips(tmp_path / "data", CLIPS)
    video = write_test_video(tmp_path / "scene.avi", seconds=6, fps=10, moving=[(0.5, 2.5)])
    daemon = RunningDaemon(
        tmp_path,
        {
            "storage": {"dir": str(tmp_path / "data"), "max_age": 0, "min_free": 0},
            "cameras": [
                {
                    "name": "cam",
                    "source": str(video.path),
                    "capture": {"loop": True},
                    "motion": {"masks": [video.code_mask], "warmup": "0s"},
                    "record": {"max_clip": "5s", "pre_roll": "0.5s"},
                }
            ],
        },
    )
    daemon.start()
    answered_while_loading = []
    try:
        loaded = re.compile(r"clip index loaded: (\d+) clip\(s\)")
        while not loaded.search(daemon.log()):
            status, body = daemon.get("/api/clips?limit=1")
            assert status == 200, body
            total = json.loads(body)["total"]
            if total < CLIPS and not loaded.search(daemon.log()):
                answered_while_loading.append(total)
            time.sleep(0.1)
        daemon.wait_for(lambda: "clip kept" in daemon.log(), 40, "a new clip")
        total = daemon.json("/api/clips?limit=1")["total"]
        assert total >= CLIPS + 1  # the old ones and the new one
        assert daemon.camera()["online"] is True
    finally:
        assert daemon.stop() == 0, daemon.log()
    log = daemon.log()
    assert answered_while_loading, "the index loaded before the API could be asked"
    index_loaded = line_of(log, r"clip index loaded: 30000 clip\(s\)")
    assert line_of(log, "web: listening") < index_loaded
    assert line_of(log, "camera cam: online") < index_loaded
    assert "retention: deleted" not in log  # nothing deleted on a partly loaded index
