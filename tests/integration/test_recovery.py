"""Crash safety: partial clips cut anywhere, missing, corrupt and orphan sidecars, ``kill -9``.

Partial clips are cut copies of real fragmented MP4s written by ``PyAVClipWriter``; the end to
end test kills the real daemon mid-clip, starts it again and plays the recovered clip in
Chromium (see tests/e2e/test_browser.py for what that needs).
"""

from __future__ import annotations

import json
import signal
import struct
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any, Literal

import pytest

from motiond.config import RecordConfig
from motiond.record.encoders import PyAVClipWriter
from motiond.store.clips import ClipIndex
from motiond.store.layout import Storage
from motiond.store.recovery import playable_end, recover
from tests.fixtures.browser import BROWSER_DIR, install_playwright, require_browser_tools
from tests.fixtures.clips import frames_at
from tests.fixtures.daemon import clean_env, free_port, motiond_command, write_config
from tests.fixtures.video import decode_clip, write_test_video

DAY = "2026-11-21"
STEM = "061502Z"
START_TS = 1_795_241_702.0  # 2026-11-21 06:15:02 UTC
FPS = 10
FRAMES = 35  # fragments of 10, 10, 10 and 5 frames (a keyframe every second)


def boxes(data: bytes) -> list[tuple[bytes, int, int]]:
    """(type, start, end) of the top-level boxes of a whole MP4 (32-bit sizes only)."""
    found, offset = [], 0
    while offset < len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        found.append((kind, offset, offset + size))
        offset += size
    return found


def fragment_ends(data: bytes) -> list[tuple[int, int]]:
    """(end offset, frames so far) after each moof+mdat pair; frames from each trun."""
    ends, frames, pending = [], 0, 0
    for kind, start, end in boxes(data):
        if kind == b"moof":
            trun = data.index(b"trun", start, end)
            pending = struct.unpack(">I", data[trun + 8 : trun + 12])[0]
        elif kind == b"mdat":
            frames += pending
            ends.append((end, frames))
    return ends


def write_clip(path: Path, codec: Literal["h264", "vp9"], frames: int = FRAMES) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    record = RecordConfig(codec=codec)
    writer = PyAVClipWriter(path, record, width=320, height=240, fps=FPS, origin=0.0)
    for frame in frames_at([i / FPS for i in range(frames)]):
        writer.write(frame)
    writer.close()
    return path.read_bytes()


