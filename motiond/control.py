"""The one door into running cameras, for the web and MQTT alike.

What an edge may ask of a running camera (its status, its detection areas, its frames) and
change (arm or disarm it, take a snapshot) is ``CameraDoor``; the daemon implements it over
its live cameras (``motiond.cameras.LiveCameras``) and hands the one object to the web side
(through its own door, ``motiond.web.door.Door``) and to MQTT. Nothing else changes a camera
from outside. This module holds only the door's types: it imports what a frame, a detection
result and a stored snapshot are, nothing that runs the pipeline, so the web package may
import it.

Threads: methods documented *quick* only read values that one thread each writes (any thread:
the web side calls them on the IOLoop, MQTT on its thread); *blocking* ones write a file (the
web side calls them from its executor). A frame (or packet) listener is called on a camera's capture
thread (or its detection thread, with a sub stream) and must only hand the frame over, never
block.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from motiond.detect.boxes import MotionResult, Outlines
from motiond.frames import Frame
from motiond.store.layout import StoredSnapshot


@dataclass(frozen=True, slots=True)
class CameraStatus:
    """One running camera as the outside world sees it (no source: it may hold credentials)."""

    name: str
    online: bool
    armed: bool
    recording: bool  # a clip is being written (one refused for lack of storage is not)
    fps: float  # measured over the last frames
    frames: int
    last_delta: float | None
    threshold: float
    clips_kept: int
    clips_discarded: int
    frames_dropped: int
    frames_garbled: int
    last_frame_age: float | None
    width: int | None  # of the latest frame; None before the first one
    height: int | None
    buffered_bytes: int  # pre-roll ring and encoder queue
    realtime: bool  # frames carry monotonic capture times (not a file read "fast")
    ignored_share: float  # of the picture, learned as always moving (nuisance) and ignored
    day_night: str | None  # "day", "night" (no colour: infrared), None before the first sample
    tampered: str | None  # covered, blinded, defocused, turned; None: not tampered with
    tampered_since: float | None  # wall clock
    min_area: float  # in effect now (the night's at night)


@dataclass(frozen=True, slots=True)
class DetectionAreas:
    """Where changes never count, in the camera's pixels (its main stream's)."""

    width: int | None  # the picture these are in; None before the first frame
    height: int | None
    ignored: Outlines  # learned as always moving; the same object until they change
    masks: tuple[tuple[tuple[int, int], ...], ...]  # motion.masks as configured


class UnknownCamera(LookupError):
    """No running camera of that name."""


class CameraUnavailable(Exception):
    """The camera has no current picture (offline, or not started yet)."""


class SnapshotsTooFrequent(Exception):
    """On-demand snapshots of this camera are over their rate (``storage.snapshots_per_minute``);
    ``retry_after`` says in how many seconds the next one would be taken."""

    def __init__(self, camera: str, retry_after: float) -> None:
        super().__init__(
            f"camera {camera}: too many snapshots; the next is possible in {retry_after:.0f} s"
        )
        self.camera = camera
        self.retry_after = retry_after


# Called with the camera's name and each new frame (and what detection saw in it, None when
# nothing was detected); must only hand the frame over, never block.
FrameListener = Callable[[str, Frame, MotionResult | None], None]

# Called with the camera's name, the stream ("main", or "sub": an IP camera's detection
# stream) and each frame read from it, as the camera sent it (a coded packet, a JPEG, or a
# picture); on the thread that reads that stream; must only hand the frame over, never block.
PacketListener = Callable[[str, str, Frame], None]


class CameraDoor(Protocol):
    """The running cameras, by name, as the web side and MQTT may use them."""

    def names(self) -> list[str]:
        """Quick: the running cameras, in the order they were started (config order)."""
        ...

    def cameras(self) -> list[CameraStatus]:
        """Quick: every running camera, in the order of ``names()``."""
        ...

    def camera(self, name: str) -> CameraStatus | None:
        """Quick: one camera, or None if no camera of that name runs."""
        ...

    def detection_areas(self, name: str) -> DetectionAreas | None:
        """Quick: a camera's ignored areas and masks, or None if no camera of that name runs."""
        ...

    def set_armed(self, name: str, armed: bool) -> CameraStatus:
        """Quick: resume or pause detection (a clip in progress is finished). UnknownCamera."""
        ...

    def take_snapshot(self, name: str) -> StoredSnapshot:
        """Blocking: write the latest frame to snapshots/. UnknownCamera, CameraUnavailable,
        SnapshotsTooFrequent (nothing written); OSError when it cannot be written."""
        ...

    def add_frame_listener(self, listener: FrameListener) -> None:
        """Call ``listener`` with every camera's frames, including cameras started later."""
        ...

    def add_packet_listener(self, listener: PacketListener) -> None:
        """Call ``listener`` with every frame of every camera's streams (main and sub), as
        read, including cameras started later."""
        ...
