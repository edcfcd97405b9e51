"""What the picture as a whole says about the camera: day or night, and tampering (pure).

**Day and night.** A camera switching to infrared loses its colour (and its brightness jumps);
switching back, it regains it. ``DayNight`` is fed a colourfulness measure (the mean distance of
the chroma from gray, in 8-bit levels: about 0 for an infrared picture, 10 to 40 by day; see
colour.py) and says which mode the camera is in and when it switched. A colourless picture
counts as night only while it still shows the scene (a hand over the lens is colourless too).

**Tampering.** ``TamperWatch`` learns, slowly, what the picture usually looks like: its
brightness, contrast (standard deviation), sharpness and a small thumbnail of the static scene.
A picture that then stays, for ``tamper_after``,

- nearly uniform (its contrast collapsed) or far darker than usual: ``covered``;
- far brighter than usual: ``blinded``;
- much less sharp than usual: ``defocused`` (out of focus, sprayed, fogged);
- a different scene in most of its blocks: ``turned``,

is tampered with. Night falling slowly moves what is usual along with it; a day/night switch
makes the watch learn the picture afresh; an offline camera sends no pictures at all. While a
condition lasts, nothing is learned, so the condition cannot become the usual.

Everything is driven by the frames' own times; nothing here reads a clock or touches a file.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

TamperKind = Literal["covered", "blinded", "defocused", "turned"]
Mode = Literal["day", "night"]

# Day and night (colourfulness in 8-bit chroma levels)
NIGHT_BELOW = 2.0  # less colour than this: infrared (a picture without colour)
DAY_ABOVE = 4.0  # more than this: colour again (between the two: no change)
COLOUR_INTERVAL = 1.0  # seconds between colour samples when nothing happens
SETTLE = 3.0  # seconds after a switch during which the picture is not trusted

# Tampering
SAMPLE_INTERVAL = 0.2  # seconds of frame time between looks at the whole picture
LEARN_TIME = 60.0  # time constant of what is usual
WARMUP = 4.0  # seconds of pictures learned before anything is judged
SUSPECT_AFTER = 1.0  # a condition this old is suspect: the clip of the moment starts
CLEAR_AFTER = 2.0  # seconds without any condition that end a tampered state
RUN_GAP = 1.0  # a run of conditions goes on through gaps shorter than this
RELEARN_TURNED_AFTER = 600.0  # a view turned this long becomes the usual one
COLLAPSED = 0.25  # contrast below this share of the usual: nearly uniform
MIN_CONTRAST = 6.0  # a picture flatter than this shows no scene
MIN_CONTRAST_DROP = 8.0  # a collapse loses at least this much contrast (not dusk's last light)
DARKER = 0.4  # mean below this share of the usual ...
BRIGHTER = 0.6  # ... or above usual + this share of the way to white
MIN_JUMP = 30.0  # and by at least this many gray levels
DEFOCUSED = 0.5  # sharpness below this share of the usual
EDGE_SHARE = 0.01  # sharpness is measured on the steepest 1 % of the picture's gradients
TURNED_BLOCKS = 0.6  # share of textured blocks that no longer match
BLOCK_MATCH = 0.5  # correlation below which a block no longer matches
MIN_BLOCK_CONTRAST = 3.0  # a block flatter than this (usual) is not judged
GRID = (6, 4)  # blocks across and down
BLOCK = 8  # thumbnail pixels per block side
SAME_PICTURE_MEAN = 12.0  # the two frames of a look differ by less in mean brightness ...
SAME_PICTURE_SHARE = 0.3  # ... and by less than this share in contrast, or the look is void


@dataclass(frozen=True, slots=True)
class PictureMeasures:
    """What one picture looks like as a whole (masked pixels left out)."""

    mean: float
    contrast: float  # standard deviation of the gray levels
    sharpness: float  # steepness of the strongest edges per unit of contrast
    thumbnail: np.ndarray  # GRID * BLOCK pixels, float32; masked pixels at the mean


@dataclass(frozen=True, slots=True)
class PreparedMask:
    """A detection mask (0/1) in the forms the measures need, made once per mask."""

    mask: np.ndarray
    half: np.ndarray  # every other pixel: the mean and contrast need no more
    inside: np.ndarray  # eroded: edges along the mask's border are not the scene's
    blocks: np.ndarray  # per thumbnail block, whether it is mostly unmasked

    @classmethod
    def of(cls, mask: np.ndarray) -> PreparedMask:
        return cls(
            mask=mask,
            half=np.ascontiguousarray(mask[::2, ::2]),
            inside=cv2.erode(mask, np.ones((3, 3), np.uint8)),
            blocks=block_weights(mask),
        )


def measure(picture: np.ndarray, mask: PreparedMask | None = None) -> PictureMeasures:
    """Measures of a gray picture (uint8, any size, unblurred); ``mask`` marks the pixels that
    count (None: all)."""
    measures = with_sharpness(measure_brightness(picture, mask), picture, mask)
    assert measures is not None  # one picture is always itself
    return measures


def _mean_and_contrast(picture: np.ndarray, mask: PreparedMask | None) -> tuple[float, float]:
    if mask is None:
        mean, std = cv2.meanStdDev(picture)
    else:
        mean, std = cv2.meanStdDev(np.ascontiguousarray(picture[::2, ::2]), mask=mask.half)
    return float(mean[0][0]), float(std[0][0])


def measure_brightness(picture: np.ndarray, mask: PreparedMask | None) -> PictureMeasures:
    """The first half of ``measure`` (sharpness 0): brightness, contrast, thumbnail."""
    mean, contrast = _mean_and_contrast(picture, mask)
    if mask is not None:
        # Masked pixels (a timestamp the camera burns in, a road) take no part in the scene.
        filled = np.full_like(picture, round(mean))
        cv2.copyTo(picture, mask.mask, filled)
        picture = filled
    return PictureMeasures(mean, contrast, 0.0, _thumbnail(picture))


def with_sharpness(
    measures: PictureMeasures, picture: np.ndarray, mask: PreparedMask | None
) -> PictureMeasures | None:
    """The second half of ``measure``: the sharpness of ``picture`` added, relative to its own
    contrast. None when ``picture`` is not the one ``measures`` describe (the picture jumped
    between the two frames of a look: a glitch frame, a light switched), so no look mixes two
    pictures' measures."""
    mean, contrast = _mean_and_contrast(picture, mask)
    if abs(mean - measures.mean) >= SAME_PICTURE_MEAN or abs(
        contrast - measures.contrast
    ) >= SAME_PICTURE_SHARE * max(contrast, measures.contrast, MIN_CONTRAST):
        return None
    edges = _steepest_edges(picture, None if mask is None else mask.inside)
    return dataclasses.replace(measures, sharpness=edges / max(contrast, 1.0))


