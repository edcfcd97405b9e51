"""A real RTSP camera for tests and benchmarks: GStreamer's rtsp-server serving video files.

Run it with Debian's ``/usr/bin/python3`` (it has ``gi``; a venv does not)::

    /usr/bin/python3 tests/rtsp_server.py --port 8554 --mount /main=main.mp4 --mount /sub=sub.mp4

Each mount serves an MP4/MOV/MKV file (H.264 or H.265 video, optionally one audio track:
AAC as ``pay1`` through rtpmp4gpay, G.711 mu-law through rtppcmupay) **without re-encoding**:
the file's coded pictures go out as they are, paced in real time, with SPS/PPS (and VPS)
repeated in-band before every keyframe as cameras do. Listens on 127.0.0.1 only (RTP over TCP
interleaved or UDP, as the client asks).

How it behaves like a camera:

- **One clock for all mounts.** The first client of any mount starts the server's timeline;
  a client of another mount joining while it runs gets that mount's file from the same point
  of the timeline (from the next keyframe, so it may wait up to a GOP for its first packet).
  A main + sub pair cut from the same timeline therefore stays aligned. When no mount has a
  client left, the timeline resets: the next client gets the files from their start.
- Clients of the same mount share one stream (``set_shared``); a late one joins mid-GOP.
- ``--mount /main=a.mp4,b.mp4`` plays the files one after the other in one session (same
  codecs): the parameter sets, or the resolution, change mid-stream at b's first keyframe.
- ``--loop``: files repeat forever and timestamps keep increasing across the loop point.
  Without it a stream ends (clients see EOF) at the end of its file.
- **Stalls** with every connection left open: ``SIGUSR1`` stops sending on every stream,
  ``SIGUSR2`` resumes; ``--stall-after S`` does what SIGUSR1 does, once, when a stream reaches
  S seconds. After a stall, timestamps jump by the stall's length (the camera's clock kept
  running), as from a camera whose encoder hung while its RTSP server lives on.
- ``SIGTERM``/``SIGINT`` stop it (exit 0).

Stdout (line-buffered, one event per line; the first is the only one a caller must wait for)::

    READY rtsp://127.0.0.1:8554
    EPOCH 1234.500000               # a new timeline starts (CLOCK_MONOTONIC seconds)
    PLAY /main 1234.567890          # the mount's stream started sending (same clock)
    LOOP /main 1                    # the file restarted (count)
    END /main                       # the file ended (no --loop)
    STALL | RESUME                  # SIGUSR1 / SIGUSR2 / --stall-after
    STOP /main                      # its last client left

Files are read into memory once at start (about bitrate x duration per mount). Exit 2 on bad
arguments or an unreadable file, 3 if the port cannot be bound.
"""

from __future__ import annotations

import argparse
import bisect
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstApp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstApp, GstRtspServer  # noqa: E402, F401 (GstApp: appsink methods)

SECOND = Gst.SECOND

# caps name -> (parser launch fragment, caps the parser outputs for the payloader)
_PARSERS = {
    "video/x-h264": (
        "h264parse config-interval=-1",
        "video/x-h264,stream-format=avc,alignment=au",
    ),
    "video/x-h265": (
        "h265parse config-interval=-1",
        "video/x-h265,stream-format=hvc1,alignment=au",
    ),
    "audio/mpeg": ("aacparse", "audio/mpeg,mpegversion=4,stream-format=raw"),
    "audio/x-mulaw": ("identity", "audio/x-mulaw"),
}
_PAYLOADERS = {
    "video/x-h264": "rtph264pay pt=96",
    "video/x-h265": "rtph265pay pt=96",
    "audio/mpeg": "rtpmp4gpay pt=97",
    "audio/x-mulaw": "rtppcmupay pt=0",
}
_DEMUXERS = {".mp4": "qtdemux", ".mov": "qtdemux", ".m4v": "qtdemux", ".mkv": "matroskademux"}


_stdout_lock = threading.Lock()  # one event line at a time: feeders and the main loop emit


