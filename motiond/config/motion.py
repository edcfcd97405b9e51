"""``cameras[].motion``: how a frame's change is measured, and when a clip starts and stops."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection

from motiond.config.fields import Invalid, Reading, rule, section, setting

Polygon = tuple[tuple[int, int], ...]


def _masks(raw: object, reading: Reading) -> tuple[Polygon, ...]:
    """Polygons of at least 3 ``[x, y]`` points, in pixels."""
    if not isinstance(raw, list):
        raise ValueError("must be a list of polygons ([[x, y], ...])")
    masks = []
    for i, polygon in enumerate(raw):
        if not isinstance(polygon, list) or len(polygon) < 3:
            raise Invalid(f"[{i}]", "must be a polygon of at least 3 [x, y] points")
        points = []
        for j, point in enumerate(polygon):
            ok = (
                isinstance(point, list)
                and len(point) == 2
                and all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in point)
            )
            if not ok:
                raise Invalid(
                    f"[{i}][{j}]", f"must be [x, y] in pixels (whole numbers >= 0), got {point!r}"
                )
            points.append((point[0], point[1]))
        masks.append(tuple(points))
    return tuple(masks)


def _odd_or_zero(blur: int) -> None:
    if blur and blur % 2 == 0:
        raise ValueError(f"must be 0 (off) or an odd number, got {blur}")


def _off_or_a_frame(fps: float) -> None:
    if fps and fps < 1.0:
        raise ValueError(f"must be 0 (every frame) or at least 1, got {fps:g}")


def _off_or_a_second(seconds: float) -> None:
    if seconds and seconds < 1.0:
        raise ValueError(f"must be 0 (off) or at least 1s, got {seconds:g}s")


@section
class MotionConfig:
    """How a frame's change is measured and when a clip starts and stops."""

    pixel_threshold: int = setting(default=20, ge=1, le=255)
    threshold: float = setting(default=0.003, ge=0.0, le=1.0)
    lightswitch: float = setting(default=0.35, ge=0.0, le=1.0)
    stable_frames: int = setting(default=20, ge=1, le=10000)
    min_changed_frames: int = setting(default=5, ge=1, le=100000)
    detect_width: int = setting(default=320, ge=64, le=1920)
    # At most this many frames a second are detected, each counted for the frames it stands for
    # (0: every frame the camera sends)
    detect_fps: float = setting(default=0.0, ge=0.0, le=120.0, check=_off_or_a_frame)
    # ... and at most this many while a clip that will be kept records (0: as detect_fps)
    clip_detect_fps: float = setting(default=5.0, ge=0.0, le=120.0, check=_off_or_a_frame)
    blur: int = setting(default=5, ge=0, le=31, check=_odd_or_zero)
    warmup: float = setting(default=1.0, ge=0.0, le=60.0, unit="duration")
    masks: tuple[Polygon, ...] = setting(default=(), parse=_masks)
    min_area: float = setting(default=0.001, ge=0.0, le=1.0)
    nuisance: bool = True
    nuisance_learning: float = setting(default=120.0, ge=10.0, le=3600.0, unit="duration")
    # A shaking camera: difference after undoing the picture's global shift
    shake: bool = True
    # A change that is the same texture made brighter or darker (a beam, a shadow) never counts
    light_check: bool = True
    # Regions below min_area but at least this share that move steadily over frames count (0: off)
    small_area: float = setting(default=0.0002, ge=0.0, le=1.0)
    # Also compare with the picture this long ago, so a slow mover is seen from its start (0: off)
    slow_baseline: float = setting(default=1.0, ge=0.0, le=5.0, unit="duration")
    # 0: no tamper detection
    tamper_after: float = setting(
        default=5.0, ge=0.0, le=600.0, unit="duration", check=_off_or_a_second
    )
    # (a lambda: NightOverrides is declared below, with the bounds of the keys above)
    night: NightOverrides = setting(default_factory=lambda: NightOverrides())  # noqa: PLW0108

    def at_night(self) -> MotionConfig:
        """This config with the night overrides applied."""
        overrides = {
            f.name: getattr(self.night, f.name)
            for f in dataclasses.fields(self.night)
            if getattr(self.night, f.name) is not None
        }
        return dataclasses.replace(self, **overrides) if overrides else self


@section
class NightOverrides:
    """``motion`` values used instead while the camera is in night (infrared) mode; None:
    the day's value. Each takes the day's bounds."""

    pixel_threshold: int | None = setting(default=None, like=MotionConfig)
    threshold: float | None = setting(default=None, like=MotionConfig)
    min_area: float | None = setting(default=None, like=MotionConfig)
    lightswitch: float | None = setting(default=None, like=MotionConfig)
    min_changed_frames: int | None = setting(default=None, like=MotionConfig)


@rule(MotionConfig)
def _lightswitch_above_threshold(motion: MotionConfig, given: Collection[object]) -> None:
    for config, prefix in ((motion, ""), (motion.at_night(), "night.")):
        if config.lightswitch and config.lightswitch <= config.threshold:
            raise Invalid(
                prefix + "lightswitch",
                f"must be above threshold ({config.threshold:g}) or 0 to turn it off",
            )
