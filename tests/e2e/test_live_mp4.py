"""The MP4 live view end to end: the real daemon, GStreamer's RTSP server as the camera (a main
and a sub stream), and WebSocket viewers on loopback.

What a viewer gets must be the camera's own pictures: the codec string from the stream's SPS,
an init segment PyAV opens, and media segments whose slices are the served file's, byte for
byte, from a keyframe on (tests/fixtures/nal.py matches them).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import av
import pytest
import tornado.websocket

from testbed.camera_video import CameraVideo
from tests.fixtures.daemon import RunningDaemon, free_port
from tests.fixtures.livemp4 import (
    RawWebSocket,
    Received,
    fragment_info,
    receive_mp4,
    receive_mp4_async,
    rss_bytes,
)
from tests.fixtures.nal import coded_pictures, match_pictures
from tests.fixtures.rtsp import CameraMediaCache, StartRtspCamera

pytestmark = pytest.mark.slow

GOP = 30  # 2 s at 15 fps: a viewer joining mid-GOP waits for the next keyframe


@pytest.fixture
def camera_pair(camera_media: CameraMediaCache) -> tuple[CameraVideo, CameraVideo]:
    return camera_media.pair(main=(1280, 720), sub=(320, 180), seconds=12.0, gop=GOP)


@pytest.fixture
def running(
    tmp_path: Path, camera_pair: tuple[CameraVideo, CameraVideo], rtsp_camera: StartRtspCamera
) -> Iterator[RunningDaemon]:
    main, sub = camera_pair
    server = rtsp_camera({"/main": main, "/sub": sub}, loop=True)
    daemon = RunningDaemon(
        tmp_path,
        {
            "log_level": "debug",
            "cameras": [
                {
                    "name": "door",
                    "source": server.url("/main"),
                    "capture": {"detect_source": server.url("/sub")},
                }
            ],
        },
    )
    daemon.start()
    daemon.wait_for(lambda: "detection stream online" in daemon.log(), 30, "the sub stream")
    try:
        yield daemon
    finally:
        daemon.stop()


def ws_url(daemon: RunningDaemon, query: str) -> str:
    return daemon.base.replace("http", "ws", 1) + f"/ws/live/door?format=mp4&{query}"


def sps_codec(video: CameraVideo) -> str:
    """avc1.PPCCLL from the file's avcC (profile, constraint flags, level)."""
    with av.open(str(video.path)) as container:
        extradata = bytes(container.streams.video[0].codec_context.extradata)
    return "avc1." + extradata[1:4].hex()


def as_file(got: Received, path: Path) -> Path:
    path.write_bytes(got.init + b"".join(got.media))
    return path


@pytest.mark.parametrize("stream", ["main", "sub"])
def test_a_viewer_gets_the_cameras_own_h264_as_mp4_from_a_keyframe(
    tmp_path: Path,
    running: RunningDaemon,
    camera_pair: tuple[CameraVideo, CameraVideo],
    stream: str,
) -> None:
    video = camera_pair[0] if stream == "main" else camera_pair[1]
    got = receive_mp4(ws_url(running, f"stream={stream}"), fragments=45)
    # First a text message with the mime type of this stream's profile and level.
    assert got.order[0] == "text"
    first = got.texts[0][1]
    assert first["mime"] == f'video/mp4; codecs="{sps_codec(video)}"'
    assert (first["width"], first["height"]) == (video.width, video.height)
    # Then the init segment, then media segments, one picture each, the first a keyframe.
    assert got.order[1] == "binary" and got.binaries[0][1][4:8] == b"ftyp"
    infos = [fragment_info(segment) for segment in got.media]
    assert infos[0].keyframe
    assert [i.keyframe for i in infos].count(True) >= 1
    sequences = [i.sequence for i in infos]
    assert sequences == list(range(sequences[0], sequences[0] + len(sequences)))
    times = [i.decode_time for i in infos]
    assert all(b > a for a, b in pairwise(times))
    # The stream PyAV reads back is the camera's: same size, and each picture's slices are the
    # served file's, in order, from a keyframe of the file.
    clip = as_file(got, tmp_path / f"live-{stream}.mp4")
    codec, pictures = coded_pictures(clip)
    with av.open(str(clip)) as container:
        context = container.streams.video[0].codec_context
        assert (codec, context.width, context.height) == ("h264", video.width, video.height)
    assert len(pictures) == 45 and pictures[0].keyframe
    _, served = coded_pictures(video.path)
    start = match_pictures(pictures, served, loop=True)
    assert start % video.gop == 0
    # About once a second the capture time of a picture, for the page's latency figure.
    clocks = [m for _, m in got.texts if m.get("type") == "clock"]
    assert clocks and abs(clocks[-1]["wall_ms"] / 1000 - time.time()) < 5


