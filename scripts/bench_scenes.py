"""motiond and Motion 4.5 on the scenes of issue 15, made from real footage: what each records.

The scenes (testbed/footage.py, the same the end-to-end tests play to motiond alone): a
camera shaking on its pole, headlights sweeping at night, a cloud's shadow crossing, someone
far away, someone creeping. Each is written to a video with its frame number in a strip along
the bottom and served as a loopback HTTP MJPEG stream (scripts/bench/stream.py): a few seconds
of the empty scene, the scene at 10 fps, then the empty scene again while clips close. Both
programs read the stream at the same time, each with the strip masked out, with their
default detection (Motion: Debian's motion.conf, as in bench_vs_motion, without its text
overlay, which would cover the strip). The frame numbers read back from every clip say which
part of the scene it holds: each walk is recorded from when (with the pre-roll), how much of
it, and what else was recorded.

    python -m scripts.bench_scenes                  # the five scenes, about 5 minutes
    python -m scripts.bench_scenes --only shake,small
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from scripts.bench.harness import (
    DEFAULT_VIDEO,
    RESULTS_DIR,
    log,
    machine_info,
    work_dir,
    write_results,
)
from scripts.bench.programs import Program, motion_program, motiond_run
from scripts.bench.stream import StreamProcess
from testbed.footage import FPS, FootageScene, Walk, footage_scenes, load_footage
from testbed.framecode import CODE_HEIGHT, draw_frame_number, read_frame_number

WARMUP = 8.0  # seconds of the empty scene before the scene plays (Motion learns its reference)
TAIL = 9.0  # seconds of the empty scene after it (Motion's event gap is 5 s)


def write_video(path: Path, scene: FootageScene, seconds: float) -> int:
    """The scene as an MJPEG AVI with frame numbers; returns its frame count."""
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter.fourcc(*"MJPG"), FPS, (scene.width, scene.height)
    )
    count = round(seconds * FPS)
    for index in range(count):
        image = scene.frame(index / FPS)
        draw_frame_number(image, index)
        writer.write(image)
    writer.release()
    return count


def strip_top(height: int) -> int:
    return height - CODE_HEIGHT - 6  # the blur spreads the strip's changes


def motion_mask(path: Path, width: int, height: int) -> Path:
    """Motion's mask_file: a PGM, black where changes never count (the frame-number strip)."""
    mask = np.full((height, width), 255, np.uint8)
    mask[strip_top(height) :] = 0
    header = f"P5\n{width} {height}\n255\n".encode()
    path.write_bytes(header + mask.tobytes())
    return path


def programs(workdir: Path, url: str, size: tuple[int, int]) -> list[Program]:
    width, height = size
    motion = motion_program(workdir / "motion", url, size, FPS)
    for key in ("text_left", "text_right"):
        motion.settings.pop(key)
    motion.settings["mask_file"] = str(motion_mask(workdir / "motion" / "mask.pgm", width, height))
    config = workdir / "motion" / "motion.conf"
    config.write_text("".join(f"{key} {value}\n" for key, value in motion.settings.items()))
    storage = workdir / "motiond" / "data"
    (workdir / "motiond").mkdir(parents=True, exist_ok=True)
    top = strip_top(height)
    motiond_config = {
        "storage": {"dir": str(storage)},
        "web": {"port": 0},
        "cameras": [
            {
                "name": "bench",
                "source": url,
                "capture": {"fps": FPS},
                "motion": {"masks": [[[0, top], [width, top], [width, height], [0, height]]]},
                "record": {"preset": "ultrafast", "pre_roll": "2s"},
            }
        ],
    }
    motiond = motiond_run(workdir / "motiond", motiond_config, storage, "motiond", "motiond")
    return [motiond, motion]


def clip_spans(clip_dir: Path) -> list[tuple[float, float]]:
    """Per clip, the scene times of its first and last frames (by the frame numbers)."""
    spans = []
    for path in sorted(p for p in clip_dir.rglob("*") if p.suffix in (".mp4", ".mkv")):
        numbers = []
        try:
            with av.open(str(path)) as container:
                for picture in container.decode(video=0):
                    numbers.append(read_frame_number(picture.to_ndarray(format="bgr24")))
        except av.error.FFmpegError:
            continue
        if numbers:
            # The stream loops to its start after the scene: those frames are the empty scene.
            spans.append((numbers[0] / FPS, max(numbers) / FPS))
    return sorted(spans)


def judge(spans: list[tuple[float, float]], walks: list[Walk]) -> dict[str, Any]:
    """Each walk: recorded from when, how much of it; and the clips with no walk in them."""
    verdicts = []
    for walk in walks:
        covering = [(a, b) for a, b in spans if a <= walk.t1 and b >= walk.t0]
        if not covering:
            verdicts.append({"walk": [walk.t0, walk.t1], "recorded": False})
            continue
        start = min(a for a, _ in covering)
        covered = sum(min(b, walk.t1) - max(a, walk.t0) for a, b in covering)
        verdicts.append(
            {
                "walk": [walk.t0, walk.t1],
                "recorded": True,
                "from": round(start, 1),
                "late": round(max(0.0, start - walk.t0), 1),
                "covered": round(100 * covered / (walk.t1 - walk.t0)),
            }
        )
    others = [(a, b) for a, b in spans if not any(a <= w.t1 and b >= w.t0 for w in walks)]
    return {"clips": spans, "walks": verdicts, "other_clips": others}


def describe(result: dict[str, Any]) -> str:
    parts = []
    for verdict in result["walks"]:
        t0 = verdict["walk"][0]
        if not verdict["recorded"]:
            parts.append(f"walk at {t0:g} s **missed**")
        elif verdict["late"]:
            parts.append(
                f"walk at {t0:g} s recorded from {verdict['from']:g} s "
                f"(**{verdict['late']:g} s late**, {verdict['covered']} % covered)"
            )
        else:
            parts.append(f"walk at {t0:g} s recorded from its start ({verdict['covered']} %)")
    others = result["other_clips"]
    if others:
        seconds = sum(b - a for a, b in others)
        parts.append(f"**{len(others)} other clip(s)** ({seconds:.0f} s)")
    else:
        parts.append("nothing else")
    return "; ".join(parts)


def run_scene(
    workdir: Path, name: str, scene: FootageScene, seconds: float
) -> dict[str, dict[str, Any]]:
    video = workdir / f"{name}.avi"
    write_video(video, scene, seconds)
    stream = StreamProcess(video, None, FPS)
    stream.start()
    running = programs(workdir / name, stream.url, (scene.width, scene.height))
    try:
        for program in running:
            program.start()
        running[0].sleep_until(time.monotonic() + WARMUP)
        stream.set_mode("motion")
        running[0].sleep_until(time.monotonic() + seconds)
        stream.set_mode("idle")
        running[0].sleep_until(time.monotonic() + TAIL)
    finally:
        for program in running:
            program.stop()
        stream.stop()
    return {program.key: judge(clip_spans(program.clip_dir), scene.walks) for program in running}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--only", help="comma-separated scene names")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    if shutil.which("motion") is None:
        raise SystemExit("motion (Motion 4.5) is not installed")
    scenes = footage_scenes(load_footage(args.video))
    names = args.only.split(",") if args.only else list(scenes)
    results: dict[str, Any] = {}
    lines = [
        "| scene (768x576, 10 fps, from vtest.avi) | motiond | Motion 4.5 |",
        "|---|---|---|",
    ]
    with work_dir("bench-scenes-", args.keep) as workdir:
        for name in names:
            scene, seconds = scenes[name]
            log(f"scene {name}: {seconds:g} s")
            results[name] = run_scene(workdir, name, scene, seconds)
            row = results[name]
            lines.append(f"| {name} | {describe(row['motiond'])} | {describe(row['motion'])} |")
            log(lines[-1])
    text = "\n".join(lines) + "\n"
    print(text)
    write_results(args.out, "bench_scenes", {"machine": machine_info(), "scenes": results}, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
