"""Detection cost per frame at 768x576, 1280x720 and 1920x1080: python -m scripts.bench_detect

The same measurement as the "Detection" table of bench_vs_motion (scripts/bench/detect_cost.py)
without Motion or a stream: vtest.avi's frames JPEG-encoded at each size, decoded at reduced
scale in gray, then everything from that gray picture to the recording decision (motion,
min_area, nuisance areas, day/night, tampering, trigger), on one thread. Each size is
measured --repeat times and the run with the lowest median detection cost is shown: CPU time
already leaves out waiting for a CPU, and the best run leaves out most of what other processes
on a shared machine do to caches and clock speed. Prints a Markdown table.
Usage: python -m scripts.bench_detect [--frames N] [--repeat N] [video]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from scripts.bench.detect_cost import detection_cost

SIZES = ((768, 576, 10.0), (1280, 720, 15.0), (1920, 1080, 15.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", nargs="?", type=Path, default=Path("../shared/data/vtest.avi"))
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(
        "| stream | reduced gray JPEG decode | detection to the decision, median / p99 "
        "| plain differencing, same run | colour sample (once a second) "
        "| full colour decode, for comparison |"
    )
    print("|---|---|---|---|---|---|")
    for width, height, fps in SIZES:
        size = None if (width, height) == (768, 576) else (width, height)
        runs, plain_runs = [], []
        for _ in range(max(1, args.repeat)):
            runs.append(detection_cost(args.video, size, frames=args.frames, fps=fps))
            plain_runs.append(
                detection_cost(args.video, size, frames=args.frames, fps=fps, plain=True)
            )
        for run in (*runs, *plain_runs):
            if not run.get("available"):
                raise SystemExit(f"detection cost unavailable: {run.get('reason')}")
        cost = min(runs, key=lambda run: float(run["detect_ms"]))
        plain = min(plain_runs, key=lambda run: float(run["detect_ms"]))
        print(
            f"| {cost['size']} ({cost['decoded_gray']} gray) "
            f"| {cost['decode_reduced_gray_ms']:.2f} ms "
            f"| {cost['detect_ms']:.2f} / {cost['detect_p99_ms']:.2f} ms "
            f"| {plain['detect_ms']:.2f} ms "
            f"| {cost['colour_sample_ms']:.2f} ms ({cost['colour_per_frame_ms']:.2f} ms a frame) "
            f"| {cost['decode_full_colour_ms']:.2f} ms |"
        )


if __name__ == "__main__":
    main()
