"""Measure detection deltas on real footage to choose pixel_threshold, threshold and lightswitch.

Runs the real MotionDetector on:
- vtest.avi (people walking; every frame has motion somewhere),
- vtest.avi with camera-like sensor noise added (Gaussian, sigma 4 gray levels),
- a still frame of vtest.avi with fresh noise each frame (what an empty scene looks like),
- that still frame under a lighting ramp (brightness +2 gray levels per frame) and a light
  switched on (+40 at once).
For each pixel_threshold it prints delta percentiles, so a threshold can be put between the
noise and the motion. Usage: python scripts/tune_defaults.py [../shared/data/vtest.avi]
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from motiond.config import MotionConfig
from motiond.motion import MotionDetector

NOISE_SIGMA = 4.0


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


def deltas(frames: list[np.ndarray], pixel_threshold: int) -> np.ndarray:
    detector = MotionDetector(MotionConfig(pixel_threshold=pixel_threshold, lightswitch=0.0))
    values = []
    for frame in frames:
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        result = detector.detect(gray, frame.shape[1], frame.shape[0], now=len(values) / 10)
        if result is not None:
            values.append(result.delta)
    return np.array(values)


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/vtest.avi")
    rng = np.random.default_rng(1)
    footage = read_frames(path)
    still = footage[0]
    scenes = {
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
    print(f"noise sigma {NOISE_SIGMA}; deltas are fractions of the picture (percent shown)")
    for pixel_threshold in (10, 15, 20, 25, 30):
        print(f"\npixel_threshold {pixel_threshold}")
        print(f"  {'scene':32} {'min':>7} {'p10':>7} {'p50':>7} {'p90':>7} {'max':>7}")
        for name, frames in scenes.items():
            d = deltas(frames, pixel_threshold) * 100
            q = np.percentile(d, [0, 10, 50, 90, 100])
            print(f"  {name:32} " + " ".join(f"{v:7.3f}" for v in q))


if __name__ == "__main__":
    main()
