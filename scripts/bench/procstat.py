"""CPU and memory of a process tree, read from /proc (Linux only)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    """Fields of /proc/PID/stat after the ``(comm)``, so index 0 is field 3 (state)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def descendants(pid: int) -> list[int]:
    """Live child processes of ``pid``, recursively (threads are already in their process)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int(_stat_fields(int(entry.name))[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    pending = list(children.get(pid, []))
    while pending:
        child = pending.pop()
        found.append(child)
        pending.extend(children.get(child, []))
    return found


def tree_cpu_seconds(pid: int) -> float:
    """utime+stime of ``pid`` (all its threads), its reaped children, and its live descendants."""
    fields = _stat_fields(pid)
    # utime, stime, cutime, cstime are fields 14-17 of /proc/PID/stat.
    ticks = sum(int(value) for value in fields[11:15])
    for child in descendants(pid):
        try:
            ticks += sum(int(value) for value in _stat_fields(child)[11:13])
        except (OSError, ValueError, IndexError):
            continue  # exited between the listing and the read
    return ticks / CLOCK_TICKS


def _threads_by_kind(pid: int, *files: str) -> Iterator[tuple[str, list[str]]]:
    """(kind, the text of ``files``) for each of ``pid``'s live threads. Its kind is the OS name
    up to its ``:`` (motiond names a camera's threads ``cap:NAME``, ``det:NAME``,
    ``rec:NAME``), every other thread is ``other``. A thread that ends meanwhile is left out."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            comm = (task / "comm").read_text().strip()
            texts = [(task / name).read_text() for name in files]
        except OSError:
            continue  # ended between the listing and the read
        yield (comm.split(":", 1)[0] if ":" in comm else "other"), texts


def thread_cpu_seconds(pid: int) -> dict[str, float]:
    """utime+stime of ``pid``'s live threads by their kind (see ``_threads_by_kind``)."""
    totals: dict[str, float] = {}
    for kind, (stat,) in _threads_by_kind(pid, "stat"):
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks = int(fields[11]) + int(fields[12])
        totals[kind] = totals.get(kind, 0.0) + ticks / CLOCK_TICKS
    return totals


def thread_run_seconds(pid: int) -> dict[str, float]:
    """Time on a CPU of ``pid``'s live threads by their kind, to the nanosecond (the
    scheduler's ``schedstat``; ``stat``'s ticks are 10 ms, coarse for a thread that runs a
    few milliseconds a second)."""
    totals: dict[str, float] = {}
    for kind, (schedstat,) in _threads_by_kind(pid, "schedstat"):
        totals[kind] = totals.get(kind, 0.0) + int(schedstat.split()[0]) / 1e9
    return totals


def thread_switches(pid: int) -> dict[str, int]:
    """Context switches (voluntary and not) of ``pid``'s live threads by their kind: many per
    frame mean threads passing the GIL around."""
    totals: dict[str, int] = {}
    for kind, (status,) in _threads_by_kind(pid, "status"):
        switches = sum(
            int(line.split()[1])
            for line in status.splitlines()
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"))
        )
        totals[kind] = totals.get(kind, 0) + switches
    return totals


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all CPUs), from the first line of /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    # guest time is already inside user/nice, so count only the first 8 columns.
    return (sum(values[:8]) - idle) / CLOCK_TICKS


def threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise ValueError(f"no Threads line in /proc/{pid}/status")


@dataclass(frozen=True)
class Memory:
    peak_rss_mb: float  # VmHWM: the high-water mark of resident memory since start
    rss_mb: float  # VmRSS now


def memory(pid: int) -> Memory:
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            values[key] = int(rest.split()[0]) / 1024  # kB -> MB
    return Memory(peak_rss_mb=values["VmHWM"], rss_mb=values["VmRSS"])


@dataclass(frozen=True)
class CpuSample:
    wall: float
    process: float
    machine: float


def sample_cpu(pid: int) -> CpuSample:
    return CpuSample(time.monotonic(), tree_cpu_seconds(pid), machine_busy_seconds())


@dataclass(frozen=True)
class CpuUse:
    seconds: float
    cores: float  # CPU seconds of the process tree per wall second
    machine_cores: float  # the same for the whole machine, to show how noisy the phase was


def cpu_between(start: CpuSample, end: CpuSample) -> CpuUse:
    wall = end.wall - start.wall
    return CpuUse(
        seconds=wall,
        cores=(end.process - start.process) / wall,
        machine_cores=(end.machine - start.machine) / wall,
    )


def stop_process(process: subprocess.Popen[Any], timeout: float = 10.0) -> int | None:
    """SIGTERM the process by its pid, SIGKILL it if it is still there after ``timeout``."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode
