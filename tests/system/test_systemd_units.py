"""The unit files: `systemd-analyze verify` says nothing, the hardening scores at most 2.5, and the
settings the daemon relies on are there (and the same in the template)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from motiond.cli import EX_CONFIG
from motiond.daemon import STOP_TIMEOUT
from motiond.units import parse_duration
from tests.fixtures import REPO

UNITS = REPO / "systemd"
SINGLE = UNITS / "motiond.service"
TEMPLATE = UNITS / "motiond@.service"
PROGRAM = "/opt/motiond/venv/bin/motiond"
MAX_EXPOSURE = 2.5  # systemd-analyze security's overall exposure, 0.0 (best) .. 10.0

pytestmark = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is not installed (Debian: apt-get install systemd)",
)


def settings(unit: Path) -> dict[str, list[str]]:
    """``Key=value`` lines of a unit file as {"Section.Key": [values in order]}."""
    found: dict[str, list[str]] = {}
    section = ""
    for raw in unit.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found.setdefault(f"{section}.{key}", []).append(value)
    return found


def copy_with_stub_program(unit: Path, directory: Path) -> Path:
    """``unit`` in ``directory`` with ExecStart's program replaced by an executable stub.

    `systemd-analyze verify` checks that ExecStart's program exists and is executable, and
    /opt/motiond/venv is not installed where the tests run; `--root=` would need a whole OS
    tree (sysinit.target, /bin/kill). Only the program path changes: the rest is verified as is,
    and test_units_run_the_venvs_motiond pins the real path.
    """
    stub = directory / "motiond"
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    text = unit.read_text()
    assert text.count(f"ExecStart={PROGRAM} ") == 1
    copy = directory / unit.name
    copy.write_text(text.replace(f"ExecStart={PROGRAM} ", f"ExecStart={stub} "))
    return copy


def verify(unit: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "SYSTEMD_COLORS": "0"},
    )


@pytest.mark.parametrize("name", ["motiond.service", "motiond@.service", "motiond@front.service"])
def test_verify_prints_nothing(tmp_path: Path, name: str) -> None:
    # It exits 0 on unknown keys and bad values, so any output at all is a failure.
    for unit in (SINGLE, TEMPLATE):
        copy_with_stub_program(unit, tmp_path)
    result = verify(tmp_path / name)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_verify_would_report_a_bad_setting(tmp_path: Path) -> None:
    copy = copy_with_stub_program(SINGLE, tmp_path)
    copy.write_text(copy.read_text().replace("Restart=on-failure", "Restart=sometimes"))
    result = verify(copy)
    assert "sometimes" in result.stdout + result.stderr


@pytest.mark.parametrize("unit", [SINGLE, TEMPLATE], ids=lambda u: u.name)
def test_security_exposure_at_most_2_5(unit: Path) -> None:
    # --threshold is in tenths of the displayed score: 25 means an exposure of 2.5.
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--threshold=25", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "SYSTEMD_COLORS": "0"},
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE, result.stdout
    assert result.returncode == 0, result.stdout + result.stderr


def test_units_run_the_venvs_motiond() -> None:
    assert settings(SINGLE)["Service.ExecStart"] == [f"{PROGRAM} run -c /etc/motiond/motiond.yaml"]
    assert settings(TEMPLATE)["Service.ExecStart"] == [f"{PROGRAM} run -c /etc/motiond/%i.yaml"]
    assert settings(SINGLE)["Service.StateDirectory"] == ["motiond"]
    assert settings(TEMPLATE)["Service.StateDirectory"] == ["motiond/%i"]


@pytest.mark.parametrize("unit", [SINGLE, TEMPLATE], ids=lambda u: u.name)
def test_the_contract_with_the_daemon(unit: Path) -> None:
    found = settings(unit)

    def one(key: str) -> str:
        values = found.get(f"Service.{key}", [])
        assert len(values) == 1, f"{key}: {values}"
        return values[0]

    assert one("Type") == "notify"
    assert one("ExecReload") == "/bin/kill -HUP $MAINPID"
    assert "Service.ExecStartPre" not in found  # motiond checks its config itself (exit 78)
    assert one("Restart") == "on-failure"
    assert one("RestartPreventExitStatus") == str(EX_CONFIG)
    assert 20 <= parse_duration(one("WatchdogSec")) <= 60
    # Comfortably above the daemon's own stop budget, so systemd never SIGKILLs a finishing clip.
    assert parse_duration(one("TimeoutStopSec")) >= STOP_TIMEOUT + 15
    assert one("DevicePolicy") == "closed"
    assert one("DeviceAllow") == "char-video4linux rw"
    assert "Service.PrivateDevices" not in found  # it would hide /dev/video*
    assert one("SupplementaryGroups") == "video"
    assert one("RestrictAddressFamilies") == "AF_UNIX AF_INET AF_INET6"
    assert "Service.IPAddressDeny" not in found  # IP cameras and LAN viewers must work
    # char-video4linux resolves at start: the V4L2 core must be loaded by then.
    assert "modprobe@videodev.service" in found["Unit.Wants"]
    assert "modprobe@videodev.service" in found["Unit.After"]


def test_template_differs_only_where_it_must() -> None:
    single, template = settings(SINGLE), settings(TEMPLATE)
    per_instance = {"Unit.Description", "Service.ExecStart", "Service.StateDirectory"}
    assert {k for k in single.keys() | template.keys() if single.get(k) != template.get(k)} == (
        per_instance
    )
