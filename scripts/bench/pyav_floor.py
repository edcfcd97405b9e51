"""The floor under motiond's CPU on IP cameras: each stream read, the detection stream decoded.

``bench_ipcam --programs ... floor`` runs this beside motiond and Motion, in the same run and
on the same streams: per camera, one thread reads the main stream (each packet copied out, as
the capture thread keeps it) and, with a sub stream, one thread reads and decodes the sub
stream; without one, the main stream's thread decodes it. Nothing else: no detection, no
clip, no web server. The libavformat options and the decoder's settings are motiond's own
(``motiond/capture/sources/pyav.py``: RTSP over TCP, a short probe, one decoder thread, no
loop filter). Whatever motiond costs above this is its own work (detection, clips, Python per
frame, threads handing over), which is what issue 18 asks to cut; the decode itself is the
camera's stream and the same for any program that looks at every picture.

    python -m scripts.bench.pyav_floor --main rtsp://127.0.0.1:8554/main \\
        --sub rtsp://127.0.0.1:8554/sub --cameras 8

Runs until SIGTERM or SIGINT; a stream that ends or fails is opened again after a second.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from types import FrameType

import av

from motiond.capture.sources.pyav import PROBE_OPTIONS, RTSP_PROBE_OPTIONS

OPEN_TIMEOUT_S = 10.0


def read_stream(url: str, decode: bool, stop: threading.Event) -> None:
    """Read ``url`` (decoding each picture if ``decode``) until ``stop``; reopen on an end."""
    options = {**PROBE_OPTIONS, **RTSP_PROBE_OPTIONS, "rtsp_transport": "tcp"}
    while not stop.is_set():
        try:
            container = av.open(url, options=options, timeout=(OPEN_TIMEOUT_S, None))
        except (av.FFmpegError, OSError) as exc:
            print(f"cannot open {url}: {exc}", file=sys.stderr, flush=True)
            stop.wait(1.0)
            continue
        try:
            video = container.streams.video[0]
            if decode:
                video.codec_context.thread_count = 1
                video.codec_context.options = {"skip_loop_filter": "all"}
            print(f"reading {url}{', decoding' if decode else ''}", flush=True)
            for packet in container.demux(video):
                if stop.is_set():
                    break
                if packet.size == 0:
                    continue
                bytes(packet)  # the capture thread keeps a copy of each packet
                if decode:
                    with contextlib.suppress(av.FFmpegError):  # a garbled picture: the next
                        video.codec_context.decode(packet)
        except (av.FFmpegError, OSError) as exc:
            print(f"{url}: {exc}", file=sys.stderr, flush=True)
        finally:
            container.close()
        stop.wait(1.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--main", required=True, help="the main stream's URL (read)")
    parser.add_argument("--sub", help="the sub stream's URL (read and decoded)")
    parser.add_argument("--cameras", type=int, default=1)
    args = parser.parse_args(argv)
    stop = threading.Event()

    def stopping(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, stopping)
    signal.signal(signal.SIGINT, stopping)
    streams = [(args.main, args.sub is None)] + ([(args.sub, True)] if args.sub else [])
    threads = [
        threading.Thread(target=read_stream, args=(url, decode, stop), daemon=True)
        for _ in range(args.cameras)
        for url, decode in streams
    ]
    for thread in threads:
        thread.start()
    while not stop.wait(0.5):
        pass
    for thread in threads:
        thread.join(5.0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
