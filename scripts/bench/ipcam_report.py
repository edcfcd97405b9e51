"""The IP camera benchmark's comparison with Motion, its targets, and its Markdown report."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from scripts.bench.report import cell, machine_line, succeeded

# Eight cameras with sub streams, one process: the absolute targets.
MANY_SUB_CAMERAS = 8
MANY_SUB_LIMITS = {"idle": 0.15, "recording": 0.2, "peak_rss_mb": 150.0}
RSS_TARGET_FROM_CAMERAS = 4  # peak RSS at most Motion's from this many cameras on


class ScenarioLike(Protocol):
    """What the report reads of a scenario (read-only: scenarios are frozen dataclasses)."""

    @property
    def key(self) -> str: ...
    @property
    def label(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def sub(self) -> bool: ...
    @property
    def cameras(self) -> int: ...
    @property
    def single(self) -> str | None:  # the one-camera scenario of the same streams
        ...


def _ratio(value: float, reference: float) -> float | None:
    return round(value / reference, 2) if reference > 0 else None


def per_further_camera(
    many: dict[str, Any] | None, one: dict[str, Any] | None, cameras: int
) -> float | None:
    """Peak RSS each camera after the first adds, MB: (N cameras - 1 camera) / (N - 1)."""
    if not (succeeded(many) and succeeded(one)) or cameras < 2:
        return None
    assert many is not None and one is not None
    extra = many["memory"]["peak_rss_mb"] - one["memory"]["peak_rss_mb"]
    return round(float(extra) / (cameras - 1), 1)


def median_runs(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One run per scenario and program from repeated ones: the run with the median recording
    cores (the lower of the middle two for an even count), with the spread of all of them in
    ``spread`` (their idle and recording cores and peak RSS, in run order). Failed runs count
    in the spread's ``failed`` and are chosen only when no run succeeded."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault((run["scenario"], run["key"]), []).append(run)
    chosen = []
    for group in groups.values():
        good = [run for run in group if succeeded(run)]
        if len(group) == 1 or not good:
            chosen.append(group[0])
            continue
        ordered = sorted(good, key=lambda run: run["recording"]["cores"])
        median = dict(ordered[(len(ordered) - 1) // 2])
        median["spread"] = {
            "runs": len(group),
            "failed": len(group) - len(good),
            "idle_cores": [run["idle"]["cores"] for run in good],
            "recording_cores": [run["recording"]["cores"] for run in good],
            "peak_rss_mb": [run["memory"]["peak_rss_mb"] for run in good],
        }
        chosen.append(median)
    return chosen


def comparison(
    runs: list[dict[str, Any]], scenarios: Mapping[str, ScenarioLike]
) -> list[dict[str, Any]]:
    """Per scenario: motiond's figures over Motion's, and the issue's targets met or not."""
    found = {(run["scenario"], run["key"]): run for run in runs}
    rows = []
    for key in dict.fromkeys(run["scenario"] for run in runs):
        scenario = scenarios[key]
        motiond, motion = found.get((key, "motiond")), found.get((key, "motion"))
        row: dict[str, Any] = {"scenario": key, "ratios": None, "targets": []}
        if succeeded(motiond) and succeeded(motion):
            assert motiond is not None and motion is not None
            row["ratios"] = {
                "idle_cores": _ratio(motiond["idle"]["cores"], motion["idle"]["cores"]),
                "recording_cores": _ratio(
                    motiond["recording"]["cores"], motion["recording"]["cores"]
                ),
                "peak_rss": _ratio(
                    motiond["memory"]["peak_rss_mb"], motion["memory"]["peak_rss_mb"]
                ),
            }
        if scenario.single is not None:
            row["per_further_camera_mb"] = {
                program: per_further_camera(
                    found.get((key, program)),
                    found.get((scenario.single, program)),
                    scenario.cameras,
                )
                for program in ("motiond", "motion")
            }
        floor = found.get((key, "floor"))
        if succeeded(floor):
            assert floor is not None
            row["floor"] = above_floor(floor, {"motiond": motiond, "motion": motion}, scenario)
        if succeeded(motiond):
            assert motiond is not None
            row["targets"] = _targets(scenario, motiond, motion, row.get("per_further_camera_mb"))
        rows.append(row)
    return rows


