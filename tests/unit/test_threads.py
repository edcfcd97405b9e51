"""Threads carry their names for the OS too."""

from __future__ import annotations

import threading
from pathlib import Path

from motiond.threads import named_executor, named_thread


def os_name(native_id: int) -> str:
    return Path(f"/proc/self/task/{native_id}/comm").read_text().strip()


def test_a_named_thread_is_named_for_the_os_within_its_15_bytes() -> None:
    seen: list[str] = []
    thread = named_thread(
        lambda: seen.append(os_name(threading.get_native_id())),
        "capture-a-long-camera-name",
        os_name="cap:a-long-camera-name",
    )
    thread.start()
    thread.join()
    assert thread.name == "capture-a-long-camera-name" and thread.daemon
    assert seen == ["cap:a-long-came"]


def test_an_executors_threads_are_named_for_the_os() -> None:
    with named_executor("web-io", max_workers=1) as pool:
        assert pool.submit(lambda: os_name(threading.get_native_id())).result() == "web-io"
