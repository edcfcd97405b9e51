"""The live page's detection parts in a real browser: Debian's Chromium via playwright-core.

A daemon runs two cameras from generated videos played in real time: "yard", a tree swaying
(learned within nuisance_learning: 10s) with someone walking by now and then, and "porch", an
infrared picture whose lens is covered after a few seconds. ``tests/browser/detection.mjs``
checks the tamper and night badges, the overlay of learned areas and changed regions, and the
mask editor, whose YAML it prints; here that YAML is loaded as motiond config and compared
with the corners clicked. The page never writes the config: the file is unchanged afterwards.

Needs what tests/e2e/test_browser.py needs (Chromium, Node.js 20 with npm).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from motiond.config import parse_config
from tests.fixtures.browser import (
    ARTIFACTS,
    BROWSER_DIR,
    CHROMIUM,
    install_playwright,
    require_browser_tools,
)
from tests.fixtures.daemon import clean_env, free_port, motiond_command, write_config
from tests.fixtures.scene_runs import strip_mask, strip_mask_for
from tests.fixtures.scenes import Rect, SceneScript, SwayingBranches, Walker, write_scene_video

pytestmark = pytest.mark.slow

FPS = 10.0
WIDTH, HEIGHT = 320, 240
CORNERS = [(0.1, 0.1), (0.5, 0.1), (0.5, 0.4), (0.1, 0.4)]  # as clicked by detection.mjs
NODE_TIMEOUT = 150.0


@pytest.fixture
def node() -> str:
    node, npm = require_browser_tools()
    install_playwright(npm)
    return node


@pytest.fixture
def daemon(node: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    walkers = [Walker(t, t + 4.0, (10, 225), (310, 225)) for t in (12.0, 26.0)]
    yard = write_scene_video(
        tmp_path / "yard.avi",
        SceneScript(branches=SwayingBranches(Rect(190, 30, 110, 120)), walkers=walkers),
        seconds=40,
        fps=FPS,
    )
    porch = write_scene_video(
        tmp_path / "porch.avi",
        SceneScript(night=[(0.0, 60.0)], covered=(5.0, 60.0)),
        seconds=40,
        fps=FPS,
    )
    port = free_port()
    config_path = write_config(
        tmp_path / "motiond.yaml",
        {
            "storage": {"dir": str(tmp_path / "data")},
            "web": {"listen": "127.0.0.1", "port": port},
            "cameras": [
                {
                    "name": "yard",
                    "source": str(yard.path),
                    "capture": {"loop": True},
                    "motion": {"masks": [strip_mask(yard)], "nuisance_learning": "10s"},
                },
                {
                    "name": "porch",
                    "source": str(porch.path),
                    "motion": {"masks": [strip_mask(porch)], "tamper_after": "2s"},
                },
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
        yield url, config_path
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


def test_overlay_badges_and_mask_editor_in_chromium(node: str, daemon: tuple[str, Path]) -> None:
    url, config_path = daemon
    config_before = config_path.read_bytes()
    settings = {"url": url, "artifacts": str(ARTIFACTS), "chromium": str(CHROMIUM)}
    result = subprocess.run(
        [node, "detection.mjs", json.dumps(settings)],
        cwd=BROWSER_DIR,
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT,
        env={**os.environ, "NODE_OPTIONS": ""},
        check=False,
    )
    print(result.stdout, result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr
    (line,) = [x for x in result.stdout.splitlines() if x.startswith("@@yaml ")]
    text = json.loads(line.removeprefix("@@yaml "))
    # The YAML is a camera's motion section: it loads as config, with the corners clicked.
    motion = yaml.safe_load(text)["motion"]
    config = parse_config(
        "cameras:\n  - name: cam\n    source: demo\n    motion: " + json.dumps(motion) + "\n"
    )
    strip, mask = config.cameras[0].motion.masks
    assert strip == tuple((x, y) for x, y in strip_mask_for(WIDTH, HEIGHT))  # kept as it was
    expected = [(round(fx * WIDTH), round(fy * HEIGHT)) for fx, fy in CORNERS]
    assert len(mask) == len(expected)
    for (x, y), (ex, ey) in zip(mask, expected, strict=True):
        assert abs(x - ex) <= 2 and abs(y - ey) <= 2, (mask, expected)
    assert config_path.read_bytes() == config_before  # the page never writes the config
    assert (ARTIFACTS / "live-detection.png").stat().st_size > 10_000
