"""Off-site copies: a durable queue on disk per destination, each file copied by rclone.

Layout under ``storage.dir``::

    uploads/<destination>/<seq>.json     one file waiting to be copied (an item)

An item is written to a temporary file, fsync'd and renamed into place (then the folder is
fsync'd), so after ``kill -9`` or a power cut it is either wholly there or not there. It is
deleted (and the deletion fsync'd) only after rclone has confirmed the copy, and a clip's
sidecar records the destination (``uploads``) before the clip's last item is deleted: what was
confirmed is never queued again. A crash between rclone's success and that deletion runs the
same ``rclone copyto`` again, which finds the identical file there and copies nothing.

Order: per destination, items go out oldest first, posters ahead of everything else (a
picture of who was there leaves the device first); an item that fails is retried with backoff
(``retry_min`` doubling to ``retry_max``) and holds back the items behind it. At start, clips
in the index that a destination has not confirmed and that are not queued are noted as a
backlog and queued a few at a time (``QueueFeeder``: clips recovered after a crash, uploads
configured later). A queue write that fails is retried the same way, and an item file of the
wrong types is set aside (``.corrupt``), never blocking the rest.

Threads: the uploader's event handlers (``subscribe``) run on recorder threads; they only append
to each destination's bounded in-memory intake and never blocks. Each destination has one
worker thread that owns its queue, its folder and its rclone process. ``stats()`` and
``pending_remotes()`` may be called from any thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import json
import logging
import math
import re
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from operator import attrgetter
from pathlib import Path

from motiond.backoff import Backoff
from motiond.config.upload import UploadConfig, UploadDestination
from motiond.events import (
    ClipEnded,
    ClipStarted,
    EventBus,
    EventSink,
    SegmentEnded,
    UploadFailed,
)
from motiond.redact import redact_text
from motiond.store.clips import ClipStore
from motiond.store.layout import (
    ClipRecord,
    Storage,
    atomic_write_bytes,
    fsync_dir,
    is_camera_name,
    is_clip_id,
    is_layout_file,
)
from motiond.threads import named_thread

logger = logging.getLogger(__name__)

UPLOADS_DIR = "uploads"
MAX_INTAKE = 1000  # files handed over by events and not yet taken by the worker
MAX_UNWRITTEN = 10_000  # files waiting for a queue that cannot be written (then dropped)
REFILL_BELOW = 40  # backlog clips become queue items while fewer items than this are queued
STOP_GRACE = 5.0  # seconds rclone gets to exit after SIGTERM at shutdown
_ERROR_TAIL = 400  # characters of rclone's error output worth a log line
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(slots=True)
class UploadItem:
    """One file to copy to one destination."""

    seq: int
    file: str  # relative to storage.dir, '/'-separated
    camera: str
    kind: str  # poster, clip, snapshot, sidecar (last: completes a clip); segment (continuous)
    clip_id: str | None
    queued_at: float  # wall clock
    attempts: int = 0
    failing_since: float | None = None
    last_error: str | None = None
    alerted: bool = False

    @property
    def order(self) -> tuple[int, int]:
        return (0 if self.kind == "poster" else 1, self.seq)

    def to_bytes(self) -> bytes:
        return (json.dumps(asdict(self), sort_keys=True) + "\n").encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> UploadItem:
        """An item read back from its file; ValueError says what is wrong with it (each field
        is checked by type, so a bad item is set aside at load and never reaches the worker)."""
        raw = json.loads(data)
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
        unknown = raw.keys() - _ITEM_FIELDS.keys()
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)}")
        for key, check in _ITEM_FIELDS.items():
            if key not in raw and key in _ITEM_DEFAULTS:
                continue
            if not check(raw.get(key)):
                raise ValueError(f"{key}: not a valid value: {raw.get(key)!r:.60}")
        return cls(**raw)


def _integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 10**15


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _text_or_none(value: object) -> bool:
    return value is None or isinstance(value, str)


_KINDS = ("poster", "clip", "snapshot", "sidecar")
_ITEM_FIELDS: dict[str, Callable[[object], bool]] = {
    "seq": _integer,
    "file": lambda v: isinstance(v, str) and is_layout_file(v),
    "camera": lambda v: isinstance(v, str) and is_camera_name(v),
    "kind": lambda v: v in _KINDS,
    "clip_id": lambda v: v is None or (isinstance(v, str) and is_clip_id(v)),
    "queued_at": _number,
    "attempts": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
    "failing_since": lambda v: v is None or _number(v),
    "last_error": _text_or_none,
    "alerted": lambda v: isinstance(v, bool),
}
_ITEM_DEFAULTS = frozenset({"attempts", "failing_since", "last_error", "alerted"})


@dataclass(frozen=True, slots=True)
class FileSpec:
    """What to queue: a file of a clip (from an event)."""

    file: str
    camera: str
    kind: str
    clip_id: str | None


@dataclass(frozen=True, slots=True)
class DestinationStats:
    remote: str
    queued: int
    oldest_age: float  # seconds; 0 when empty
    uploaded: int
    failures: int
    failing_since: float | None  # wall clock of the current failure streak, if any


def destination_folder(remote: str) -> str:
    """A folder name for a destination: readable, and unique by a hash of the remote."""
    digest = hashlib.sha256(remote.encode()).hexdigest()[:10]
    return f"{_UNSAFE.sub('_', remote).strip('_')[:60]}-{digest}"


def remote_path(remote: str, relative: str) -> str:
    """Where a file of the storage layout goes under ``remote``."""
    if remote.endswith((":", "/")):
        return remote + relative
    return f"{remote}/{relative}"


def clip_files(record: ClipRecord, with_poster: bool) -> list[FileSpec]:
    """A finished clip's files in upload order: poster, clip, other snapshots, sidecar last."""
    camera, clip_id, poster = record.camera, record.id, record.poster
    files = []
    if with_poster and poster:
        files.append(FileSpec(poster, camera, "poster", clip_id))
    files.append(FileSpec(record.file, camera, "clip", clip_id))
    files.extend(FileSpec(s, camera, "snapshot", clip_id) for s in record.snapshots if s != poster)
    sidecar = Path(record.file).with_suffix(".json").as_posix()
    files.append(FileSpec(sidecar, camera, "sidecar", clip_id))
    return files


