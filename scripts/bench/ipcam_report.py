"""The IP camera benchmark's comparison with Motion, its targets, and its Markdown report."""

from __future__ import annotations

from typing import Any, Protocol

from scripts.bench.report import cell, machine_line, succeeded

COPY_MARGIN_CORES = 0.01  # copy mode: recording costs at most this much more than idle
SUB_SHARE = 0.5  # with a sub stream: at most half of Motion's passthrough on the main stream


class ScenarioLike(Protocol):
    key: str
    label: str
    kind: str
    sub: bool
    cameras: int


def _ratio(value: float, reference: float) -> float | None:
    return round(value / reference, 2) if reference > 0 else None


def comparison(
    runs: list[dict[str, Any]], scenarios: dict[str, ScenarioLike]
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
        if succeeded(motiond):
            assert motiond is not None
            main_only = found.get((key.removesuffix("-sub"), "motion"))
            row["targets"] = _targets(scenario, motiond, motion, main_only)
        rows.append(row)
    return rows


def _targets(
    scenario: ScenarioLike,
    motiond: dict[str, Any],
    motion: dict[str, Any] | None,
    motion_main_only: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    targets = []

    def add(text: str, value: float, limit: float | None) -> None:
        met = None if limit is None else value <= limit + 1e-9
        limit_out = None if limit is None else round(limit, 3)
        targets.append({"target": text, "value": value, "limit": limit_out, "met": met})

    idle, recording = motiond["idle"]["cores"], motiond["recording"]["cores"]
    if scenario.kind == "rtsp":
        add(
            f"copy: recording at most {COPY_MARGIN_CORES} core over idle",
            round(recording - idle, 3),
            COPY_MARGIN_CORES,
        )
        if scenario.sub:
            reference = motion_main_only if succeeded(motion_main_only) else None
            for phase, value in (("idle", idle), ("recording", recording)):
                limit = None if reference is None else SUB_SHARE * reference[phase]["cores"]
                add(
                    f"{phase} cores at most half of Motion's on the main stream alone",
                    value,
                    limit,
                )
        else:
            for phase, value in (("idle", idle), ("recording", recording)):
                limit = motion[phase]["cores"] if succeeded(motion) else None  # type: ignore[index]
                add(f"{phase} cores at most Motion's", value, limit)
    limit = motion["memory"]["peak_rss_mb"] if succeeded(motion) else None  # type: ignore[index]
    add("peak RSS (MB) at most Motion's", motiond["memory"]["peak_rss_mb"], limit)
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
    OS: cap:, det:, rec: per camera, summed over cameras)."""
    lines = [
        "| scenario | threads | idle cores | recording cores | recording - idle |",
        "|---|---|---|---|---|",
    ]
    for run in runs:
        if run.get("error") or run["key"] != "motiond":
            continue
        idle = run["idle"].get("thread_cores", {})
        recording = run["recording"].get("thread_cores", {})
        for kind, label in THREAD_KINDS.items():
            if kind not in idle and kind not in recording:
                continue
            a, b = idle.get(kind, 0.0), recording.get(kind, 0.0)
            lines.append(
                f"| {labels[run['scenario']]} | {label} | {a:.4f} | {b:.4f} | {b - a:+.4f} |"
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


def target_table(rows: list[dict[str, Any]], labels: dict[str, str]) -> str:
    lines = ["| scenario | target | motiond | limit | |", "|---|---|---|---|---|"]
    for row in rows:
        for target in row["targets"]:
            verdict = {True: "met", False: "**missed**", None: "no reference"}[target["met"]]
            lines.append(
                f"| {labels[row['scenario']]} | {target['target']} | {target['value']} "
                f"| {cell(target['limit'])} | {verdict} |"
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
        "### motiond relative to Motion (same scenario)",
        "",
        ratio_table(results["comparison"], labels),
        "",
        "### Where motiond's CPU goes, per kind of thread",
        "",
        thread_table(results["runs"], labels),
        "",
        "### Targets (issue 8)",
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
