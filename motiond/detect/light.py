"""Light that moves: a changed region that is the same texture made brighter or darker (pure).

Headlights sweeping a wall, a torch beam, a cloud's shadow, a lamp's pool of light change the
gray levels of a region but not what is in it: the fine texture (the picture less its blurred
self) is the one before, scaled by the light's gain. An object brings its own texture and
edges. Per region, over its changed pixels only, this compares the two textures: the share of
the new texture that a gain times the old one explains (their normalised correlation), and
how much texture is left unexplained. A region is light when the correlation is high, or when
neither picture has texture above the sensor's noise there (a beam on a plain wall).

What it could wrongly hide: something whose texture matches the background's at that place
(camouflage), or a change so blurred or dark that it has no edges at all at detection size.
A light bright enough to saturate the picture wipes the texture out, so it counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LIGHT_CORRELATION = 0.6  # the new texture is this much the old one times a gain: light
# Texture left unexplained, per changed pixel (squared gray levels of the fine texture): below
# this a region has nothing an object would bring (noise after the blur stays under it).
STRUCTURE_LEVEL = 45.0
# ... or below this whatever the correlation: a texture unlike the old one (an object in
# front of a faintly textured wall) counts above it, the sensor's noise stays below.
NOISE_LEVEL = 22.0
LIKE_CORRELATION = 0.3  # textures this alike are judged against STRUCTURE_LEVEL
# Texture per changed pixel (squared gray levels) below which a region is flat (a plain wall,
# a sky: the sensor's noise after the blur stays under it).
TEXTURE_LEVEL = 20.0
# A light's gain (or its inverse) is above this: a region darkened or brightened further,
# or whose texture is scaled further, is something else (a hand over the lens).
MIN_GAIN = 0.4
MIN_PIXELS = 4  # a region smaller than this is too small to judge: never called light


@dataclass(frozen=True, slots=True)
class Pair:
    """A picture at detection size: ``blurred`` (what is differenced), as it was (``picture``),
    and ``smooth``, the blurred picture its texture is taken against (``blurred`` unless the
    blur is off)."""

    blurred: np.ndarray
    picture: np.ndarray
    smooth: np.ndarray


def _at(picture: np.ndarray, at: np.ndarray) -> np.ndarray:
    """``picture``'s values at the flat indices ``at``."""
    values: np.ndarray = picture.ravel().take(at)
    return values


def _texture(pair: Pair, at: np.ndarray) -> np.ndarray:
    """The fine texture (picture less smooth picture) of ``pair`` at the pixels ``at`` (flat
    indices), in whole gray levels."""
    texture: np.ndarray = _at(pair.picture, at).astype(np.float64) - _at(pair.smooth, at)
    return texture


def light_regions(
    label: np.ndarray, count: int, ys: np.ndarray, xs: np.ndarray, *, now: Pair, before: Pair
) -> np.ndarray:
    """One bool per region (index 0: none): whether its change from ``before`` to ``now`` is
    light only, judged on the fine texture at its changed pixels ``ys``/``xs``, whose region
    is ``label``."""
    at = ys * now.picture.shape[1] + xs
    a = _texture(now, at)
    b = _texture(before, at)
    pixels = np.bincount(label, minlength=count).astype(np.float32)
    saa = np.bincount(label, weights=a * a, minlength=count)
    sbb = np.bincount(label, weights=b * b, minlength=count)
    sab = np.bincount(label, weights=a * b, minlength=count)
    larger = np.maximum(saa, sbb)
    product = saa * sbb
    with np.errstate(divide="ignore", invalid="ignore"):
        correlation = np.where(product > 0, sab / np.sqrt(product), 0.0)
    # What of the larger texture a gain times the other does not explain (none in a region
    # without pixels: both sums are 0 there).
    unexplained = larger * (1.0 - np.clip(correlation, 0.0, 1.0) ** 2)
    per_pixel = unexplained / np.maximum(pixels, 1.0)
    # Texture that vanished (a hand over the lens, something flat in front of a textured
    # wall) or appeared is no change of light, whatever else the numbers say: light
    # scales texture by its gain, and no beam or shadow is that strong.
    textured = larger >= TEXTURE_LEVEL * pixels
    lost = np.minimum(saa, sbb) < MIN_GAIN**2 * larger
    # Nor is a region gone nearly black, or from nearly black to bright (a lens covered).
    bright_now = np.bincount(label, weights=_at(now.blurred, at), minlength=count)
    bright_before = np.bincount(label, weights=_at(before.blurred, at), minlength=count)
    gain_ok = np.minimum(bright_now, bright_before) >= MIN_GAIN * np.maximum(
        bright_now, bright_before
    )
    light: np.ndarray = (
        (pixels >= MIN_PIXELS)
        & gain_ok
        & ~(textured & lost)
        & (
            (correlation >= LIGHT_CORRELATION)
            | (per_pixel < NOISE_LEVEL)
            | ((correlation >= LIKE_CORRELATION) & (per_pixel < STRUCTURE_LEVEL))
        )
    )
    light[0] = False
    return light
