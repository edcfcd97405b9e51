"""What the memory benchmark reads from a running motiond: /proc and its /metrics.

- :func:`web_port`: the port motiond's log says its web UI listens on (``web.port: 0``).
- :func:`camera_metrics`: ``GET /metrics`` parsed into ``{metric: {camera: value}}``
  (:func:`parse_camera_metrics`).
- :func:`smaps_breakdown`: resident memory by kind of mapping, from ``/proc/PID/smaps``, to see
  where memory goes beyond the frame buffers (code, the main heap, malloc's per-thread arenas,
  other anonymous mappings).
"""

from __future__ import annotations

import re
import urllib.request
from dataclasses import dataclass
from pathlib import Path

_LISTENING = re.compile(r"web: listening on https?://(?:\[[^\]]+\]|[^:/]+):(\d+)/")
_CAMERA_SAMPLE = re.compile(r'^motiond_(\w+)\{camera="([^"]*)"\} (\S+)$')
_MAPPING = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \S+\s*(.*)$")
# glibc's per-thread malloc arenas are heaps of up to 64 MiB, each mapped at a multiple of
# 64 MiB (HEAP_MAX_SIZE on 64-bit); nothing else in the process aligns like that by chance.
_ARENA_ALIGN = 64 * 1024 * 1024


def web_port(log_path: Path) -> int | None:
    """The port of motiond's ``web: listening on http://127.0.0.1:PORT/`` line, or None yet."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return None
    found = _LISTENING.search(text)
    return int(found.group(1)) if found else None


def camera_metrics(port: int, timeout: float = 5.0) -> dict[str, dict[str, float]]:
    """motiond's per-camera samples from ``http://127.0.0.1:PORT/metrics``, by metric name
    without the ``motiond_`` prefix, then camera name."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as reply:
        return parse_camera_metrics(reply.read().decode())


def parse_camera_metrics(text: str) -> dict[str, dict[str, float]]:
    """The ``motiond_NAME{camera="..."} VALUE`` samples of a Prometheus text page."""
    samples: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        if found := _CAMERA_SAMPLE.match(line):
            name, camera, value = found.groups()
            samples.setdefault(name, {})[camera] = float(value)
    return samples


@dataclass(frozen=True)
class SmapsBreakdown:
    """Resident MB of a process by kind of mapping (sums to its RSS)."""

    files_mb: float  # mapped files: Python, numpy, OpenCV, libav*, x264 code and data
    heap_mb: float  # [heap]: the main malloc arena (the main thread's, and Python's objects)
    arenas_mb: float  # malloc's per-thread arenas (64 MiB-aligned anonymous heaps)
    arenas: int  # how many such heaps are mapped
    other_anon_mb: float  # other anonymous mappings: big malloc blocks (mmap'd), thread stacks,
    #                       Python's object arenas, numpy arrays
    stacks_mb: float  # [stack] and the rest ([vdso], ...)
    anonymous_mb: float  # the Anonymous: total of all mappings (private, not file-backed)
    rss_mb: float


def smaps_breakdown(pid: int) -> SmapsBreakdown:
    kb = {"files": 0, "heap": 0, "arenas": 0, "other_anon": 0, "stacks": 0}
    anonymous = 0
    arena_heaps = 0
    kind = "stacks"
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        if header := _MAPPING.match(line):
            start, _end, _perms, name = header.groups()
            if name.startswith("/"):
                kind = "files"
            elif name == "[heap]":
                kind = "heap"
            elif name:
                kind = "stacks"  # [stack], [vdso], [vvar], ...
            elif int(start, 16) % _ARENA_ALIGN == 0:
                kind = "arenas"
                arena_heaps += 1
            else:
                kind = "other_anon"
        elif line.startswith("Rss:"):
            kb[kind] += int(line.split()[1])
        elif line.startswith("Anonymous:"):
            anonymous += int(line.split()[1])
    # The unused rest of an arena's 64 MiB (mapped PROT_NONE) follows it as its own mapping,
    # unaligned and with no resident pages: it adds nothing to other_anon.
    return SmapsBreakdown(
        files_mb=_mb(kb["files"]),
        heap_mb=_mb(kb["heap"]),
        arenas_mb=_mb(kb["arenas"]),
        arenas=arena_heaps,
        other_anon_mb=_mb(kb["other_anon"]),
        stacks_mb=_mb(kb["stacks"]),
        anonymous_mb=_mb(anonymous),
        rss_mb=_mb(sum(kb.values())),
    )


def _mb(kilobytes: int) -> float:
    return round(kilobytes / 1024, 1)
