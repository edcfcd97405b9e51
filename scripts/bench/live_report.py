"""bench_live.py's Markdown report and target checks, from its JSON results."""

from __future__ import annotations

from typing import Any

from scripts.bench.report import cell

LATENCY_TARGET_MS = 100.0
EXTRA_CORES_TARGET = 0.3
FPS_KEPT = 0.95  # capture "keeps its frame rate": at least this share of the 1-viewer rate
RSS_GROWTH_LIMIT_MB = 32.0  # 50 viewers x (one pending frame + socket buffers) is ~12 MB


def _window(results: dict[str, Any], key: str) -> dict[str, Any] | None:
    return next((w for w in results["windows"] if w["key"] == key and "error" not in w), None)


def check_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with the figure it was judged on and whether it was met."""
    checks: list[dict[str, Any]] = []
    one, crowd = _window(results, "1-full"), _window(results, "crowd-full")
    if one is not None:
        median = one["latency_probe"]["median_ms"]
        checks.append(
            {
                "target": f"1 viewer, full frame: median latency < {LATENCY_TARGET_MS:g} ms",
                "value": f"{cell(median, 1)} ms",
                "met": median is not None and median < LATENCY_TARGET_MS,
            }
        )
    if one is None or crowd is None:
        return checks
    count = crowd["viewers"]
    frames_min = crowd["viewer_frames"]["min"]
    checks.append(
        {
            "target": f"{count} viewers all get frames",
            "value": f"{crowd['viewers_open']} open, min {frames_min} frames each",
            "met": crowd["viewers_open"] == count and (frames_min or 0) > 0,
        }
    )
    extra = crowd["daemon_cores"] - one["daemon_cores"]
    checks.append(
        {
            "target": f"{count} viewers: < {EXTRA_CORES_TARGET:g} core more than 1 viewer",
            "value": f"+{extra:.3f} cores",
            "met": extra < EXTRA_CORES_TARGET,
        }
    )
    nominal = results["stream"]["fps"]
    kept = min(one["capture_fps_counted"], nominal) * FPS_KEPT
    checks.append(
        {
            "target": f"{count} viewers: capture keeps its frame rate "
            f"(>= {FPS_KEPT:.0%} of 1 viewer's)",
            "value": f"{crowd['capture_fps_counted']} fps (1 viewer: {one['capture_fps_counted']})",
            "met": crowd["capture_fps_counted"] >= kept,
        }
    )
    growth = crowd["rss_end_mb"] - crowd["rss_start_mb"]
    checks.append(
        {
            "target": f"{count} viewers: memory bounded (RSS grows < {RSS_GROWTH_LIMIT_MB:g} MB "
            "over the window)",
            "value": f"{crowd['rss_start_mb']} -> {crowd['rss_end_mb']} MB "
            f"(max {crowd['rss_max_mb']}, VmHWM {crowd['hwm_mb']})",
            "met": growth < RSS_GROWTH_LIMIT_MB,
        }
    )
    return checks


def machine_line(machine: dict[str, Any]) -> str:
    return (
        f"Machine: {machine['cpu_model']}, {machine['nproc']} CPUs (nproc), "
        f"{machine['memory_gb']} GB RAM, Linux {machine['kernel']}, Python {machine['python']}, "
        f"Tornado {machine['tornado']}, OpenCV {machine['opencv']}, motiond {machine['motiond']}; "
        f"load average at start {machine['loadavg_at_start']}."
    )


def resources_table(results: dict[str, Any]) -> str:
    one = _window(results, "1-full")
    lines = [
        "| window | daemon cores | vs 1 viewer | IOLoop thread | in the kernel "
        "| capture fps (API min / counted) "
        "| frames per viewer min / median (fps) | RSS start -> end (max) MB | VmHWM MB "
        "| threads | viewer-process cores | other cores |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for w in results["windows"]:
        if "error" in w:
            lines.append(f"| {w['label']} | error: {w['error']} |" + " |" * 10)
            continue
        extra = "-" if one is None else f"{w['daemon_cores'] - one['daemon_cores']:+.3f}"
        frames = w["viewer_frames"]
        per_viewer = (
            "-"
            if frames["min"] is None
            else f"{frames['min']} / {frames['median']:g} ({frames['fps_median']:.1f})"
        )
        lines.append(
            f"| {w['label']} | {w['daemon_cores']:.3f} | {extra} "
            f"| {w['daemon_ioloop_cores']:.3f} | {w['daemon_system_cores']:.3f} "
            f"| {cell(w['capture_fps_api_min'])} / {w['capture_fps_counted']:.2f} "
            f"| {per_viewer} "
            f"| {w['rss_start_mb']:.0f} -> {w['rss_end_mb']:.0f} ({w['rss_max_mb']:.0f}) "
            f"| {w['hwm_mb']:.0f} | {w['threads_max']} | {w['client_cores']:.3f} "
            f"| {w['other_cores']:.2f} |"
        )
    return "\n".join(lines)


def latency_table(results: dict[str, Any]) -> str:
    lines = [
        "| window | viewer(s) | n | median ms | p90 ms | p99 ms | max ms "
        "| server age median ms | transit median ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for w in results["windows"]:
        if "error" in w:
            continue
        rows = [("the probe (own process)", w.get("latency_probe"))]
        if w.get("latency_crowd", {}).get("count"):
            rows.append((f"the other {w['viewers'] - 1} (one process)", w["latency_crowd"]))
        for who, summary in rows:
            if not summary or not summary["count"]:
                continue
            lines.append(
                f"| {w['label']} | {who} | {summary['count']} | {cell(summary['median_ms'], 1)} "
                f"| {cell(summary['p90_ms'], 1)} | {cell(summary['p99_ms'], 1)} "
                f"| {cell(summary['max_ms'], 1)} | {cell(summary['age_median_ms'], 1)} "
                f"| {cell(summary['transit_median_ms'], 1)} |"
            )
    return "\n".join(lines)


def markdown(results: dict[str, Any]) -> str:
    stream = results["stream"]
    timing = results["timing"]
    parts = [
        "## Live view benchmark",
        "",
        machine_line(results["machine"]),
        "",
        f"Camera: `{stream['video']}` at {stream['size']} / {stream['fps']:g} fps over loopback "
        f"MJPEG ({stream['jpeg_kb']} KiB per JPEG); motiond recording throughout. Each window: "
        f"{timing['settle_s']:g} s settle after the viewers connect, then {timing['seconds']:g} s "
        "measured.",
        "",
        "### Daemon resources",
        "",
        "CPU time over wall time from /proc: the whole process, its main thread (where the "
        "IOLoop, and so the live view, runs) and its time in the kernel (socket writes). "
        "Viewer-process cores: the probe's and the crowd's processes.",
        "",
        resources_table(results),
        "",
        "### Latency: capture to the WebSocket message's arrival (loopback)",
        "",
        "`age_ms + (received_at - sent_at)` for each `frame` info message (about 1 per second "
        "per viewer). Server age: `age_ms`, capture to send; transit: `sent_at` to arrival. "
        "With fewer than 100 samples, p99 is (close to) the largest.",
        "",
        latency_table(results),
        "",
        "### Targets",
        "",
    ]
    for check in results["targets"]:
        mark = "met" if check["met"] else "**MISSED**"
        parts.append(f"- {mark}: {check['target']}: {check['value']}")
    if results["notes"]:
        parts += ["", "### Notes", ""]
        parts += [f"- {note}" for note in results["notes"]]
    return "\n".join(parts) + "\n"
