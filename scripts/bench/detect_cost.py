"""motiond's detection cost per frame: a reduced gray JPEG decode, then the decision.

Single-threaded OpenCV, median over the first N frames of the stream's own JPEGs, in CPU
time of the measuring thread. "Detection" is everything from the reduced gray picture to the
decision, as the capture thread runs it: MotionDetector (differencing, regions, min_area, the
nuisance model with an area already learned as always moving), the SceneMonitor (day/night and
tampering) and the RecordingTrigger. The colour sample that tells day from night (a reduced
colour decode, taken once a second) and the full colour decode (what recording needs on top)
are timed too.
"""

from __future__ import annotations

import contextlib
import fractions
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

# Frame differencing only: what detection did before specks, nuisance areas, night, tampering,
# shake, moving light and small and slow movers were handled.
PLAIN: dict[str, Any] = {
    "min_area": 0.0,
    "nuisance": False,
    "tamper_after": 0.0,
    "shake": False,
    "light_check": False,
    "small_area": 0.0,
    "slow_baseline": 0.0,
}
# The settings of issue 15 (shake, moving light, small and slow movers), all off: detection as
# it was before them.
BEFORE_ISSUE_15: dict[str, Any] = {
    "shake": False,
    "light_check": False,
    "small_area": 0.0,
    "slow_baseline": 0.0,
}


@contextlib.contextmanager
def _timed(cpu: list[float], wall: list[float]) -> Iterator[None]:
    cpu_start, wall_start = time.thread_time(), time.perf_counter()
    yield
    cpu.append(time.thread_time() - cpu_start)
    wall.append(time.perf_counter() - wall_start)


def _median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 3)


def detection_cost(
    video: Path,
    size: tuple[int, int] | None,
    frames: int = 300,
    quality: int = 80,
    fps: float = 15.0,
    plain: bool = False,
    settings: dict[str, Any] | None = None,
    shake: float = 0.0,
) -> dict[str, Any]:
    """The costs of detecting on ``video`` at ``size``; ``plain``: frame differencing only
    (min_area 0, no nuisance model, no scene monitor, no shake, light or slow and small
    mover handling), i.e. the work of detection before nuisance, night and tamper handling
    were added, for comparison in the same conditions. ``settings``: motion settings instead
    of the defaults. ``shake``: the picture shifted by up to this many pixels (of the
    stream's size) each frame, a camera shaking on its pole (not timed)."""
    try:
        from motiond.config import MotionConfig  # noqa: PLC0415
        from motiond.detect.colour import colourfulness  # noqa: PLC0415
        from motiond.detect.motion import MotionDetector, detection_scale  # noqa: PLC0415
        from motiond.detect.tamper import SceneMonitor  # noqa: PLC0415
        from motiond.detect.trigger import RecordingTrigger  # noqa: PLC0415
        from motiond.frames import Frame  # noqa: PLC0415
    except ImportError as exc:
        return {"available": False, "reason": f"motiond.detect.motion not importable: {exc}"}
    from testbed.mjpeg_server import jpeg_frames_from_video  # noqa: PLC0415

    jpegs = jpeg_frames_from_video(str(video), size=size, quality=quality, limit=frames)
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    names = ("decode", "detect", "full", "colour")
    try:
        config = MotionConfig(**(settings or {}))
        if plain:
            config = MotionConfig(**PLAIN)
        detector = MotionDetector(config)
        rng = np.random.default_rng(1)
        scene = SceneMonitor(config.tamper_after)
        trigger = RecordingTrigger(config, 600.0)
        # CPU time of this thread, not wall time: on a busy machine the wall clock also counts
        # time spent waiting for a CPU. Wall times are kept in the JSON for comparison.
        cpu: dict[str, list[float]] = {name: [] for name in names}
        wall: dict[str, list[float]] = {name: [] for name in names}
        width = height = 0
        ignored = 0.0
        for index, jpeg in enumerate(jpegs):
            now = index / fps
            buffer = np.frombuffer(jpeg, np.uint8)
            with _timed(cpu["full"], wall["full"]):
                colour = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
            height, width = colour.shape[:2]
            frame = Frame.from_jpeg(index, now, now, jpeg)
            with _timed(cpu["decode"], wall["decode"]):
                # What the daemon does while idle: a reduced gray decode (libjpeg DCT scaling).
                gray = frame.gray_for_detection(detection_scale(width, config.detect_width))
            if shake:
                gray = _shaken(gray, shake * gray.shape[1] / width, rng)
            if index == 0:
                ignored = _learn_an_area(detector, gray, width, height)
            colour_value = None
            if not plain and scene.wants_colour(now, jumped=False):
                with _timed(cpu["colour"], wall["colour"]):
                    colour_value = colourfulness(frame)
            with _timed(cpu["detect"], wall["detect"]):
                result = detector.detect(gray, width, height, now=now)
                if result is not None and detector.picture is not None and not plain:
                    report = scene.update(detector.picture, now, colour_value, detector.mask)
                    trigger.update(
                        result.delta, result.lighting or report.settling, now, mover=result.mover
                    )
                elif result is not None:
                    trigger.update(result.delta, result.lighting, now, mover=result.mover)
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
        "ignored_share": round(ignored, 3),
        "decode_reduced_gray_ms": _median_ms(cpu["decode"]),
        "detect_ms": _median_ms(cpu["detect"]),
        "detect_p99_ms": round(float(np.percentile(cpu["detect"], 99)) * 1000, 3),
        "detect_samples_ms": [round(sample * 1000, 4) for sample in cpu["detect"]],
        "colour_sample_ms": _median_ms(cpu["colour"]) if cpu["colour"] else 0.0,
        "colour_per_frame_ms": round(_median_ms(cpu["colour"]) / fps, 3) if cpu["colour"] else 0.0,
        "decode_full_colour_ms": _median_ms(cpu["full"]),
        "wall_ms": {name: _median_ms(samples) for name, samples in wall.items() if samples},
    }


