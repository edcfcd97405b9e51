"""The benchmark's Markdown tables, from its JSON results."""

from __future__ import annotations

from typing import Any


def cell(value: Any, digits: int = 2) -> str:
    """A table cell: "-" for no value, floats to ``digits`` places."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def succeeded(run: dict[str, Any] | None) -> bool:
    return run is not None and not run.get("error")


def machine_line(machine: dict[str, Any]) -> str:
    return (
        f"Machine: {machine['cpu_model']}, {machine['nproc']} CPUs (nproc), "
        f"{machine['memory_gb']} GB RAM, Linux {machine['kernel']}, Python {machine['python']}, "
        f"{machine['motion']}, motiond {machine['motiond']}."
    )


def results_table(runs: list[dict[str, Any]]) -> str:
    lines = [
        "| stream | program | idle cores | recording cores | peak RSS MB "
        "| clips written | clip kbit/s | recorded s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        if run.get("error"):
            lines.append(f"| {run['stream']} | {run['label']} | failed: {run['error']} | | | | | |")
            continue
        clips = run["clips"]
        lines.append(
            "| "
            + " | ".join(
                [
                    run["stream"],
                    run["label"],
                    cell(run["idle"]["cores"]),
                    cell(run["recording"]["cores"]),
                    cell(run["memory"]["peak_rss_mb"], 0),
                    cell(clips["count"]),
                    cell(clips["kbit_s"], 0),
                    cell(clips["total_seconds"], 1),
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def ratio_table(runs: list[dict[str, Any]]) -> str:
    """Each motiond run against Motion's on the same stream: CPU and peak RSS as ratios."""
    lines = [
        "| stream | program | idle CPU | recording CPU | peak RSS |",
        "|---|---|---|---|---|",
    ]
    motion = {r["stream"]: r for r in runs if r["key"] == "motion" and not r.get("error")}
    for run in runs:
        reference = motion.get(run["stream"])
        if run["key"] == "motion" or run.get("error") or reference is None:
            continue
        cells = [
            _ratio(run["idle"]["cores"], reference["idle"]["cores"]),
            _ratio(run["recording"]["cores"], reference["recording"]["cores"]),
            _ratio(run["memory"]["peak_rss_mb"], reference["memory"]["peak_rss_mb"]),
        ]
        lines.append(f"| {run['stream']} | {run['label']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _ratio(value: float | None, reference: float | None) -> str:
    if value is None or not reference:
        return "-"
    return f"{value / reference:.2f}x"


def detection_table(detection: list[dict[str, Any]]) -> str:
    lines = [
        "| stream | reduced gray JPEG decode (ms) | detect (ms) | full colour decode (ms) |",
        "|---|---|---|---|",
    ]
    for row in detection:
        if not row.get("available"):
            lines.append(f"| {row['stream']} | not measured: {row.get('reason')} | | |")
            continue
        lines.append(
            f"| {row['stream']} | {row['decode_reduced_gray_ms']:.2f} | {row['detect_ms']:.2f} "
            f"| {row['decode_full_colour_ms']:.2f} |"
        )
    return "\n".join(lines)


def markdown(results: dict[str, Any]) -> str:
    phases = results["phases"]
    parts = [
        "## motiond vs Motion: CPU, memory and clips",
        "",
        machine_line(results["machine"]),
        "",
        f"Each program reads the same loopback HTTP MJPEG stream (served by a separate process) "
        f"and runs alone: {phases['warmup_s']:g} s warm-up, {phases['idle_s']:g} s idle "
        f"(one still frame repeated), then the stream switches to the real footage (people "
        f"walking throughout), {phases['warmup_s']:g} s settle, {phases['recording_s']:g} s "
        f"recording. Cores = CPU time (user+system, all threads) / wall time. Clips are probed "
        f'after a clean SIGTERM stop; "recorded s" is their total duration.',
        "",
        results_table(results["runs"]),
        "",
        "### motiond relative to Motion (same stream, same run)",
        "",
        ratio_table(results["runs"]),
        "",
        *[f"- {line}" for line in results.get("settings", [])],
        "",
        "### motiond detection cost per frame (CPU ms, 1 thread, median of "
        f"{results['detect_frames']} frames)",
        "",
        detection_table(results["detection"]),
    ]
    if results.get("notes"):
        parts += ["", "Notes:", ""] + [f"- {note}" for note in results["notes"]]
    return "\n".join(parts) + "\n"