def above_floor(
    floor: dict[str, Any], programs: dict[str, dict[str, Any] | None], scenario: ScenarioLike
) -> dict[str, Any]:
    """The floor's cores (each stream read, the detection stream decoded, nothing else), and
    per camera what each program costs above it, idle and recording."""
    phases = ("idle", "recording")
    return {
        "cores": {phase: floor[phase]["cores"] for phase in phases},
        "above_per_camera": {
            program: {
                phase: round((run[phase]["cores"] - floor[phase]["cores"]) / scenario.cameras, 4)
                for phase in phases
            }
            for program, run in programs.items()
            if succeeded(run) and run is not None
        },
    }


def _targets(
    scenario: ScenarioLike,
    motiond: dict[str, Any],
    motion: dict[str, Any] | None,
    further: dict[str, float | None] | None,
) -> list[dict[str, Any]]:
    """Issue 18: at most Motion's CPU idle and recording on every row, Motion in its own
    sub-stream mode where there is a sub stream; peak RSS at most Motion's from four cameras
    on; memory per further camera at most Motion's; eight cameras with sub streams within
    ``MANY_SUB_LIMITS``."""
    targets = []

    def add(text: str, value: float | None, limit: float | None) -> None:
        met = None if limit is None or value is None else value <= limit + 1e-9
        limit_out = None if limit is None else round(limit, 3)
        targets.append({"target": text, "value": value, "limit": limit_out, "met": met})

    reference = motion if succeeded(motion) else None
    for phase in ("idle", "recording"):
        limit = None if reference is None else reference[phase]["cores"]
        add(f"{phase} cores at most Motion's", motiond[phase]["cores"], limit)
    peak = motiond["memory"]["peak_rss_mb"]
    if scenario.cameras >= RSS_TARGET_FROM_CAMERAS:
        limit = None if reference is None else reference["memory"]["peak_rss_mb"]
        add("peak RSS (MB) at most Motion's", peak, limit)
    if further is not None:
        add(
            "peak RSS per further camera (MB) at most Motion's",
            further.get("motiond"),
            further.get("motion"),
        )
    if scenario.sub and scenario.cameras == MANY_SUB_CAMERAS:
        add("idle cores", motiond["idle"]["cores"], MANY_SUB_LIMITS["idle"])
        add("recording cores", motiond["recording"]["cores"], MANY_SUB_LIMITS["recording"])
        add("peak RSS (MB)", peak, MANY_SUB_LIMITS["peak_rss_mb"])
    return targets


# ---------------------------------------------------------------------------------------------