def test_a_viewer_joining_mid_gop_starts_at_the_next_keyframe(running: RunningDaemon) -> None:
    import asyncio

    async def watch() -> tuple[Received, Received, float]:
        first_viewer = asyncio.ensure_future(
            receive_mp4_async(ws_url(running, "stream=main"), fragments=90, timeout=30)
        )
        # Join once the first viewer's feed runs, between two keyframes.
        await asyncio.sleep(3.3)
        joined = time.time()
        second = await receive_mp4_async(ws_url(running, "stream=main"), fragments=3)
        return await first_viewer, second, joined

    first, second, joined = asyncio.run(watch())
    # The newcomer gets the mime type and the init segment at once (the feed knows them) ...
    assert second.order[:2] == ["text", "binary"]
    assert second.binaries[0][0] - joined < 1.0
    # ... and its first picture is the first keyframe the other viewer got after it joined.
    after = [(t, s) for t, s in first.binaries if s[4:8] == b"moof" and t >= joined]
    next_key = next(s for _, s in after if fragment_info(s).keyframe)
    assert second.media[0] == next_key
    assert fragment_info(second.media[0]).keyframe
    waited = next(t for t, s in second.binaries if s[4:8] == b"moof") - joined
    assert waited < GOP / 15 + 1.0
    # The other viewer saw pictures that were not keyframes right before: it was mid-GOP.
    before = [s for t, s in first.binaries if s[4:8] == b"moof" and t < joined]
    assert before and not fragment_info(before[-1]).keyframe


def test_a_slow_viewer_skips_to_a_keyframe_and_catches_up_without_growing_memory(
    running: RunningDaemon,
) -> None:
    assert running.process is not None
    pid = running.process.pid
    slow = RawWebSocket(ws_url(running, "stream=main"))
    try:
        for _ in range(20):  # mime, init and a few pictures: it is watching
            slow.read_message()
        before = rss_bytes(pid)
        time.sleep(8.0)  # reads nothing: 3 Mbit/s piles up for 8 s
        during = rss_bytes(pid)
        # Reading again: after what the buffers held, a jump forward to a keyframe, and then
        # pictures captured under a second ago.
        infos = []
        caught_up = None
        deadline = time.monotonic() + 15
        while caught_up is None:
            assert time.monotonic() < deadline, "never caught up"
            opcode, payload = slow.read_message()
            if opcode == 2 and payload[4:8] == b"moof":
                infos.append(fragment_info(payload))
            elif opcode == 1:
                message = json.loads(payload)
                age = time.time() - message.get("wall_ms", 0) / 1000
                skipped = any(b.sequence != a.sequence + 1 for a, b in pairwise(infos))
                if message.get("type") == "clock" and age < 1.0 and skipped:
                    caught_up = age
    finally:
        slow.close()
    gaps = [(a, b) for a, b in pairwise(infos) if b.sequence != a.sequence + 1]
    assert gaps, "the slow viewer was never skipped forward"
    assert all(b.keyframe for _, b in gaps), gaps
    assert during - before < 16 << 20, (before, during)
    # Within a GOP of reading again it shows pictures under a second old.
    assert caught_up is not None and caught_up < 1.0


