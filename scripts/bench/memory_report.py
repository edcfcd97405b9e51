"""The memory benchmark's summary (1 camera vs 3 cameras) and its Markdown report."""

from __future__ import annotations

from typing import Any

from scripts.bench.report import cell, machine_line, succeeded

SMAPS_PARTS = ("arenas_mb", "heap_mb", "other_anon_mb", "files_mb")


def _each_further(one: float, more: float, extra_cameras: int) -> float:
    return round((more - one) / extra_cameras, 1)


def summary(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per source kind and size: the process with 1 camera, what each further camera adds
    (the difference to the run with more cameras, shared out), and the buffers per camera."""
    found = {(run["kind"], run["size"], run["cameras"]): run for run in runs}
    rows = []
    for kind, size in dict.fromkeys((run["kind"], run["size"]) for run in runs):
        counts = sorted(c for k, s, c in found if (k, s) == (kind, size))
        one = found.get((kind, size, 1))
        more = found.get((kind, size, counts[-1])) if counts[-1] > 1 else None
        row: dict[str, Any] = {"kind": kind, "size": size, "cameras": counts}
        if succeeded(one):
            assert one is not None
            row["one_camera"] = {
                "peak_rss_mb": one["peak_rss_mb"],
                "mean_rss_mb": one["window"]["rss_mean_mb"],
                "buffered_mb": one["buffered_mean_mb"],
                "cores": one["window"]["cores"],
                "smaps": one["smaps"],
            }
        if succeeded(more):
            assert more is not None
            row["more_cameras"] = {
                "cameras": more["cameras"],
                "peak_rss_mb": more["peak_rss_mb"],
                "mean_rss_mb": more["window"]["rss_mean_mb"],
                "buffered_mb": more["buffered_mean_mb"],
                "cores": more["window"]["cores"],
            }
        if succeeded(one) and succeeded(more):
            assert one is not None and more is not None
            extra = more["cameras"] - 1
            buffers_one = one["buffered_mean_mb"]
            buffers_more = more["buffered_mean_mb"] * more["cameras"]
            row["each_further_camera"] = {
                "peak_rss_mb": _each_further(one["peak_rss_mb"], more["peak_rss_mb"], extra),
                # Every camera's buffers, the first one's too: a busy encoder's queue grows.
                "buffered_mb": _each_further(buffers_one, buffers_more, extra),
                "mean_rss_mb": _each_further(
                    one["window"]["rss_mean_mb"], more["window"]["rss_mean_mb"], extra
                ),
                "threads": round((more["threads"] - one["threads"]) / extra, 1),
                **{
                    part: _each_further(one["smaps"][part], more["smaps"][part], extra)
                    for part in SMAPS_PARTS
                },
            }
        rows.append(row)
    return rows


def markdown(results: dict[str, Any]) -> str:
    timing = results["timing"]
    labels = {k["key"]: k["label"] for k in results["kinds"]}
    parts = [
        "## motiond's memory per camera, by source kind",
        "",
        machine_line(results["machine"]),
        "",
        f"motiond runs with 1 camera, then with 3 cameras reading the same stream "
        f"({timing['fps']:g} fps, footage with people walking throughout, so every camera "
        f"records), `record.mode: auto`, `pre_roll: 2s`, otherwise its defaults. From the moment "
        f"every camera records: {timing['settle_s']:g} s settle, then a {timing['window_s']:g} s "
        "window. Peak RSS = VmHWM at the window's end (since start); mean RSS = VmRSS sampled "
        "every 0.5 s in the window; buffers = `motiond_buffered_bytes` (pre-roll ring + encoder "
        "queue) from `/metrics` each second, mean over the window, per camera. Each further "
        "camera = (3-camera figure - 1-camera figure) / 2; of which buffers = (the 3 cameras' "
        "buffers - the 1 camera's) / 2 (more than one camera's buffers where a busy machine "
        "made every encoder queue grow). MB = 2^20 bytes.",
        "",
        summary_table(results["summary"], labels),
        "",
        "### Where each further camera's memory goes",
        "",
        "From `/proc/PID/smaps` at the window's end, (3 cameras - 1 camera) / 2: malloc's "
        "per-thread arenas (64 MiB-aligned heaps), the main heap, other anonymous mappings "
        "(large malloc blocks, thread stacks, Python's and numpy's memory), mapped files.",
        "",
        smaps_table(results["summary"], labels),
        "",
        "### Streams",
        "",
        *[f"- {line}" for line in results["streams"]],
    ]
    if results.get("notes"):
        parts += ["", "Notes:", ""] + [f"- {note}" for note in results["notes"]]
    return "\n".join(parts) + "\n"


def summary_table(rows: list[dict[str, Any]], labels: dict[str, str]) -> str:
    lines = [
        "| source | size | 1 camera: peak RSS MB | mean RSS MB | each further camera: peak MB "
        "| mean MB | of which buffers MB | buffers per camera MB (1 / 3 cameras) "
        "| cores (1 / 3 cameras) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        one, more = row.get("one_camera"), row.get("more_cameras")
        further = row.get("each_further_camera", {})
        buffers = f"{cell(one and one['buffered_mb'])} / {cell(more and more['buffered_mb'])}"
        cores = f"{cell(one and one['cores'])} / {cell(more and more['cores'])}"
        lines.append(
            f"| {labels[row['kind']]} | {row['size']} "
            f"| {cell(one and one['peak_rss_mb'], 0)} | {cell(one and one['mean_rss_mb'], 0)} "
            f"| {cell(further.get('peak_rss_mb'), 0)} | {cell(further.get('mean_rss_mb'), 0)} "
            f"| {cell(further.get('buffered_mb'), 1)} | {buffers} | {cores} |"
        )
    return "\n".join(lines)


def smaps_table(rows: list[dict[str, Any]], labels: dict[str, str]) -> str:
    lines = [
        "| source | size | arenas MB | main heap MB | other anonymous MB | files MB | threads "
        "| 1 camera: arenas + heap + other anonymous MB (files MB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        further = row.get("each_further_camera", {})
        one = row.get("one_camera")
        whole = "-"
        if one is not None:
            smaps = one["smaps"]
            anon = smaps["arenas_mb"] + smaps["heap_mb"] + smaps["other_anon_mb"]
            whole = f"{anon:.0f} ({smaps['files_mb']:.0f})"
        lines.append(
            f"| {labels[row['kind']]} | {row['size']} "
            + "".join(f"| {cell(further.get(part), 1)} " for part in SMAPS_PARTS)
            + f"| {cell(further.get('threads'), 1)} | {whole} |"
        )
    return "\n".join(lines)