def _thumbnail(picture: np.ndarray) -> np.ndarray:
    """GRID * BLOCK pixels of block means (float32). The picture is cropped to a whole
    multiple first: an area resize by whole factors is several times faster."""
    width, height = GRID[0] * BLOCK, GRID[1] * BLOCK
    fx, fy = picture.shape[1] // width, picture.shape[0] // height
    if fx and fy:
        picture = picture[: fy * height, : fx * width]
    small = cv2.resize(picture, (width, height), interpolation=cv2.INTER_AREA)
    thumbnail: np.ndarray = small.astype(np.float32)
    return thumbnail


def _steepest_edges(picture: np.ndarray, inside: np.ndarray | None) -> float:
    """The gradient that only EDGE_SHARE of the pixels (where ``inside``) exceed: the
    steepness of the picture's strongest edges, which blur flattens, while sensor noise (many
    weak gradients) barely moves it."""
    gx = cv2.convertScaleAbs(cv2.Sobel(picture, cv2.CV_16S, 1, 0), alpha=0.5)
    gy = cv2.convertScaleAbs(cv2.Sobel(picture, cv2.CV_16S, 0, 1), alpha=0.5)
    magnitude = cv2.add(gx, gy)
    histogram = cv2.calcHist([magnitude], [0], inside, [256], [0, 256]).ravel()
    total = float(histogram.sum())
    above = np.cumsum(histogram[::-1])  # pixels at or above each level, from the top
    return float(255 - int(np.searchsorted(above, EDGE_SHARE * total)))


