"""The IP camera benchmark's comparison with Motion and its targets (ipcam_report.py).

No program runs: results as bench_ipcam.py records them, written here. It lives beside the
benchmark it checks: tests/ imports nothing from scripts/.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scripts.bench import ipcam_report


@dataclass(frozen=True)
class _Scenario:
    key: str
    label: str
    kind: str = "rtsp"
    sub: bool = False
    cameras: int = 1
    single: str | None = None


SCENARIOS = {
    "720p-sub": _Scenario("720p-sub", "one camera + sub", sub=True),
    "8x720p-sub": _Scenario("8x720p-sub", "8 cameras + sub", sub=True, cameras=8,
                            single="720p-sub"),
}  # fmt: skip


def _run(scenario: str, key: str, idle: float, recording: float, peak: float) -> dict[str, Any]:
    return {
        "scenario": scenario,
        "key": key,
        "label": key,
        "idle": {"cores": idle, "thread_cores": {}},
        "recording": {"cores": recording, "thread_cores": {}},
        "memory": {"peak_rss_mb": peak, "rss_mb": peak},
        "clips": {"count": 1, "codecs": ["h264"], "kbit_s": 3000, "total_seconds": 20.0},
    }


RUNS = [
    _run("720p-sub", "motion", 0.018, 0.019, 117.7),
    _run("720p-sub", "motiond", 0.017, 0.023, 102.9),
    _run("8x720p-sub", "motion", 0.177, 0.165, 592.1),
    _run("8x720p-sub", "motiond", 0.134, 0.169, 151.2),
]


def _targets(rows: list[dict[str, Any]], scenario: str) -> dict[str, tuple[Any, Any, Any]]:
    row = next(row for row in rows if row["scenario"] == scenario)
    return {t["target"]: (t["value"], t["limit"], t["met"]) for t in row["targets"]}


def test_cpu_is_compared_with_motion_on_the_same_row() -> None:
    rows = ipcam_report.comparison(RUNS, SCENARIOS)
    one = _targets(rows, "720p-sub")
    assert one["idle cores at most Motion's"] == (0.017, 0.018, True)
    assert one["recording cores at most Motion's"] == (0.023, 0.019, False)
    # One camera: no peak RSS target, no per-camera figure (the gap is reported instead).
    assert not any("RSS" in target for target in one)
    assert rows[0]["ratios"] == {"idle_cores": 0.94, "recording_cores": 1.21, "peak_rss": 0.87}


def test_memory_per_further_camera_comes_from_the_one_camera_row() -> None:
    rows = ipcam_report.comparison(RUNS, SCENARIOS)
    eight = next(row for row in rows if row["scenario"] == "8x720p-sub")
    # (151.2 - 102.9) / 7 and (592.1 - 117.7) / 7
    assert eight["per_further_camera_mb"] == {"motiond": 6.9, "motion": 67.8}
    targets = _targets(rows, "8x720p-sub")
    assert targets["peak RSS per further camera (MB) at most Motion's"] == (6.9, 67.8, True)
    assert targets["peak RSS (MB) at most Motion's"] == (151.2, 592.1, True)


def test_eight_sub_stream_cameras_have_absolute_limits() -> None:
    targets = _targets(ipcam_report.comparison(RUNS, SCENARIOS), "8x720p-sub")
    assert targets["idle cores"] == (0.134, 0.15, True)
    assert targets["recording cores"] == (0.169, 0.2, True)
    assert targets["peak RSS (MB)"] == (151.2, 150.0, False)
    assert targets["recording cores at most Motion's"] == (0.169, 0.165, False)


def test_without_the_one_camera_row_there_is_no_per_camera_verdict() -> None:
    runs = [run for run in RUNS if run["scenario"] == "8x720p-sub"]
    targets = _targets(ipcam_report.comparison(runs, SCENARIOS), "8x720p-sub")
    assert targets["peak RSS per further camera (MB) at most Motion's"] == (None, None, None)


def test_the_markdown_shows_the_memory_table_and_verdicts() -> None:
    rows = ipcam_report.comparison(RUNS, SCENARIOS)
    labels = {key: s.label for key, s in SCENARIOS.items()}
    table = ipcam_report.memory_table(RUNS, rows, labels)
    assert "| one camera + sub | 103 | 118 | -15 |  |" in table
    assert "| 8 cameras + sub | 151 | 592 | -441 | 6.9 / 67.8 |" in table
    verdicts = ipcam_report.target_table(rows, labels)
    assert "| 8 cameras + sub | peak RSS (MB) | 151.200 | 150.000 | **missed** |" in verdicts


def test_repeated_runs_give_the_median_run_and_keep_every_figure() -> None:
    runs = [
        _run("720p-sub", "motiond", 0.017, 0.031, 103.0),
        _run("720p-sub", "motion", 0.018, 0.019, 117.7),
        _run("720p-sub", "motiond", 0.021, 0.024, 101.0),
        _run("720p-sub", "motion", 0.020, 0.025, 118.0),
        _run("720p-sub", "motiond", 0.019, 0.027, 102.0),
        {**_run("720p-sub", "motion", 0.0, 0.0, 0.0), "error": "died"},
    ]
    chosen = {run["key"]: run for run in ipcam_report.median_runs(runs)}
    assert len(chosen) == 2
    motiond = chosen["motiond"]
    assert (motiond["idle"]["cores"], motiond["recording"]["cores"]) == (0.019, 0.027)
    assert motiond["spread"] == {
        "runs": 3,
        "failed": 0,
        "idle_cores": [0.017, 0.021, 0.019],
        "recording_cores": [0.031, 0.024, 0.027],
        "peak_rss_mb": [103.0, 101.0, 102.0],
    }
    # Two good runs: the lower of the middle two; the failed one is counted, not chosen.
    assert chosen["motion"]["recording"]["cores"] == 0.019
    assert chosen["motion"]["spread"]["failed"] == 1
    labels = {key: s.label for key, s in SCENARIOS.items()}
    table = ipcam_report.spread_table(list(chosen.values()), labels)
    assert "| one camera + sub | motiond | 3 | 0.017 0.021 0.019 | 0.031 0.024 0.027 |" in table
    assert "| one camera + sub | motion | 3 (1 failed) |" in table


def test_a_single_run_is_reported_as_it_is() -> None:
    assert ipcam_report.median_runs(RUNS) == RUNS


def test_the_floor_gives_each_programs_cost_above_it_per_camera() -> None:
    floor = {**_run("8x720p-sub", "floor", 0.110, 0.130, 90.0), "clips": {"count": 0}}
    rows = ipcam_report.comparison([*RUNS, floor], SCENARIOS)
    eight = next(row for row in rows if row["scenario"] == "8x720p-sub")
    assert eight["floor"] == {
        "cores": {"idle": 0.110, "recording": 0.130},
        "above_per_camera": {
            "motiond": {"idle": 0.003, "recording": 0.0049},  # (0.134 - 0.110) / 8, ...
            "motion": {"idle": 0.0084, "recording": 0.0044},
        },
    }
    one = next(row for row in rows if row["scenario"] == "720p-sub")
    assert "floor" not in one  # no floor run there
    labels = {key: s.label for key, s in SCENARIOS.items()}
    table = ipcam_report.floor_table(rows, labels)
    assert "| 8 cameras + sub | 0.110 / 0.130 | +0.0030 / +0.0049 | +0.0084 / +0.0044 |" in table
    assert "one camera" not in table
    # The floor's own run is no program under test: no verdicts of its own.
    assert next(t["target"] for t in eight["targets"]) == "idle cores at most Motion's"
