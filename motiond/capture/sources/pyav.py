"""IP cameras: RTSP(S) and HTTP(S) streams of coded video, read with libavformat (PyAV).

The camera's coded packets are kept as they came (for copy-mode clips and a cheap pre-roll
ring); when the source also decodes (``decode=True``, the stream used for detection), each packet
is decoded as cheaply as libavcodec allows: one thread, no loop filter (detection works on a
picture a quarter of the size, where its blocking does not show), and nothing converted; the
detector reads the Y plane. Open and read are bounded by ``capture.open_timeout`` and
``read_timeout``, so a stream that stalls with its TCP connection still open fails within
``read_timeout``: the open by libavformat's interrupt callback, an RTSP stream's reads by the
stall watchdog (capture/stall.py: PyAV's callback takes the GIL several times a packet), other
streams' reads by the callback.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from typing import Any, NamedTuple
from urllib.parse import SplitResult, urlsplit

import av

from motiond.capture import stall
from motiond.capture.nal import is_annex_b, parameter_sets
from motiond.capture.sources.base import Source, SourceError, describe_error, redact_url
from motiond.capture.streamclock import StreamClock
from motiond.config.capture import CaptureConfig
from motiond.frames import AudioPacket, AudioParams, Frame, StreamParams, VideoPacket

logger = logging.getLogger(__name__)

# Keep libavformat's probing at open short: cameras announce their streams in the SDP.
PROBE_OPTIONS = {"analyzeduration": "1000000", "probesize": "1000000", "fpsprobesize": "0"}
# RTSP: the SDP and the first packets say all we need (the size is also read from in-band
# parameter sets at keyframes); probing a megabyte decodes main-stream pictures nobody uses,
# for every camera at once when the daemon starts (a peak of memory with many cameras; see
# docs/benchmarks.md), and makes each open take longer.
RTSP_PROBE_OPTIONS = {"probesize": "32"}
ANNEX_B_FILTERS = {"h264": "h264_mp4toannexb", "hevc": "hevc_mp4toannexb"}


class PyAVSource(Source):
    """A network stream of coded video (H.264, H.265, MPEG-4, MJPEG ...) through libavformat.

    ``url`` defaults to ``capture.source``; a camera's sub stream is a second PyAVSource with
    its own URL. ``decode`` attaches a decoded picture to each frame (for detection and the live
    view); ``audio`` reads the first audio stream too and hands its packets over with the frames.
    """

    realtime = True

    def __init__(
        self,
        capture: CaptureConfig,
        stop: threading.Event,
        *,
        url: str | None = None,
        decode: bool = True,
        audio: bool = False,
    ) -> None:
        self._capture_config = capture
        self._stop = stop
        self.url = url or capture.source
        self.description = redact_url(self.url)
        self.decode = decode
        self.want_audio = audio
        self.codec = ""
        self.garbled_parts = 0
        self._container: Any = None
        self._packets: Iterator[Any] | None = None
        self._video: Any = None
        self._audio: Any = None
        self._audio_params: AudioParams | None = None
        self._to_annex_b: Any = None
        self._params: StreamParams | None = None
        self._video_clock = StreamClock()
        self._audio_clock = StreamClock()
        self._video_tick = Tick(0, 0)
        self._audio_tick = Tick(0, 0)
        self._pending_audio: list[AudioPacket] = []
        self._seq = 0
        self._size = (0, 0)
        self._guard: stall.StallGuard | None = None

    # -- open / close ---------------------------------------------------------------------------

    def open(self) -> None:
        self.close()
        capture = self._capture_config
        options = dict(PROBE_OPTIONS)
        parts = urlsplit(self.url)
        scheme = parts.scheme.lower()
        if scheme in ("rtsp", "rtsps"):
            options["rtsp_transport"] = capture.rtsp_transport
            options.update(RTSP_PROBE_OPTIONS)
        port = _port(parts)
        if scheme in ("rtsp", "rtsps") and parts.hostname and port is not None:
            # Read without PyAV's read timeout, which takes the GIL several times a packet: a
            # watchdog ends a read that stalls (capture/stall.py). Other streams (HTTP) keep
            # it: they may open more connections as they go (HLS).
            with stall.opening(parts.hostname, port) as before:
                container = self._open_container(options, read_timeout=None)
                connections = stall.find_connections(parts.hostname, port, before)
            if connections:
                self._guard = stall.watch(connections, capture.read_timeout)
            else:
                logger.debug("%s: its connection was not found; PyAV's timeout", self.description)
                container.close()
        if self._guard is None:
            container = self._open_container(options, read_timeout=capture.read_timeout)
        try:
            self._setup(container)
        except BaseException:
            container.close()
            self._close_guard()
            raise
        self._container = container
        logger.info(
            "opened %s: %s %dx%d%s%s",
            self.description,
            self.codec,
            self._size[0],
            self._size[1],
            ", decoding for detection" if self.decode else ", packets only",
            f", audio {self._audio_params.codec}" if self._audio_params else "",
        )

    def _open_container(self, options: dict[str, str], *, read_timeout: float | None) -> Any:
        capture = self._capture_config
        try:
            return av.open(self.url, options=options, timeout=(capture.open_timeout, read_timeout))
        except (av.FFmpegError, OSError) as exc:
            why = _why(exc, f"no answer for {capture.open_timeout:g} s")
            raise SourceError(f"cannot open {self.description}: {why}") from exc

    def _setup(self, container: Any) -> None:
        if not container.streams.video:
            raise SourceError(f"{self.description}: no video stream")
        video = container.streams.video[0]
        context = video.codec_context
        self.codec = context.name
        self._size = (context.width, context.height)
        extradata = bytes(context.extradata or b"")
        self._to_annex_b = None
        if self.codec in ANNEX_B_FILTERS and extradata and not is_annex_b(extradata):
            # MP4/Matroska carry length-prefixed units; the recorder and the ring use Annex B.
            self._to_annex_b = av.BitStreamFilterContext(
                ANNEX_B_FILTERS[self.codec], in_stream=video
            )
            extradata = b""  # the filter puts the parameter sets in front of keyframes
        self._params = StreamParams(
            codec=self.codec,
            parameter_sets=parameter_sets(self.codec, extradata),
            width=self._size[0],
            height=self._size[1],
        )
        if self.decode:
            context.thread_count = 1
            context.options = {"skip_loop_filter": "all"}
        self._video = video
        self._video_tick = Tick.of(video.time_base)
        streams = [video]
        self._audio = None
        self._audio_params = None
        if self.want_audio and container.streams.audio:
            audio = container.streams.audio[0]
            self._audio = audio
            self._audio_tick = Tick.of(audio.time_base)
            self._audio_params = AudioParams(
                codec=audio.codec_context.name,
                sample_rate=audio.codec_context.sample_rate,
                channels=audio.codec_context.channels,
                extradata=bytes(audio.codec_context.extradata or b""),
            )
            streams.append(audio)
        self._packets = container.demux(streams)
        self._video_clock = StreamClock()
        self._audio_clock = StreamClock()
        self._pending_audio = []
        self._seq = 0
        self.garbled_parts = 0

    def close(self) -> None:
        container, self._container = self._container, None
        self._packets = None
        if container is not None:
            try:
                container.close()
            except (av.FFmpegError, OSError) as exc:
                logger.debug("%s: close: %s", self.description, exc)
        self._close_guard()

    def _close_guard(self) -> None:
        guard, self._guard = self._guard, None
        if guard is not None:
            guard.close()

    # -- reading --------------------------------------------------------------------------------

    def read(self) -> Frame | None:
        """The next video frame (with the audio that came before it); None when the stream
        ended; SourceError when it failed or stalled for ``read_timeout``."""
        if self._packets is None:
            raise SourceError(f"{self.description} is not open")
        guard = self._guard
        timed_out = f"no packet for {self._capture_config.read_timeout:g} s"
        while True:
            if guard is not None:
                guard.reading(time.monotonic())
            try:
                packet = next(self._packets)
            except (StopIteration, av.FFmpegError, OSError) as exc:
                # The watchdog shut the connection down: whatever the read made of it, a timeout.
                if guard is not None and guard.fired:
                    raise SourceError(f"{self.description}: timed out ({timed_out})") from exc
                if isinstance(exc, StopIteration | av.EOFError):
                    return None
                raise SourceError(f"{self.description}: {_why(exc, timed_out)}") from exc
            finally:
                if guard is not None:
                    guard.done()
            if packet.size == 0:
                continue  # a demuxer's flush packet
            arrival, wall_now = time.monotonic(), time.time()
            if self._audio is not None and packet.stream.index == self._audio.index:
                self._take_audio(packet, arrival)
                continue
            frame = self._video_frame(packet, arrival, wall_now)
            if frame is not None:
                return frame

    def _video_frame(self, packet: Any, arrival: float, wall_now: float) -> Frame | None:
        for coded in self._annex_b(packet):
            data = bytes(coded)
            keyframe = bool(coded.is_keyframe)
            params = self._params_for(data, keyframe)
            tick = self._video_tick
            pts, dts = coded.pts, coded.dts
            stamp = tick.seconds(dts if dts is not None else pts)
            mono = self._video_clock.map(stamp, arrival)
            pts_delay = 0.0
            if pts is not None and dts is not None:
                pts_delay = max(0.0, tick.seconds(pts - dts) or 0.0)
            picture = self._decode(coded) if self.decode else None
            if picture is not None and (picture.width, picture.height) != self._size:
                self._size = (picture.width, picture.height)
            audio, self._pending_audio = tuple(self._pending_audio), []
            frame = Frame(
                seq=self._seq,
                mono=mono,
                wall=wall_now - (arrival - mono),
                width=self._size[0],
                height=self._size[1],
                packet=VideoPacket(data, keyframe, params, pts_delay),
                picture=picture,
                audio=audio,
            )
            self._seq += 1
            return frame
        return None

    def _annex_b(self, packet: Any) -> list[Any]:
        if self._to_annex_b is None:
            return [packet]
        try:
            return list(self._to_annex_b.filter(packet))
        except av.FFmpegError:
            self.garbled_parts += 1
            return []

    def _params_for(self, data: bytes, keyframe: bool) -> StreamParams:
        """The stream's parameters; new ones when a keyframe brings different parameter sets."""
        current = self._params
        assert current is not None
        if not keyframe:
            return current
        in_band = parameter_sets(self.codec, data)
        if not in_band or in_band == current.parameter_sets:
            return current
        if current.parameter_sets:
            logger.info("%s: the camera changed its stream parameters", self.description)
        width, height = _decoded_size(self.codec, in_band, data) or self._size
        self._size = (width, height)
        self._params = StreamParams(self.codec, in_band, width, height)
        return self._params

    def _decode(self, packet: Any) -> Any:
        try:
            pictures = self._video.codec_context.decode(packet)
        except av.FFmpegError as exc:
            self.garbled_parts += 1
            logger.debug("%s: undecodable packet: %s", self.description, exc)
            return None
        return pictures[-1] if pictures else None

    def _take_audio(self, packet: Any, arrival: float) -> None:
        assert self._audio_params is not None
        tick = self._audio_tick
        stamp = tick.seconds(packet.pts)
        duration = (tick.seconds(packet.duration) or 0.0) if packet.duration else 0.0
        self._pending_audio.append(
            AudioPacket(
                bytes(packet), self._audio_clock.map(stamp, arrival), duration, self._audio_params
            )
        )
        if len(self._pending_audio) > 256:  # video stalled while audio flows: keep it bounded
            del self._pending_audio[:128]


