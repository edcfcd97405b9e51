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

Each is run --repeat times and each frame's lowest CPU time is kept (the work is the same in
every run: what varies is what other processes on a shared machine do to caches and clock
speed); the table shows the median and the 99th percentile of those, and the median of a
single run (the first) for comparison. Prints Markdown tables.
Usage: python -m scripts.bench_detect [--frames N] [--repeat N] [--only jpeg|substream] [video]
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from scripts.bench.detect_cost import detection_cost, substream_detection_cost
from scripts.bench.harness import DEFAULT_VIDEO

SIZES = ((768, 576, 10.0), (1280, 720, 15.0), (1920, 1080, 15.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", nargs="?", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", choices=("jpeg", "substream"))
    args = parser.parse_args()
    if args.only != "substream":
        jpeg_table(args)
    if args.only != "jpeg":
        substream_table(args)


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