def _shaken(gray: np.ndarray, pixels: float, rng: np.random.Generator) -> np.ndarray:
    """``gray`` shifted by up to ``pixels`` each way, edges repeated."""
    dx, dy = rng.uniform(-pixels, pixels, 2)
    matrix = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]], np.float32)
    height, width = gray.shape
    moved: np.ndarray = cv2.warpAffine(
        gray, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE
    )
    return moved


def _learn_an_area(detector: Any, gray: np.ndarray, width: int, height: int) -> float:
    """Teach the nuisance model an always-moving area (the right third of the picture, as if a
    tree stood there), so detection runs its slowest path; returns the share ignored."""
    nuisance = detector.nuisance
    if nuisance is None:
        return 0.0
    shape = detector.prepare(gray, width, height).shape
    ys, xs = np.nonzero(np.ones(shape, np.uint8)[:, shape[1] * 2 // 3 :])
    xs = xs + shape[1] * 2 // 3
    for step in range(1200):  # ten minutes at 2 fps
        nuisance.update(ys, xs, shape, -600.0 + step * 0.5, None)
    nuisance.reset_clock()
    share: float = nuisance.ignored_share
    return share


def substream_detection_cost(
    video: Path,
    sub_size: tuple[int, int] = (640, 360),
    main_size: tuple[int, int] = (1920, 1080),
    frames: int = 300,
    fps: float = 15.0,
    plain: bool = False,
) -> dict[str, Any]:
    """The detection thread's work per picture for an IP camera with a sub stream: ``video``
    H.264-encoded at ``sub_size`` and decoded (not timed), then what the thread does with
    each picture, timed: ``PictureWatch.look`` (the Y plane resized to the detection size of
    a ``main_size`` camera, motion with everything on, the colour sample from the chroma
    planes, day/night and tampering), and the trigger's update (on the capture thread in the
    daemon; counted here as in ``detection_cost``). ``plain``: frame differencing only."""
    try:
        import av  # noqa: PLC0415

        from motiond.config import CameraConfig, CaptureConfig, MotionConfig  # noqa: PLC0415
        from motiond.detect.trigger import RecordingTrigger  # noqa: PLC0415
        from motiond.detect.watch import PictureWatch  # noqa: PLC0415
        from motiond.frames import Frame  # noqa: PLC0415
    except ImportError as exc:
        return {"available": False, "reason": f"motiond not importable: {exc}"}

    packets = _h264_packets(video, sub_size, frames, fps)
    motion = MotionConfig(**PLAIN) if plain else MotionConfig()
    config = CameraConfig(
        name="bench", capture=CaptureConfig(source="bench", kind="rtsp"), motion=motion
    )
    trigger = RecordingTrigger(motion, 600.0)
    watch = PictureWatch(config, lambda event: None, lambda: trigger.recording)
    decoder = av.CodecContext.create("h264", "r")
    decoder.thread_count = 1
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    cpu: list[float] = []
    wall: list[float] = []
    try:
        for index, packet in enumerate(packets):
            pictures = decoder.decode(av.Packet(packet))
            if not pictures:
                continue
            now = index / fps
            frame = Frame(index, now, now, sub_size[0], sub_size[1], picture=pictures[-1])
            if index == 0:
                gray = frame.gray_for_detection(1)
                _learn_an_area(watch.detector, gray, *main_size)
            with _timed(cpu, wall):
                result = watch.look(frame, main_size)
                if result is not None:
                    trigger.update(result.delta, result.lighting, now, mover=result.mover)
    finally:
        cv2.setNumThreads(threads)
    del cpu[0], wall[0]  # the first picture has nothing to compare with
    return {
        "available": True,
        "frames": len(cpu) + 1,
        "size": f"{sub_size[0]}x{sub_size[1]} sub stream of {main_size[0]}x{main_size[1]}",
        "detect_ms": _median_ms(cpu),
        "detect_p99_ms": round(float(np.percentile(cpu, 99)) * 1000, 3),
        "detect_samples_ms": [round(sample * 1000, 4) for sample in cpu],
        "wall_ms": _median_ms(wall),
    }


def _h264_packets(video: Path, size: tuple[int, int], frames: int, fps: float) -> list[bytes]:
    """``video``'s first ``frames`` frames at ``size``, as a camera's H.264 sub stream."""
    import av  # noqa: PLC0415

    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height = size
    encoder.pix_fmt = "yuv420p"
    encoder.time_base = fractions.Fraction(1, round(fps))
    encoder.options = {"preset": "veryfast", "bf": "0", "g": "30"}
    capture = cv2.VideoCapture(str(video))
    packets: list[bytes] = []
    try:
        for index in range(frames):
            ok, image = capture.read()
            if not ok:
                break
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            picture = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(format="yuv420p")
            picture.pts = index
            packets.extend(bytes(p) for p in encoder.encode(picture))
        packets.extend(bytes(p) for p in encoder.encode(None))
    finally:
        capture.release()
    return packets
