"""Event hooks: run a command and/or POST JSON to a URL when something happens to a camera.

The runner subscribes to the hooked event types of ``motiond.events`` (``clip_start``,
``clip_end``, ``camera_offline``, ``camera_online``, ``storage_error``, ``upload_failed`` and
``camera_tampered``: the config keys in ``HOOK_EVENTS`` without their ``on_`` prefix). For each
event the global hook and the camera's own hook both run, if configured.

Threads: ``on_event()`` is the only entry, called by the event bus on the publishing thread
(any); it only enqueues and never blocks (a full queue drops the event and counts it). A small
pool of worker threads owned by the runner does the deliveries, each bounded by its hook's
timeout.

Every delivery gets the same JSON document::

    {"event": "clip_end", "camera": "door", "time": "2024-05-01T12:00:00.123+02:00", ...payload}

A command gets it on stdin and in ``$MOTIOND_JSON`` (with ``$MOTIOND_EVENT`` and
``$MOTIOND_CAMERA``), and its arguments may name the document's values: ``{camera}``,
``{clip_path}``. A URL gets it as the body of a POST.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import string
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from motiond import __version__
from motiond.config.hooks import HookConfig, HooksConfig
from motiond.events import HOOKED_EVENT_TYPES, Event, EventBus, MediaLinks
from motiond.redact import redact_text, redact_url
from motiond.threads import named_thread

logger = logging.getLogger(__name__)

USER_AGENT = f"motiond/{__version__}"
DEFAULT_WORKERS = 2
_OUTPUT_TAIL = 300  # characters of a failed command's output worth a log line
# What a hook command inherits of the daemon's environment: enough to run programs, no more (the
# daemon's environment may hold credentials, and systemd's sockets are not a hook's business).
_INHERITED = frozenset({"PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR"})
_DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_FORMATTER = string.Formatter()
_CONVERSIONS: dict[str | None, Callable[[object], object]] = {
    None: lambda value: value,
    "s": str,
    "r": repr,
    "a": ascii,
}


@dataclass(eq=False)
class _Job:
    """One accepted event; it stays pending until all of its deliveries have finished."""

    event: str
    camera: str | None
    document: dict[str, object]
    remaining: int

    def describe(self) -> str:
        return f"{self.event} for camera {self.camera or '-'}"


@dataclass(eq=False, frozen=True)
class _Delivery:
    """One action of one hook for one job: a command to run or a URL to POST to."""

    job: _Job
    scope: Literal["global", "camera"]
    kind: Literal["command", "url"]
    hook: HookConfig

    def describe(self) -> str:
        return f"{self.scope} {self.kind} hook for {self.job.describe()}"


class HookRunner:
    """Runs the configured hooks for events emitted by the pipeline, off the pipeline's threads.

    At most ``max_pending`` events are queued or running at once; later ones are dropped
    (``dropped``). ``completed`` counts deliveries that succeeded (exit status 0, HTTP 2xx),
    ``failures`` those that did not. A hook with both a command and a URL is two deliveries,
    which may run in parallel.
    """

    def __init__(
        self,
        global_hooks: HooksConfig,
        camera_hooks: Mapping[str, HooksConfig],
        links: MediaLinks,
        max_pending: int = 64,
        workers: int = DEFAULT_WORKERS,
    ) -> None:
        if max_pending < 1 or workers < 1:
            raise ValueError("max_pending and workers must be at least 1")
        self.max_pending = max_pending
        self.links = links
        self.failures = 0
        self.dropped = 0
        self.completed = 0
        # Protects the hooks config, the queue, the running set, the pending count, the counters
        # and the lifecycle flags; taken briefly by on_event(), update(), stop() and the workers.
        self._lock = threading.Lock()
        # Signalled (with _lock) when work is queued or stopping begins; workers wait on it.
        self._wakeup = threading.Condition(self._lock)
        self._global_hooks = global_hooks
        self._camera_hooks = dict(camera_hooks)
        self._queue: deque[_Delivery] = deque()
        self._running: set[_Delivery] = set()
        self._pending = 0
        self._worker_count = workers
        self._threads: list[threading.Thread] = []
        self._started = False
        self._stopping = False

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker threads. Events emitted earlier are delivered now."""
        with self._lock:
            if self._started:
                raise RuntimeError("HookRunner already started")
            self._started = True
        for index in range(self._worker_count):
            thread = named_thread(self._work, f"hooks-{index + 1}")
            self._threads.append(thread)
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Refuse new events, let queued and running deliveries finish for up to ``timeout``.

        Deliveries still queued then are discarded and those still running are left to finish
        on their own (each is bounded by its hook's timeout); both are logged.
        """
        with self._lock:
            if not self._started:
                raise RuntimeError("HookRunner not started")
            if self._stopping:
                raise RuntimeError("HookRunner already stopped")
            self._stopping = True
            self._wakeup.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            running = [delivery.describe() for delivery in self._running]
            queued = [delivery.describe() for delivery in self._queue]
            self._queue.clear()
        if running:
            logger.warning(
                "hooks: abandoned %d running after %gs: %s",
                len(running),
                timeout,
                "; ".join(running),
            )
        if queued:
            logger.warning(
                "hooks: discarded %d queued at shutdown: %s", len(queued), "; ".join(queued)
            )

    def update(self, global_hooks: HooksConfig, camera_hooks: Mapping[str, HooksConfig]) -> None:
        """Replace the hooks (config reload); events emitted from now on use the new ones."""
        camera_hooks = dict(camera_hooks)
        with self._lock:
            self._global_hooks = global_hooks
            self._camera_hooks = camera_hooks

    # -- the pipeline's entry -------------------------------------------------------------------

    def subscribe(self, bus: EventBus) -> None:
        """Take every event that has a hook from ``bus``."""
        for event_type in HOOKED_EVENT_TYPES:
            bus.subscribe(event_type, self.on_event)

    def on_event(self, event: Event) -> None:
        """Queue the hooks for ``event``; never blocks, never runs them. Thread-safe."""
        now = datetime.now().astimezone().isoformat(timespec="milliseconds")
        document: dict[str, object] = {
            "event": event.name,
            "camera": event.camera,
            "time": now,
            **event.payload(self.links),
        }
        job = _Job(event=event.name, camera=event.camera, document=document, remaining=0)
        with self._lock:
            deliveries = self._deliveries_for(job)
            if not deliveries:
                return
            if self._stopping:
                reason = "hooks are stopping"
            elif self._pending >= self.max_pending:
                reason = f"{self.max_pending} events already pending"
            else:
                job.remaining = len(deliveries)
                self._pending += 1
                self._queue.extend(deliveries)
                self._wakeup.notify(len(deliveries))
                return
            self.dropped += 1
        logger.warning("hooks: dropped %s: %s", job.describe(), reason)

    def _deliveries_for(self, job: _Job) -> list[_Delivery]:
        """The deliveries the current config asks for (called with _lock held)."""
        key = f"on_{job.event}"
        scoped: list[tuple[Literal["global", "camera"], HookConfig | None]] = [
            ("global", self._global_hooks.for_event(key))
        ]
        camera_hooks = self._camera_hooks.get(job.camera) if job.camera is not None else None
        if camera_hooks is not None:
            scoped.append(("camera", camera_hooks.for_event(key)))
        deliveries: list[_Delivery] = []
        for scope, hook in scoped:
            if hook is None:
                continue
            if hook.command:
                deliveries.append(_Delivery(job, scope, "command", hook))
            if hook.url is not None:
                deliveries.append(_Delivery(job, scope, "url", hook))
        return deliveries

    # -- workers --------------------------------------------------------------------------------

    def _work(self) -> None:
        """A worker thread: deliver until stopping and nothing is left in the queue."""
        while True:
            with self._lock:
                while not self._queue and not self._stopping:
                    self._wakeup.wait()
                if not self._queue:
                    return
                delivery = self._queue.popleft()
                self._running.add(delivery)
            try:
                ok = self._deliver(delivery)
            except Exception:
                logger.exception("hooks: %s crashed", delivery.describe())
                ok = False
            with self._lock:
                self._running.discard(delivery)
                if ok:
                    self.completed += 1
                else:
                    self.failures += 1
                delivery.job.remaining -= 1
                if delivery.job.remaining == 0:
                    self._pending -= 1

    def _deliver(self, delivery: _Delivery) -> bool:
        job = delivery.job
        # default=str: a Path or datetime in a payload is sent as its text.
        body = json.dumps(job.document, default=str).encode()
        if delivery.kind == "command":
            return _run_command(delivery.hook, job.event, job.camera, body)
        return _post_json(delivery.hook, job.event, job.camera, body)


# ---------------------------------------------------------------------------------------------
# One delivery each; these log their own failures and return whether the hook succeeded.


def _run_command(hook: HookConfig, event: str, camera: str | None, body: bytes) -> bool:
    """Run ``hook.command`` (no shell) with the JSON ``body`` on stdin, killed after its timeout."""
    document = json.loads(body)
    values = {
        key: value
        for key, value in document.items()
        if isinstance(value, str | int | float) and not isinstance(value, bool)
    }
    args = [format_argument(arg, values) for arg in hook.command]
    env = hook_environment(os.environ)
    env.update(MOTIOND_EVENT=event, MOTIOND_CAMERA=camera or "", MOTIOND_JSON=body.decode())
    who = camera or "-"
    try:
        result = subprocess.run(
            args, input=body, capture_output=True, timeout=hook.timeout, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        logger.warning(
            "hooks: %s command for camera %s killed after %gs: %s",
            event,
            who,
            hook.timeout,
            args[0],
        )
        return False
    except OSError as exc:
        logger.warning(
            "hooks: %s command for camera %s cannot run %s: %s", event, who, args[0], exc
        )
        return False
    if result.returncode != 0:
        output = redact_text((result.stderr or result.stdout).decode(errors="replace").strip())
        logger.warning(
            "hooks: %s command for camera %s failed with exit status %d: %s%s",
            event,
            who,
            result.returncode,
            args[0],
            f": {output[-_OUTPUT_TAIL:]}" if output else "",
        )
        return False
    logger.debug("hooks: %s command for camera %s done: %s", event, who, args[0])
    return True


def _post_json(hook: HookConfig, event: str, camera: str | None, body: bytes) -> bool:
    """POST the JSON ``body`` to ``hook.url``; 2xx is success.

    ``hook.timeout`` bounds connecting and each read, as urllib does, not the whole exchange.
    """
    assert hook.url is not None
    who = camera or "-"
    shown = redact_url(hook.url)  # the URL may hold a token: never logged as it is
    if not hook.url.startswith(("http://", "https://")):
        logger.warning("hooks: %s POST for camera %s: not an http(s) URL: %s", event, who, shown)
        return False
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        hook.url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
    )
    try:
        with urllib.request.urlopen(request, timeout=hook.timeout) as response:  # noqa: S310 (checked)
            status: int = response.status
            response.read(64 * 1024)  # let a keep-alive server finish its reply
    except urllib.error.HTTPError as exc:
        status = exc.code
        exc.close()
    except (OSError, http.client.HTTPException, ValueError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        logger.warning(
            "hooks: %s POST for camera %s to %s failed: %s",
            event,
            who,
            shown,
            redact_text(str(reason)),
        )
        return False
    if not 200 <= status < 300:
        logger.warning("hooks: %s POST for camera %s to %s got HTTP %d", event, who, shown, status)
        return False
    logger.debug("hooks: %s POST for camera %s to %s done", event, who, shown)
    return True


def hook_environment(parent: Mapping[str, str]) -> dict[str, str]:
    """The environment a hook command starts with (before the ``MOTIOND_*`` variables)."""
    env = {
        name: value
        for name, value in parent.items()
        if name in _INHERITED or name.startswith("LC_")
    }
    env.setdefault("PATH", _DEFAULT_PATH)
    return env


def format_argument(template: str, values: Mapping[str, object]) -> str:
    """Fill in ``{name}`` placeholders (with ``str.format`` syntax) from ``values``.

    Anything that is not a known plain name (``{nope}``, ``{0}``, ``{name.attr}``) is left as
    written; a template with a stray brace gets its plain ``{name}`` placeholders filled in only.
    """
    try:
        parts = list(_FORMATTER.parse(template))
    except ValueError:
        return _PLACEHOLDER.sub(
            lambda match: str(values.get(match.group(1), match.group(0))), template
        )
    text = []
    for literal, name, spec, conversion in parts:
        text.append(literal)
        if name is not None:
            text.append(_format_field(name, spec or "", conversion, values))
    return "".join(text)


def _format_field(
    name: str, spec: str, conversion: str | None, values: Mapping[str, object]
) -> str:
    as_written = (
        "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
    )
    convert = _CONVERSIONS.get(conversion)
    if name not in values or convert is None:
        return as_written
    try:
        return format(convert(values[name]), spec)
    except (ValueError, TypeError):  # a spec that does not fit the value, e.g. {camera:d}
        return as_written


__all__ = ["HookRunner", "format_argument"]
