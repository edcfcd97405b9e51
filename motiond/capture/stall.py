"""A network stream that stalls with its connection open, ended without a callback per read.

libavformat asks an interrupt callback whether to give up many times per packet: for RTSP over
TCP, several times for each RTP packet of a few kilobytes. PyAV's callback takes the GIL every
time it is asked while a read timeout is set, and with other threads busy (detection, other
cameras) each of those is a wait for the GIL and a context switch: eight 720p cameras' capture
threads switched 33,000 times a second and cost 0.13 core that way, 1,300 times and 0.025 core
without (recording, docs/benchmarks.md).

So RTSP streams are read without PyAV's read timeout (its open timeout stays: it is asked
only while opening; HTTP streams keep both, as they may open more connections as they go).
Right after the open, ``find_connections`` picks out the TCP connections the open made to the
camera's address and port (the sockets of this process that are new since just before it,
connected there) and keeps a duplicate of each; opens to one address and port wait for each
other (``opening``), so a connection is never taken for another camera's. A ``StallGuard``
holds them: the reader marks when a read starts and ends (two assignments), and one watchdog
thread for all guards shuts the connections down when a read has lasted ``timeout``. The
blocked read then fails at once, and the reader, seeing ``fired``, reports a timeout as PyAV's
would have. A camera that keeps its connection and its RTCP reports going but sends no video
(an encoder that hung) is caught this way too: the TCP socket's own timeout would not be, as
RTCP keeps it busy. Opens to one address wait for each other: eight channels of one recorder
open one after the other when motiond starts (a fraction of a second each on a LAN).

Linux only (``/proc/self/fd``); where no connection is found the source opens again with
PyAV's read timeout, as before.

Thread crossings: ``StallGuard.reading_since`` is written by the reader thread and read by the
watchdog (a float or None, swapped whole); ``fired`` is set by the watchdog before it shuts the
sockets down, and read by the reader after its read failed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from motiond.threads import named_thread

logger = logging.getLogger(__name__)

TICK = 0.25  # seconds between the watchdog's looks: a stall ends within timeout + TICK


class StallGuard:
    """The connections of one open stream, shut down when a read lasts ``timeout`` seconds."""

    def __init__(self, connections: list[socket.socket], timeout: float) -> None:
        self.connections = connections
        self.timeout = timeout
        self.reading_since: float | None = None  # when the current read started (reader)
        self.fired = False  # the watchdog shut the connections down

    def reading(self, now: float) -> None:
        """A read starts at ``now`` (the reader thread)."""
        self.reading_since = now

    def done(self) -> None:
        """The read returned (the reader thread)."""
        self.reading_since = None

    def overdue(self, now: float) -> bool:
        since = self.reading_since
        return since is not None and now - since >= self.timeout

    def fire(self) -> None:
        """Shut the connections down (the watchdog): a blocked read fails at once."""
        self.fired = True
        for connection in self.connections:
            with contextlib.suppress(OSError):  # already closed by the other side
                connection.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Stop watching and let go of the duplicates (after the stream's own close)."""
        _WATCHDOG.forget(self)
        for connection in self.connections:
            connection.close()
        self.connections = []


class _Watchdog:
    """One thread for every guard, started with the first one; it looks every TICK while
    guards are watched and waits otherwise. ``_lock`` protects ``_guards``."""

    def __init__(self) -> None:
        self._guards: set[StallGuard] = set()
        self._lock = threading.Lock()
        self._watched = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None

    def watch(self, guard: StallGuard) -> None:
        with self._lock:
            self._guards.add(guard)
            if self._thread is None:
                self._thread = named_thread(self._run, "stall-watchdog", os_name="stall")
                self._thread.start()
            self._watched.notify()

    def forget(self, guard: StallGuard) -> None:
        with self._lock:
            self._guards.discard(guard)

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._guards:
                    self._watched.wait()
                guards = list(self._guards)
            now = time.monotonic()
            for guard in guards:
                if not guard.fired and guard.overdue(now):
                    guard.fire()
            time.sleep(TICK)


_WATCHDOG = _Watchdog()
_open_locks: dict[tuple[str, int], threading.Lock] = {}
_open_locks_lock = threading.Lock()


def watch(connections: list[socket.socket], timeout: float) -> StallGuard:
    """A guard over ``connections``, watched from now on."""
    guard = StallGuard(connections, timeout)
    _WATCHDOG.watch(guard)
    return guard


@contextmanager
def opening(host: str, port: int) -> Iterator[set[int]]:
    """Around an open of a stream from ``host``:``port``: one at a time per address, yielding
    the sockets this process had before it (for ``find_connections``)."""
    with _open_locks_lock:
        lock = _open_locks.setdefault((host.lower(), port), threading.Lock())
    with lock:
        yield set(_sockets())


def find_connections(host: str, port: int, before: set[int]) -> list[socket.socket]:
    """Duplicates of this process's TCP connections to ``host``:``port`` made since ``before``
    (socket inodes), the newest open's own when opens to that address wait for each other."""
    addresses = _addresses(host, port)
    found = []
    for inode, fd in _sockets().items():
        if inode in before:
            continue
        try:
            copy = os.dup(fd)
        except OSError:
            continue  # closed meanwhile
        try:
            duplicate = socket.socket(fileno=copy)
        except OSError:  # a kind of socket Python does not know
            os.close(copy)
            continue
        if _is_connection_to(duplicate, inode, addresses, port):
            found.append(duplicate)
        else:
            duplicate.close()
    return found


def _is_connection_to(candidate: socket.socket, inode: int, addresses: set[str], port: int) -> bool:
    try:
        if os.fstat(candidate.fileno()).st_ino != inode:
            return False  # the number was reused for another socket meanwhile
        if candidate.type != socket.SOCK_STREAM:
            return False
        peer = candidate.getpeername()
    except OSError:
        return False
    if not isinstance(peer, tuple) or len(peer) < 2:
        return False  # a Unix socket
    address = str(peer[0]).removeprefix("::ffff:")
    return peer[1] == port and address in addresses


def _addresses(host: str, port: int) -> set[str]:
    """The addresses ``host`` stands for (what the stream's connection went to)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return set()
    return {str(info[4][0]).removeprefix("::ffff:") for info in infos}


def _sockets() -> dict[int, int]:
    """This process's sockets: inode -> one descriptor of it."""
    found: dict[int, int] = {}
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return found
    for name in names:
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if target.startswith("socket:["):
            found.setdefault(int(target[8:-1]), int(name))
    return found
