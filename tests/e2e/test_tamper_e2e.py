"""Night and tampering end to end: the real daemon on generated scenes with a known truth.

The camera switching to infrared and back starts no clip and raises no tamper event, while a
person walking by at night is recorded. The lens covered, the camera turned away and the
picture blurred are each reported with their kind within ``tamper_after`` (log, hook, API,
/healthz, /metrics), and the clip of the moment is kept whatever its changed frames.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.daemon import clean_env, motiond_command, write_config
from tests.fixtures.scene_runs import SceneRun, run_scene, strip_mask
from tests.fixtures.scenes import SceneScript, Walker, write_scene_video

pytestmark = pytest.mark.slow

FPS = 10.0
TAMPER_AFTER = 5.0  # the default motion.tamper_after
ONSET = 15.0  # seconds into the video when the tampering starts
SAMPLE = 0.2  # the tamper watch looks at the picture this often (frame time)


def assert_reported_in_time(run: SceneRun, kind: str) -> dict[str, Any]:
    (event,) = run.of("camera_tampered")
    assert event["kind"] == kind, event
    assert event["camera"] == "cam"
    took = float(event["detected_ts"]) - float(event["since_ts"])
    assert TAMPER_AFTER <= took <= TAMPER_AFTER + SAMPLE + 0.15, took
    # It began when the tampering did (the cover takes half a second to close).
    began = run.video_time(float(event["since_ts"]))
    assert ONSET - 0.15 <= began <= ONSET + 0.8, began
    assert f"camera cam: tampered with: {kind}" in run.log
    return event


def clip_of_the_moment(run: SceneRun) -> Any:
    clips = [c for c in run.clips if c.covers(ONSET)]
    assert len(clips) == 1, ([(c.first, c.last) for c in run.clips], run.log)
    return clips[0]


@pytest.mark.parametrize(
    ("kind", "scene"),
    [
        ("covered", SceneScript(covered=(ONSET, 30.0))),
        ("turned", SceneScript(turned_at=ONSET)),
        ("defocused", SceneScript(blurred_at=ONSET)),
    ],
    ids=["covered", "turned", "defocused"],
)
def test_tampering_is_reported_in_time_and_its_clip_kept(
    tmp_path: Path, kind: str, scene: SceneScript
) -> None:
    video = write_scene_video(tmp_path / f"{kind}.avi", scene, seconds=35, fps=FPS)
    run = run_scene(tmp_path, video, {})
    clip = clip_of_the_moment(run)
    assert_reported_in_time(run, kind)
    # Nothing moved before the tampering, so nothing else was recorded.
    assert len(run.clips) == 1, [(c.first, c.last) for c in run.clips]
    # The clip reaches back before the onset (pre-roll) and on until it was confirmed.
    assert clip.first <= ONSET - 0.5 and clip.last >= ONSET + TAMPER_AFTER, (clip.first, clip.last)
    if kind == "turned":
        # A turn changes the whole picture in one frame: a lighting change, not motion. The
        # clip has no changed frame, and is kept because of the tampering.
        assert int(clip.record["changed_frames"]) < 5, clip.record
    if kind == "covered":
        assert "camera cam: no longer tampered with (was covered)" in run.log


def test_night_switch_and_back_is_neither_a_clip_nor_tampering(tmp_path: Path) -> None:
    walker = Walker(28.0, 33.0, (10, 225), (310, 225), height=70)
    scene = SceneScript(night=[(20.0, 40.0)], walkers=[walker])
    video = write_scene_video(tmp_path / "night.avi", scene, seconds=55, fps=FPS)
    # Even a single changed frame would make a clip: only recognising the switch avoids one.
    motion = {"night": {"pixel_threshold": 25}, "min_changed_frames": 1}
    run = run_scene(tmp_path, video, motion)
    assert "camera cam: switched to night mode" in run.log
    assert "camera cam: switched to day mode" in run.log
    assert not run.of("camera_tampered"), run.of("camera_tampered")
    # Only the walker, in infrared, was recorded; the switches started nothing at all.
    assert len(run.clips) == 1, [(c.first, c.last) for c in run.clips]
    (clip,) = run.clips
    assert walker.t0 - 2.5 <= clip.first <= walker.t0 + 1.0 and clip.last >= walker.t1 - 1.0
    assert len(run.of("clip_start")) == 1, run.log


def test_the_same_light_change_in_colour_is_recorded(tmp_path: Path) -> None:
    """The control: the same uneven, settling light without the loss of colour is no night
    switch, and starts a clip (so the test above can fail); without motion.light_check,
    which tells the same texture lit differently from an object (see the next test)."""
    scene = SceneScript(lamp=[(20.0, 40.0)])
    video = write_scene_video(tmp_path / "lamp.avi", scene, seconds=30, fps=FPS)
    run = run_scene(tmp_path, video, {"min_changed_frames": 1, "light_check": False})
    assert "switched to night mode" not in run.log
    assert [round(c.first) for c in run.clips] == [18], [(c.first, c.last) for c in run.clips]
    assert not run.of("camera_tampered")


def test_a_lamp_switched_on_is_light_not_motion(tmp_path: Path) -> None:
    """With the default light check, the lamp's uneven, settling light of the test above
    starts nothing, not even a clip discarded as noise."""
    scene = SceneScript(lamp=[(20.0, 40.0)])
    video = write_scene_video(tmp_path / "lamp.avi", scene, seconds=30, fps=FPS)
    run = run_scene(tmp_path, video, {"min_changed_frames": 1})
    assert "switched to night mode" not in run.log
    assert run.clips == [], [(c.first, c.last) for c in run.clips]
    assert not run.of("clip_start"), run.log


# -- the state over HTTP while the camera is tampered with ------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError:  # not listening yet
        return 0, b""


def test_a_covered_camera_shows_in_the_api_healthz_and_metrics(tmp_path: Path) -> None:
    scene = SceneScript(covered=(8.0, 60.0))
    video = write_scene_video(tmp_path / "covered.avi", scene, seconds=40, fps=FPS)
    port = free_port()
    config = write_config(
        tmp_path / "motiond.yaml",
        {
            "storage": {"dir": str(tmp_path / "data")},
            "web": {"port": port},
            "cameras": [
                {
                    "name": "cam",
                    "source": str(video.path),
                    "motion": {"masks": [strip_mask(video)], "tamper_after": "2s"},
                }
            ],
        },
    )
    log_path = tmp_path / "motiond.log"
    base = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            motiond_command("run", "-c", str(config)), stderr=log, env=clean_env()
        )
    try:
        states: list[dict[str, Any]] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert process.poll() is None, log_path.read_text()
            status, body = fetch(base + "/api/cameras")
            if status == 200:
                (camera,) = json.loads(body)
                states.append(camera)
                if camera["tampered"]:
                    break
            time.sleep(0.2)
        else:
            raise AssertionError(f"never tampered: {states[-3:]}\n{log_path.read_text()}")
        before = [s for s in states if s["online"] and not s["tampered"]]
        assert before and before[-1]["day_night"] == "day", before[-1:]
        assert camera["tampered"] == "covered"
        assert camera["tampered_since"] == pytest.approx(time.time() - 2.5, abs=2.0)
        assert camera["ignored_share"] == 0.0
        status, body = fetch(base + "/healthz")
        health = json.loads(body)
        assert status == 503 and health["ok"] is False, health
        assert health["cameras"]["cam"] == {
            "online": True,
            "last_frame_age": health["cameras"]["cam"]["last_frame_age"],
            "tampered": "covered",
        }
        assert health["reason"] == "tampered with: cam (covered)"
        _, metrics = fetch(base + "/metrics")
        assert 'motiond_camera_tampered{camera="cam"} 1' in metrics.decode()
        assert 'motiond_night{camera="cam"} 0' in metrics.decode()
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
