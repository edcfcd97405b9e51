"""Synthetic scenes for tests: a textured background with sensor noise and moving squares."""

from __future__ import annotations

import cv2
import numpy as np

WIDTH, HEIGHT = 320, 240


def background(width: int = WIDTH, height: int = HEIGHT, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    gradient = np.tile(np.linspace(60, 180, width, dtype=np.float32), (height, 1))
    image = np.dstack([gradient, gradient * 0.9, gradient * 0.8]).astype(np.uint8)
    for _ in range(12):
        x, y = int(rng.integers(0, width - 40)), int(rng.integers(0, height - 40))
        color = tuple(int(c) for c in rng.integers(0, 255, 3))
        cv2.rectangle(
            image, (x, y), (x + int(rng.integers(10, 40)), y + int(rng.integers(10, 40))), color, -1
        )
    return image


def with_noise(image: np.ndarray, rng: np.random.Generator, sigma: float = 4.0) -> np.ndarray:
    noisy = image.astype(np.float32) + rng.normal(0, sigma, image.shape).astype(np.float32)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def with_square(image: np.ndarray, x: int, y: int, size: int = 24, color: int = 250) -> np.ndarray:
    result = image.copy()
    cv2.rectangle(result, (x, y), (x + size, y + size), (color, color, color), -1)
    return result


def gray(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
