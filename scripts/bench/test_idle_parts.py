"""bench_idle_parts.py's arithmetic: the parts as differences of the variants' medians."""

from __future__ import annotations

from typing import Any

from scripts import bench_idle_parts


def _run(variant: str, det: float, cap: float, other: float = 0.001) -> dict[str, Any]:
    cores = {"cap": cap, "det": det, "other": other}
    return {
        "variant": variant,
        "seconds": 25.0,
        "cores": cores,
        "total_cores": round(sum(cores.values()), 4),
        "switches_per_s": {"cap": 1200, "det": 1400, "other": 10},
    }


RUNS = [
    _run("whole", 0.200, 0.040),
    _run("no-detection", 0.140, 0.040),
    _run("no-decode", 0.020, 0.040),
    _run("floor", 0.0, 0.0, other=0.150),
    _run("whole", 0.220, 0.040),  # a second round: the median of two is their mean
    _run("no-detection", 0.140, 0.040),
]


def test_parts_are_differences_of_the_medians() -> None:
    parts = bench_idle_parts.summary(RUNS, cameras=8)["parts"]
    # whole: median of 0.241 and 0.261 = 0.251; no-detection 0.181; no-decode 0.061
    assert parts["detection"] == {"cores": 0.07, "ms_per_picture": round(0.07 / 120 * 1000, 3)}
    assert parts["decode"] == {"cores": 0.12, "ms_per_picture": 1.0}
    assert parts["above_floor"] == {"cores": 0.101, "per_camera": 0.0126}


def test_the_report_lists_each_variant_and_the_parts() -> None:
    results = {
        "machine": {
            "cpu_model": "x",
            "nproc": 2,
            "memory_gb": 24,
            "kernel": "6",
            "python": "3",
            "motion": "Motion 4.5.1",
            "motiond": "abc",
        },
        "cameras": 8,
        "rounds": 2,
        "settle_s": 10.0,
        "window_s": 25.0,
        "summary": bench_idle_parts.summary(RUNS, cameras=8),
    }
    text = bench_idle_parts.markdown(results)
    assert "| whole | 0.251 (0.241 0.261) | 0.0400 | 0.2100 | 0.0010 | 1200, 1400, 10 |" in text
    assert "| floor | 0.150 (0.150) |" in text
    assert (
        "Detection in the daemon (whole - no-detection): 0.0700 cores, 0.583 ms a picture" in text
    )
    assert "motiond above the floor (whole - floor): 0.1010 cores, 0.0126 a camera." in text
