"""Warn snapshots' pictures: made one at a time across cameras, outlined where things moved."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from motiond.detect.boxes import Box
from motiond.frames import Frame
from motiond.record import snapshots


def camera_frame(seq: int) -> Frame:
    image = np.full((360, 640, 3), 90, np.uint8)
    ok, jpeg = cv2.imencode(".jpg", image)
    assert ok
    return Frame.from_jpeg(seq, float(seq), 1e9 + seq, jpeg.tobytes())


def test_cameras_make_their_snapshot_pictures_one_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight cameras seeing one thing at once would each hold full colour pictures at the
    same moment (two of 2.7 MB at 720p to outline one): the peak stays at one."""
    encode = snapshots.encode_jpeg
    busy = 0
    most = 0
    count_lock = threading.Lock()

    def counting_encode(image: np.ndarray, quality: int = snapshots.SNAPSHOT_QUALITY) -> bytes:
        nonlocal busy, most
        with count_lock:
            busy += 1
            most = max(most, busy)
        time.sleep(0.02)  # long enough for the other threads to come in, were they let
        with count_lock:
            busy -= 1
        return encode(image, quality)

    monkeypatch.setattr(snapshots, "encode_jpeg", counting_encode)
    box = Box(100, 50, 200, 120)
    made: list[Frame] = []

    def camera(index: int) -> None:
        frame = camera_frame(index)
        made.append(snapshots.still_jpeg(frame))
        snapshots.write_snapshot(tmp_path / f"{index}.jpg", frame, [box])

    threads = [threading.Thread(target=camera, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == 1
    assert sorted(frame.seq for frame in made) == list(range(8))
    for index in range(8):
        written = cv2.imread(str(tmp_path / f"{index}.jpg"))
        assert written.shape == (360, 640, 3)
        b, g, r = written[50, 150].astype(int)  # on the box's top edge: outlined in red
        assert r > 200 and g < 60 and b < 60
        assert abs(int(written[200, 400, 2]) - 90) < 10  # elsewhere the picture as it was
