"""GET /api/export on the real web app: continuous segments and a clip made of a camera's
packets, exported across a segment boundary and across the clip."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

from motiond.config import RecordConfig
from motiond.detect.trigger import ClipStats
from motiond.frames import Frame
from motiond.record.recorder import ClipRecorder
from motiond.store.layout import Storage
from motiond.web.auth import hash_token
from tests.fixtures.clips import Events, camera
from tests.fixtures.coded import annex_b_packets, camera_packet_frames
from tests.fixtures.web import TOKEN, WebTestCase
from tests.integration.test_continuous import record

FOOTAGE = 1_800_100_000.0  # wall time of the camera file's first frame


def camera_frames(folder: Path) -> list[Frame]:
    from testbed.camera_video import write_camera_video

    video = write_camera_video(
        folder / "camera.mp4", width=320, height=180, fps=10.0, seconds=31.0, gop=10,
        moving=((3.0, 6.0),),
    )  # fmt: skip
    return camera_packet_frames(video.path, 310, size=(320, 180), wall0=FOOTAGE)


def copied_clip(storage: Storage, frames: list[Frame]) -> None:
    """A motion clip of ``frames`` (from a keyframe), copied as the recorder copies."""
    events = Events()
    recorder = ClipRecorder(
        camera(RecordConfig()), storage, events, nominal_fps=10.0, wait_when_full=True
    )
    recorder.start()
    recorder.begin_clip(frames[:1], None)
    for frame in frames[1:]:
        recorder.add_frame(frame)
    recorder.end_clip(True, ClipStats(started_at=frames[0].mono), None, None)
    assert events.ended.wait(30)
    assert recorder.stop(10)


class ExportFootage(WebTestCase):
    """Segments at 0-10 s and 20-31 s of the camera file (an outage between), and a motion
    clip from 8 s to 22 s, all of camera ``cam``; the demo camera runs as usual."""

    def setUp(self) -> None:
        super().setUp()
        storage = Storage(self.tmp / "data")
        frames = camera_frames(self.tmp)
        self.sent = [f.packet.data for f in frames if f.packet is not None]
        before, after = frames[:100], frames[200:]
        segments = record(storage, before + after, segment=60.0, cut_at=len(before) - 1)
        assert [round(s.start - FOOTAGE, 3) for s in segments] == [0.0, 20.0]
        copied_clip(storage, frames[80:220])
        self.daemon.index.rebuild()
        self.daemon.segments.rebuild()

    def export(self, start: float | str, end: float | str, **more: str) -> Any:
        query = "&".join(f"{k}={v}" for k, v in {"start": start, "end": end, **more}.items())
        return self.api("GET", f"/api/export?camera=cam&{query}")

    def exported(self, body: bytes) -> list[tuple[bytes, float]]:
        path = self.tmp / "export.mp4"
        path.write_bytes(body)
        return annex_b_packets(path)


class TestExport(ExportFootage):
    def test_across_a_segment_boundary_and_a_clip_the_cameras_packets(self) -> None:
        response = self.export(FOOTAGE + 5.5, FOOTAGE + 25.5)
        assert response.code == 200, response.body
        assert response.headers["Content-Type"] == "video/mp4"
        disposition = response.headers["Content-Disposition"]
        assert re.fullmatch(
            r'attachment; filename="cam_\d{4}-\d\d-\d\d_\d{6}-\d{6}\.mp4"', disposition
        )
        packets = self.exported(response.body)
        # From the keyframe at 5.0 s: segment, then the clip from 10.0 s (its first keyframe
        # after the segment's end), then the second segment from 22.0 s; nothing twice.
        assert [data for data, _ in packets] == self.sent[50:255]
        times = [t for _, t in packets]
        assert times[0] == 0.0 and abs(times[-1] - 20.4) < 0.002
        duration = times[-1] + 0.1
        assert abs(duration - 20.0) <= 1.0  # within one GOP of the request

    def test_an_iso_range_inside_one_segment(self) -> None:
        import datetime as dt

        start = dt.datetime.fromtimestamp(FOOTAGE + 1.0).astimezone().isoformat()
        end = dt.datetime.fromtimestamp(FOOTAGE + 3.0, dt.UTC).isoformat()
        response = self.export(start.replace("+", "%2B"), end.replace("+", "%2B"))
        assert response.code == 200, response.body
        assert [d for d, _ in self.exported(response.body)] == self.sent[10:30]

    def test_no_footage_is_404_and_bad_ranges_are_400(self) -> None:
        assert self.export(FOOTAGE - 9000, FOOTAGE - 8000).code == 404
        assert self.api("GET", "/api/export?camera=nobody&start=1&end=2").code == 404
        assert self.api("GET", f"/api/export?camera=cam&start={FOOTAGE}").code == 400
        assert self.export(FOOTAGE + 5, FOOTAGE + 5).code == 400
        assert self.export(FOOTAGE + 5, FOOTAGE + 4).code == 400
        assert self.export("yesterday", FOOTAGE).code == 400
        too_long = self.export(FOOTAGE, FOOTAGE + 3601)
        assert too_long.code == 400 and b"max_export" in too_long.body

    def test_first_bytes_come_before_the_export_is_assembled(self) -> None:
        # The export thread waits for each piece to be flushed: holding the client's first
        # chunk shows the response started while the rest was still to be read.
        chunks: list[bytes] = []
        first = threading.Event()

        def on_chunk(data: bytes) -> None:
            chunks.append(data)
            first.set()

        response = self.fetch(
            f"/api/export?camera=cam&start={FOOTAGE}&end={FOOTAGE + 31}",
            streaming_callback=on_chunk,
            raise_error=False,
        )
        assert response.code == 200 and first.is_set()
        assert len(chunks) > 1  # more than one piece: streamed, not sent whole
        assert [d for d, _ in self.exported(b"".join(chunks))] == self.sent


class TestExportAuth(ExportFootage):
    """The same footage behind web.auth: an export needs what a clip needs."""

    web_yaml = (
        f"web:\n  port: 0\n  auth:\n    tokens: [{{name: ci, token_hash: '{hash_token(TOKEN)}'}}]\n"
    )

    def test_an_export_needs_credentials_as_clips_and_segments_do(self) -> None:
        query = f"camera=cam&start={FOOTAGE + 5.5}&end={FOOTAGE + 25.5}"
        response = self.api("GET", f"/api/export?{query}")
        assert response.code == 401 and b"authentication required" in response.body
        segment = self.daemon.segments.all()[0]
        url = f"/media/{self.daemon.storage.relative(segment.path)}"
        assert self.fetch(url, raise_error=False).code == 401
        assert self.fetch(url, headers={"Authorization": f"Bearer {TOKEN}"}).code == 200
        allowed = self.api("GET", f"/api/export?{query}", Authorization=f"Bearer {TOKEN}")
        assert allowed.code == 200
        assert [d for d, _ in self.exported(allowed.body)] == self.sent[50:255]