def emit(line: str) -> None:
    with _stdout_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


# ---------------------------------------------------------------------------------------------
# Reading a file's coded samples


@dataclass(frozen=True)
class Sample:
    pts: int  # ns from the start of the file
    duration: int
    keyframe: bool
    data: bytes
    caps: Gst.Caps | None = None  # new caps from this sample on (the next file of a mount)


@dataclass
class Track:
    caps: Gst.Caps
    samples: list[Sample] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return str(self.caps.get_structure(0).get_name())

    def payloader(self) -> str:
        return _PAYLOADERS[self.kind]

    def caps_at(self, index: int) -> Gst.Caps:
        """The caps in force at sample ``index`` (they change where a mount's next file starts)."""
        for sample in reversed(self.samples[: index + 1]):
            if sample.caps is not None:
                return sample.caps
        return self.caps


@dataclass
class Media:
    """One file, parsed: its video track, an optional audio track, and its loop period."""

    video: Track
    audio: Track | None
    period: int  # ns: the video's length; audio follows the video's timeline

    def keyframe_at_or_after(self, position: int) -> int:
        """Index of the first video keyframe with pts >= position (len(samples) if none)."""
        starts = [i for i, sample in enumerate(self.video.samples) if sample.keyframe]
        times = [self.video.samples[i].pts for i in starts]
        at = bisect.bisect_left(times, position)
        return starts[at] if at < len(starts) else len(self.video.samples)