def hvcc_codec(video: CameraVideo) -> str:
    """hvc1.<profile>.<compat, bits reversed>.<tier><level>[.<constraint bytes>] from the
    file's hvcC (ISO/IEC 14496-15 E.3), as a browser's isTypeSupported is asked."""
    with av.open(str(video.path)) as container:
        hvcc = bytes(container.streams.video[0].codec_context.extradata)
    compat = int.from_bytes(hvcc[2:6], "big")
    parts = [
        f"hvc1.{hvcc[1] & 0x1F}",
        f"{int(f'{compat:032b}'[::-1], 2):x}",
        f"{'H' if hvcc[1] & 0x20 else 'L'}{hvcc[12]}",
    ]
    return ".".join(parts + [f"{b:02X}" for b in hvcc[6:12].rstrip(b"\x00")])


def test_an_h265_camera_goes_as_hvc1_its_own_pictures(
    tmp_path: Path, camera_media: CameraMediaCache, rtsp_camera: StartRtspCamera
) -> None:
    video = camera_media(width=640, height=360, seconds=12.0, codec="hevc", gop=15)
    server = rtsp_camera({"/main": video}, loop=True)
    daemon = RunningDaemon(tmp_path, {"cameras": [{"name": "door", "source": server.url("/main")}]})
    daemon.start()
    try:
        got = receive_mp4(ws_url(daemon, "stream=main"), fragments=20)
    finally:
        daemon.stop()
    assert got.texts[0][1]["mime"] == f'video/mp4; codecs="{hvcc_codec(video)}"'
    assert fragment_info(got.media[0]).keyframe
    clip = as_file(got, tmp_path / "live-hevc.mp4")
    codec, pictures = coded_pictures(clip)
    assert codec == "hevc" and len(pictures) == 20
    _, served = coded_pictures(video.path)
    assert match_pictures(pictures, served, loop=True) % video.gop == 0


def test_a_viewer_that_came_before_the_sub_stream_is_told_when_it_comes(
    tmp_path: Path,
    camera_pair: tuple[CameraVideo, CameraVideo],
    rtsp_camera: StartRtspCamera,
) -> None:
    """A page opened while the sub stream is not yet online (it opens after the main stream,
    or its server is down) gets ``streams: ["main"]``; when the sub stream delivers, a
    "stream" message says ``["main", "sub"]``, so the page shows its switch without a reload."""
    main, sub = camera_pair
    server = rtsp_camera({"/main": main}, loop=True)
    sub_port = free_port()
    daemon = RunningDaemon(
        tmp_path,
        {
            "cameras": [
                {
                    "name": "door",
                    "source": server.url("/main"),
                    "capture": {"detect_source": f"rtsp://127.0.0.1:{sub_port}/sub"},
                }
            ]
        },
    )
    daemon.start()
    try:
        texts = asyncio.run(
            _texts_until_the_sub_stream(ws_url(daemon, "stream=main"), sub, sub_port, rtsp_camera)
        )
    finally:
        daemon.stop()
    first = texts[0]
    assert (first["type"], first["stream"], first["streams"]) == ("mime", "main", ["main"])
    (changed,) = [t for t in texts if t["type"] == "stream"]
    assert (changed["stream"], changed["streams"]) == ("main", ["main", "sub"])
    assert (changed["mime"], changed["width"]) == (first["mime"], first["width"])


async def _texts_until_the_sub_stream(
    url: str, sub: CameraVideo, sub_port: int, rtsp_camera: StartRtspCamera
) -> list[dict[str, Any]]:
    """The viewer's text messages: the mime message, then (the sub stream's server started
    only then) until the "stream" message, within 60 s."""
    connection = await tornado.websocket.websocket_connect(url)
    texts: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60.0
    try:
        while loop.time() < deadline:
            message = await asyncio.wait_for(connection.read_message(), deadline - loop.time())
            assert message is not None, "the socket closed"
            if isinstance(message, bytes):
                continue
            texts.append(json.loads(message))
            if texts[-1]["type"] == "mime" and len(texts) == 1:
                rtsp_camera({"/sub": sub}, loop=True, port=sub_port)
            if texts[-1]["type"] == "stream":
                return texts
        raise AssertionError(f"no stream message: {texts}")
    finally:
        connection.close()