def block_weights(mask: np.ndarray) -> np.ndarray:
    """Per block of the thumbnail, whether it is mostly unmasked."""
    share = cv2.resize(mask.astype(np.float32), GRID, interpolation=cv2.INTER_AREA)
    weights: np.ndarray = share.ravel() >= 0.5
    return weights


def mismatched_blocks(
    now: np.ndarray, usual: np.ndarray, unmasked: np.ndarray | None = None
) -> tuple[int, int]:
    """(blocks that no longer match, blocks judged) between two thumbnails; ``unmasked`` (one
    bool per block) leaves mostly masked blocks out."""
    rows, cols = GRID[1], GRID[0]

    def blocks(image: np.ndarray) -> np.ndarray:
        split = image.reshape(rows, BLOCK, cols, BLOCK).transpose(0, 2, 1, 3)
        flat = split.reshape(rows * cols, BLOCK * BLOCK)
        centred: np.ndarray = flat - flat.mean(axis=1, keepdims=True)
        return centred

    a, b = blocks(now), blocks(usual)
    norm_a = np.sqrt((a * a).sum(axis=1))
    norm_b = np.sqrt((b * b).sum(axis=1))
    judged = norm_b / BLOCK >= MIN_BLOCK_CONTRAST
    if unmasked is not None:
        judged &= unmasked
    correlation = (a * b).sum(axis=1) / np.maximum(norm_a * norm_b, 1e-6)
    mismatched = judged & (correlation < BLOCK_MATCH)
    return int(mismatched.sum()), int(judged.sum())


def shows_scene(picture: np.ndarray) -> bool:
    """True when the picture has structure (not black, not a blank wall of light)."""
    _, std = cv2.meanStdDev(picture)
    return float(std[0][0]) >= MIN_CONTRAST


class DayNight:
    """Day or night from colour samples, with hysteresis. Not thread-safe."""

    def __init__(self) -> None:
        self.mode: Mode | None = None

    def update(self, colourfulness: float, scene_visible: bool) -> bool:
        """Feed one sample; True when the mode switched (not for the first sample)."""
        seen: Mode | None = None
        if colourfulness < NIGHT_BELOW and scene_visible:
            seen = "night"
        elif colourfulness > DAY_ABOVE:
            seen = "day"
        if seen is None or seen == self.mode:
            return False
        switched = self.mode is not None
        self.mode = seen
        return switched


@dataclass(frozen=True, slots=True)
class TamperState:
    """The watch's verdict after a picture."""

    condition: TamperKind | None = None  # what the picture looks like now, if not normal
    since: float | None = None  # when the current run of conditions began
    suspect: bool = False  # a condition has lasted SUSPECT_AFTER
    tampered: TamperKind | None = None
    tampered_since: float | None = None
    raised: bool = False  # became tampered with this picture
    cleared: TamperKind | None = None  # stopped being tampered with (that kind) this picture
    relearned: bool = False  # a long-turned view became the usual one


