"""The systemd units' open-files limit fits the web side's caps with the recorder's reserve,
and the units start after the clock is set where the system says so (static: the unit files
as text; tests/system checks them with systemd itself)."""

from __future__ import annotations

from pathlib import Path

import pytest

from motiond.config.web import WebConfig
from motiond.web.server import FD_RESERVE, FDS_PER_CONNECTION, connection_cap
from tests.fixtures import REPO

UNITS = [REPO / "systemd" / "motiond.service", REPO / "systemd" / "motiond@.service"]


def values(text: str, key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(key + "=")]


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_the_open_files_limit_fits_the_default_caps(unit: Path) -> None:
    text = unit.read_text()
    (limit,) = values(text, "LimitNOFILE")
    web = WebConfig()
    needed = web.max_connections * FDS_PER_CONNECTION + FD_RESERVE
    assert int(limit) >= 2 * needed, (limit, needed)  # room for cameras, uploads, hooks too
    assert connection_cap(web.max_connections, int(limit)) == web.max_connections


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_the_units_never_wait_for_the_clock(unit: Path) -> None:
    # With systemd-time-wait-sync and no network, time-sync.target is never reached: waiting
    # for it would mean no recording after a power cut that took the router down too.
    text = unit.read_text()
    assert "time-sync.target" not in values(text, "After")
    assert "time-sync.target" not in values(text, "Wants")
