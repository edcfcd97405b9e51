"""pytest's hooks and the fixtures every kind of test may use.

The helpers behind them live in tests/fixtures/ (and the fake cameras shared with the
benchmarks in testbed/); test modules import those directly, never each other.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

# Before they are imported: the helpers' asserts explain themselves as a test module's do.
pytest.register_assert_rewrite("tests.fixtures")

from testbed import VTEST  # noqa: E402
from tests.fixtures.daemon import SYSTEMD_VARIABLES  # noqa: E402

pytest_plugins = ("tests.fixtures.rtsp",)  # camera_media, rtsp_camera


@pytest.fixture(autouse=True)
def _no_systemd_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SYSTEMD_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def vtest() -> Iterator[Path]:
    if not VTEST.is_file():
        pytest.skip(
            f"real footage not found at {VTEST} (it lives in ../shared/data beside the repo)"
        )
    yield VTEST


@pytest.fixture
def restore_process_state() -> Iterator[None]:
    """Daemon.serve() sets signal handlers and the root log level; put them back afterwards."""
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    level = logging.getLogger().level
    yield
    for signum, handler in handlers.items():
        signal.signal(signum, handler)
    logging.getLogger().setLevel(level)
