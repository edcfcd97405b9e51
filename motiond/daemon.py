"""Wiring: start in order, run, stop in reverse.

``startup()`` -> ``main_loop()`` -> ``shutdown()``, as uvicorn does. Signals only set flags:
the first SIGINT/SIGTERM asks for a graceful stop (clips in progress are finished as playable
files), a second one sets the force flag, which the shutdown's waits poll in short slices: they
give up, and the process exits with 1. SIGHUP re-reads the config on the reload thread. The
main thread runs the Tornado IOLoop (the web side, the watchdog); cameras and recorders have
their own threads (see capture/camera.py, record/clipflow.py and record/recorder.py).

Thread crossings here: ``cameras`` is a dict replaced whole (never changed in place) by the
reload thread, under ``_cameras_lock``, and read by the IOLoop; ``config`` is a reference swap.
Running cameras are reached from outside only through the camera door (cameras.py), which the
web side gets inside its own door (web_backend.py) and MQTT as it is. At shutdown the stopping
(thread joins) runs on a helper thread while the main thread waits for it in slices.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import cv2
import tornado.httpserver

from motiond import __version__
from motiond.cameras import LiveCameras
from motiond.capture.camera import CameraWorker
from motiond.capture.sources import SourceFactory, open_source
from motiond.config.camera import CameraConfig
from motiond.config.load import ConfigError, load_config, tls_context
from motiond.config.top import Config
from motiond.events import EventBus, MediaLinks, SegmentEnded, SegmentStarted
from motiond.logs import set_level
from motiond.notify.hooks import HookRunner
from motiond.notify.mqtt_bridge import MqttBridge
from motiond.notify.upload import Uploader
from motiond.record.snapshots import SnapshotRate
from motiond.store.clips import ClipIndex, ClipStore
from motiond.store.clock import warn_if_wrong
from motiond.store.history import CameraHistory
from motiond.store.layout import Storage
from motiond.store.loading import IndexKeeper, load_indexes
from motiond.store.recovery import recover_partials
from motiond.store.retention import Retention
from motiond.store.segments import SegmentIndex
from motiond.store.snapshot_index import SnapshotIndex
from motiond.systemd import Notifier
from motiond.threads import named_executor, named_thread
from motiond.web import server as web_server
from motiond.web.app import MAX_BODY_BYTES, MotiondApp, make_app
from motiond.web.live import LiveHub
from motiond.web_backend import DaemonDoor

logger = logging.getLogger(__name__)

STOP_TIMEOUT = 20.0  # seconds for cameras to finish their clips; well within TimeoutStopSec
STATUS_INTERVAL = 5.0
# A loop silent for longer than its longest bounded blocking call plus this is hung.
HANG_MARGIN = 15.0
FORCE_POLL = 0.1  # seconds between looks at the force flag while shutdown waits
INDEX_WAIT = 0.5  # seconds start-up waits for the clip index before serving without it


class ForcedShutdown(Exception):
    """A second stop signal arrived: stop waiting for threads."""


class Daemon:
    """The whole process: storage, clip index, hooks, cameras, the web server, systemd."""

    def __init__(
        self,
        config: Config,
        config_path: Path | None = None,
        *,
        source_factory: SourceFactory = open_source,
    ) -> None:
        self.config = config
        self.config_path = config_path
        self._source_factory = source_factory  # makes each camera's source (tests: fakes)
        self.storage = Storage(config.storage.dir)
        self.index = ClipIndex(self.storage)
        self.snapshot_index = SnapshotIndex(self.storage)
        self.clips = ClipStore(self.storage, self.index, self.snapshot_index)
        self.segments = SegmentIndex(self.storage)  # continuous footage
        # Events: the indexes first (a clip is listed before anyone hears of it), then the
        # camera history, hooks, uploads and MQTT, each of which only enqueues (events.py).
        self.events = EventBus()
        IndexKeeper(self.storage, self.index, self.snapshot_index).subscribe(self.events)
        self.events.subscribe(SegmentEnded, lambda event: self.segments.add(event.segment))
        self.events.subscribe(
            SegmentStarted, lambda e: self.segments.started(e.camera, e.start, e.path)
        )
        self.retention = Retention(config, self.clips, self.events.publish)
        self.retention.segments = self.segments
        self.history = CameraHistory(self.storage.root, config.storage.max_age)
        self.history.subscribe(self.events)
        links = MediaLinks(config.web.base_url, self.storage.root)
        self.hooks = HookRunner(config.hooks, {c.name: c.hooks for c in config.cameras}, links)
        self.hooks.subscribe(self.events)
        self.cameras: Mapping[str, CameraWorker] = {}
        self._cameras_lock = threading.Lock()  # replacing ``cameras``; ``_stopping``
        self._stopping = False
        self.web_app: MotiondApp | None = None
        # SIGHUP reloads run here, one at a time, in order: stopping a changed camera takes up
        # to STOP_TIMEOUT, which the IOLoop (watchdog, web side) must not wait for.
        self._reloader = named_executor("reload", max_workers=1)
        self.notifier = Notifier.from_env()
        self.started_at = time.monotonic()
        self._started_wall = time.time()  # files changed from then on are this run's
        self.web_port: int | None = None
        self._http_server: tornado.httpserver.HTTPServer | None = None
        self._connections: web_server.ConnectionGuard | None = None
        self._stop_requested: asyncio.Event | None = None
        self._signals_received = 0
        self._forced = threading.Event()  # a second stop signal: shutdown stops waiting
        self._loop: asyncio.AbstractEventLoop | None = None
        self.uploads: Uploader | None = None
        if config.upload is not None:
            self.uploads = Uploader(
                config.upload,
                self.storage,
                self.clips,
                on_failed=self.events.publish,
            )
            self.retention.pending_uploads = self.uploads.pending_remotes
            self.uploads.subscribe(self.events)
        # The one door into running cameras: MQTT's, and the web side's through its door.
        self.live = LiveCameras(
            lambda: self.cameras,
            self.storage,
            snapshots=self.snapshot_index,
            rate=SnapshotRate(config.storage.snapshots_per_minute),
        )
        self.mqtt: MqttBridge | None = None
        if config.mqtt is not None:
            self.mqtt = MqttBridge(
                config.mqtt,
                cameras=self.live,
                camera_names=lambda: [c.name for c in self.config.cameras],
                links=links,
                version=__version__,
            )
            self.mqtt.subscribe(self.events)
        self.door = DaemonDoor(
            self.live,
            self.storage,
            self.index,
            self.clips,
            self.retention,
            self.hooks,
            history=self.history,
            mqtt=self.mqtt,
            uploads=self.uploads,
            segments=self.segments,
        )

    # -- lifecycle ------------------------------------------------------------------------------

    async def serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        self.startup()
        try:
            await self.main_loop()
        finally:
            self.shutdown()

    def startup(self) -> None:
        # Each camera has its own threads; OpenCV's pool on top only spins on these small
        # pictures (measured: a quarter more CPU per frame with it).
        cv2.setNumThreads(1)
        # Only what must precede recording runs here (partial clips of a crash are finished
        # before a camera writes new ones); reading every sidecar and snapshot, retention and
        # the upload catch-up follow on the "index" thread (``_load_in_background``), so the
        # web side and the cameras are up in seconds whatever the number of clips.
        self._started_wall = time.time()
        self.storage.ensure()
        recovery = recover_partials(self.storage)
        if recovery:
            logger.info("crash recovery: %s", recovery.summary())
        warn_if_wrong(self._started_wall)
        segments = self.segments.rebuild()  # file names only: quick
        logger.info(
            "motiond %s starting: %d camera(s), storage %s (%d segments; clip index loading)",
            *(__version__, len(self.config.cameras), self.storage.root.absolute(), segments),
        )
        self.hooks.start()
        self.history.start()
        self._start_web()
        self.history.starting(c.name for c in self.config.cameras)
        for camera_config in self.config.cameras:
            self._start_camera(camera_config)
        if self.mqtt is not None:
            self.mqtt.start()
        self._install_signal_handlers()
        # Started last: it competes for the interpreter with everything above. A small storage
        # is indexed before the first request is served; a large one goes on loading while the
        # web side answers.
        named_thread(self._load_in_background, "index").start()
        self.index.loaded.wait(INDEX_WAIT)
        self.notifier.ready(self.status_line())

    def load_stores(self) -> None:
        """Fill the snapshot and clip indexes (blocking; tests may call it directly)."""
        load_indexes(self.storage, self.index, self.snapshot_index, before=self._started_wall)

    def _load_in_background(self) -> None:
        """The index thread: load, then start what needs every clip (retention, uploads)."""
        try:
            self.load_stores()
        except Exception:  # a bug here must not stop retention and uploads for the run
            logger.exception("loading the clip index failed")
        self.retention.run("startup")
        with self._cameras_lock:
            if self._stopping:
                return
            self.retention.start()
            if self.uploads is not None:
                self.uploads.start()

    async def main_loop(self) -> None:
        assert self._stop_requested is not None
        watchdog_interval = self.notifier.watchdog_interval
        tick = min(STATUS_INTERVAL, watchdog_interval or STATUS_INTERVAL)
        next_status = 0.0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_requested.wait(), tick)
            if self._stop_requested.is_set():
                return
            if self.cameras and all(c.finished for c in self.cameras.values()):
                logger.info("every source has ended; stopping")
                return
            now = time.monotonic()
            if watchdog_interval is not None:
                hung = self.hung_loops()
                if hung:
                    logger.error("not pinging the watchdog: %s not responding", ", ".join(hung))
                else:
                    self.notifier.watchdog()
            if now >= next_status:
                next_status = now + STATUS_INTERVAL
                self.notifier.status(self.status_line())

    def shutdown(self) -> None:
        self.notifier.stopping()
        logger.info("stopping: finishing clips in progress")
        # From here a second SIGINT/SIGTERM sets the force flag (the IOLoop, blocked here,
        # would not run its own handlers).
        if self._loop is not None:
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._loop.remove_signal_handler(signum)
        signal.signal(signal.SIGINT, self._on_second_signal)
        signal.signal(signal.SIGTERM, self._on_second_signal)
        try:
            self._stop_parts(deadline=time.monotonic() + STOP_TIMEOUT)
        except ForcedShutdown:
            logger.warning("second signal: stopping without waiting for clips and hooks")
            raise
        finally:
            self.notifier.close()
        logger.info("stopped")

    def _stop_parts(self, deadline: float) -> None:
        """Stop in reverse order of startup: cameras (finishing clips), web server, hooks.
        ForcedShutdown when a second signal ends a wait."""
        with self._cameras_lock:
            self._stopping = True  # a reload running now starts no more cameras
            cameras = list(self.cameras.values())
        self._reloader.shutdown(wait=False, cancel_futures=True)
        for camera in cameras:
            camera.request_stop()
        _wait_unless_forced(self._forced, "cameras", lambda: _stop_cameras(cameras, deadline))
        # Tornado's objects, on the IOLoop's thread (this one).
        if self.web_app is not None:
            self.web_app.close()
        if self._connections is not None:
            self._connections.stop()
        _wait_unless_forced(self._forced, "services", lambda: self._stop_services(deadline))

    def _stop_services(self, deadline: float) -> None:
        self.retention.stop(timeout=max(0.1, deadline - time.monotonic()))
        if self.mqtt is not None:
            self.mqtt.stop(timeout=max(0.5, deadline - time.monotonic()))
        if self.uploads is not None:
            self.uploads.stop(timeout=max(0.5, deadline - time.monotonic()))
        self.hooks.stop(timeout=max(0.5, deadline - time.monotonic()))
        self.history.stop(timeout=max(0.5, deadline - time.monotonic()))

    # -- signals ----------------------------------------------------------------------------------

    def _install_signal_handlers(self) -> None:
        loop = self._loop
        assert loop is not None
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.request_stop, signum)
        loop.add_signal_handler(signal.SIGHUP, self.reload_in_background)

    def request_stop(self, signum: int = signal.SIGTERM) -> None:
        self._signals_received += 1
        logger.info("received %s", signal.Signals(signum).name)
        if self._stop_requested is not None:
            self._stop_requested.set()

    def _on_second_signal(self, signum: int, frame: object) -> None:
        """A stop signal during shutdown: only sets the force flag (the waits poll it)."""
        self._forced.set()

    # -- reload -----------------------------------------------------------------------------------

    def reload_in_background(self) -> None:
        """SIGHUP: reload on the reload thread (reloads queue up and run in order)."""
        with contextlib.suppress(RuntimeError):  # shutting down: no more reloads
            self._reloader.submit(self._reload_logged)

    def _reload_logged(self) -> None:
        try:
            self.reload()
        except Exception:
            logger.exception("reload failed")

    def reload(self) -> bool:
        """Re-read the config; keep the old one on error. Unchanged cameras are not touched."""
        self.notifier.reloading(time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000)
        try:
            return self._apply_reload()
        finally:
            # systemd keeps the unit "reloading" until READY=1, whatever happened.
            self.notifier.ready(self.status_line())

    def _apply_reload(self) -> bool:
        try:
            new = load_config(self.config_path)
        except ConfigError as exc:
            logger.error("reload failed, keeping the running config: %s", exc)
            return False
        old = self.config
        for key, before, after in (
            ("storage", old.storage, new.storage),
            ("web", old.web, new.web),
            ("mqtt", old.mqtt, new.mqtt),
            ("upload", old.upload, new.upload),
        ):
            if before != after:
                logger.warning("reload: %s changed; it takes effect at the next restart", key)
        new = dataclasses.replace(
            new, storage=old.storage, web=old.web, mqtt=old.mqtt, upload=old.upload
        )
        set_level(new.log_level)
        self.hooks.update(new.hooks, {c.name: c.hooks for c in new.cameras})
        self._reload_web_secret()
        wanted = {c.name: c for c in new.cameras}
        with self._cameras_lock:
            stopping = {
                name: worker
                for name, worker in self.cameras.items()
                if not _same_pipeline(worker.config, wanted.get(name))
            }
            # The watchdog and the web side stop seeing them now, not after they stopped.
            self.cameras = {n: w for n, w in self.cameras.items() if n not in stopping}
        for name, worker in stopping.items():
            logger.info("reload: camera %s %s", name, "changed" if name in wanted else "removed")
            worker.stop(STOP_TIMEOUT)
        for name, camera_config in wanted.items():
            if name not in self.cameras:
                self._start_camera(camera_config)
        self.config = new
        self.retention.config = new
        logger.info("reloaded %s", new.source_path)
        return True

    def _reload_web_secret(self) -> None:
        """A rotated cookie secret (``motiond rotate-secret``) takes effect on reload."""
        app, loop = self.web_app, self._loop
        if app is None:
            return
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:  # the reload thread
            on_loop = False
        if on_loop or loop is None:
            app.reload_secret()
        else:
            loop.call_soon_threadsafe(app.reload_secret)

    # -- parts ------------------------------------------------------------------------------------

    def _start_camera(self, camera_config: CameraConfig) -> None:
        """Start a camera (from the main thread at start, or the reload thread)."""
        name = camera_config.name
        worker = CameraWorker(
            camera_config,
            self.storage,
            self.events.publish,
            make_room=self.retention.make_room,
            source_factory=self._source_factory,
        )
        self.live.attach(worker)
        with self._cameras_lock:
            if self._stopping:
                return
            self.cameras = {**self.cameras, name: worker}
            worker.start()

    def build_web_app(self, **options: float) -> MotiondApp:
        """The web application (on the current IOLoop); binds nothing."""
        self.web_app = make_app(self.door, self.config.web, self.storage.root, **options)
        return self.web_app

    def _start_web(self) -> None:
        web = self.config.web
        app = self.build_web_app()
        ssl_context = None
        if web.tls_cert is not None and web.tls_key is not None:
            ssl_context = tls_context(web.tls_cert, web.tls_key, self.config.source_path)
        try:
            self._http_server, self._connections, self.web_port = web_server.listen(
                app, web, ssl_context, MAX_BODY_BYTES
            )
        except PermissionError as exc:  # a port below 1024 without the capability
            raise ConfigError(self.config.source_path, "web.port", str(exc)) from None
        host = f"[{web.listen}]" if ":" in web.listen else web.listen
        scheme = "https" if ssl_context else "http"
        auth = "auth on" if web.auth.enabled else "no auth (loopback only)"
        logger.info("web: listening on %s://%s:%d/ (%s)", scheme, host, self.web_port, auth)

    @property
    def hub(self) -> LiveHub:
        """The live view hub (exists once the web server started)."""
        assert self.web_app is not None, "web server not started"
        return self.web_app.hub

    # -- state ------------------------------------------------------------------------------------

    def hung_loops(self) -> list[str]:
        """Names of capture/recorder loops whose heartbeat is older than their bound allows."""
        now = time.monotonic()
        hung = []
        for name, camera in self.cameras.items():
            if camera.finished:
                continue
            capture = camera.config.capture
            limit = max(capture.open_timeout, capture.read_timeout) + HANG_MARGIN
            if now - camera.heartbeat > limit:
                hung.append(f"camera {name} capture")
            recorder = camera.recorder
            if recorder is not None and now - recorder.heartbeat > HANG_MARGIN + 30:
                hung.append(f"camera {name} recorder")
            continuous = camera.clips.continuous
            if continuous is not None and now - continuous.heartbeat > HANG_MARGIN + 30:
                hung.append(f"camera {name} continuous recorder")
        return hung

    def clips_today(self) -> int:
        midnight = dt.datetime.now().astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
        return len(self.index.list(since=midnight.timestamp()))

    def status_line(self) -> str:
        statuses = [c.status() for c in self.cameras.values()]
        online = sum(s.online for s in statuses)
        recording = [s.name for s in statuses if s.recording]
        text = f"{online}/{len(statuses)} cameras online"
        text += f", recording: {', '.join(recording)}" if recording else ", not recording"
        return f"{text}, {self.clips_today()} clips today"


def _wait_unless_forced(forced: threading.Event, what: str, stop: Callable[[], None]) -> None:
    """Run ``stop`` (joins, each bounded) on a helper thread and wait for it, looking at
    ``forced`` every FORCE_POLL: a second signal ends the wait (ForcedShutdown) and leaves the
    helper, a daemon thread, to the process's exit."""
    done = threading.Event()
    failed: list[Exception] = []

    def run() -> None:
        try:
            stop()
        except Exception as exc:  # noqa: BLE001 (raised again on the waiting thread)
            failed.append(exc)
        finally:
            done.set()

    named_thread(run, f"stop-{what}").start()
    while not done.wait(FORCE_POLL):
        if forced.is_set():
            raise ForcedShutdown
    if failed:
        raise failed[0]


def _stop_cameras(cameras: list[CameraWorker], deadline: float) -> None:
    """Wait for each camera to finish its clip and stop (they were all asked already)."""
    for camera in cameras:
        if not camera.stop(max(0.1, deadline - time.monotonic())):
            logger.error("camera %s did not stop in time", camera.config.name)


def _same_pipeline(running: CameraConfig, wanted: CameraConfig | None) -> bool:
    """True when ``wanted`` differs from ``running`` at most in hooks (HookRunner applies those)."""
    return wanted is not None and dataclasses.replace(wanted, hooks=running.hooks) == running


def run_daemon(
    config: Config, config_path: Path | None, *, source_factory: SourceFactory = open_source
) -> int:
    """Run until stopped. Returns the exit code (0 after a graceful stop, 1 after a forced
    one). ``source_factory`` makes the cameras' sources (tests hand their own)."""
    daemon = Daemon(config, config_path, source_factory=source_factory)
    try:
        asyncio.run(daemon.serve())
    except ForcedShutdown:
        return 1
    return 0