class UploadQueue:
    """One destination's items, on disk and in memory.

    Written by its worker thread only; ``_lock`` protects ``_items``, ``_heap`` and
    ``_sidecars`` for ``stats()`` readers. ``next()`` is O(log n): a heap of (order, seq) with
    removed items skipped lazily.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._items: dict[int, UploadItem] = {}
        self._heap: list[tuple[tuple[int, int], int]] = []
        self._sidecars: dict[str, int] = {}  # clip id -> sidecar items queued for it
        self._next_seq = 1

    def load(self) -> int:
        """Read the items left by earlier runs; a corrupt one or one of the wrong types is set
        aside (renamed ``.corrupt``, with a log line). Returns the count."""
        self.directory.mkdir(parents=True, exist_ok=True)
        items: dict[int, UploadItem] = {}
        for path in sorted(self.directory.iterdir()):
            if path.name.startswith(".") and path.name.endswith(".tmp"):
                with contextlib.suppress(OSError):
                    path.unlink()  # an item that was never completely written
                continue
            if path.suffix != ".json":
                continue
            try:
                item = UploadItem.from_bytes(path.read_bytes())
                if path.name != _item_name(item.seq) or item.seq in items:
                    raise ValueError(f"its seq {item.seq} does not match its name")
            except (OSError, ValueError, TypeError) as exc:
                logger.warning("upload: unusable queue item %s (%s); set aside", path, exc)
                with contextlib.suppress(OSError):
                    path.rename(path.with_suffix(".corrupt"))
                continue
            items[item.seq] = item
        with self._lock:
            self._items = {}
            self._heap = []
            self._sidecars = {}
            for item in items.values():
                self._put(item)
            self._next_seq = max(items, default=0) + 1
        return len(items)

    def add(self, spec: FileSpec, now: float) -> UploadItem:
        """Write an item for ``spec`` (durably); OSError leaves nothing queued."""
        with self._lock:
            seq = self._next_seq
            self._next_seq += 1
        item = UploadItem(seq, spec.file, spec.camera, spec.kind, spec.clip_id, queued_at=now)
        atomic_write_bytes(self._path(item), item.to_bytes())
        with self._lock:
            self._put(item)
        return item

    def _put(self, item: UploadItem) -> None:
        self._items[item.seq] = item
        heapq.heappush(self._heap, (item.order, item.seq))
        if item.kind == "sidecar" and item.clip_id is not None:
            self._sidecars[item.clip_id] = self._sidecars.get(item.clip_id, 0) + 1

    def update(self, item: UploadItem) -> None:
        atomic_write_bytes(self._path(item), item.to_bytes())

    def remove(self, item: UploadItem) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(item).unlink()
        fsync_dir(self.directory)
        with self._lock:
            if self._items.pop(item.seq, None) is not None and item.kind == "sidecar":
                clip_id = item.clip_id or ""
                left = self._sidecars.get(clip_id, 0) - 1
                if left > 0:
                    self._sidecars[clip_id] = left
                else:
                    self._sidecars.pop(clip_id, None)

    def next(self) -> UploadItem | None:
        with self._lock:
            while self._heap and self._heap[0][1] not in self._items:
                heapq.heappop(self._heap)
            return self._items[self._heap[0][1]] if self._heap else None

    def has_sidecar_for(self, clip_id: str) -> bool:
        with self._lock:
            return clip_id in self._sidecars

    def queued_clips(self) -> set[str]:
        """Clips whose sidecar is queued (their other files are too, or were copied)."""
        with self._lock:
            return set(self._sidecars)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def counts(self, now: float) -> tuple[int, float]:
        """(items, age in seconds of the oldest)."""
        with self._lock:
            oldest = min((i.queued_at for i in self._items.values()), default=None)
            return len(self._items), 0.0 if oldest is None else max(0.0, now - oldest)

    def _path(self, item: UploadItem) -> Path:
        return self.directory / _item_name(item.seq)


def _item_name(seq: int) -> str:
    return f"{seq:012d}.json"


RcloneRunner = Callable[[list[str], float, threading.Event], tuple[bool, str]]


def run_rclone(args: list[str], timeout: float, stop: threading.Event) -> tuple[bool, str]:
    """Run rclone (no shell) until it exits, ``timeout`` passes or ``stop`` is set.

    Returns (success, error text). Its output goes to a temporary file, not a pipe, so a
    chatty rclone can never block on a full pipe.
    """
    with tempfile.TemporaryFile() as output:
        try:
            process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=output, stderr=output)
        except OSError as exc:
            return False, f"cannot run {args[0]}: {exc}"
        deadline = time.monotonic() + timeout
        reason = ""
        while True:
            try:
                code = process.wait(0.2)
                break
            except subprocess.TimeoutExpired:
                if stop.is_set():
                    reason = "stopped: motiond is shutting down"
                elif time.monotonic() > deadline:
                    reason = f"timed out after {timeout:g}s"
                else:
                    continue
            process.terminate()
            try:
                code = process.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
            break
        output.seek(0)
        text = output.read().decode(errors="replace").strip()
    if reason:
        return False, reason
    if code != 0:
        lines = [line for line in text.splitlines() if line.strip()]
        detail = redact_text(lines[-1]) if lines else ""  # it may quote a URL with a token
        return False, f"rclone exit status {code}" + (
            f": {detail[-_ERROR_TAIL:]}" if detail else ""
        )
    return True, ""


def _file_count(record: ClipRecord) -> int:
    """``len(clip_files(record, with_poster=True))``, without building them."""
    poster = record.poster
    others = sum(1 for s in record.snapshots if s != poster)
    return (1 if poster else 0) + 1 + others + 1


class QueueFeeder:
    """What a destination still has to write into its queue, and the writing, retried.

    Files from events wait here until their queue item is written; a write that fails (a full
    or broken disk) is retried with the upload backoff, counted, shown by ``stats()`` as
    queued and failing, and alerted (``on_upload_failed``) after ``alert_after``. The start-up
    catch-up is a list of clip ids, oldest first, turned into queue items a few clips at a
    time (``REFILL_BELOW``), so a backlog of 30,000 clips takes no 120,000 files nor minutes.

    Worker thread only; ``stats`` readers see plain ints and floats.
    """

    def __init__(
        self,
        queue: UploadQueue,
        clips: ClipStore,
        config: UploadConfig,
        remote: str,
        on_failed: EventSink,
    ) -> None:
        self.queue = queue
        self.clips = clips
        self.config = config
        self.remote = remote
        self.on_failed = on_failed
        self._unwritten: deque[FileSpec] = deque()
        self._backlog: deque[tuple[str, int]] = deque()  # (clip id, its files), oldest first
        self.waiting_files = 0  # files in _unwritten and _backlog
        self.waiting_since: float | None = None  # wall clock the oldest of them arrived
        self.failures = 0
        self.failing_since: float | None = None  # wall clock of the current write failures
        self.dropped = 0
        self._streak = 0
        self._retry_at = 0.0  # monotonic
        self._alerted = False

    def catch_up(self, records: Sequence[ClipRecord], applies: Callable[[str], bool]) -> int:
        """Note the clips this destination has not confirmed and that are not queued (O(n))."""
        queued = self.queue.queued_clips()
        known = {clip_id for clip_id, _ in self._backlog}
        remote = self.remote
        added = 0
        for record in sorted(records, key=attrgetter("start_ts", "id")):
            if not applies(record.camera) or record.id in queued or record.id in known:
                continue
            if any(u.remote == remote for u in record.uploads):
                continue
            files = _file_count(record)
            self._backlog.append((record.id, files))
            self._waiting(files)
            added += 1
        return added

    def take(self, files: Sequence[FileSpec]) -> None:
        """Files from events (handed over by the worker's intake)."""
        if len(self._unwritten) + len(files) > MAX_UNWRITTEN:
            self.dropped += len(files)
            logger.warning(
                "upload to %s: %d file(s) not queued: %d already wait for the queue to be "
                "writable (queued again at the next start)",
                self.remote,
                len(files),
                len(self._unwritten),
            )
            return
        self._unwritten.extend(files)
        self._waiting(len(files))

    def feed(self) -> float | None:
        """Write what waits into the queue (as far as the backlog is wanted now); the seconds
        until a failed write is retried, or None when nothing is held back."""
        wait = self._retry_at - time.monotonic()
        if self._unwritten and wait > 0:
            return wait
        self._refill()
        now = time.time()
        while self._unwritten:
            spec = self._unwritten[0]
            try:
                self.queue.add(spec, now)
            except OSError as exc:
                self._write_failed(spec, exc)
                return max(0.0, self._retry_at - time.monotonic())
            self._unwritten.popleft()
            self._waiting(-1)
        if self._streak:
            logger.info(
                "upload to %s: the queue is writable again after %d failed attempt(s)",
                self.remote,
                self._streak,
            )
            self._streak, self._alerted, self.failing_since = 0, False, None
        return None

    def _refill(self) -> None:
        """Turn backlog clips into queue items while the queue is short of work."""
        while self._backlog and len(self.queue) + len(self._unwritten) < REFILL_BELOW:
            clip_id, files = self._backlog.popleft()
            self._waiting(-files)
            record = self.clips.index.get(clip_id)
            if record is None or self.remote in record.uploaded_remotes():
                continue  # deleted or copied since
            specs = clip_files(record, with_poster=True)
            self._unwritten.extend(specs)
            self._waiting(len(specs))

    def _waiting(self, change: int) -> None:
        self.waiting_files = max(0, self.waiting_files + change)
        if not self.waiting_files:
            self.waiting_since = None
        elif self.waiting_since is None:
            self.waiting_since = time.time()

    def _write_failed(self, spec: FileSpec, exc: OSError) -> None:
        now = time.time()
        self.failures += 1
        self._streak += 1
        self.failing_since = self.failing_since or now
        delay = Backoff(self.config.retry_min, self.config.retry_max, jitter=0.25).delay(
            self._streak
        )
        self._retry_at = time.monotonic() + delay
        error = f"cannot write the upload queue: {exc}"
        if self._streak == 1:
            logger.warning(
                "upload to %s: %s (for %s); retrying with backoff", self.remote, error, spec.file
            )
        if not self._alerted and now - self.failing_since >= self.config.alert_after:
            self._alerted = True
            logger.error(
                "upload to %s: the queue has not been writable for %.0f s (%d attempts), "
                "%d file(s) waiting: %s",
                self.remote,
                now - self.failing_since,
                self._streak,
                self.waiting_files,
                error,
            )
            self.on_failed(
                UploadFailed(
                    camera=spec.camera,
                    clip_id=spec.clip_id,
                    file=spec.file,
                    kind=spec.kind,
                    remote=self.remote,
                    error=error,
                    attempts=self._streak,
                    failing_since=self.failing_since,
                )
            )


class DestinationWorker:
    """Copies one destination's queue, in order, on its own thread."""

    def __init__(
        self,
        destination: UploadDestination,
        config: UploadConfig,
        storage: Storage,
        clips: ClipStore,
        *,
        on_failed: EventSink,
        runner: RcloneRunner = run_rclone,
    ) -> None:
        self.destination = destination
        self.config = config
        self.storage = storage
        self.clips = clips
        self.on_failed = on_failed
        self.runner = runner
        self.queue = UploadQueue(
            storage.root / UPLOADS_DIR / destination_folder(destination.remote)
        )
        self.feeder = QueueFeeder(self.queue, clips, config, destination.remote, on_failed)
        self.uploaded = 0
        self.failures = 0
        self.intake_dropped = 0
        self.failing_since: float | None = None  # wall clock; worker thread writes
        # Protects _intake and intake_dropped: submit() (any thread) appends, the worker takes.
        self._lock = threading.Lock()
        self._intake: deque[FileSpec] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._streak = 0  # consecutive failures (worker thread)
        self._retry_at = 0.0  # monotonic

    @property
    def remote(self) -> str:
        return self.destination.remote

    def submit(self, files: Sequence[FileSpec]) -> None:
        """Queue files (any thread; never blocks). Beyond MAX_INTAKE they are dropped, logged;
        a dropped clip is queued again at the next start."""
        with self._lock:
            if len(self._intake) + len(files) > MAX_INTAKE:
                self.intake_dropped += len(files)
                dropped = True
            else:
                self._intake.extend(files)
                dropped = False
        if dropped:
            logger.warning(
                "upload to %s: intake full, %d file(s) not queued", self.remote, len(files)
            )
        self._wake.set()

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"upload worker for {self.remote} already started")
        self._thread = named_thread(self._run, "upload")
        self._thread.start()

    def request_stop(self) -> None:
        """Stop soon: a running rclone is terminated; its item stays queued."""
        self._stop.set()
        self._wake.set()

    def stop(self, timeout: float) -> None:
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.warning("upload to %s: worker did not stop within %gs", self.remote, timeout)

    def stats(self) -> DestinationStats:
        now = time.time()
        queued, age = self.queue.counts(now)
        feeder = self.feeder
        waiting_since = feeder.waiting_since
        if waiting_since is not None:
            age = max(age, now - waiting_since)
        failing = [t for t in (self.failing_since, feeder.failing_since) if t is not None]
        return DestinationStats(
            self.remote,
            queued + feeder.waiting_files,
            age,
            self.uploaded,
            self.failures + feeder.failures,
            min(failing, default=None),
        )

    # -- the worker thread ------------------------------------------------------------------------

    def _run(self) -> None:
        count = self._load_queue()
        if count is None:
            return  # stopped before the queue could be read
        try:
            queued = self.feeder.catch_up(self.clips.index.list(), self.destination.applies_to)
        except Exception:  # a bug: log it, and upload what events bring
            logger.exception("upload to %s: the catch-up failed; going on", self.remote)
            queued = 0
        logger.info(
            "upload to %s: %d file(s) queued from earlier runs, %d clip(s) added",
            self.remote,
            count,
            queued,
        )
        while not self._stop.is_set():
            try:
                self._step()
            except Exception:  # a bug or an odd filesystem error: log, pause, go on
                logger.exception("upload to %s: unexpected error; going on", self.remote)
                self._stop.wait(self.config.retry_max)
        self._take_intake()  # what arrived last (the clip finished at shutdown) is kept
        self.feeder.feed()

    def _load_queue(self) -> int | None:
        """Read the queue folder, retried with backoff while it cannot be (None: stopped)."""
        attempt = 0
        while not self._stop.is_set():
            try:
                return self.queue.load()
            except OSError as exc:
                attempt += 1
                if attempt == 1:
                    logger.error(
                        "upload to %s: cannot read the queue (%s); retrying", self.remote, exc
                    )
                self.failures += 1
                self.failing_since = self.failing_since or time.time()
                delay = Backoff(self.config.retry_min, self.config.retry_max).delay(attempt)
                self._stop.wait(delay)
        return None

    def _step(self) -> None:
        """Queue what arrived; copy the next file if its time has come, else wait."""
        self._take_intake()
        write_wait = self.feeder.feed()
        item = self.queue.next()
        wait = None if item is None else self._retry_at - time.monotonic()
        if item is not None and wait is not None and wait <= 0:
            self._copy(item)
            return
        if write_wait is not None:
            wait = write_wait if wait is None else min(wait, write_wait)
        self._wake.wait(wait)
        self._wake.clear()

    def _take_intake(self) -> None:
        with self._lock:
            files = list(self._intake)
            self._intake.clear()
        if files:
            self.feeder.take(files)

    def _copy(self, item: UploadItem) -> None:
        local = self.storage.root / item.file
        if not local.is_file():
            logger.info(
                "upload to %s: %s is no longer on the device; skipped", self.remote, item.file
            )
            self.queue.remove(item)
            return
        target = remote_path(self.remote, item.file)
        ok, error = self.runner(self._command(local, target), self.config.timeout, self._stop)
        if self._stop.is_set() and not ok:
            return  # interrupted by shutdown: not a failure; the item stays queued
        if ok:
            self._succeeded(item, target)
        else:
            self._failed(item, error)

    def _command(self, local: Path, target: str) -> list[str]:
        command = [
            self.config.rclone,
            "copyto",
            "--retries=1",
            "--low-level-retries=2",
            "--ask-password=false",
            "--log-level=ERROR",
        ]
        if self.config.rclone_config is not None:
            command.append(f"--config={self.config.rclone_config}")
        if self.destination.bwlimit is not None:
            command.append(f"--bwlimit={self.destination.bwlimit}")
        return [*command, "--", str(local.absolute()), target]

    def _succeeded(self, item: UploadItem, target: str) -> None:
        if item.kind == "sidecar" and item.clip_id is not None:
            remote = self.remote
            self.clips.mark_uploaded(
                item.clip_id, remote, lambda record: remote_path(remote, record.file)
            )
            logger.info("upload to %s: clip %s copied", self.remote, item.clip_id)
        else:
            logger.debug("upload to %s: %s copied", self.remote, item.file)
        self.queue.remove(item)
        self.uploaded += 1
        if self._streak:
            logger.info(
                "upload to %s: working again after %d failed attempt(s)", self.remote, self._streak
            )
        self._streak = 0
        self._retry_at = 0.0
        self.failing_since = None

    def _failed(self, item: UploadItem, error: str) -> None:
        now = time.time()
        self.failures += 1
        self._streak += 1
        self.failing_since = self.failing_since or now
        first = item.attempts == 0
        item.attempts += 1
        item.failing_since = item.failing_since or now
        item.last_error = error
        delay = Backoff(self.config.retry_min, self.config.retry_max, jitter=0.25).delay(
            self._streak
        )
        self._retry_at = time.monotonic() + delay
        if first:
            logger.warning(
                "upload to %s: %s failed (%s); retrying with backoff", self.remote, item.file, error
            )
        else:
            logger.debug("upload to %s: %s failed again (%s)", self.remote, item.file, error)
        if not item.alerted and now - item.failing_since >= self.config.alert_after:
            item.alerted = True
            logger.error(
                "upload to %s: %s has been failing for %.0f s (%d attempts): %s",
                self.remote,
                item.file,
                now - item.failing_since,
                item.attempts,
                error,
            )
            self.on_failed(
                UploadFailed(
                    camera=item.camera,
                    clip_id=item.clip_id,
                    file=item.file,
                    kind=item.kind,
                    remote=self.remote,
                    error=error,
                    attempts=item.attempts,
                    failing_since=item.failing_since,
                )
            )
        try:
            self.queue.update(item)
        except OSError as exc:
            logger.error("upload to %s: cannot update the queue: %s", self.remote, exc)