def cut_offsets(data: bytes) -> list[int]:
    """Cuts inside and around every box: mid-moof, mid-mdat, at and beside each boundary."""
    offsets = {0, 5, 20}
    for _, start, end in boxes(data):
        offsets.update({start + 4, (start + end) // 2, end - 1, end, end + 1})
    return sorted(o for o in offsets if o <= len(data))


@pytest.mark.parametrize("codec", ["h264", "vp9"])
def test_partial_clip_cut_anywhere_is_truncated_to_its_last_fragment(
    tmp_path: Path, codec: Literal["h264", "vp9"]
) -> None:
    data = write_clip(tmp_path / "whole.mp4", codec)
    ends = fragment_ends(data)
    # A fragment at each keyframe (every second) and every quarter second between them.
    assert [frames for _, frames in ends] == [3, 6, 9, 10, 13, 16, 19, 20, 23, 26, 29, 30, 33, 35]
    for cut in cut_offsets(data):
        storage = Storage(tmp_path / f"cut{cut}")
        folder = storage.clips_dir / "cam" / DAY
        folder.mkdir(parents=True)
        (folder / f"{STEM}.partial.mp4").write_bytes(data[:cut])
        report = recover(storage)
        complete = [(end, frames) for end, frames in ends if end <= cut]
        if not complete:
            assert report.deleted == [f"clips/cam/{DAY}/{STEM}.partial.mp4"], cut
            assert not list(storage.clips_dir.rglob("*.*")), cut
            continue
        end, frames = complete[-1]
        clip = folder / f"{STEM}.mp4"
        assert report.recovered == [storage.relative(clip)], cut
        assert sorted(p.name for p in folder.iterdir()) == [f"{STEM}.json", f"{STEM}.mp4"]
        assert clip.stat().st_size == end, cut
        decoded_codec, decoded, times = decode_clip(clip)
        assert decoded_codec == codec and len(decoded) == frames, cut
        assert times == pytest.approx([i / FPS for i in range(frames)], abs=0.002)
        sidecar = json.loads(clip.with_suffix(".json").read_text())
        assert sidecar["recovered"] is True and sidecar["keep"] is False
        assert sidecar["frames"] == frames and sidecar["duration"] == pytest.approx(frames / FPS)
        index = ClipIndex(storage)
        assert index.rebuild() == 1
        assert index.get(f"cam/{DAY}/{STEM}.mp4").to_json() == sidecar  # type: ignore[union-attr]


def test_recovered_sidecar_has_the_recorders_fields(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    partial = storage.clips_dir / "cam" / DAY / f"{STEM}-1.partial.mp4"
    data = write_clip(partial, "h264")
    after_two_seconds = next(end for end, frames in fragment_ends(data) if frames == 20)
    partial.write_bytes(data[: after_two_seconds + 100])
    poster = storage.warn_dir / "cam" / DAY / f"{STEM}-1-start.jpg"
    poster.parent.mkdir(parents=True)
    poster.write_bytes(b"\xff\xd8 a jpeg")
    recover(storage)
    record = json.loads((partial.parent / f"{STEM}-1.json").read_text())
    assert record == {
        "id": f"cam/{DAY}/{STEM}-1.mp4",
        "camera": "cam",
        "file": f"clips/cam/{DAY}/{STEM}-1.mp4",
        "start": record["start"],
        "end": record["end"],
        "start_ts": START_TS,
        "end_ts": START_TS + 2.0,
        "duration": 2.0,
        "frames": 20,
        "changed_frames": None,
        "peak_delta": None,
        "codec": "h264",
        "width": 320,
        "height": 240,
        "fps": 10.0,
        "size": after_two_seconds,
        "boxes_union": None,
        "snapshots": [f"warn/cam/{DAY}/{STEM}-1-start.jpg"],
        "poster": f"warn/cam/{DAY}/{STEM}-1-start.jpg",
        "dropped_frames": 0,
        "keep": False,
        "recovered": True,
    }


def test_box_sizes_of_64_bits_are_read(tmp_path: Path) -> None:
    data = write_clip(tmp_path / "whole.mp4", "h264")
    # Rewrite every mdat header as a 64-bit one (size 1, then the size in 8 bytes).
    rewritten = b""
    for kind, start, end in boxes(data):
        body = data[start + 8 : end]
        if kind == b"mdat":
            rewritten += struct.pack(">I4sQ", 1, kind, len(body) + 16) + body
        else:
            rewritten += data[start:end]
    path = tmp_path / "large.mp4"
    path.write_bytes(rewritten)
    assert playable_end(path) == fragment_ends(data)[-1][0] + 8 * len(fragment_ends(data))
    path.write_bytes(rewritten[: fragment_ends(data)[1][0] + 8 * 2 + 12])  # in the 3rd mdat
    assert playable_end(path) == fragment_ends(data)[1][0] + 8 * 2


def test_missing_corrupt_and_orphan_sidecars(tmp_path: Path, caplog: Any) -> None:
    storage = Storage(tmp_path)
    folder = storage.clips_dir / "cam" / DAY
    write_clip(folder / "010000Z.mp4", "h264")  # crash between the rename and the sidecar
    write_clip(folder / "020000Z.mp4", "h264")
    (folder / "020000Z.json").write_text('{"id": "cam/2026-11-21/020000Z.mp4", "cam')
    write_clip(folder / "030000Z.mp4", "h264")
    (folder / "030000Z.json").write_text('{"id": "cam/2026-11-21/030000Z.mp4"}')
    (folder / "040000Z.json").write_text('{"id": "cam/2026-11-21/040000Z.mp4"}')  # no clip
    (folder / "050000Z.mp4").write_bytes(b"not a video")  # no sidecar, cannot be probed
    (folder / "060000Z.partial.mp4").mkdir()  # cannot be read at all
    report = recover(storage)
    assert report.sidecars_rebuilt == [
        f"clips/cam/{DAY}/010000Z.json",
        f"clips/cam/{DAY}/020000Z.json",
        f"clips/cam/{DAY}/030000Z.json",
    ]
    assert report.sidecars_removed == [f"clips/cam/{DAY}/040000Z.json"]
    assert len(report.problems) == 2
    assert "corrupt sidecar clips/cam/2026-11-21/020000Z.json" in caplog.text
    assert (folder / "020000Z.json.corrupt").read_text().endswith('"cam')
    assert (folder / "030000Z.json.corrupt").is_file()
    assert not (folder / "040000Z.json").exists()
    index = ClipIndex(storage)
    assert index.rebuild() == 3
    for clip in index.list():
        assert clip.recovered is True and clip.frames == FRAMES
    assert recover(storage).problems == report.problems  # a second run changes nothing else
    assert not recover(storage).sidecars_rebuilt


def test_kill_9_mid_clip_then_restart_recovers_it_and_chromium_plays_it(tmp_path: Path) -> None:
    node, npm = require_browser_tools()
    install_playwright(npm)
    video = write_test_video(tmp_path / "moving.avi", seconds=10, fps=10, moving=[(0.0, 10.0)])
    storage = tmp_path / "data"
    port = free_port()
    config = write_config(
        tmp_path / "c.yaml",
        {
            "storage": {"dir": str(storage)},
            "web": {"port": port},
            "cameras": [
                {
                    "name": "cam",
                    "source": str(video.path),
                    "capture": {"loop": True},
                    "motion": {"warmup": "0s", "masks": [video.code_mask]},
                }
            ],
        },
    )
    command = motiond_command("run", "-c", str(config))
    log_path = tmp_path / "motiond.log"
    with open(log_path, "w") as log:
        first = subprocess.Popen(command, cwd=tmp_path, env=clean_env(), stderr=log)
    try:
        deadline = time.monotonic() + 30
        while not (partials := list(storage.glob("clips/*/*/*.partial.mp4"))):
            assert time.monotonic() < deadline and first.poll() is None, log_path.read_text()
            time.sleep(0.1)
        time.sleep(3.5)  # more than 3 s of clip: at least one complete fragment on disk
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    (partial,) = partials
    assert partial.is_file() and not list(storage.glob("clips/*/*/*.json"))

    with open(log_path, "w") as log:
        second = subprocess.Popen(command, cwd=tmp_path, env=clean_env(), stderr=log)
    try:
        base = f"http://127.0.0.1:{port}"
        clips = wait_for_clips(base, second, log_path)
        clip_id = partial.relative_to(storage / "clips").as_posix().replace(".partial", "")
        (record,) = [c for c in clips if c["id"] == clip_id]
        assert record["recovered"] is True and record["frames"] >= 10
        text = log_path.read_text()
        assert f"crash recovery: clip recovered {clip_id}" in text, text
        codec, frames, _ = decode_clip(storage / record["file"])
        assert codec == "h264" and len(frames) == record["frames"]
        played = subprocess.run(
            [node, str(BROWSER_DIR / "play_clip.mjs"), f"{base}/{record['url']}"],
            cwd=BROWSER_DIR,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert played.returncode == 0, played.stdout + played.stderr
        result = json.loads(played.stdout.strip().splitlines()[-1])
        assert result["ended"] and result["videoWidth"] == video.width
        assert result["duration"] == pytest.approx(record["duration"], abs=0.15)
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            second.wait(timeout=15)
        except subprocess.TimeoutExpired:
            second.kill()
            second.wait()


def wait_for_clips(base: str, process: subprocess.Popen[bytes], log: Path) -> list[Any]:
    """The daemon's clip list once its web server answers."""
    deadline = time.monotonic() + 20
    while True:
        assert process.poll() is None, log.read_text()
        try:
            with urllib.request.urlopen(f"{base}/api/clips", timeout=5) as response:
                clips: list[Any] = json.load(response)["clips"]
                return clips
        except OSError:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
