"""The timeline page (/review) in a real browser: Debian's Chromium via playwright-core.

Before the daemon starts, its storage gets footage at known times two days ago (UTC noon B):
real clips by the real recorder (front: B, B+60, B+300 and one across the next midnight;
back: B+65), two consecutive continuous segments of back, an on-demand snapshot, and camera
history (front offline B+400..B+460, back tampered with at B+195). ``tests/browser/review.mjs``
checks at desktop and phone widths that the bars show them at their times, that a click, a
tap or touch scrubbing plays footage from within 1 s of the moment, that playback goes on
across a segment boundary, next/previous event, zoom, the same moment on both cameras, deep
links and midnight. A second test runs ``tests/browser/review_continuous.mjs`` on the demo
camera's continuous recording as the daemon writes it: played from within 1 s of a moment in a
segment, and on into the next.

Needs what tests/e2e/test_browser.py needs (Chromium, Node.js 20 with npm).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from motiond.config import RecordConfig
from motiond.store.clips import ClipIndex
from motiond.store.history import CameraHistory, HistoryEntry
from motiond.store.layout import (
    ClipRecord,
    Storage,
    finished_segment_path,
    reserve_segment,
    utc_parts,
    write_sidecar,
)
from tests.fixtures.browser import (
    ARTIFACTS,
    BROWSER_DIR,
    CHROMIUM,
    install_playwright,
    require_browser_tools,
)
from tests.fixtures.clips import record_one_clip
from tests.fixtures.daemon import (
    RunningDaemon,
    clean_env,
    free_port,
    motiond_command,
    write_config,
)

pytestmark = pytest.mark.slow

DAY = 86400.0
NODE_TIMEOUT = 180.0
BASE = (time.time() // DAY - 2) * DAY + 12 * 3600  # noon UTC, two days ago
MIDNIGHT = BASE + 12 * 3600


def place_clip(
    storage: Storage, template: ClipRecord, source: Storage, camera: str, at: float
) -> None:
    """A copy of the template clip (file, poster, sidecar) as ``camera``'s clip starting ``at``."""
    day, stem = utc_parts(at)
    clip_id = f"{camera}/{day}/{stem}.mp4"
    target = storage.clip_path(clip_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source.clip_path(template.id), target)
    poster = f"warn/{camera}/{day}/{stem}-start.jpg"
    (storage.root / poster).parent.mkdir(parents=True, exist_ok=True)
    assert template.poster is not None
    shutil.copyfile(source.root / template.poster, storage.root / poster)
    shift = at - template.start_ts
    record = ClipRecord.from_json(
        {
            **template.to_json(),
            "id": clip_id,
            "camera": camera,
            "file": f"clips/{clip_id}",
            "start_ts": at,
            "end_ts": template.end_ts + shift,
            "start": None,
            "end": None,
            "snapshots": [poster],
            "poster": poster,
        }
    )
    write_sidecar(storage.sidecar_of(target), record)


def seed(root: Path) -> list[tuple[float, float]]:
    """Footage and history at known times; returns back's segments (start, end)."""
    source, _ = record_one_clip(root / "template", RecordConfig(), count=100, wall0=BASE)
    index = ClipIndex(source)
    index.rebuild()
    (template,) = index.list()
    storage = Storage(root / "data")
    storage.ensure()
    for camera, at in [("front", BASE), ("front", BASE + 60), ("front", BASE + 300),
                       ("front", MIDNIGHT - 4), ("back", BASE + 65)]:  # fmt: skip
        place_clip(storage, template, source, camera, at)
    segments = []
    start = BASE + 100
    for _ in range(2):
        partial = reserve_segment(storage, "back", start)
        shutil.copyfile(source.clip_path(template.id), partial)
        partial.rename(finished_segment_path(partial, template.duration))
        segments.append((start, round(start + template.duration, 3)))
        start = round(start + template.duration, 3)
    snapshot = storage.reserve_snapshot("front", BASE + 30)
    assert template.poster is not None
    shutil.copyfile(source.root / template.poster, snapshot)
    history = CameraHistory(storage.root, 0)
    for entry in (
        HistoryEntry("front", BASE - 3600, "online", "demo"),
        HistoryEntry("front", BASE + 400, "offline", "lost"),
        HistoryEntry("front", BASE + 460, "online", "demo"),
        HistoryEntry("back", BASE + 200, "tampered", "covered up", "covered", BASE + 195),
    ):
        history.write(entry)
    return segments


@pytest.fixture
def node() -> str:
    node, npm = require_browser_tools()
    install_playwright(npm)
    return node


@pytest.fixture
def daemon(node: str, tmp_path: Path) -> Iterator[tuple[str, list[tuple[float, float]]]]:
    segments = seed(tmp_path)
    port = free_port()
    small = {"width": 320, "height": 240, "fps": 5}
    config_path = write_config(
        tmp_path / "motiond.yaml",
        {
            "storage": {"dir": str(tmp_path / "data"), "max_age": "30d"},
            "web": {"listen": "127.0.0.1", "port": port},
            "cameras": [
                {"name": "front", "source": "demo", "capture": small},
                {"name": "back", "source": "demo", "capture": small},
            ],
        },
    )
    log_path = tmp_path / "motiond.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            motiond_command("run", "-c", str(config_path)), stderr=log, env=clean_env()
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=2):
                    break
            except urllib.error.HTTPError:
                break  # answering (503 until both cameras deliver)
            except OSError:
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.1)
        yield url, segments
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
        print(log_path.read_text()[-3000:])


def test_timeline_in_chromium(node: str, daemon: tuple[str, list[tuple[float, float]]]) -> None:
    url, segments = daemon
    settings = {
        "url": url,
        "base": BASE,
        "midnight": MIDNIGHT,
        "segments": segments,
        "artifacts": str(ARTIFACTS),
        "chromium": str(CHROMIUM),
    }
    result = subprocess.run(
        [node, "review.mjs", json.dumps(settings)],
        cwd=BROWSER_DIR,
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT,
        env={**os.environ, "NODE_OPTIONS": ""},
        check=False,
    )
    print(result.stdout, result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all timeline checks passed" in result.stdout
    for name in ("review-desktop", "review-phone"):
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 10_000, f"{name}.png looks empty"


def test_recorded_continuous_footage_plays_from_the_timeline(node: str, tmp_path: Path) -> None:
    daemon = RunningDaemon(
        tmp_path,
        {
            "cameras": [
                {
                    "name": "demo",
                    "source": "demo",
                    "capture": {"width": 320, "height": 240, "fps": 10},
                    "record": {"continuous": True, "segment": "10s"},
                }
            ]
        },
    )
    daemon.start()
    try:
        began = time.time()

        def segments() -> list[dict[str, object]]:
            query = f"/api/timeline?camera=demo&since={began - 60}&until={time.time() + 60}"
            found: list[dict[str, object]] = daemon.json(query)["segments"]
            return found

        daemon.wait_for(lambda: len(segments()) >= 2, 60, "two finished segments")
        settings = {"url": daemon.base, "camera": "demo", "segments": segments()[:2]}
        result = subprocess.run(
            [node, "review_continuous.mjs", json.dumps(settings)],
            cwd=BROWSER_DIR,
            capture_output=True,
            text=True,
            timeout=NODE_TIMEOUT,
            env={**os.environ, "NODE_OPTIONS": ""},
            check=False,
        )
        print(result.stdout, result.stderr)
        assert result.returncode == 0, result.stdout + result.stderr + daemon.log()[-3000:]
        assert "went on into the next recorded segment" in result.stdout
    finally:
        daemon.stop()