def _why(exc: BaseException, timed_out: str) -> str:
    """A libavformat error in words: its message without the URL (which may hold a password);
    ``timed_out`` for the interrupt that enforces our timeouts (timed out, in the log)."""
    if isinstance(exc, av.ExitError | TimeoutError):
        return f"timed out ({timed_out})"
    if isinstance(exc, av.FFmpegError):
        return exc.strerror or type(exc).__name__
    return describe_error(exc)


DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322}


def _port(parts: SplitResult) -> int | None:
    """The TCP port a stream's URL connects to (None: not a URL of a TCP stream)."""
    try:
        port = parts.port
    except ValueError:
        return None
    return port if port is not None else DEFAULT_PORTS.get(parts.scheme.lower())


class Tick(NamedTuple):
    """A stream's time base as two integers: timestamps to seconds without ``Fraction``s
    (PyAV makes a new one for each ``time_base`` read, and the arithmetic more: five a packet,
    on every camera's two streams). A demuxed packet's time base is its stream's, and the
    Annex B filter keeps it. ``stamp * numerator / denominator`` is the same float as
    ``float(stamp * Fraction(numerator, denominator))``: both are the exact quotient, rounded
    once."""

    numerator: int
    denominator: int

    @classmethod
    def of(cls, time_base: Fraction | None) -> Tick:
        """The tick of ``time_base``; none (no timestamps) where the stream has none."""
        if time_base is None or time_base.denominator == 0:
            return cls(0, 0)
        return cls(time_base.numerator, time_base.denominator)

    def seconds(self, stamp: int | None) -> float | None:
        if stamp is None or not self.denominator:
            return None
        return stamp * self.numerator / self.denominator


def _decoded_size(codec: str, parameter_sets: bytes, keyframe: bytes) -> tuple[int, int] | None:
    """The picture size of a keyframe, decoded once (after a change of parameters only)."""
    try:
        decoder: Any = av.CodecContext.create(codec, "r")
        pictures = decoder.decode(av.Packet(parameter_sets + keyframe))
        pictures += decoder.decode(None)
    except av.FFmpegError:
        return None
    if not pictures:
        return None
    return pictures[0].width, pictures[0].height
