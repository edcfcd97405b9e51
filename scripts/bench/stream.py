"""The benchmark's MJPEG stream, served from its own process so its CPU is not counted.

Run as ``python -m scripts.bench.stream --input vtest.avi --size 1280x720 --fps 15``. It serves
one URL whose content switches on a command read from stdin:

- ``idle``: the first frame of the video, JPEG'ed once and repeated (a scene with no motion);
- ``motion``: the video itself from its first frame, looped (people walk through all of it);
- ``stats``: print ``{"mode", "frames_sent"}`` as one JSON line;
- ``quit`` (or end of stdin): stop.

When ready it prints one JSON line: ``{"url", "port", "footage_frames", "jpeg_kb"}``.
:class:`StreamProcess` is the parent's side of that protocol.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from scripts.bench.harness import REPO_ROOT


class _SwitchableFrames:
    """Hands out frame iterators whose content follows the current mode.

    ``_lock`` protects ``_mode`` and ``_generation``; taken by the stdin thread (switching) and
    by the server's sending threads (each frame).
    """

    def __init__(self, idle: bytes, footage: list[bytes]) -> None:
        self._idle = idle
        self._footage = footage
        self._lock = threading.Lock()
        self._mode = "idle"
        self._generation = 0  # bumped on each switch so every iterator restarts the footage

    def set_mode(self, mode: str) -> None:
        with self._lock:
            if mode != self._mode:
                self._mode = mode
                self._generation += 1

    @property
    def mode(self) -> str:
        with self._lock:
            return self._mode

    def __call__(self) -> Iterator[bytes]:
        generation = -1
        index = 0
        while True:
            with self._lock:
                if generation != self._generation:
                    generation, index = self._generation, 0
                mode = self._mode
            if mode == "idle":
                yield self._idle
            else:
                yield self._footage[index % len(self._footage)]
                index += 1


def _parse_size(text: str | None) -> tuple[int, int] | None:
    if not text or text == "native":
        return None
    width, _, height = text.partition("x")
    return int(width), int(height)


def serve(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--input", required=True)
    parser.add_argument("--size", help="WIDTHxHEIGHT, or native (default)")
    parser.add_argument("--fps", type=float, required=True)
    parser.add_argument("--quality", type=int, default=80)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)

    from testbed.mjpeg_server import MjpegServer, jpeg_frames_from_video  # noqa: PLC0415

    # The protocol owns stdout; anything else the server prints goes to stderr.
    protocol, sys.stdout = sys.stdout, sys.stderr
    size = _parse_size(args.size)
    footage = jpeg_frames_from_video(args.input, size=size, quality=args.quality)
    if not footage:
        raise SystemExit(f"no frames in {args.input}")
    frames = _SwitchableFrames(footage[0], footage)
    server = MjpegServer(frames, fps=args.fps, port=args.port)
    server.start()
    try:
        ready = {
            "url": server.url,
            "port": server.port,
            "footage_frames": len(footage),
            "jpeg_kb": round(sum(map(len, footage)) / len(footage) / 1024, 1),
        }
        print(json.dumps(ready), file=protocol, flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command in ("idle", "motion"):
                frames.set_mode(command)
            elif command == "quit":
                break
            stats = {"mode": frames.mode, "frames_sent": server.frames_sent}
            print(json.dumps(stats), file=protocol, flush=True)
    finally:
        server.stop()


class StreamProcess:
    """Starts the stream in a child process and drives it over its stdin/stdout."""

    def __init__(self, video: Path, size: tuple[int, int] | None, fps: float) -> None:
        self.video = video
        self.size = size
        self.fps = fps
        self.process: subprocess.Popen[str] | None = None
        self.info: dict[str, object] = {}

    @property
    def url(self) -> str:
        return str(self.info["url"])

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        size = "native" if self.size is None else f"{self.size[0]}x{self.size[1]}"
        argv = [sys.executable, "-m", "scripts.bench.stream", "--input", str(self.video)]
        argv += ["--size", size, "--fps", str(self.fps)]
        self.process = subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,  # Ctrl-C reaches the harness only; it stops us in order
        )
        self.info = self._reply()

    def set_mode(self, mode: str) -> dict[str, object]:
        return self._command(mode)

    def frames_sent(self) -> int:
        return int(self._command("stats")["frames_sent"])  # type: ignore[call-overload]

    def stop(self) -> None:
        if self.process is None:
            return
        process, self.process = self.process, None
        try:
            if process.stdin is not None:
                process.stdin.write("quit\n")
                process.stdin.close()
            process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()
            process.wait()

    def _command(self, command: str) -> dict[str, object]:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._reply()

    def _reply(self) -> dict[str, object]:
        assert self.process is not None and self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"stream process exited (code {self.process.poll()})")
        reply: dict[str, object] = json.loads(line)
        return reply


if __name__ == "__main__":
    serve()