def read_media(path: Path) -> Media:
    """Demux and parse ``path`` into memory (no decoding)."""
    demuxer = _DEMUXERS.get(path.suffix.lower())
    if demuxer is None:
        raise ValueError(f"{path}: not an MP4/MOV/MKV file")
    pipeline = Gst.parse_launch(f"filesrc name=src ! {demuxer} name=demux")
    pipeline.get_by_name("src").set_property("location", str(path))
    sinks: dict[str, Gst.Element] = {}

    def on_pad(_demux: Gst.Element, pad: Gst.Pad) -> None:
        caps = pad.get_current_caps() or pad.query_caps(None)
        kind = caps.get_structure(0).get_name()
        if kind not in _PARSERS or kind.split("/")[0] in {k.split("/")[0] for k in sinks}:
            return  # unsupported, or a second track of a kind already taken
        parser, parsed_caps = _PARSERS[kind]
        branch = Gst.parse_bin_from_description(
            f"queue ! {parser} ! {parsed_caps} ! appsink name=sink sync=false", True
        )
        pipeline.add(branch)
        branch.sync_state_with_parent()
        pad.link(branch.get_static_pad("sink"))
        sinks[kind] = branch.get_by_name("sink")

    pipeline.get_by_name("demux").connect("pad-added", on_pad)
    tracks: dict[str, Track] = {}
    pipeline.set_state(Gst.State.PLAYING)
    bus = pipeline.get_bus()
    try:
        while True:
            for kind, sink in list(sinks.items()):
                while (sample := sink.try_pull_sample(0)) is not None:
                    track = tracks.setdefault(kind, Track(sample.get_caps()))
                    track.samples.append(_sample(sample.get_buffer()))
            message = bus.timed_pop_filtered(
                10 * Gst.MSECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR
            )
            if message is None:
                continue
            if message.type == Gst.MessageType.ERROR:
                error, debug = message.parse_error()
                raise ValueError(f"{path}: {error.message} ({debug})")
            for kind, sink in sinks.items():  # EOS: drain what is left
                while (sample := sink.try_pull_sample(0)) is not None:
                    track = tracks.setdefault(kind, Track(sample.get_caps()))
                    track.samples.append(_sample(sample.get_buffer()))
            break
    finally:
        pipeline.set_state(Gst.State.NULL)
    videos = [t for k, t in tracks.items() if k.startswith("video/")]
    audios = [t for k, t in tracks.items() if k.startswith("audio/")]
    if not videos or not videos[0].samples:
        raise ValueError(f"{path}: no H.264/H.265 video track")
    video = videos[0]
    first = video.samples[0].pts
    for track in [video, *audios]:  # timeline from the first video frame
        track.samples = [
            Sample(s.pts - first, s.duration, s.keyframe, s.data)
            for s in track.samples
            if s.pts >= first
        ]
    last = video.samples[-1]
    frame = last.duration or (last.pts // max(1, len(video.samples) - 1))
    return Media(video, audios[0] if audios else None, period=last.pts + frame)


def concatenate(paths: list[Path], medias: list[Media]) -> Media:
    """One mount's files played one after the other, as one stream whose caps change.

    Each file's first samples carry its caps: a resolution or parameter-set change in the
    middle of a session, as from a camera whose settings changed.
    """
    if len(medias) == 1:
        return medias[0]
    kinds = {(m.video.kind, m.audio.kind if m.audio else None) for m in medias}
    if len(kinds) > 1:
        names = ", ".join(str(p) for p in paths)
        raise ValueError(f"{names}: the files of one mount need the same codecs, got {kinds}")
    video = Track(medias[0].video.caps)
    audio = Track(medias[0].audio.caps) if medias[0].audio else None
    start = 0
    for media in medias:
        for track, part in ((video, media.video), (audio, media.audio)):
            if track is None or part is None:
                continue
            shifted = [
                Sample(s.pts + start, s.duration, s.keyframe, s.data, part.caps if i == 0 else None)
                for i, s in enumerate(part.samples)
            ]
            track.samples += shifted
        start += media.period
    return Media(video, audio, period=start)


def _sample(buffer: Gst.Buffer) -> Sample:
    pts = buffer.pts if buffer.pts != Gst.CLOCK_TIME_NONE else buffer.dts
    duration = buffer.duration if buffer.duration != Gst.CLOCK_TIME_NONE else 0
    keyframe = not buffer.has_flags(Gst.BufferFlags.DELTA_UNIT)
    return Sample(pts, duration, keyframe, buffer.extract_dup(0, buffer.get_size()))


# ---------------------------------------------------------------------------------------------
# The server's shared state: one timeline, stalls


class Camera:
    """What every stream shares: the timeline's origin and whether sending is stalled.

    ``_lock`` protects ``_active``, ``_epoch`` and ``_stall_*``; taken by the GLib main loop
    (signals, media coming and going) and by every feeder thread.
    """

    def __init__(self, stall_after: float | None = None) -> None:
        self._lock = threading.Lock()
        self._stall_after = None if stall_after is None else int(stall_after * SECOND)
        self._active = 0
        self._epoch = 0  # monotonic ns when the first active stream started
        self._flowing = threading.Event()
        self._flowing.set()
        self._stalled_at = 0
        self._stall_total = 0  # ns spent stalled since the epoch

    def join(self) -> int:
        """A stream starts: its position (ns) on the timeline."""
        with self._lock:
            now = time.monotonic_ns()
            self._active += 1
            if self._active == 1:
                self._epoch, self._stall_total = now, 0
                emit(f"EPOCH {now / 1e9:.6f}")
                if not self._flowing.is_set():
                    self._stalled_at = now
                return 0
            stalled = now - self._stalled_at if not self._flowing.is_set() else 0
            return now - self._epoch - self._stall_total - stalled

    def leave(self) -> None:
        with self._lock:
            self._active -= 1

    def stall(self) -> None:
        with self._lock:
            if self._flowing.is_set():
                self._stalled_at = time.monotonic_ns()
                self._flowing.clear()
                emit("STALL")

    def reached(self, stream_time: int) -> None:
        """A stream is about to send ``stream_time``: stall there once if --stall-after says so."""
        if self._stall_after is not None and stream_time >= self._stall_after:
            self._stall_after = None
            self.stall()

    def resume(self) -> None:
        with self._lock:
            if not self._flowing.is_set():
                self._stall_total += time.monotonic_ns() - self._stalled_at
                self._flowing.set()
                emit("RESUME")

    def wait_flowing(self, stopping: threading.Event) -> int:
        """Block while stalled; returns the ns spent stalled by this call."""
        if self._flowing.is_set():
            return 0
        started = time.monotonic_ns()
        while not self._flowing.wait(0.1):
            if stopping.is_set():
                break
        return time.monotonic_ns() - started


# ---------------------------------------------------------------------------------------------
# Serving


class Feeder(threading.Thread):
    """Pushes one track's samples into its appsrc, looping, with continuous timestamps.

    The appsrc holds at most one buffer (``max-bytes=1``, blocking push), so a stall stops the
    stream within a frame; the sink downstream paces the buffers in real time.
    """

    def __init__(
        self,
        feed: MediaFeed,
        appsrc: Gst.Element,
        track: Track,
        start_index: int,
        offset: int,
    ) -> None:
        super().__init__(name=f"feed {feed.mount} {track.kind}", daemon=True)
        self.feed = feed
        self.appsrc = appsrc
        self.track = track
        self.start_index = start_index
        self.offset = offset  # ns added to the file's pts (loops, stalls, joining late)

    def run(self) -> None:
        feed, samples, period = self.feed, self.track.samples, self.feed.media.period
        is_video = self.track is feed.media.video
        index, loops = self.start_index, 0
        if index < len(samples):
            self.appsrc.set_property("caps", self.track.caps_at(index))
        while not feed.stopping.is_set():
            if index >= len(samples):
                if not feed.loop:
                    self.appsrc.emit("end-of-stream")
                    if is_video:
                        emit(f"END {feed.mount}")
                    return
                index, loops, self.offset = 0, loops + 1, self.offset + period
                if is_video:
                    emit(f"LOOP {feed.mount} {loops}")
            sample = samples[index]
            index += 1
            if sample.pts >= period:
                continue  # audio running past the video's end
            stream_time = sample.pts + self.offset
            feed.camera.reached(stream_time)
            self.offset += feed.camera.wait_flowing(feed.stopping)
            if sample.caps is not None:
                self.appsrc.set_property("caps", sample.caps)
            buffer = Gst.Buffer.new_wrapped(sample.data)
            buffer.pts = buffer.dts = sample.pts + self.offset
            buffer.duration = sample.duration or Gst.CLOCK_TIME_NONE
            if not sample.keyframe:
                buffer.set_flags(Gst.BufferFlags.DELTA_UNIT)
            if self.appsrc.emit("push-buffer", buffer) != Gst.FlowReturn.OK:
                return  # flushing: the media is shutting down


class MediaFeed:
    """The feeders of one media (one shared stream of one mount)."""

    def __init__(
        self,
        mount: str,
        media: Media,
        camera: Camera,
        element: Gst.Element,
        *,
        loop: bool,
    ) -> None:
        self.mount = mount
        self.media = media
        self.camera = camera
        self.loop = loop
        self.stopping = threading.Event()
        self.video_src = element.get_by_name("vsrc")
        self.audio_src = element.get_by_name("asrc")
        self._lock = threading.Lock()  # protects _feeders; need-data threads, main loop
        self._feeders: list[Feeder] = []
        self.video_src.connect("need-data", self._start)

    def _start(self, _appsrc: Gst.Element, _length: int) -> None:
        with self._lock:
            if self._feeders or self.stopping.is_set():
                return
            position = self.camera.join()
            loops, position = divmod(position, self.media.period)
            if loops and not self.loop:
                position = self.media.period  # the file is over on the timeline
            start = self.media.keyframe_at_or_after(position)
            samples = self.media.video.samples
            begin = samples[start].pts if start < len(samples) else self.media.period
            offset = -position  # time 0 is now: the keyframe goes out when the timeline reaches it
            self._feeders.append(Feeder(self, self.video_src, self.media.video, start, offset))
            if self.audio_src is not None and self.media.audio is not None:
                audio = self.media.audio.samples
                first = bisect.bisect_left([s.pts for s in audio], begin)
                self._feeders.append(Feeder(self, self.audio_src, self.media.audio, first, offset))
        for feeder in self._feeders:
            feeder.start()

    def stop(self) -> None:
        self.stopping.set()
        with self._lock:
            if self._feeders:
                self.camera.leave()


class CameraFactory(GstRtspServer.RTSPMediaFactory):  # type: ignore[misc]
    """Builds the serving pipeline of one mount: appsrc -> payloader, per track."""

    def __init__(self, mount: str, media: Media, camera: Camera, *, loop: bool) -> None:
        super().__init__()
        self.mount = mount
        self.media = media
        self.camera = camera
        self.loop = loop
        self.set_shared(True)
        self.connect("media-configure", self._configure)

    def do_create_element(self, _url: GstRtspServer.RTSPUrl) -> Gst.Element:
        video = self.media.video
        parts = [
            f"appsrc name=vsrc format=time max-bytes=1 block=true ! {video.payloader()} name=pay0"
        ]
        if self.media.audio is not None:
            parts.append(
                f"appsrc name=asrc format=time max-bytes=1 block=true ! "
                f"{self.media.audio.payloader()} name=pay1"
            )
        element = Gst.parse_launch("( " + "  ".join(parts) + " )")
        element.get_by_name("vsrc").set_property("caps", video.caps)
        if self.media.audio is not None:
            element.get_by_name("asrc").set_property("caps", self.media.audio.caps)
        return element

    def _configure(
        self, _factory: GstRtspServer.RTSPMediaFactory, media: GstRtspServer.RTSPMedia
    ) -> None:
        feed = MediaFeed(
            self.mount,
            self.media,
            self.camera,
            media.get_element(),
            loop=self.loop,
        )

        def on_state(_media: GstRtspServer.RTSPMedia, state: int) -> None:
            if state == Gst.State.PLAYING and not feed.stopping.is_set():
                emit(f"PLAY {self.mount} {time.monotonic():.6f}")

        def on_unprepared(_media: GstRtspServer.RTSPMedia) -> None:
            feed.stop()
            emit(f"STOP {self.mount}")

        media.connect("new-state", on_state)
        media.connect("unprepared", on_unprepared)


# ---------------------------------------------------------------------------------------------


def parse_mount(text: str) -> tuple[str, list[Path]]:
    mount, sep, paths = text.partition("=")
    if not sep or not mount.startswith("/") or not paths:
        raise argparse.ArgumentTypeError(f"expected /PATH=FILE[,FILE...], got {text!r}")
    return mount, [Path(path) for path in paths.split(",")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=0, help="0: any free port (default)")
    parser.add_argument(
        "--mount",
        type=parse_mount,
        action="append",
        required=True,
        metavar="/PATH=FILE[,FILE...]",
        help="serve FILE (several: one after the other, in one stream) at rtsp://.../PATH",
    )
    parser.add_argument("--loop", action="store_true", help="repeat the files forever")
    parser.add_argument(
        "--stall-after", type=float, metavar="S", help="stop sending after S s (SIGUSR2 resumes)"
    )
    args = parser.parse_args(argv)

    Gst.init(None)
    camera = Camera(args.stall_after)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    for mount, paths in args.mount:
        try:
            media = concatenate(paths, [read_media(path) for path in paths])
        except (ValueError, GLib.Error) as exc:
            print(f"rtsp_server: {exc}", file=sys.stderr)
            return 2
        factory = CameraFactory(mount, media, camera, loop=args.loop)
        mounts.add_factory(mount, factory)
    if server.attach(None) == 0:
        print(f"rtsp_server: cannot listen on 127.0.0.1:{args.port}", file=sys.stderr)
        return 3
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, lambda: loop.quit() or False)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, lambda: loop.quit() or False)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGUSR1, lambda: camera.stall() or True)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGUSR2, lambda: camera.resume() or True)
    emit(f"READY rtsp://127.0.0.1:{server.get_bound_port()}")
    loop.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
