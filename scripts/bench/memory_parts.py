"""What one camera's codecs hold in memory, each measured alone in a fresh process.

    python -m scripts.bench.memory_parts                 # 720p and 1080p, about a minute
    python -m scripts.bench.memory_parts --sizes 720p

The parts of a camera that bench_memory.py cannot separate, with motiond's own settings:

- ``decode-h264-detect``: the H.264 main stream decoded for detection (no sub stream): one
  thread, ``skip_loop_filter: all`` (motiond/capture/sources/pyav.py);
- ``decode-hevc-detect``: the same for H.265;
- ``decode-hevc-clip``: the recorder's H.265 decoder when it transcodes (one thread, full
  decode; motiond/record/encoders.py ``PictureDecoder``);
- ``clip-writer-jpeg``: motiond's ``PyAVClipWriter`` with the default record settings (x264
  veryfast, CRF 26, look-ahead 3, one thread up to 720p, two above; fragmented MP4), fed camera
  JPEGs as an MJPEG camera's recorder is (JPEG -> YUV through libavcodec -> x264);
- ``clip-writer-jpeg-lookahead-10``: the same with veryfast's own look-ahead (10 frames):
  what bounding the look-ahead saves.

Each part runs in a child process (``--child``) that imports everything, prepares its input
(the demuxer opened, or 30 JPEGs encoded), reads VmRSS and /proc/PID/smaps, then runs the part
over 90 frames on a thread of its own (as motiond's capture and recorder threads do: malloc gives
each thread its own arena), keeps the decoder or writer open, and reads them again. The input
files are the streams bench_memory.py encodes (cached in ``--media-dir``; encoded here if
missing). Prints a Markdown table; ``--json PATH`` writes the figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

from scripts.bench.harness import DEFAULT_VIDEO, MEDIA_DIR, REPO_ROOT

PARTS = (
    "decode-h264-detect",
    "decode-hevc-detect",
    "decode-hevc-clip",
    "clip-writer-jpeg",
    "clip-writer-jpeg-lookahead-10",
)
X264_PRESET_LOOKAHEAD = "10"  # veryfast's own rc-lookahead, which motiond bounds to 3
FRAMES = 90
JPEGS = 30  # distinct camera JPEGs fed to the clip writer, cycled
JPEG_QUALITY = 80  # as bench/stream.py serves them


def _prepare_decoder(path: Path, detect: bool) -> tuple[Any, Any]:
    import av  # noqa: PLC0415

    container = av.open(str(path))
    stream = container.streams.video[0]
    stream.codec_context.thread_count = 1
    if detect:
        stream.codec_context.options = {"skip_loop_filter": "all"}
    return container, stream


def _decode(container: Any, stream: Any, kept: list[Any]) -> None:
    decoded = 0
    for packet in container.demux(stream):
        for picture in packet.decode():
            kept[:] = [picture]  # motiond keeps the latest picture only
            decoded += 1
        if decoded >= FRAMES:
            return


def _jpegs(raw_file: Path) -> list[bytes]:
    import cv2  # noqa: PLC0415

    video = cv2.VideoCapture(str(raw_file))
    jpegs: list[bytes] = []
    try:
        while len(jpegs) < JPEGS:
            ok, image = video.read()
            if not ok:
                break
            ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            jpegs.append(encoded.tobytes())
    finally:
        video.release()
    return jpegs


def _write_clip(writer: Any, jpegs: list[bytes], fps: float) -> None:
    from motiond.frames import Frame  # noqa: PLC0415

    for seq in range(FRAMES):
        mono = seq / fps
        writer.write(Frame.from_jpeg(seq, mono, 1e9 + mono, jpegs[seq % len(jpegs)]))


def child(part: str, path: Path, fps: float) -> dict[str, Any]:
    """Runs one part in this process; RSS and smaps before and after, in MB."""
    import os  # noqa: PLC0415

    import av  # noqa: F401, PLC0415 (imported before the first reading, as in motiond)
    import cv2  # noqa: F401, PLC0415
    import numpy  # noqa: F401, PLC0415

    from motiond.config import RecordConfig  # noqa: PLC0415
    from motiond.record.encoders import PyAVClipWriter  # noqa: PLC0415
    from scripts.bench.memory_probe import smaps_breakdown  # noqa: PLC0415
    from scripts.bench.procstat import memory  # noqa: PLC0415

    pid = os.getpid()
    kept: list[Any] = []
    with tempfile.TemporaryDirectory(prefix="motiond-memory-parts-") as scratch:
        if part.startswith("clip-writer-jpeg"):
            if part.endswith("-lookahead-10"):
                import motiond.record.encoders  # noqa: PLC0415

                motiond.record.encoders.X264_LOOKAHEAD = X264_PRESET_LOOKAHEAD
            jpegs = _jpegs(path)
            size = _jpeg_size(jpegs[0])
            clip = Path(scratch) / "clip.partial.mp4"

            def work() -> None:
                writer = PyAVClipWriter(
                    clip, RecordConfig(), width=size[0], height=size[1], fps=fps, origin=0.0
                )
                kept.append(writer)
                _write_clip(writer, jpegs, fps)
        else:
            container, stream = _prepare_decoder(path, detect=part.endswith("-detect"))
            size = (stream.codec_context.width, stream.codec_context.height)

            def work() -> None:
                _decode(container, stream, kept)

        before, smaps_before = memory(pid).rss_mb, smaps_breakdown(pid)
        thread = threading.Thread(target=work, name=part)
        thread.start()
        thread.join()
        after, smaps_after = memory(pid).rss_mb, smaps_breakdown(pid)
        if part.startswith("clip-writer-jpeg"):
            kept[0].close()
    parts = asdict(smaps_after)
    delta = {key: round(value - asdict(smaps_before)[key], 1) for key, value in parts.items()}
    return {
        "part": part,
        "size": f"{size[0]}x{size[1]}",
        "rss_before_mb": round(before, 1),
        "rss_after_mb": round(after, 1),
        "added_mb": round(after - before, 1),
        "smaps_added": delta,
    }


def _jpeg_size(jpeg: bytes) -> tuple[int, int]:
    from motiond.frames import jpeg_size  # noqa: PLC0415

    size = jpeg_size(jpeg)
    assert size is not None
    return size


def run_part(part: str, path: Path, fps: float) -> dict[str, Any]:
    argv = [sys.executable, "-m", "scripts.bench.memory_parts", "--child", part]
    argv += ["--input", str(path), "--fps", str(fps)]
    done = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"part": part, "error": done.stderr.strip().splitlines()[-1:]}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def inputs(args: argparse.Namespace, size_key: str) -> dict[str, Path]:
    """The files each part reads: bench_memory.py's streams, encoded here if not cached."""
    from scripts.bench.memory_media import (  # noqa: PLC0415
        FOOTAGE_S,
        FPS,
        SIZES,
        camera_stream,
        raw_video,
    )

    size = next(s for s in SIZES if s.key == size_key)
    h264 = camera_stream(args.video, args.media_dir, size.size, size.bitrate, "h264")
    hevc = camera_stream(args.video, args.media_dir, size.size, size.bitrate, "hevc")
    raw = raw_video(args.video, args.media_dir, size.size, FPS, FOOTAGE_S)
    return {
        "decode-h264-detect": h264.path,
        "decode-hevc-detect": hevc.path,
        "decode-hevc-clip": hevc.path,
        "clip-writer-jpeg": raw,
        "clip-writer-jpeg-lookahead-10": raw,
    }


def markdown(results: list[dict[str, Any]], sizes: list[str]) -> str:
    lines = [
        "| part (one camera's) | "
        + " | ".join(f"{s} MB (arenas / other anon)" for s in sizes)
        + " |",
        "|---|" + "---|" * len(sizes),
    ]
    for part in PARTS:
        cells = []
        for size in sizes:
            found = next((r for r in results if r["part"] == part and r["key"] == size), None)
            if found is None or "error" in found:
                cells.append(f"failed: {found and found.get('error')}")
                continue
            smaps = found["smaps_added"]
            cells.append(
                f"{found['added_mb']:.1f} ({smaps['arenas_mb']:.1f} / {smaps['other_anon_mb']:.1f})"
            )
        lines.append(f"| `{part}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", nargs="+", choices=["720p", "1080p"], default=["720p", "1080p"])
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--media-dir", type=Path, default=MEDIA_DIR)
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--child", choices=PARTS, help=argparse.SUPPRESS)
    parser.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--fps", type=float, default=15.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.input, args.fps)))
        return 0
    results = []
    for size in args.sizes:
        for part, path in inputs(args, size).items():
            results.append({"key": size, **run_part(part, path, args.fps)})
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(results, args.sizes), end="")
    return 1 if any("error" in result for result in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