class Uploader:
    """Every destination's worker, fed by the daemon's events."""

    def __init__(
        self,
        config: UploadConfig,
        storage: Storage,
        clips: ClipStore,
        *,
        on_failed: EventSink,
        runner: RcloneRunner = run_rclone,
    ) -> None:
        self.config = config
        self.storage = storage
        self.workers = [
            DestinationWorker(d, config, storage, clips, on_failed=on_failed, runner=runner)
            for d in config.destinations
        ]

    def start(self) -> None:
        self._note_abandoned_queues()
        for worker in self.workers:
            worker.start()

    def stop(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for worker in self.workers:
            worker.request_stop()
        for worker in self.workers:
            worker.stop(max(0.1, deadline - time.monotonic()))

    def subscribe(self, bus: EventBus) -> None:
        """The poster at a clip's start, the rest at its end; continuous segments once
        finished, to the destinations that ask for them (``continuous: true``)."""
        bus.subscribe(ClipStarted, self._clip_started)
        bus.subscribe(ClipEnded, self._clip_ended)
        bus.subscribe(SegmentEnded, self._segment_ended)

    def _clip_started(self, event: ClipStarted) -> None:
        """A clip split off a longer one has no start snapshot (its poster is its peak one):
        nothing goes at its start, and its poster goes with the rest at its end."""
        if not (self.storage.root / event.poster).is_file():  # written before the event
            return
        self._submit(event.camera, [FileSpec(event.poster, event.camera, "poster", event.clip_id)])

    def _clip_ended(self, event: ClipEnded) -> None:
        record = event.record
        start, _peak = self.storage.warn_snapshots_of(self.storage.clip_path(record.id))
        sent_at_start = record.poster == self.storage.relative(start)
        self._submit(event.camera, clip_files(record, with_poster=not sent_at_start))

    def _segment_ended(self, event: SegmentEnded) -> None:
        relative = self.storage.relative(event.segment.path)
        for worker in self.workers:
            if worker.destination.continuous and worker.destination.applies_to(event.camera):
                worker.submit([FileSpec(relative, event.camera, "segment", None)])

    def _submit(self, camera: str, files: list[FileSpec]) -> None:
        for worker in self.workers:
            if worker.destination.applies_to(camera):
                worker.submit(files)

    def pending_remotes(self, record: ClipRecord) -> list[str]:
        """Destinations a clip still has to reach before retention may delete it (pure)."""
        if not self.config.keep_until_uploaded:
            return []
        done = record.uploaded_remotes()
        return [
            d.remote
            for d in self.config.destinations
            if d.applies_to(record.camera) and d.remote not in done
        ]

    def stats(self) -> list[DestinationStats]:
        return [worker.stats() for worker in self.workers]

    def _note_abandoned_queues(self) -> None:
        folder = self.storage.root / UPLOADS_DIR
        wanted = {w.queue.directory.name for w in self.workers}
        if not folder.is_dir():
            return
        for directory in folder.iterdir():
            if directory.is_dir() and directory.name not in wanted:
                count = sum(1 for _ in directory.glob("*.json"))
                if count:
                    logger.warning(
                        "upload: %d file(s) queued in %s for a destination no longer in the "
                        "config; they are left there (delete the folder to drop them)",
                        count,
                        directory,
                    )


__all__ = [
    "DestinationStats",
    "DestinationWorker",
    "FileSpec",
    "QueueFeeder",
    "UploadItem",
    "UploadQueue",
    "Uploader",
    "clip_files",
    "destination_folder",
    "remote_path",
    "run_rclone",
]
