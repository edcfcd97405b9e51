"""Running the real daemon on a generated scene video and reading back what it did."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import (
    CODE_HEIGHT,
    TestVideo,
    decode_clip,
    motiond_command,
    read_frame_number,
    sidecars,
    write_config,
)

# Appends the event's JSON document (on stdin) as one line to the file named by its argument.
EVENT_HOOK = "import sys; open(sys.argv[1], 'a').write(sys.stdin.read().strip() + chr(10))"
EVENTS = ("on_clip_start", "on_clip_end", "on_camera_tampered")


@dataclass(frozen=True)
class Clip:
    """A kept clip: its sidecar and the video times of its first and last frames."""

    record: dict[str, Any]
    first: float
    last: float

    def covers(self, t: float) -> bool:
        return self.first <= t <= self.last


@dataclass(frozen=True)
class SceneRun:
    log: str
    clips: list[Clip]
    events: list[dict[str, Any]]
    video: TestVideo

    def of(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == event]

    def video_time(self, wall: float) -> float:
        """The time in the video of a wall-clock time (fast pacing: wall = open + file time),
        calibrated on the first clip's first frame."""
        clip = self.clips[0]
        return wall - float(clip.record["start_ts"]) + clip.first


def strip_mask(video: TestVideo) -> list[list[int]]:
    """A mask over the frame-number strip, with a margin: the blur spreads its changes."""
    return strip_mask_for(video.width, video.height)


def strip_mask_for(width: int, height: int) -> list[list[int]]:
    top = height - CODE_HEIGHT - 6
    return [[0, top], [width, top], [width, height], [0, height]]


def run_scene(
    tmp: Path, video: TestVideo, motion: dict[str, Any], timeout: float = 300
) -> SceneRun:
    """``motiond run`` on ``video`` read as fast as it decodes, with hooks recording events."""
    storage = tmp / "data"
    events_path = tmp / "events.jsonl"
    hook = {"command": [sys.executable, "-c", EVENT_HOOK, str(events_path)]}
    config = write_config(
        tmp / "motiond.yaml",
        {
            "storage": {"dir": str(storage)},
            "web": {"port": 0},
            "hooks": dict.fromkeys(EVENTS, hook),
            "cameras": [
                {
                    "name": "cam",
                    "source": str(video.path),
                    "capture": {"pacing": "fast"},
                    "motion": {"masks": [strip_mask(video)], "warmup": "0s", **motion},
                    "record": {"preset": "ultrafast"},
                }
            ],
        },
    )
    result = subprocess.run(
        motiond_command("run", "-c", str(config)),
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    clips = []
    for record in sidecars(storage):
        _, frames, _ = decode_clip(storage / str(record["file"]))
        first = read_frame_number(frames[0]) / video.fps
        last = read_frame_number(frames[-1]) / video.fps
        clips.append(Clip(record, first, last))
    events = []
    if events_path.exists():
        events = [json.loads(line) for line in events_path.read_text().splitlines() if line]
    return SceneRun(result.stderr, clips, events, video)
