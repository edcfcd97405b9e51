"""IP cameras end to end: the real daemon against GStreamer's RTSP server on loopback.

The camera serves generated H.264/H.265 files (testbed/camera_video.py) with a block moving at known
times and the frame number drawn in a strip, so each clip can be checked against the truth:
which of the camera's pictures it holds, byte for byte (tests/fixtures/nal.py), where it starts
and ends.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest

from testbed.camera_video import CameraVideo, encode_pictures
from testbed.framecode import draw_frame_number, read_frame_number
from testbed.rtsp import RtspCamera
from tests.fixtures.browser import BROWSER_DIR, install_playwright, require_browser_tools
from tests.fixtures.daemon import clean_env, motiond_command, wait_for_file, write_config
from tests.fixtures.nal import coded_pictures, keyframes, match_pictures
from tests.fixtures.rtsp import CameraMediaCache
from tests.fixtures.scene_runs import EVENT_HOOK
from tests.fixtures.scenes import SceneScript
from tests.fixtures.video import decode_clip

pytestmark = pytest.mark.slow

StartCamera = Callable[..., RtspCamera]
PRE_ROLL = 2.0
ANNEX_B = ("-bsf:v", "h264_mp4toannexb")


class Daemon:
    """``motiond run`` as a user runs it, its log in a file; stopped by pid."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.log_path = config.with_suffix(".log")
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen(
                motiond_command("run", "-c", str(self.config)),
                cwd=self.config.parent,
                env=clean_env(),
                stderr=log,
            )

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 60.0) -> str:
        """Wait until ``pattern`` (a regex) matched ``count`` log lines; the last match's line."""
        deadline = time.monotonic() + timeout
        while True:
            lines = [line for line in self.log.splitlines() if re.search(pattern, line)]
            if len(lines) >= count:
                return lines[count - 1]
            assert self.process is not None and self.process.poll() is None, self.log
            assert time.monotonic() < deadline, f"no {pattern!r} x{count} in:\n{self.log}"
            time.sleep(0.1)

    @property
    def base_url(self) -> str:
        line = self.wait_for(r"web: listening on ")
        match = re.search(r"(https?://[^/ ]+)/", line)
        assert match, line
        return match.group(1)

    def play_in_chromium(self, record: dict[str, Any]) -> dict[str, Any]:
        """Load, seek to the end of and play a clip in Chromium, from the daemon's web server."""
        node, npm = require_browser_tools()
        install_playwright(npm)
        played = subprocess.run(
            [node, str(BROWSER_DIR / "play_clip.mjs"), f"{self.base_url}/{record['url']}"],
            cwd=BROWSER_DIR,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        assert played.returncode == 0, played.stdout + played.stderr
        result: dict[str, Any] = json.loads(played.stdout.strip().splitlines()[-1])
        return result

    def clip_page(self, clip_id: str) -> dict[str, Any]:
        """What the clip page shows for a clip in Chromium (see tests/browser/clip_page.mjs)."""
        node, npm = require_browser_tools()
        install_playwright(npm)
        shown = subprocess.run(
            [node, str(BROWSER_DIR / "clip_page.mjs"), self.base_url, clip_id],
            cwd=BROWSER_DIR,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        assert shown.returncode == 0, shown.stdout + shown.stderr
        result: dict[str, Any] = json.loads(shown.stdout.strip().splitlines()[-1])
        return result

    def live_frames(self, camera_name: str, count: int, query: str = "") -> list[bytes]:
        """The first ``count`` pictures the live view sends a WebSocket viewer."""
        import asyncio

        import tornado.websocket

        url = self.base_url.replace("http", "ws", 1) + f"/ws/live/{camera_name}{query}"

        async def receive() -> list[bytes]:
            connection = await tornado.websocket.websocket_connect(url)
            pictures: list[bytes] = []
            try:
                while len(pictures) < count:
                    message = await asyncio.wait_for(connection.read_message(), 15)
                    assert message is not None, "the live view closed"
                    if isinstance(message, bytes):
                        pictures.append(message)
            finally:
                connection.close()
            return pictures

        return asyncio.run(receive())

    def clip(self, clip_id: str) -> dict[str, Any]:
        """The clip as the JSON API gives it."""
        with urllib.request.urlopen(f"{self.base_url}/api/clips/{clip_id}", timeout=10) as reply:
            data: dict[str, Any] = json.load(reply)
        return data

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.process is not None
        process, self.process = self.process, None
        os.kill(process.pid, sig)
        try:
            return process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            raise

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.stop(signal.SIGKILL)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    started: list[Daemon] = []

    def start(cameras: list[dict[str, Any]], **top: Any) -> Daemon:
        config = write_config(
            tmp_path / f"motiond-{len(started)}.yaml",
            {
                "storage": {"dir": str(tmp_path / "data")},
                "web": {"port": 0},
                "log_level": "debug",
                **top,
                "cameras": cameras,
            },
        )
        running = Daemon(config)
        started.append(running)
        return running

    yield start
    for running in started:
        running.close()


def camera(
    name: str, url: str, video: CameraVideo, mask_rows: int = 24, **sections: Any
) -> dict[str, Any]:
    """A camera entry: the frame-number strip masked (``mask_rows``: with a margin for the
    blur; the strip is 16 rows in each stream, so more of the main's for a smaller sub)."""
    top = video.height - mask_rows
    mask = [[0, top], [video.width, top], [video.width, video.height], [0, video.height]]
    entry: dict[str, Any] = {
        "name": name,
        "source": url,
        "motion": {"masks": [mask], "warmup": "1s"},
        "record": {"pre_roll": f"{PRE_ROLL:g}s"},
    }
    for section, values in sections.items():
        entry[section] = {**entry.get(section, {}), **values}
    return entry


def sidecars(data: Path, camera_name: str | None = None) -> list[dict[str, Any]]:
    records = [json.loads(p.read_text()) for p in sorted((data / "clips").glob("*/*/*.json"))]
    records = [r for r in records if camera_name is None or r["camera"] == camera_name]
    return sorted(records, key=lambda r: float(r["start_ts"]))


def copied_from(video: CameraVideo, clip: Path, loop: bool = False) -> int:
    """The index of the served picture a clip starts with; fails unless every picture of the
    clip is the camera's own, byte for byte, in order (see tests/fixtures/nal.py)."""
    _, source_pictures = coded_pictures(video.path)
    _, clip_pictures = coded_pictures(clip)
    return match_pictures(clip_pictures, source_pictures, loop=loop)


def frame_numbers(clip: Path) -> list[int]:
    _, frames, _ = decode_clip(clip)
    return [read_frame_number(frame) for frame in frames]


def test_copy_mode_clips_are_the_cameras_own_packets_from_a_keyframe(
    tmp_path: Path,
    camera_media: CameraMediaCache,
    rtsp_camera: StartCamera,
    daemon: Callable[..., Daemon],
) -> None:
    video = camera_media(width=640, height=360, seconds=12.0, moving=((5.0, 8.0),))
    server = rtsp_camera({"/main": video}, loop=True)  # still on for the live view
    running = daemon([camera("door", server.url("/main"), video)])
    running.wait_for(r"clip kept door/")
    record = sidecars(tmp_path / "data")[0]
    # The API says how it was recorded; Chromium plays it, seeks to its end and plays through.
    api = running.clip(record["id"])
    assert (api["mode"], api["source_codec"]) == ("copy", "h264")
    played = running.play_in_chromium(api)
    assert played["ended"] and played["videoWidth"] == 640
    assert played["duration"] == pytest.approx(record["duration"], abs=0.15)
    # The live view shows the camera: its decoded pictures as JPEGs, full size or scaled.
    for query, width in (("", 640), ("?width=320", 320)):
        pictures = running.live_frames("door", 3, query)
        shapes = {
            cv2.imdecode(np.frombuffer(p, np.uint8), cv2.IMREAD_COLOR).shape for p in pictures
        }
        assert shapes == {(width * 9 // 16, width, 3)}, shapes
    assert running.stop() == 0
    assert (record["mode"], record["source_codec"], record["codec"]) == ("copy", "h264", "h264")
    assert (record["width"], record["height"]) == (640, 360)
    clip = tmp_path / "data" / record["file"]

    # Byte for byte the camera's pictures, in order, from a keyframe of the stream.
    first = copied_from(video, clip)
    assert first % video.gop == 0 and keyframes(clip)[0].index == 0
    # The pre-roll: the last keyframe at or before 2 s before the first moving frame.
    moving = video.motion_frames[0]
    assert first == (moving.start - round(PRE_ROLL * video.fps)) // video.gop * video.gop
    # It decodes to its last frame, which comes after the motion.
    numbers = frame_numbers(clip)
    assert numbers == list(range(first, first + len(numbers))) and len(numbers) == record["frames"]
    assert numbers[-1] >= moving.stop - 1
    # Its timestamps are the camera's frame times (15 fps), from 0.
    _, _, times = decode_clip(clip)
    assert times[0] == 0.0
    assert times[-1] == pytest.approx((len(times) - 1) / video.fps, abs=0.05)
    assert record["poster"] and (tmp_path / "data" / record["poster"]).is_file()
    assert "decoding for detection" in running.log


def test_h265_is_transcoded_to_h264_under_auto_and_copied_as_hvc1_when_asked(
    tmp_path: Path,
    camera_media: CameraMediaCache,
    rtsp_camera: StartCamera,
    daemon: Callable[..., Daemon],
) -> None:
    video = camera_media(width=640, height=360, seconds=12.0, codec="hevc", moving=((5.0, 8.0),))
    server = rtsp_camera({"/main": video})
    url = server.url("/main")
    running = daemon(
        [
            camera("auto", url, video),
            camera("hevc", url, video, record={"copy_hevc": True}),
        ]
    )
    running.wait_for(r"clip kept auto/")
    running.wait_for(r"clip kept hevc/")
    auto = sidecars(tmp_path / "data", "auto")[0]
    played = running.play_in_chromium(running.clip(auto["id"]))
    assert played["ended"] and played["videoWidth"] == 640
    # The clip page plays the H.264 clip, and says so when this browser cannot play H.265
    # rather than showing a black box (Debian's Chromium has no H.265 decoder).
    page = running.clip_page(auto["id"])
    assert page["notice"] == "" and not page["videoHidden"] and page["loaded"], page
    copied = sidecars(tmp_path / "data", "hevc")[0]
    page = running.clip_page(copied["id"])
    if page["canPlayType"] == "":
        assert "cannot play H.265" in page["notice"] and page["videoHidden"], page
    else:
        assert page["notice"] == "" and page["loaded"], page
    assert running.stop() == 0
    assert (auto["mode"], auto["source_codec"], auto["codec"]) == ("transcode", "hevc", "h264")
    assert (copied["mode"], copied["source_codec"], copied["codec"]) == ("copy", "hevc", "hevc")
    auto_clip = tmp_path / "data" / auto["file"]
    codec, frames, _ = decode_clip(auto_clip)
    assert codec == "h264" and len(frames) == auto["frames"]
    numbers = frame_numbers(auto_clip)
    assert numbers[0] % video.gop == 0 and numbers == list(range(numbers[0], numbers[-1] + 1))
    copied_clip = tmp_path / "data" / copied["file"]
    with av.open(str(copied_clip)) as container:
        assert container.streams.video[0].codec_context.codec_tag == "hvc1"
    assert copied_from(video, copied_clip) % video.gop == 0


@pytest.mark.parametrize("detect_fps", [None, 5.0])
def test_a_sub_stream_is_decoded_for_detection_and_the_main_stream_copied(
    tmp_path: Path,
    camera_media: CameraMediaCache,
    rtsp_camera: StartCamera,
    daemon: Callable[..., Daemon],
    detect_fps: float | None,
) -> None:
    """With ``motion.detect_fps`` too: fewer pictures looked at, the same clip boundaries
    (each detected picture counts for the frames it stands for)."""
    main, sub = camera_media.pair(
        main=(1280, 720), sub=(320, 180), seconds=12.0, moving=((5.0, 8.0),)
    )
    server = rtsp_camera({"/main": main, "/sub": sub})
    entry = camera("door", server.url("/main"), main, mask_rows=(16 + 6) * 720 // 180)
    entry["capture"] = {"detect_source": server.url("/sub")}
    if detect_fps is not None:
        entry.setdefault("motion", {})["detect_fps"] = detect_fps
    started = tmp_path / "clip_start.json"
    save_stdin = "import sys; open(sys.argv[1], 'w').write(sys.stdin.read())"
    hook = {"command": [sys.executable, "-c", save_stdin, str(started)]}
    running = daemon([entry], hooks={"on_clip_start": hook})
    running.wait_for(r"clip kept door/")
    wait_for_file(started)
    # Each of the camera's threads carries its name for the OS (top -H, the benchmarks).
    assert running.process is not None
    tasks = Path(f"/proc/{running.process.pid}/task")
    names = {(task / "comm").read_text().strip() for task in tasks.iterdir()}
    assert {"cap:door", "det:door", "rec:door"} <= names, names
    assert running.stop() == 0
    log = running.log
    assert re.search(r"opened rtsp://\S+/main: h264 1280x720, packets only", log), log
    assert re.search(r"opened rtsp://\S+/sub: h264 320x180, decoding for detection", log), log
    (record,) = sidecars(tmp_path / "data")
    assert (record["mode"], record["width"], record["height"]) == ("copy", 1280, 720)
    clip = tmp_path / "data" / record["file"]
    first = copied_from(main, clip)
    # Boundaries within one GOP of the truth: the start at the keyframe before the pre-roll,
    # the end when 20 calm frames followed the motion.
    moving = main.motion_frames[0]
    truth_start = moving.start - round(PRE_ROLL * main.fps)
    assert truth_start - main.gop <= first <= truth_start
    last = first + int(record["frames"]) - 1
    truth_end = moving.stop - 1 + 20
    assert abs(last - truth_end) <= main.gop
    # Boxes are in main-stream pixels although detection ran on the 320x180 picture.
    x, y, width, height = record["boxes_union"]
    assert x + width <= 1280 and y + height <= 720 and width > 320 // 10 * 4
    # So are the clip_start event's (what moved first: inside the clip's union, and as wide
    # as a box of the main stream).
    boxes = json.loads(started.read_text())["boxes"]
    assert boxes, "clip_start has the boxes of what moved first"
    for bx, by, bw, bh in boxes:
        assert x <= bx and bx + bw <= x + width and y <= by and by + bh <= y + height
    assert max(bw for _, _, bw, _ in boxes) > 320 // 10 * 4


def log_time(line: str) -> float:
    """The wall-clock time of a log line (``2026-12-02 06:39:42,203 INFO ...``)."""
    import datetime as dt

    stamp = dt.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
    return stamp.timestamp()


def test_camera_stopped_mid_clip_then_back_finishes_the_clip_and_starts_none_by_reconnecting(
    tmp_path: Path,
    camera_media: CameraMediaCache,
    rtsp_camera: StartCamera,
    daemon: Callable[..., Daemon],
) -> None:
    video = camera_media(width=320, height=180, seconds=20.0, moving=((4.0, 16.0),))
    server = rtsp_camera({"/main": video}, loop=True)
    running = daemon([camera("door", server.url("/main"), video)])
    running.wait_for(r"clip started door/")
    time.sleep(3.0)
    server.stop()
    running.wait_for(r"camera door: offline")
    running.wait_for(r"clip kept door/")
    (record,) = sidecars(tmp_path / "data")
    codec, frames, _ = decode_clip(tmp_path / "data" / record["file"])
    assert codec == "h264" and len(frames) == record["frames"] >= 3 * video.fps
    time.sleep(2.0)
    server.start()  # the same port; the camera's timeline starts again: still for 4 s
    online = running.wait_for(r"camera door: online", count=2, timeout=90)
    started = running.wait_for(r"clip started door/", count=2, timeout=60)
    # The reconnect itself started nothing: the next clip came with the motion, 4 s in.
    assert log_time(started) - log_time(online) > 3.0
    assert running.stop() == 0
    assert "Traceback" not in running.log


def test_kill_9_mid_clip_leaves_a_copied_clip_recovered_to_its_last_fragment(
    tmp_path: Path,
    camera_media: CameraMediaCache,
    rtsp_camera: StartCamera,
    daemon: Callable[..., Daemon],
) -> None:
    video = camera_media(width=320, height=180, seconds=20.0, moving=((4.0, 16.0),))
    server = rtsp_camera({"/main": video}, loop=True)
    entry = camera("door", server.url("/main"), video)
    running = daemon([entry])
    running.wait_for(r"clip started door/")
    time.sleep(4.0)
    running.stop(signal.SIGKILL)
    (partial,) = (tmp_path / "data" / "clips").glob("*/*/*.partial.mp4")
    again = daemon([entry])
    again.wait_for(r"crash recovery: clip recovered door/")
    clip_id = partial.relative_to(tmp_path / "data" / "clips").as_posix()
    clip_id = clip_id.replace(".partial", "")
    record = next(r for r in sidecars(tmp_path / "data") if r["id"] == clip_id)
    assert record["recovered"] is True
    clip = tmp_path / "data" / record["file"]
    # Cut at its last complete fragment: every picture decodes, from a keyframe, in order, and
    # they are the camera's own.
    numbers = frame_numbers(clip)
    assert len(numbers) == record["frames"] >= 2 * video.fps
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    assert copied_from(video, clip, loop=True) % video.gop == 0
    assert again.stop() == 0


def test_a_stream_that_stalls_with_its_connection_open_is_offline_within_read_timeout(
    tmp_path: Path,
    camera_media: CameraMediaCache,
    rtsp_camera: StartCamera,
    daemon: Callable[..., Daemon],
) -> None:
    video = camera_media(width=320, height=180, seconds=20.0, moving=())
    server = rtsp_camera({"/main": video}, loop=True, stall_after=4.0)
    running = daemon([camera("door", server.url("/main"), video, capture={"read_timeout": "2s"})])
    running.wait_for(r"camera door: online")
    server.wait_for("STALL", timeout=30)
    stalled_at = time.time()
    offline = running.wait_for(r"camera door: offline", timeout=30)
    assert "timed out" in running.wait_for(r"camera door: lost ")
    # Within read_timeout (2 s) of the last packet, which the server sends up to about a
    # second after it says STALL (its queue); the rest of the margin is for a busy machine. A
    # read without its own bound would wait for TCP's keepalive, minutes.
    assert log_time(offline) - stalled_at < 2.0 + 3.0
    assert running.stop() == 0


@pytest.mark.parametrize(("audio", "copied"), [("aac", True), ("pcm_mulaw", False)])
def test_sound_is_recorded_as_aac_when_asked(
    tmp_path: Path,
    camera_media: CameraMediaCache,
    rtsp_camera: StartCamera,
    daemon: Callable[..., Daemon],
    audio: str,
    copied: bool,
) -> None:
    video = camera_media(width=320, height=180, seconds=12.0, moving=((5.0, 8.0),), audio=audio)
    server = rtsp_camera({"/main": video})
    url = server.url("/main")
    running = daemon(
        [
            camera("sound", url, video, record={"audio": True}),
            camera("quiet", url, video),
        ]
    )
    running.wait_for(r"clip kept sound/")
    running.wait_for(r"clip kept quiet/")
    assert running.stop() == 0
    (sound,) = sidecars(tmp_path / "data", "sound")
    (quiet,) = sidecars(tmp_path / "data", "quiet")
    assert (sound["audio"], quiet.get("audio")) == ("aac", None)  # written only when there is sound
    assert sound["mode"] == "copy"
    with av.open(str(tmp_path / "data" / quiet["file"])) as container:
        assert not container.streams.audio
    with av.open(str(tmp_path / "data" / sound["file"])) as container:
        (stream,) = container.streams.audio
        assert stream.codec_context.name == "aac"
        samples = sum(frame.samples for frame in container.decode(stream))
        seconds = samples / stream.codec_context.sample_rate
    # Sound for (nearly) the whole clip: the camera's sound starts with the first picture.
    assert seconds == pytest.approx(sound["duration"], abs=0.5)
    if copied:  # the camera's AAC frames themselves
        with (
            av.open(str(video.path)) as source,
            av.open(str(tmp_path / "data" / sound["file"])) as clip,
        ):
            served = {bytes(p) for p in source.demux(audio=0) if p.size}
            kept = [bytes(p) for p in clip.demux(audio=0) if p.size]
        assert kept and all(packet in served for packet in kept)


def test_a_camera_that_changes_resolution_mid_clip_continues_in_a_new_clip(
    tmp_path: Path,
    camera_media: CameraMediaCache,
    rtsp_camera: StartCamera,
    daemon: Callable[..., Daemon],
) -> None:
    # One stream whose SPS/PPS change at 8 s, as when a camera is set to another resolution:
    # two camera files, their Annex B streams one after the other.
    before = camera_media(width=320, height=180, seconds=8.0, moving=((3.0, 8.0),))
    after = camera_media(width=480, height=272, seconds=8.0, moving=((0.0, 3.0),))
    parts = []
    for video in (before, after):
        part = tmp_path / f"{video.width}.h264"
        subprocess.run(
            ["ffmpeg", "-v", "error", "-i", str(video.path), "-c", "copy", *ANNEX_B, str(part)],
            check=True,
        )
        parts.append(part.read_bytes())
    joined = tmp_path / "joined.h264"
    joined.write_bytes(b"".join(parts))
    stream = tmp_path / "changing.mkv"
    remux = ["ffmpeg", "-v", "error", "-f", "h264", "-framerate", "15", "-i", str(joined)]
    subprocess.run([*remux, "-c", "copy", str(stream)], check=True)
    server = rtsp_camera({"/main": stream})
    running = daemon([camera("door", server.url("/main"), before, mask_rows=40)])
    running.wait_for(r"stream parameters changed; continuing in a new clip")
    running.wait_for(r"clip kept door/", count=2)
    assert running.stop() == 0
    first, second = sidecars(tmp_path / "data")[:2]
    assert (first["width"], first["height"], second["width"], second["height"]) == (
        320,
        180,
        480,
        272,
    )
    assert first["mode"] == second["mode"] == "copy"
    for record in (first, second):
        clip = tmp_path / "data" / record["file"]
        codec, frames, _ = decode_clip(clip)
        assert codec == "h264" and len(frames) == record["frames"]
        assert {frame.shape[:2] for frame in frames} == {(record["height"], record["width"])}
        assert keyframes(clip)[0].index == 0
    # The second clip starts where the first ended: the first picture at the new size.
    assert read_frame_number(decode_clip(tmp_path / "data" / second["file"])[1][0]) == 0
    assert float(second["start_ts"]) == pytest.approx(float(first["end_ts"]), abs=0.2)


class PacedTransportStream:
    """An HTTP camera sending an MPEG-TS file as ``video/mp2t``, paced at its own bitrate."""

    def __init__(self, path: Path, seconds: float) -> None:
        import http.server
        import threading

        data = path.read_bytes()
        rate = len(data) / seconds  # bytes per second

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "video/mp2t")
                self.end_headers()
                started = time.monotonic()
                chunk = 188 * 64
                try:
                    for offset in range(0, len(data), chunk):
                        delay = started + offset / rate - time.monotonic()
                        if delay > 0:
                            time.sleep(delay)
                        self.wfile.write(data[offset : offset + chunk])
                except OSError:
                    pass

            def log_message(self, *_: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/stream.ts"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_an_http_mpeg_ts_camera_is_read_by_libavformat_and_copied(
    tmp_path: Path, camera_media: CameraMediaCache, daemon: Callable[..., Daemon]
) -> None:
    video = camera_media(width=320, height=180, seconds=12.0, moving=((5.0, 8.0),))
    transport_stream = tmp_path / "camera.ts"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(video.path), "-c", "copy", str(transport_stream)],
        check=True,
    )
    server = PacedTransportStream(transport_stream, video.seconds)
    try:
        running = daemon([camera("door", server.url, video)])
        running.wait_for(r"clip kept door/")
        assert running.stop() == 0
    finally:
        server.close()
    assert re.search(r"opened http://\S+/stream.ts: h264 320x180", running.log), running.log
    record = sidecars(tmp_path / "data")[0]
    assert (record["mode"], record["source_codec"]) == ("copy", "h264")
    assert copied_from(video, tmp_path / "data" / record["file"]) % video.gop == 0


def test_rtsp_over_udp_when_asked(
    tmp_path: Path,
    camera_media: CameraMediaCache,
    rtsp_camera: StartCamera,
    daemon: Callable[..., Daemon],
) -> None:
    video = camera_media(width=320, height=180, seconds=12.0, moving=((5.0, 8.0),))
    server = rtsp_camera({"/main": video})
    entry = camera("door", server.url("/main"), video, capture={"rtsp_transport": "udp"})
    running = daemon([entry])
    running.wait_for(r"clip kept door/")
    assert running.stop() == 0
    record = sidecars(tmp_path / "data")[0]
    assert record["mode"] == "copy"
    assert copied_from(video, tmp_path / "data" / record["file"]) % video.gop == 0


def test_max_clip_splits_a_copied_clip_at_the_next_keyframe(
    tmp_path: Path,
    camera_media: CameraMediaCache,
    rtsp_camera: StartCamera,
    daemon: Callable[..., Daemon],
) -> None:
    video = camera_media(width=320, height=180, seconds=20.0, moving=((3.0, 19.0),))
    server = rtsp_camera({"/main": video})
    running = daemon([camera("door", server.url("/main"), video, record={"max_clip": "5s"})])
    running.wait_for(r"clip kept door/", count=3, timeout=90)
    assert running.stop() == 0
    records = sidecars(tmp_path / "data")[:3]
    numbers = [frame_numbers(tmp_path / "data" / r["file"]) for r in records]
    gop_seconds = video.gop / video.fps
    for index, (clip_numbers, record) in enumerate(zip(numbers, records, strict=True)):
        # Each clip opens on a keyframe, holds consecutive pictures, and is not much longer
        # than max_clip (counted from the first changed frame, so the first clip has its
        # pre-roll on top; a split waits for the next keyframe: at most one GOP, 2 s, more).
        assert clip_numbers[0] % video.gop == 0, clip_numbers[:3]
        assert clip_numbers == list(range(clip_numbers[0], clip_numbers[0] + len(clip_numbers)))
        pre_roll = PRE_ROLL + gop_seconds if index == 0 else 0.0
        assert record["duration"] <= pre_roll + 5.0 + gop_seconds + 0.2
        if index < 2:  # split, not ended by the motion's end
            assert record["duration"] >= 5.0
        assert record["changed_frames"] > 0 and record["peak_delta"] > 0
    # One after the other: nothing lost, nothing twice, between the split clips.
    assert numbers[1][0] == numbers[0][-1] + 1 and numbers[2][0] == numbers[1][-1] + 1


def turned_scene(
    size: tuple[int, int], seconds: float, fps: float, onset: float
) -> Iterator[np.ndarray]:
    """A still, colourful scene (tests/fixtures/scenes.py) at 640x360, the camera turned to another
    view at ``onset``; numbered; at ``size`` (a sub stream: the same pictures, scaled)."""
    scene = SceneScript(width=640, height=360, turned_at=onset)
    for index in range(round(seconds * fps)):
        picture = scene.frame(index / fps)
        draw_frame_number(picture, index)
        if size != (640, 360):
            picture = cv2.resize(picture, size, interpolation=cv2.INTER_AREA)
        yield picture


def test_a_sub_stream_camera_is_watched_for_tampering_on_its_sub_stream(
    tmp_path: Path, rtsp_camera: StartCamera, daemon: Callable[..., Daemon]
) -> None:
    """The capture thread of a camera with a sub stream only copies coded packets: its
    pictures, and so day/night and tampering, are on the detection thread. A camera turned
    away is reported there within tamper_after (log, hook, API, /healthz), the colour of the
    sub stream's pictures says day, and the capture thread's trigger gets what it needs: a
    turn changes the whole picture in one frame (lighting, not motion), so the clip of the
    moment starts only because the camera became suspect, and is kept only because the
    tampering was confirmed (it has fewer changed frames than min_changed_frames)."""
    fps, seconds, onset, tamper_after = 15.0, 30.0, 12.0, 5.0
    media = {}
    for mount, size in (("/main", (640, 360)), ("/sub", (320, 180))):
        media[mount] = tmp_path / f"{mount[1:]}.mp4"
        pictures = turned_scene(size, seconds, fps, onset)
        encode_pictures(media[mount], pictures, width=size[0], height=size[1], fps=fps)
    server = rtsp_camera(media)
    events = tmp_path / "events.jsonl"
    hook = {"command": [sys.executable, "-c", EVENT_HOOK, str(events)]}
    top = 360 - 28  # the frame-number strip, with a margin for the blur (in main pixels)
    entry = {
        "name": "door",
        "source": server.url("/main"),
        "capture": {"detect_source": server.url("/sub")},
        "motion": {"masks": [[[0, top], [640, top], [640, 360], [0, 360]]], "warmup": "1s"},
        "record": {"pre_roll": f"{PRE_ROLL:g}s"},
    }
    running = daemon([entry], hooks={"on_camera_tampered": hook})
    running.wait_for(r"camera door: tampered with: turned", timeout=90)
    with urllib.request.urlopen(f"{running.base_url}/api/cameras", timeout=10) as reply:
        (state,) = json.load(reply)
    assert state["tampered"] == "turned" and state["day_night"] == "day", state
    with pytest.raises(urllib.error.HTTPError) as health:
        urllib.request.urlopen(f"{running.base_url}/healthz", timeout=10)
    assert health.value.code == 503
    assert json.load(health.value)["reason"] == "tampered with: door (turned)"
    running.wait_for(r"clip kept door/", timeout=60)
    wait_for_file(events)
    assert running.stop() == 0
    log = running.log
    assert re.search(r"opened rtsp://\S+/main: h264 640x360, packets only", log), log
    assert re.search(r"opened rtsp://\S+/sub: h264 320x180, decoding for detection", log), log
    assert "switched to" not in log  # no day/night switch: the sub stream's colour is seen
    (tampered,) = [json.loads(line) for line in events.read_text().splitlines()]
    assert tampered["event"] == "camera_tampered" and tampered["kind"] == "turned"
    assert tampered["camera"] == "door"
    took = float(tampered["detected_ts"]) - float(tampered["since_ts"])
    assert tamper_after <= took <= tamper_after + 0.5, took
    # The clip of the moment: from before the turn (pre-roll) to after it was confirmed,
    # kept with fewer than min_changed_frames (5) changed frames.
    (record,) = sidecars(tmp_path / "data")
    assert record["mode"] == "copy" and (record["width"], record["height"]) == (640, 360)
    assert int(record["changed_frames"]) < 5, record
    numbers = frame_numbers(tmp_path / "data" / record["file"])
    assert numbers[0] <= onset * fps, numbers[0]
    assert numbers[-1] >= (onset + tamper_after) * fps, numbers[-1]
