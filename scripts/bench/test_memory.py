"""The memory benchmark's arithmetic and parsers (memory_report.py, memory_probe.py).

No daemon runs. It lives beside the benchmark it checks: tests/ imports nothing from scripts/.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from scripts.bench import memory_report
from scripts.bench.memory_probe import parse_camera_metrics, smaps_breakdown, web_port


def test_web_port_is_read_from_the_daemon_log_line(tmp_path: Path) -> None:
    log = tmp_path / "motiond.log"
    log.write_text("2026-12-02 07:00:00 INFO camera cam1: opened\n")
    assert web_port(log) is None
    with log.open("a") as out:
        out.write("2026-12-02 07:00:01 INFO web: listening on http://127.0.0.1:43117/ (no auth)\n")
    assert web_port(log) == 43117
    assert web_port(tmp_path / "missing.log") is None


def test_camera_metrics_are_parsed_by_metric_and_camera() -> None:
    text = (
        "# HELP motiond_buffered_bytes bytes held by the pre-roll ring and the encoder queue\n"
        "# TYPE motiond_buffered_bytes gauge\n"
        'motiond_buffered_bytes{camera="cam1"} 1283042\n'
        'motiond_buffered_bytes{camera="cam2"} 0\n'
        'motiond_recording{camera="cam1"} 1\n'
        'motiond_fps{camera="cam1"} 14.98\n'
        "motiond_clips 3\n"
    )
    assert parse_camera_metrics(text) == {
        "buffered_bytes": {"cam1": 1283042.0, "cam2": 0.0},
        "recording": {"cam1": 1.0},
        "fps": {"cam1": 14.98},
    }


def _status_kb(field: str) -> int:
    for line in Path(f"/proc/{os.getpid()}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(field)


def test_smaps_breakdown_adds_up_to_the_rss_and_finds_a_thread_arena() -> None:
    held: list[bytes] = []

    def allocate() -> None:  # malloc on a new thread: glibc gives it an arena of its own
        held.extend(os.urandom(100_000) for _ in range(40))

    worker = threading.Thread(target=allocate)
    worker.start()
    worker.join()
    breakdown = smaps_breakdown(os.getpid())
    assert breakdown.arenas >= 1
    assert breakdown.arenas_mb >= 3.0  # the 4 MB just allocated, resident (random bytes)
    assert breakdown.files_mb > 0
    parts = (
        breakdown.files_mb,
        breakdown.heap_mb,
        breakdown.arenas_mb,
        breakdown.other_anon_mb,
        breakdown.stacks_mb,
    )
    assert abs(sum(parts) - breakdown.rss_mb) < 0.5
    assert abs(breakdown.rss_mb - _status_kb("VmRSS") / 1024) < 8  # read a moment apart


def _run(cameras: int, peak: float, mean: float, buffered: float, arenas: float) -> dict:
    smaps = {"arenas_mb": arenas, "heap_mb": 5.0, "other_anon_mb": 10.0, "files_mb": 60.0}
    return {
        "kind": "mjpeg",
        "size": "720p",
        "cameras": cameras,
        "peak_rss_mb": peak,
        "window": {"rss_mean_mb": mean, "cores": 0.3 * cameras},
        "buffered_mean_mb": buffered,
        "threads": 9 + 2 * (cameras - 1),
        "smaps": smaps,
    }


def test_summary_shares_the_difference_out_over_the_further_cameras() -> None:
    runs = [_run(1, 130.0, 128.0, 3.6, 10.0), _run(3, 220.0, 216.0, 4.6, 40.0)]
    [row] = memory_report.summary(runs)
    assert row["one_camera"]["peak_rss_mb"] == 130.0
    further = row["each_further_camera"]
    assert further["peak_rss_mb"] == 45.0
    assert further["mean_rss_mb"] == 44.0
    assert further["buffered_mb"] == 5.1  # (3 x 4.6 - 3.6) / 2: every camera's queue grew
    assert further["arenas_mb"] == 15.0
    assert further["threads"] == 2.0
    text = memory_report.summary_table([row], {"mjpeg": "HTTP MJPEG"})
    assert "| HTTP MJPEG | 720p | 130 | 128 | 45 | 44 | 5.1 | 3.60 / 4.60 | 0.30 / 0.90 |" in text


def test_summary_of_a_failed_run_has_no_per_camera_figure() -> None:
    runs = [_run(1, 130.0, 128.0, 3.6, 10.0), {**_run(3, 0, 0, 0, 0), "error": "died"}]
    [row] = memory_report.summary(runs)
    assert "each_further_camera" not in row
    assert "| - | - | - |" in memory_report.summary_table([row], {"mjpeg": "HTTP MJPEG"})
