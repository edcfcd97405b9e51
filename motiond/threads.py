"""Threads named for the operating system too, so ``top -H``, ``ps -L`` and
``/proc/PID/task/*/comm`` tell a camera's capture, detection and recorder threads apart (and
the benchmarks can measure each one). Python names its threads for itself only."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

OS_NAME_BYTES = 15  # the kernel keeps 16 bytes with the terminating NUL
_PR_SET_NAME = 15

_libc: ctypes.CDLL | None = None
if sys.platform.startswith("linux"):
    _found = ctypes.util.find_library("c")
    _libc = ctypes.CDLL(_found, use_errno=True) if _found else None


def name_this_thread(name: str) -> None:
    """Give the calling thread ``name`` (its first 15 bytes) where the OS shows it; nothing
    where it cannot."""
    if _libc is not None:
        _libc.prctl(_PR_SET_NAME, name.encode()[:OS_NAME_BYTES], 0, 0, 0)


def named_thread(
    target: Callable[[], None], name: str, os_name: str | None = None
) -> threading.Thread:
    """A daemon thread called ``name`` in Python and ``os_name`` (default ``name``) for the OS;
    not started."""

    def run() -> None:
        name_this_thread(os_name or name)
        target()

    return threading.Thread(target=run, name=name, daemon=True)


def named_executor(name: str, max_workers: int) -> ThreadPoolExecutor:
    """A thread pool whose threads are ``name`` for the OS (``name_N`` in Python)."""
    return ThreadPoolExecutor(
        max_workers=max_workers,
        thread_name_prefix=name,
        initializer=name_this_thread,
        initargs=(name,),
    )
