"""Detection cost per frame at 768x576, 1280x720 and 1920x1080: python -m scripts.bench_detect

The same measurement as the "Detection" table of bench_vs_motion (scripts/bench/detect_cost.py)
without Motion or a stream: vtest.avi's frames JPEG-encoded at each size, decoded at reduced
scale in gray, then everything from that gray picture to the recording decision (motion,
min_area, nuisance areas, day/night, tampering, trigger), on one thread, with a full colour
decode between frames (as while recording: caches are cold). The same frames also go through
plain frame differencing (min_area 0, no nuisance model, no scene monitor: the work detection
did before those were added), for comparison under the same conditions.

A second table does the same for an IP camera with a sub stream: vtest.avi H.264-encoded at
640x360 and decoded (not timed), then what its detection thread does with each picture (the
Y plane scaled to the detection size of a 1920x1080 camera, everything from there to the
decision, the colour sample from the picture's chroma planes included).

A third table (--only mechanisms) is about the four mechanisms of issue 15 at 1920x1080:
everything on, each of them off in turn, and all four off (detection as it was before them),
on vtest.avi as it is and shaken (the picture shifted by up to 7.5 pixels, 3 at 768x576,
each frame: the only footage on which the shake is looked for and undone).

Each is run --repeat times and each frame's lowest CPU time is kept (the work is the same in
every run: what varies is what other processes on a shared machine do to caches and clock
speed); the table shows the median and the 99th percentile of those, and the median of a
single run (the first) for comparison. Prints Markdown tables.
Usage: python -m scripts.bench_detect [--frames N] [--repeat N] [--only jpeg|substream|mechanisms]
       [video]
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from scripts.bench.detect_cost import (
    BEFORE_ISSUE_15,
    detection_cost,
    substream_detection_cost,
)
from scripts.bench.harness import DEFAULT_VIDEO

SIZES = ((768, 576, 10.0), (1280, 720, 15.0), (1920, 1080, 15.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", nargs="?", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", choices=("jpeg", "substream", "mechanisms"))
    args = parser.parse_args()
    if args.only in (None, "jpeg"):
        jpeg_table(args)
    if args.only in (None, "substream"):
        substream_table(args)
    if args.only in (None, "mechanisms"):
        mechanisms_table(args)


def jpeg_table(args: argparse.Namespace) -> None:
    print(
        "| stream | reduced gray JPEG decode | detection to the decision: median / p99 "
        "(one run's median) | plain differencing: median / p99 | colour sample (once a second) "
        "| full colour decode, for comparison |"
    )
    print("|---|---|---|---|---|---|")
    for width, height, fps in SIZES:
        size = None if (width, height) == (768, 576) else (width, height)
        measure = functools.partial(detection_cost, args.video, size, frames=args.frames, fps=fps)
        runs, best, plain = lowest_of_runs(measure, args.repeat)
        first = runs[0]
        print(
            f"| {first['size']} ({first['decoded_gray']} gray) "
            f"| {min(r['decode_reduced_gray_ms'] for r in runs):.2f} ms "
            f"| {np.median(best):.2f} / {np.percentile(best, 99):.2f} ms "
            f"({first['detect_ms']:.2f} ms) "
            f"| {np.median(plain):.2f} / {np.percentile(plain, 99):.2f} ms "
            f"| {min(r['colour_sample_ms'] for r in runs):.2f} ms "
            f"({min(r['colour_per_frame_ms'] for r in runs):.2f} ms a frame) "
            f"| {min(r['decode_full_colour_ms'] for r in runs):.2f} ms |"
        )


def substream_table(args: argparse.Namespace) -> None:
    print()
    print(
        "| sub stream | detection thread, picture to the decision: median / p99 "
        "(one run's median) | plain differencing: median / p99 |"
    )
    print("|---|---|---|")
    measure = functools.partial(substream_detection_cost, args.video, frames=args.frames)
    runs, best, plain = lowest_of_runs(measure, args.repeat)
    print(
        f"| {runs[0]['size']} "
        f"| {np.median(best):.2f} / {np.percentile(best, 99):.2f} ms "
        f"({runs[0]['detect_ms']:.2f} ms) "
        f"| {np.median(plain):.2f} / {np.percentile(plain, 99):.2f} ms |"
    )


MECHANISMS = (
    ("everything on (the defaults)", {}),
    ("shake off", {"shake": False}),
    ("light_check off", {"light_check": False}),
    ("small movers off (small_area 0)", {"small_area": 0.0}),
    ("slow movers off (slow_baseline 0)", {"slow_baseline": 0.0}),
    ("all four off (as before them)", BEFORE_ISSUE_15),
)
SHAKE_PIXELS = 7.5  # at 1920x1080: 3 pixels at 768x576


def mechanisms_table(args: argparse.Namespace) -> None:
    print()
    print(
        "| 1920x1080, detection to the decision | vtest.avi: median / p99 "
        "| vtest.avi shaken: median / p99 |"
    )
    print("|---|---|---|")
    for label, settings in MECHANISMS:
        cells = []
        for shake in (0.0, SHAKE_PIXELS):
            measure = functools.partial(
                detection_cost,
                args.video,
                (1920, 1080),
                frames=args.frames,
                settings=settings,
                shake=shake,
            )
            best = lowest(measure, args.repeat)
            cells.append(f"{np.median(best):.2f} / {np.percentile(best, 99):.2f} ms")
        print(f"| {label} | {cells[0]} | {cells[1]} |")


def lowest(measure: Callable[..., dict[str, Any]], repeat: int) -> np.ndarray:
    """Each frame's lowest detection time over ``repeat`` runs of ``measure()``."""
    runs = [measure() for _ in range(max(1, repeat))]
    for run in runs:
        if not run.get("available"):
            raise SystemExit(f"detection cost unavailable: {run.get('reason')}")
    best: np.ndarray = np.min([run["detect_samples_ms"] for run in runs], axis=0)
    return best


def lowest_of_runs(
    measure: Callable[..., dict[str, Any]], repeat: int
) -> tuple[list[dict[str, Any]], np.ndarray, np.ndarray]:
    """``repeat`` runs of ``measure(plain=...)``, everything on and plain differencing in turn:
    the runs with everything on, and each frame's lowest detection time of each kind."""
    runs, plain_runs = [], []
    for _ in range(max(1, repeat)):
        runs.append(measure(plain=False))
        plain_runs.append(measure(plain=True))
    for run in (*runs, *plain_runs):
        if not run.get("available"):
            raise SystemExit(f"detection cost unavailable: {run.get('reason')}")
    best = np.min([run["detect_samples_ms"] for run in runs], axis=0)
    plain = np.min([run["detect_samples_ms"] for run in plain_runs], axis=0)
    return runs, best, plain


if __name__ == "__main__":
    main()
