"""The daemon, run as a user runs it, on video files with known motion; its clips checked."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from testbed.framecode import read_frame_number
from tests.fixtures.daemon import run_motiond, run_motiond_until, sidecars, write_config
from tests.fixtures.video import decode_clip, write_test_video

pytestmark = pytest.mark.slow

FPS = 10.0
PRE_ROLL = 2.0
STABLE_FRAMES = 20
MOVING = [(5.0, 8.0), (15.0, 17.0), (30.0, 33.0)]
BLIP_AT = 24.0  # a 2-frame blip: discarded
# Appends its last argument as a line to the file named by its first.
HOOK_SCRIPT = "import sys; open(sys.argv[1], 'a').write(sys.argv[-1] + '\\n')"


def test_clips_from_a_video_with_known_motion(tmp_path: Path) -> None:
    segments = [*MOVING, (BLIP_AT, BLIP_AT + 2 / FPS)]
    video = write_test_video(tmp_path / "scene.avi", seconds=40, fps=FPS, moving=segments)
    storage = tmp_path / "data"
    hook_log = tmp_path / "hooks.log"
    hook = [sys.executable, "-c", HOOK_SCRIPT, str(hook_log)]
    config = write_config(
        tmp_path / "motiond.yaml",
        {
            "storage": {"dir": str(storage)},
            "web": {"port": 0},
            "cameras": [
                {
                    "name": "test",
                    "source": str(video.path),
                    "capture": {"pacing": "fast"},
                    "motion": {"masks": [video.code_mask], "warmup": "0s"},
                    "record": {"pre_roll": f"{PRE_ROLL}s"},
                    "hooks": {"on_clip_end": {"command": [*hook, "end {clip_id} {frames}"]}},
                },
                # A camera that is not there: logged and retried, it never stops the other.
                {"name": "missing", "source": "/dev/video63"},
            ],
            "hooks": {"on_clip_start": {"command": [*hook, "start {camera} {clip_id}"]}},
        },
    )
    code, log = run_motiond_until(["run", "-c", str(config)], tmp_path, f"{video.path} ended")
    assert code == 0, log
    assert "clip discarded" in log  # the blip
    assert "camera missing: cannot open /dev/video63" in log

    records = sidecars(storage)
    assert len(records) == len(MOVING), log
    for record, (start, end) in zip(records, MOVING, strict=True):
        clip = storage / str(record["file"])
        codec, frames, times = decode_clip(clip)
        assert codec == "h264"
        assert len(frames) == record["frames"]
        # The first frame is pre_roll before the first changed frame, the last one is the
        # STABLE_FRAMES-th calm frame after the motion: both within one frame of the truth.
        first_index = read_frame_number(frames[0])
        last_index = read_frame_number(frames[-1])
        expected_first = round((start - PRE_ROLL) * FPS)
        expected_last = round(end * FPS) + STABLE_FRAMES - 1
        assert abs(first_index - expected_first) <= 2, (first_index, expected_first)
        assert abs(last_index - expected_last) <= 2, (last_index, expected_last)
        assert last_index - first_index + 1 == len(frames)  # nothing dropped in between
        # Timestamps in the file come from capture times: 10 fps plays at 10 fps.
        assert times[-1] == pytest.approx((len(frames) - 1) / FPS, abs=0.02)
        assert float(record["duration"]) == pytest.approx(len(frames) / FPS, abs=0.02)
        assert record["codec"] == "h264" and record["camera"] == "test"
        assert record["width"] == video.width and record["height"] == video.height
        assert record["size"] == clip.stat().st_size
        assert int(record["changed_frames"]) >= 5  # type: ignore[call-overload]
        assert float(record["fps"]) == pytest.approx(FPS, rel=0.01)
        for snapshot in record["snapshots"]:  # type: ignore[attr-defined]
            assert (storage / snapshot).is_file()
        assert record["poster"] == record["snapshots"][0]  # type: ignore[index]
        box = record["boxes_union"]
        assert isinstance(box, list) and box[1] < video.height // 3 + 10 < box[1] + box[3]

    # Clip start times (wall clock) are as far apart as in the file.
    gap = float(records[1]["start_ts"]) - float(records[0]["start_ts"])  # type: ignore[arg-type]
    assert gap == pytest.approx(MOVING[1][0] - MOVING[0][0], abs=0.25)
    # Nothing left behind: no partial files, no snapshots of the discarded blip.
    assert not list(storage.glob("clips/*/*/*.partial.*"))
    warn = sorted(p.name for p in storage.glob("warn/*/*/*.jpg"))
    assert len(warn) == 2 * len(records)
    # Hooks ran for each clip (the blip's start too), with the placeholders filled in.
    lines = hook_log.read_text().splitlines()
    ends = sorted(line for line in lines if line.startswith("end "))
    assert ends == sorted(f"end {r['id']} {r['frames']}" for r in records)
    assert sum(line.startswith("start test ") for line in lines) == len(MOVING) + 1


def test_clips_from_real_footage(tmp_path: Path, vtest: Path) -> None:
    storage = tmp_path / "data"
    config = write_config(
        tmp_path / "motiond.yaml",
        {
            "storage": {"dir": str(storage)},
            "web": {"port": 0},
            "cameras": [{"name": "campus", "source": str(vtest), "capture": {"pacing": "fast"}}],
        },
    )
    result = run_motiond(["run", "-c", str(config)], cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    records = sidecars(storage)
    assert records, result.stderr
    total_frames = 0
    for record in records:
        codec, frames, times = decode_clip(storage / str(record["file"]))
        assert codec == "h264"
        assert len(frames) == record["frames"]
        assert frames[0].shape[:2] == (576, 768)
        assert times[-1] == pytest.approx((len(frames) - 1) / 10.0, abs=0.05)
        total_frames += len(frames)
    # People walk through the whole file (795 frames, 10 fps); nearly all of it is recorded.
    assert total_frames >= 700, [r["frames"] for r in records]