class TamperWatch:
    """Learns the usual picture and judges each new one against it. Not thread-safe.

    Conditions come in runs: a run goes on through gaps shorter than RUN_GAP (a condition
    judged on the edge flickers), and nothing is learned during a run or within CLEAR_AFTER
    of its last condition.
    """

    def __init__(self, tamper_after: float) -> None:
        self.tamper_after = tamper_after
        self.state = TamperState()
        self._usual: PictureMeasures | None = None
        self._learned = 0.0  # seconds of pictures in what is usual
        self._last_sample: float | None = None
        self._paused_until = float("-inf")
        self._last_condition = float("-inf")  # when a condition was last seen
        self._mask_key: tuple[int, ...] | None = None
        self._prepared: PreparedMask | None = None
        self._half_measured: PictureMeasures | None = None  # a look begun on the last frame

    @property
    def enabled(self) -> bool:
        return self.tamper_after > 0

    @property
    def ready(self) -> bool:
        """True once enough is learned to judge pictures."""
        return self._usual is not None and self._learned >= WARMUP

    def pause(self, until: float) -> None:
        """Judge nothing before ``until`` (after a reconnect: the exposure settles); what is
        usual, and a tampered state, stay."""
        self._paused_until = until
        self._last_sample = None
        self._half_measured = None
        self._last_condition = float("-inf")
        state = self.state
        self.state = TamperState(tampered=state.tampered, tampered_since=state.tampered_since)

    def relearn(self, until: float) -> None:
        """Forget what is usual and learn it afresh after ``until`` (a day/night switch)."""
        cleared = self.state.tampered
        self._usual = None
        self._learned = 0.0
        self.pause(until)
        self.state = TamperState(cleared=cleared)

    def update(
        self, picture: np.ndarray, now: float, mask: np.ndarray | None = None
    ) -> TamperState:
        """Look at the picture at ``now`` (at most every SAMPLE_INTERVAL); the verdict.
        ``mask`` (0/1, the picture's size) marks the pixels that count (None: all)."""
        state = self.state
        if state.raised or state.cleared or state.relearned:
            state = self.state = _without_news(state)
        if not self.enabled or now < self._paused_until:
            return state
        prepared = self._prepare(mask)
        half = self._half_measured
        if half is None:
            # A look takes two frames, half the work each: no frame pays for all of it.
            if self._last_sample is None or now - self._last_sample >= SAMPLE_INTERVAL:
                self._half_measured = measure_brightness(picture, prepared)
            return state
        self._half_measured = None
        measures = with_sharpness(half, picture, prepared)
        if measures is None:
            return state  # the picture jumped within the look: look again at the next frame
        step = 0.0 if self._last_sample is None else min(1.0, now - self._last_sample)
        self._last_sample = now
        usual = self._usual
        if usual is None or not self.ready:
            self._learn(measures, step)
            return state
        condition = judge(measures, usual, None if prepared is None else prepared.blocks)
        self.state = self._next_state(condition, now)
        calm = self.state.since is None and self.state.tampered is None
        if calm and now - self._last_condition >= CLEAR_AFTER:
            self._learn(measures, step)
        return self.state

    def _prepare(self, mask: np.ndarray | None) -> PreparedMask | None:
        """The mask's prepared forms, made again only when the mask changes."""
        key = None if mask is None else (id(mask), *mask.shape)
        if key != self._mask_key:
            self._mask_key = key
            self._prepared = None if mask is None else PreparedMask.of(mask)
        return self._prepared

    def _learn(self, measures: PictureMeasures, step: float) -> None:
        usual = self._usual
        self._learned += step
        if usual is None:
            self._usual = measures
            return
        # A running mean at first (until it weighs less than the slow average), then the slow
        # running average.
        weight = min(1.0, max(1.0 - math.exp(-step / LEARN_TIME), step / max(self._learned, 1e-6)))
        self._usual = PictureMeasures(
            mean=usual.mean + weight * (measures.mean - usual.mean),
            contrast=usual.contrast + weight * (measures.contrast - usual.contrast),
            sharpness=usual.sharpness + weight * (measures.sharpness - usual.sharpness),
            thumbnail=cv2.addWeighted(usual.thumbnail, 1.0 - weight, measures.thumbnail, weight, 0),
        )

    def _next_state(self, condition: TamperKind | None, now: float) -> TamperState:
        state = self.state
        if condition is not None:
            self._last_condition = now
        elif state.since is not None and now - self._last_condition < RUN_GAP:
            condition = state.condition  # a gap in a run: it goes on
        if condition is None:
            if state.tampered is None:
                return TamperState()
            if now - self._last_condition >= CLEAR_AFTER:
                return TamperState(cleared=state.tampered)
            return TamperState(tampered=state.tampered, tampered_since=state.tampered_since)
        since = state.since if state.since is not None else now
        tampered, tampered_since = state.tampered, state.tampered_since
        raised = False
        if tampered is None and now - since >= self.tamper_after:
            tampered, tampered_since, raised = condition, since, True
        elif (
            tampered == "turned"
            and condition == "turned"
            and tampered_since is not None
            and now - tampered_since >= RELEARN_TURNED_AFTER
        ):
            self._usual = None
            self._learned = 0.0
            self._last_condition = float("-inf")
            return TamperState(cleared="turned", relearned=True)
        return TamperState(
            condition=condition,
            since=since,
            suspect=now - since >= SUSPECT_AFTER,
            tampered=tampered,
            tampered_since=tampered_since,
            raised=raised,
        )


