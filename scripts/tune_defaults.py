"""Measure detection on real footage to choose pixel_threshold, threshold, lightswitch, min_area.

Runs the real MotionDetector on:
- vtest.avi (people walking; every frame has motion somewhere),
- vtest.avi with camera-like sensor noise added (Gaussian, sigma 4 gray levels),
- a still frame of vtest.avi with fresh noise each frame (what an empty scene looks like),
- that still frame under a lighting ramp (brightness +2 gray levels per frame) and a light
  switched on (+40 at once),
- for min_area: vtest.avi and its still frame with synthetic snow (bright flakes of 1 to 3
  pixels' radius, as an infrared lamp lights them) and rain (streaks 1 pixel wide, 6 to 16
  long) falling over the whole picture: 100, 300 and 1000 of them in the 768x576 picture.

Part 1 prints delta percentiles per pixel_threshold, so a threshold can be put between the
noise and the motion. Part 2 prints, per min_area, the share of frames that are changed frames
(a clip would record them) and the size of each frame's largest changed region, so min_area can
be put between the specks and the people. Part 3 plays vtest.avi over and over for eight
minutes with the nuisance model on and off: a busy path must not be learned as an area that
never stops moving (that would hide people).

Usage: python -m scripts.tune_defaults [--only thresholds|min_area|nuisance] [vtest.avi]
(default: ../shared/data/vtest.avi; about 5 minutes in all)
"""

from __future__ import annotations

import argparse
import math
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from motiond.config import MotionConfig
from motiond.detect.motion import MotionDetector
from motiond.detect.nuisance import ENTER_LEVEL
from testbed import VTEST

NOISE_SIGMA = 4.0
FPS = 10.0
MIN_AREAS = (0.0, 0.0005, 0.001, 0.0015, 0.002, 0.003)


def read_frames(path: Path, limit: int = 400) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < limit:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    if not frames:
        raise SystemExit(f"cannot read {path}")
    return frames


def noisy(frame: np.ndarray, rng: np.random.Generator, sigma: float = NOISE_SIGMA) -> np.ndarray:
    noise = rng.normal(0, sigma, frame.shape)
    return np.clip(frame.astype(np.float32) + noise, 0, 255).astype(np.uint8)


class Precipitation:
    """Specks falling over the whole picture: snow flakes (discs) or rain streaks (lines)."""

    def __init__(self, count: int, kind: str, seed: int) -> None:
        self.kind = kind
        rng = np.random.default_rng(seed)
        self.x = rng.uniform(0, 1, count)
        self.y = rng.uniform(0, 1, count)
        self.speed = rng.uniform(0.08, 0.2, count) * (4 if kind == "rain" else 1)  # per second
        self.size = rng.integers(1, 4, count) if kind == "snow" else rng.integers(6, 17, count)
        self.drift = rng.uniform(-0.02, 0.02, count)

    def draw(self, image: np.ndarray, t: float) -> np.ndarray:
        height, width = image.shape[:2]
        out = image.copy()
        ys = ((self.y + self.speed * t) % 1.0) * height
        xs = ((self.x + self.drift * t) % 1.0) * width
        for x, y, size in zip(xs.astype(int), ys.astype(int), self.size.tolist(), strict=True):
            if self.kind == "snow":
                cv2.circle(out, (int(x), int(y)), int(size), (235, 235, 235), -1)
            else:
                cv2.line(out, (int(x), int(y)), (int(x) + 1, int(y) + int(size)), (210, 210, 210))
        return out


def run(frames: list[np.ndarray], config: MotionConfig) -> tuple[np.ndarray, np.ndarray]:
    """(delta per frame, largest region per frame), as fractions of the picture."""
    detector = MotionDetector(config)
    deltas, largest = [], []
    for index, frame in enumerate(frames):
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        result = detector.detect(gray, frame.shape[1], frame.shape[0], now=index / FPS)
        if result is not None and not result.lighting:
            deltas.append(result.delta)
            largest.append(result.largest)
    return np.array(deltas), np.array(largest)


def thresholds(scenes: dict[str, list[np.ndarray]]) -> None:
    print(f"noise sigma {NOISE_SIGMA}; deltas are fractions of the picture (percent shown)")
    for pixel_threshold in (10, 15, 20, 25, 30):
        print(f"\npixel_threshold {pixel_threshold}")
        print(f"  {'scene':32} {'min':>7} {'p10':>7} {'p50':>7} {'p90':>7} {'max':>7}")
        config = MotionConfig(pixel_threshold=pixel_threshold, lightswitch=0.0, min_area=0.0)
        for name, frames in scenes.items():
            d = run(frames, config)[0] * 100
            q = np.percentile(d, [0, 10, 50, 90, 100])
            print(f"  {name:32} " + " ".join(f"{v:7.3f}" for v in q))