def results_table(runs: list[dict[str, Any]], labels: dict[str, str]) -> str:
    lines = [
        "| scenario | program | idle cores | recording cores | recording - idle | peak RSS MB "
        "| clips | clip codec | clip kbit/s | recorded s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        where = f"| {labels[run['scenario']]} | {run['label']} |"
        if run.get("error"):
            lines.append(f"{where} failed: {run['error']} | | | | | | | |")
            continue
        clips = run["clips"]
        idle, recording = run["idle"]["cores"], run["recording"]["cores"]
        cells = [
            cell(idle, 3),
            cell(recording, 3),
            f"{recording - idle:+.3f}",
            cell(run["memory"]["peak_rss_mb"], 0),
            cell(clips["count"]),
            ", ".join(clips["codecs"]) or "-",
            cell(clips["kbit_s"], 0),
            cell(clips["total_seconds"], 1),
        ]
        lines.append(f"{where} " + " | ".join(cells) + " |")
    return "\n".join(lines)


THREAD_KINDS = {
    "cap": "capture (read; decode and detect without a sub stream)",
    "det": "sub stream (read, decode, detect)",
    "rec": "recorder (clip writing)",
    "other": "everything else",
}


def thread_table(runs: list[dict[str, Any]], labels: dict[str, str]) -> str:
    """motiond's cores per kind of thread, idle and recording (its threads are named for the
    OS: cap:, det:, rec: per camera, summed over cameras), and their context switches a
    second while recording."""
    lines = [
        "| scenario | threads | idle cores | recording cores | recording - idle "
        "| switches/s recording |",
        "|---|---|---|---|---|---|",
    ]
    for run in runs:
        if run.get("error") or run["key"] != "motiond":
            continue
        idle = run["idle"].get("thread_cores", {})
        recording = run["recording"].get("thread_cores", {})
        switches = run["recording"].get("thread_switches_per_s", {})
        for kind, label in THREAD_KINDS.items():
            if kind not in idle and kind not in recording:
                continue
            a, b = idle.get(kind, 0.0), recording.get(kind, 0.0)
            count = switches.get(kind)
            lines.append(
                f"| {labels[run['scenario']]} | {label} | {a:.4f} | {b:.4f} | {b - a:+.4f} "
                f"| {'-' if count is None else count} |"
            )
    return "\n".join(lines)


def ratio_table(rows: list[dict[str, Any]], labels: dict[str, str]) -> str:
    lines = [
        "| scenario | idle CPU | recording CPU | peak RSS |",
        "|---|---|---|---|",
    ]
    for row in rows:
        ratios = row["ratios"]
        if ratios is None:
            lines.append(f"| {labels[row['scenario']]} | - | - | - |")
            continue
        cells = [
            "-" if ratios[k] is None else f"{ratios[k]:.2f}x"
            for k in ("idle_cores", "recording_cores", "peak_rss")
        ]
        lines.append(f"| {labels[row['scenario']]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def floor_table(rows: list[dict[str, Any]], labels: dict[str, str]) -> str:
    lines = [
        "| scenario | floor: idle / recording cores | motiond above it, per camera "
        "| Motion above it, per camera |",
        "|---|---|---|---|",
    ]
    for row in rows:
        floor = row.get("floor")
        if floor is None:
            continue
        above = floor["above_per_camera"]
        cells = [
            "-"
            if program not in above
            else f"{above[program]['idle']:+.4f} / {above[program]['recording']:+.4f}"
            for program in ("motiond", "motion")
        ]
        cores = floor["cores"]
        lines.append(
            f"| {labels[row['scenario']]} | {cores['idle']:.3f} / {cores['recording']:.3f} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines)


def _floor_part(results: dict[str, Any]) -> list[str]:
    labels = {s["key"]: s["label"] for s in results["scenarios"]}
    if not any(row.get("floor") for row in results["comparison"]):
        return []
    return [
        "### Above the floor",
        "",
        "The floor is scripts/bench/pyav_floor.py on the same streams in the same run: each "
        "stream read and the detection stream decoded with motiond's own libavformat and "
        "decoder settings, a thread per stream, nothing else. What a program costs above it, "
        "per camera, is its own work: detection, clips, and for motiond Python per frame and "
        "threads handing over (Motion decodes with its own libavcodec).",
        "",
        floor_table(results["comparison"], labels),
        "",
    ]


def target_table(rows: list[dict[str, Any]], labels: dict[str, str]) -> str:
    lines = ["| scenario | target | motiond | limit | |", "|---|---|---|---|---|"]
    for row in rows:
        for target in row["targets"]:
            verdict = {True: "met", False: "**missed**", None: "no reference"}[target["met"]]
            lines.append(
                f"| {labels[row['scenario']]} | {target['target']} | {cell(target['value'], 3)} "
                f"| {cell(target['limit'], 3)} | {verdict} |"
            )
    return "\n".join(lines)


def memory_table(
    runs: list[dict[str, Any]], rows: list[dict[str, Any]], labels: dict[str, str]
) -> str:
    """Peak RSS per program, and per further camera where a scenario has several."""
    found = {(run["scenario"], run["key"]): run for run in runs if succeeded(run)}
    lines = [
        "| scenario | motiond peak RSS MB | Motion peak RSS MB | motiond - Motion "
        "| per further camera: motiond / Motion MB |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        key = row["scenario"]
        mine, theirs = found.get((key, "motiond")), found.get((key, "motion"))
        a = mine["memory"]["peak_rss_mb"] if mine else None
        b = theirs["memory"]["peak_rss_mb"] if theirs else None
        gap = f"{a - b:+.0f}" if a is not None and b is not None else "-"
        further = row.get("per_further_camera_mb") or {}
        each = " / ".join(cell(further.get(p), 1) for p in ("motiond", "motion")) if further else ""
        lines.append(f"| {labels[key]} | {cell(a, 0)} | {cell(b, 0)} | {gap} | {each} |")
    return "\n".join(lines)


def spread_table(runs: list[dict[str, Any]], labels: dict[str, str]) -> str:
    """The figures of every repeated run, for the median's trust."""
    lines = [
        "| scenario | program | runs | idle cores | recording cores | peak RSS MB |",
        "|---|---|---|---|---|---|",
    ]
    for run in runs:
        spread = run.get("spread")
        if spread is None:
            continue
        figures = [
            " ".join(cell(value, digits) for value in spread[name])
            for name, digits in (("idle_cores", 3), ("recording_cores", 3), ("peak_rss_mb", 1))
        ]
        failed = f" ({spread['failed']} failed)" if spread["failed"] else ""
        lines.append(
            f"| {labels.get(run['scenario'], run['scenario'])} | {run['label']} | "
            f"{spread['runs']}{failed} | {' | '.join(figures)} |"
        )
    return "\n".join(lines)


def stream_table(streams: list[dict[str, Any]], labels: dict[str, str]) -> str:
    lines = [
        "| scenario | mount | size/fps | GOP | asked kbit/s | still part kbit/s | footage kbit/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in streams:
        lines.append(
            f"| {labels[s['scenario']]} | {s['mount']} | {s['size']}/{s['fps']:g} | {s['gop']} "
            f"| {s['bitrate_kbit_s']} | {s['still_kbit_s']:.0f} | {s['footage_kbit_s']:.0f} |"
        )
    return "\n".join(lines)


def markdown(results: dict[str, Any]) -> str:
    phases = results["phases"]
    labels = {s["key"]: s["label"] for s in results["scenarios"]}
    parts = [
        "## motiond vs Motion on IP cameras: CPU, memory and clips",
        "",
        machine_line(results["machine"]),
        "",
        "Each program runs alone on a fresh stream served on loopback by another process: "
        "RTSP by GStreamer's rtsp-server (testbed/rtsp_server.py) from a camera-like "
        "H.264 file "
        "(Main profile, a keyframe every 2 s, no B-frames), MJPEG by scripts/bench/stream.py. "
        f"From the moment the program's first connection starts the stream: "
        f"{phases['warmup_s']:g} s warm-up, {phases['idle_s']:g} s idle window (a still "
        f"frame of vtest.avi with light sensor noise), at {phases['still_s']:g} s the footage "
        f"starts (people walking throughout), {phases['warmup_s']:g} s settle, "
        f"{phases['recording_s']:g} s recording window. Cores = CPU time (user+system, all "
        "threads and children) / wall time; peak RSS = VmHWM at the end of the recording "
        "window. Clips are probed after a clean SIGTERM stop.",
        "",
        results_table(results["runs"], labels),
        "",
        *_spread_part(results),
        "### motiond relative to Motion (same scenario)",
        "",
        ratio_table(results["comparison"], labels),
        "",
        "### Memory",
        "",
        memory_table(results["runs"], results["comparison"], labels),
        "",
        "motiond's interpreter with its libraries (numpy, OpenCV, PyAV, Tornado and its own "
        f"modules) loaded, before any camera: {cell(results.get('motiond_libraries_rss_mb'))} "
        "MB RSS.",
        "",
        "### Where motiond's CPU goes, per kind of thread",
        "",
        thread_table(results["runs"], labels),
        "",
        *_floor_part(results),
        "### Targets (issue 18)",
        "",
        target_table(results["comparison"], labels),
        "",
        "### Streams",
        "",
        stream_table(results["streams"], labels) if results["streams"] else "(MJPEG only)",
        "",
        *[f"- {line}" for line in results.get("settings", [])],
    ]
    if results.get("notes"):
        parts += ["", "Notes:", ""] + [f"- {note}" for note in results["notes"]]
    return "\n".join(parts) + "\n"


def _spread_part(results: dict[str, Any]) -> list[str]:
    repeat = results.get("repeat", 1)
    if repeat < 2:
        return []
    labels = {s["key"]: s["label"] for s in results["scenarios"]}
    return [
        f"Each program ran {repeat} times per scenario, the programs in turn; the rows above "
        "and every figure below are the run with the median recording cores. All runs:",
        "",
        spread_table(results["runs"], labels),
        "",
    ]