def judge(
    now: PictureMeasures, usual: PictureMeasures, unmasked_blocks: np.ndarray | None = None
) -> TamperKind | None:
    """What is wrong with a picture compared with the usual one, if anything."""
    jump = now.mean - usual.mean
    if jump >= MIN_JUMP and now.mean > usual.mean + BRIGHTER * (255.0 - usual.mean):
        return "blinded"
    collapsed = (
        now.contrast < COLLAPSED * usual.contrast
        and usual.contrast - now.contrast >= MIN_CONTRAST_DROP
    )
    if collapsed or (-jump >= MIN_JUMP and now.mean < DARKER * usual.mean):
        return "covered"
    if now.sharpness < DEFOCUSED * usual.sharpness:
        return "defocused"
    mismatched, judged = mismatched_blocks(now.thumbnail, usual.thumbnail, unmasked_blocks)
    if judged >= GRID[0] * GRID[1] // 4 and mismatched >= TURNED_BLOCKS * judged:
        return "turned"
    return None


def _without_news(state: TamperState) -> TamperState:
    """The state without its one-picture news (raised, cleared, relearned)."""
    return TamperState(
        condition=state.condition,
        since=state.since,
        suspect=state.suspect,
        tampered=state.tampered,
        tampered_since=state.tampered_since,
    )


@dataclass(frozen=True, slots=True)
class SceneReport:
    """What the scene monitor says after one frame."""

    mode: Mode | None
    switched: bool  # the mode changed with this frame
    settling: bool  # shortly after a switch: the picture is not trusted for motion
    tamper: TamperState

    @property
    def suspect(self) -> bool:
        """The camera may be being tampered with (not yet confirmed): a clip starts and goes on."""
        return self.tamper.suspect and self.tamper.tampered is None


class SceneMonitor:
    """Day/night and tampering of one camera, fed every frame. Not thread-safe: the capture
    thread owns it (other threads read ``report``, which is replaced, never changed)."""

    def __init__(self, tamper_after: float) -> None:
        self.day_night = DayNight()
        self.tamper = TamperWatch(tamper_after)
        self.report = SceneReport(mode=None, switched=False, settling=False, tamper=TamperState())
        self._last_colour: float | None = None
        self._settle_until = float("-inf")

    def wants_colour(self, now: float, jumped: bool) -> bool:
        """Whether the camera should measure this frame's colour: once a COLOUR_INTERVAL, and
        on a frame where the picture jumped (a switch shows as a lighting change or motion)."""
        return jumped or self._last_colour is None or now - self._last_colour >= COLOUR_INTERVAL

    def reset(self, until: float) -> None:
        """The camera (re)opened: judge nothing before ``until``."""
        self.tamper.pause(until)

    def update(
        self,
        picture: np.ndarray,
        now: float,
        colourfulness: float | None = None,
        mask: np.ndarray | None = None,
    ) -> SceneReport:
        """Feed one frame's gray picture (detection size, unblurred) seen at ``now``, with its
        colourfulness when measured (see ``wants_colour``) and the detection mask (0/1: the
        pixels that count; None: all)."""
        tamper = self.tamper.update(picture, now, mask)
        switched = False
        if colourfulness is not None:
            self._last_colour = now
            visible = tamper.condition not in ("covered", "blinded") and shows_scene(picture)
            switched = self.day_night.update(colourfulness, visible)
            if switched:
                # The new mode's picture is learned afresh once the camera has settled.
                self._settle_until = now + SETTLE
                self.tamper.relearn(now + SETTLE)
                tamper = self.tamper.state
        self.report = SceneReport(
            mode=self.day_night.mode,
            switched=switched,
            settling=now < self._settle_until,
            tamper=tamper,
        )
        return self.report