def min_areas(scenes: dict[str, list[np.ndarray]]) -> None:
    base = MotionConfig()
    width, height = scenes["vtest + noise"][0].shape[1::-1]
    picture = math.prod(
        MotionDetector(base).prepare(np.zeros((height, width), np.uint8), width, height).shape
    )
    print(
        f"\nmin_area (threshold {base.threshold:g}, pixel_threshold {base.pixel_threshold}; "
        f"detection picture {picture} pixels)"
    )
    print("  changed frames (a clip records them), percent of frames, per min_area:")
    print(f"  {'scene':34} " + " ".join(f"{a:>8g}" for a in MIN_AREAS))
    for name, frames in scenes.items():
        shares = []
        for min_area in MIN_AREAS:
            deltas = run(frames, replace(base, min_area=min_area))[0]
            shares.append(100 * float(np.mean(deltas > base.threshold)))
        print(f"  {name:34} " + " ".join(f"{v:8.1f}" for v in shares))
    print("\n  largest changed region per frame, percent of the picture:")
    print(f"  {'scene':34} {'p1':>8} {'p5':>8} {'p50':>8} {'p99':>8} {'max':>8}")
    for name, frames in scenes.items():
        largest = run(frames, replace(base, min_area=0.0))[1] * 100
        q = np.percentile(largest, [1, 5, 50, 99, 100])
        print(f"  {name:34} " + " ".join(f"{v:8.4f}" for v in q))


def nuisance(path: Path, minutes: float = 8.0) -> None:
    footage = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in read_frames(path, limit=10_000)]
    height, width = footage[0].shape
    loops = math.ceil(minutes * 60 * FPS / len(footage))
    print(
        f"\nnuisance: vtest.avi played {loops} times ({loops * len(footage) / FPS / 60:.1f} min), "
        f"people walking throughout; an area is ignored above activity {ENTER_LEVEL}"
    )
    print(
        f"  {'motion.nuisance':16} {'changed frames':>15} {'ignored share':>14} "
        f"{'max activity':>13} {'p99.9 activity':>15}"
    )
    for learning in (True, False):
        detector = MotionDetector(MotionConfig(nuisance=learning))
        changed = frames = 0
        for loop in range(loops):
            for index, gray in enumerate(footage):
                now = (loop * len(footage) + index) / FPS
                result = detector.detect(gray, width, height, now=now)
                if result is not None:
                    frames += 1
                    changed += result.delta > detector.config.threshold
        model = detector.nuisance
        activity = model.activity if model is not None else np.zeros(1)
        share = model.ignored_share if model is not None else 0.0
        print(
            f"  {str(learning).lower():16} {100 * changed / frames:14.2f}% {100 * share:13.2f}% "
            f"{float(activity.max()):13.3f} {float(np.percentile(activity, 99.9)):15.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--only", choices=("thresholds", "min_area", "nuisance"))
    parser.add_argument("video", nargs="?", type=Path, default=VTEST)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    footage = read_frames(args.video)
    still = footage[0]
    if args.only in (None, "thresholds"):
        thresholds(
            {
                "vtest (motion)": footage,
                "vtest + noise": [noisy(f, rng) for f in footage],
                "vtest + noise sigma 8": [noisy(f, rng, 8.0) for f in footage],
                "still + noise": [noisy(still, rng) for _ in range(200)],
                "still + noise sigma 8": [noisy(still, rng, 8.0) for _ in range(200)],
                "still + noise, ramp +2/frame": [
                    noisy(cv2.convertScaleAbs(still, alpha=1.0, beta=min(100, 2 * i)), rng)
                    for i in range(50)
                ],
                "still + noise, light on +40": [
                    noisy(still if i < 5 else cv2.convertScaleAbs(still, alpha=1.3, beta=10), rng)
                    for i in range(10)
                ],
            }
        )
    if args.only in (None, "min_area"):
        weather = {
            f"{kind} ({count} {'flakes' if kind == 'snow' else 'streaks'})": Precipitation(
                count, kind, seed
            )
            for seed, (kind, count) in enumerate(
                (kind, count) for kind in ("snow", "rain") for count in (100, 300, 1000)
            )
        }
        scenes = {"vtest + noise": [noisy(f, rng) for f in footage]}
        for name, fall in weather.items():
            scenes[f"still + {name}"] = [noisy(fall.draw(still, i / FPS), rng) for i in range(150)]
        for name, fall in weather.items():
            scenes[f"vtest + {name}"] = [
                noisy(fall.draw(f, i / FPS), rng) for i, f in enumerate(footage[:200])
            ]
        min_areas(scenes)
    if args.only in (None, "nuisance"):
        nuisance(args.video)


if __name__ == "__main__":
    main()
