"""motiond's detection cost per frame: JPEG decode at 1/4 scale in gray, then MotionDetector.

Single-threaded OpenCV, median over the first N frames of the stream's own JPEGs, in CPU
time of the measuring thread. The full colour decode (what recording needs on top) is timed
too, for reference.
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def _timed(cpu: list[float], wall: list[float]) -> Iterator[None]:
    cpu_start, wall_start = time.thread_time(), time.perf_counter()
    yield
    cpu.append(time.thread_time() - cpu_start)
    wall.append(time.perf_counter() - wall_start)


def _median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 3)


def detection_cost(
    video: Path, size: tuple[int, int] | None, frames: int = 300, quality: int = 80
) -> dict[str, Any]:
    sys.path.insert(0, str(REPO_ROOT))
    try:
        from motiond.config import MotionConfig  # noqa: PLC0415
        from motiond.frames import Frame  # noqa: PLC0415
        from motiond.motion import MotionDetector, detection_scale  # noqa: PLC0415
    except ImportError as exc:
        return {"available": False, "reason": f"motiond.motion not importable: {exc}"}
    from scripts.mjpeg_server import jpeg_frames_from_video  # noqa: PLC0415

    jpegs = jpeg_frames_from_video(str(video), size=size, quality=quality, limit=frames)
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        config = MotionConfig()
        detector = MotionDetector(config)
        # CPU time of this thread, not wall time: on a busy machine the wall clock also counts
        # time spent waiting for a CPU. Wall times are kept in the JSON for comparison.
        cpu: dict[str, list[float]] = {"decode": [], "detect": [], "full": []}
        wall: dict[str, list[float]] = {"decode": [], "detect": [], "full": []}
        width = height = 0
        for jpeg in jpegs:
            buffer = np.frombuffer(jpeg, np.uint8)
            with _timed(cpu["full"], wall["full"]):
                colour = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
            height, width = colour.shape[:2]
            frame = Frame.from_jpeg(0, 0.0, 0.0, jpeg)
            with _timed(cpu["decode"], wall["decode"]):
                # What the daemon does while idle: a reduced gray decode (libjpeg DCT scaling).
                gray = frame.gray_for_detection(detection_scale(width, config.detect_width))
            with _timed(cpu["detect"], wall["detect"]):
                detector.detect(gray, width, height)
    except Exception as exc:  # noqa: BLE001 - the detector's API may still be changing
        return {"available": False, "reason": f"{type(exc).__name__}: {exc}"}
    finally:
        cv2.setNumThreads(threads)
    for samples in (cpu["detect"], wall["detect"]):
        del samples[0]  # the first frame has nothing to compare with
    return {
        "available": True,
        "frames": len(jpegs),
        "size": f"{width}x{height}",
        "decoded_gray": f"{gray.shape[1]}x{gray.shape[0]}",
        "detect_width": config.detect_width,
        "decode_reduced_gray_ms": _median_ms(cpu["decode"]),
        "detect_ms": _median_ms(cpu["detect"]),
        "decode_full_colour_ms": _median_ms(cpu["full"]),
        "wall_ms": {name: _median_ms(samples) for name, samples in wall.items()},
    }
