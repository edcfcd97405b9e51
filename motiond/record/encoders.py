"""Clip writers: a clip's frames to a fragmented MP4 file. Used by the recorder's thread only.

- ``CopyClipWriter`` writes an IP camera's own coded packets (H.264, H.265), untouched.
- ``PyAVClipWriter`` encodes H.264 (libx264) or VP9, from camera JPEGs, raw pictures, or coded
  packets it decodes itself (a camera stream a browser cannot play, such as H.265 or MPEG-4).
- ``OpenCVClipWriter`` writes mp4v (plays in VLC, not in browsers).

Every frame they get is compressed (see frames.py) and is decoded here, late, on the recorder's
thread; nothing waits in a queue as a raw picture. Timestamps come from the frames' capture
times. Audio, when recorded, rides along with the frames (``AudioTrack``).
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import av
import cv2
import numpy as np
from av.video.frame import PictureType

from motiond.config.record import RecordConfig
from motiond.frames import (
    AudioPacket,
    AudioParams,
    Frame,
    FrameDecodeError,
    StreamParams,
    decode_jpeg_to_yuv,
)

logger = logging.getLogger(__name__)

TIME_BASE = Fraction(1, 90000)
FRAGMENTED_MP4 = "frag_keyframe+empty_moov+default_base_moof"
# A fragment per keyframe, and one at least every quarter second between them. libavformat
# holds a fragment in memory until it is written, in a buffer as large as the largest one yet
# (a keyframe and what follows it): 1 s fragments of a 3 Mbit/s camera kept about 0.6 MB per
# clip being written. A crash loses at most the fragment in progress.
MP4_OPTIONS = {"movflags": FRAGMENTED_MP4, "flush_packets": "1", "frag_duration": "250000"}
# libx264's own buffering, bounded: a short look-ahead (its frames are most of the encoder's
# memory: 184 MB peak at 1080p with the veryfast default of 10, 141 MB with 3) and one or two
# threads (a camera has its own encoder thread already).
X264_LOOKAHEAD = "3"
X264_THREADS_UP_TO_720P = "1"
X264_THREADS_ABOVE_720P = "2"
# A copied clip's header: the camera's parameter sets, read without decoding a picture.
PROBE_WITHOUT_DECODING = {"skip_frame": "all"}


# Burns text into a picture: (BGR image, wall time of the picture) -> BGR image.
Overlay = Callable[[np.ndarray, float], np.ndarray]


class ClipWriter(Protocol):
    codec_name: str  # as ffprobe names it: h264, hevc, vp9, mpeg4
    width: int
    height: int

    def write(self, frame: Frame) -> None: ...

    def close(self) -> None: ...


def open_mp4(path: Path) -> Any:
    # Flushing each packet puts every finished fragment on disk, not in a buffer.
    return av.open(str(path), "w", format="mp4", options=dict(MP4_OPTIONS))


def _pts(mono: float, origin: float) -> int:
    return round((mono - origin) / TIME_BASE)


class CopyClipWriter:
    """The camera's own H.264/H.265 packets in fragmented MP4, timed by their capture times.

    The first frame must be a keyframe. The camera's parameter sets go into the file's header
    (an H.265 clip is tagged ``hvc1``, the tag Safari plays).
    """

    def __init__(
        self, path: Path, first: Frame, origin: float, audio: AudioParams | None = None
    ) -> None:
        assert first.packet is not None and first.packet.keyframe
        params = first.packet.params
        self.codec_name = params.codec
        self.origin = origin
        self.last_dts = -1
        self.container: Any = open_mp4(path)
        try:
            self.stream = add_stream_like(self.container, params, first.packet.data)
            self.width = self.stream.codec_context.width or first.width
            self.height = self.stream.codec_context.height or first.height
            self.audio = AudioTrack(self.container, origin, audio) if audio else None
        except BaseException:
            self.container.close()
            raise

    def write(self, frame: Frame) -> None:
        packet = frame.packet
        assert packet is not None
        dts = max(_pts(frame.mono, self.origin), self.last_dts + 1)
        self.last_dts = dts
        coded = av.Packet(packet.data)
        coded.stream = self.stream
        coded.time_base = TIME_BASE
        coded.dts = dts
        coded.pts = dts + round(packet.pts_delay / TIME_BASE)
        coded.is_keyframe = packet.keyframe
        self.container.mux(coded)
        if self.audio is not None:
            self.audio.write(frame.audio)

    def close(self) -> None:
        try:
            if self.audio is not None:
                self.audio.flush()
        finally:
            self.container.close()


def add_stream_like(container: Any, params: StreamParams, keyframe: bytes) -> Any:
    """An output stream for packets of ``params``, its header from the camera's parameter sets.

    libavformat learns a stream's parameters by reading it; a keyframe with its parameter sets,
    read as a raw elementary stream from memory, is enough, and is all this thread has. Its
    probe decodes nothing (``skip_frame``): the parameter sets give everything the file's
    header holds (the same bytes as with the keyframe decoded), and the decode cost a
    full-size picture's time and memory on every clip start.
    """
    probe = av.open(
        io.BytesIO(params.parameter_sets + keyframe),
        "r",
        format=params.codec,
        options=PROBE_WITHOUT_DECODING,
    )
    try:
        stream = container.add_stream_from_template(probe.streams.video[0])
    finally:
        probe.close()
    stream.time_base = TIME_BASE
    if params.parameter_sets:
        stream.codec_context.extradata = params.parameter_sets
    if params.codec == "hevc":
        stream.codec_context.codec_tag = "hvc1"
    return stream


class PyAVClipWriter:
    """H.264 (libx264) or VP9 in fragmented MP4, timestamps from the frames' capture times.

    Fragmented, with a keyframe about every second, so the file plays while it is being written
    and a crash leaves everything up to the last complete fragment playable.
    """

    def __init__(
        self,
        path: Path,
        record: RecordConfig,
        *,
        width: int,
        height: int,
        fps: float,
        origin: float,
        audio: AudioParams | None = None,
        overlay: Overlay | None = None,
    ) -> None:
        # yuv420p needs even dimensions; an odd pixel row or column is cropped.
        self.width = width - width % 2
        self.height = height - height % 2
        self.origin = origin
        self.last_pts = -1
        gop = max(1, round(fps))
        self.codec_name: str = record.codec
        self.decoder = PictureDecoder(self.width, self.height, overlay)
        self.container: Any = open_mp4(path)
        try:
            self.stream = self._add_video_stream(record, gop)
            self.audio = AudioTrack(self.container, origin, audio) if audio else None
        except BaseException:
            self.container.close()
            raise

    def _add_video_stream(self, record: RecordConfig, gop: int) -> Any:
        if record.codec == "vp9":
            options = {
                "deadline": "realtime",
                "cpu-used": "8",
                "row-mt": "1",
                "crf": str(record.crf),
                "b": "0",
                "g": str(gop),
            }
            stream = self.container.add_stream("libvpx-vp9", rate=gop, options=options)
        else:
            # No B-frames: timestamps start at 0 (fragmented MP4 has no edit list to hide
            # a reorder delay) and every fragment decodes in capture order.
            large = self.width * self.height > 1280 * 720
            options = {
                "preset": record.preset,
                "crf": str(record.crf),
                "g": str(gop),
                "bf": "0",
                "threads": X264_THREADS_ABOVE_720P if large else X264_THREADS_UP_TO_720P,
                "rc-lookahead": X264_LOOKAHEAD,
                "sync-lookahead": "0",
            }
            if record.preset == "ultrafast":
                options["tune"] = "zerolatency"
            stream = self.container.add_stream("libx264", rate=gop, options=options)
        stream.width = self.width
        stream.height = self.height
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = TIME_BASE
        return stream

    def write(self, frame: Frame) -> None:
        for picture, mono in self.decoder.pictures(frame):
            pts = max(_pts(mono, self.origin), self.last_pts + 1)  # strictly increasing
            self.last_pts = pts
            picture.pts = pts
            picture.time_base = TIME_BASE
            for packet in self.stream.encode(picture):
                self.container.mux(packet)
        if self.audio is not None:
            self.audio.write(frame.audio)

    def close(self) -> None:
        try:
            for packet in self.stream.encode(None):
                self.container.mux(packet)
            if self.audio is not None:
                self.audio.flush()
        finally:
            self.container.close()


class PictureDecoder:
    """A clip's compressed frames back to YUV pictures of one size, with their capture times:
    camera JPEGs through libavcodec (no BGR round trip; the picture the capture thread decoded
    when the frame carries one), coded packets through a decoder of their codec (fed from the
    clip's first keyframe on), raw pictures as they are."""

    def __init__(self, width: int, height: int, overlay: Overlay | None = None) -> None:
        self.width = width
        self.height = height
        self.overlay = overlay
        self._jpeg_decoder: Any = None
        self._packet_decoder: Any = None
        self._decoder_params: StreamParams | None = None

    def pictures(self, frame: Frame) -> list[tuple[Any, float]]:
        if frame.image is not None:
            found = [(av.VideoFrame.from_ndarray(frame.image, format="bgr24"), frame.mono)]
        elif frame.jpeg is not None and frame.picture is not None:
            found = [(frame.picture, frame.mono)]  # decoded on the capture thread already
        elif frame.jpeg is not None:
            if self._jpeg_decoder is None:
                self._jpeg_decoder = av.CodecContext.create("mjpeg", "r")
            found = [(decode_jpeg_to_yuv(frame.jpeg, self._jpeg_decoder), frame.mono)]
        else:
            found = self._decode_packet(frame)
        if self.overlay is not None:
            found = [(self._burn(picture, mono, frame), mono) for picture, mono in found]
        return found

    def _burn(self, picture: Any, mono: float, frame: Frame) -> Any:
        assert self.overlay is not None
        image = self.overlay(picture.to_ndarray(format="bgr24"), frame.wall + (mono - frame.mono))
        return av.VideoFrame.from_ndarray(image, format="bgr24")

    def _decode_packet(self, frame: Frame) -> list[tuple[Any, float]]:
        packet = frame.packet
        assert packet is not None
        if self._decoder_params is not packet.params:
            self._decoder_params = packet.params
            self._packet_decoder = av.CodecContext.create(packet.params.codec, "r")
            if packet.params.parameter_sets:
                self._packet_decoder.extradata = packet.params.parameter_sets
            self._packet_decoder.thread_count = 1
        coded = av.Packet(packet.data)
        coded.time_base = TIME_BASE
        coded.pts = round((frame.mono + packet.pts_delay) / TIME_BASE)
        coded.dts = round(frame.mono / TIME_BASE)
        try:
            pictures = self._packet_decoder.decode(coded)
        except av.FFmpegError as exc:
            raise FrameDecodeError(str(exc)) from None
        result = []
        for decoded in pictures:
            mono = float(decoded.pts * TIME_BASE) if decoded.pts is not None else frame.mono
            picture = decoded
            if (decoded.width, decoded.height) != (self.width, self.height) or (
                decoded.format.name != "yuv420p"
            ):
                picture = decoded.reformat(self.width, self.height, "yuv420p")
            picture.pict_type = PictureType.NONE
            result.append((picture, mono))
        return result


class AudioTrack:
    """A clip's sound: the camera's AAC copied, anything else (G.711 ...) transcoded to AAC.

    Its stream is added when the clip's file is created (before the header is written), from
    the format of the camera's audio. Packets from before the clip's first frame are dropped.
    """

    def __init__(self, container: Any, origin: float, params: AudioParams) -> None:
        self.container = container
        self.origin = origin
        self.params = params
        self.rate = params.sample_rate
        self._decoder: Any = None
        self._resampler: Any = None
        self._next_pts = 0
        layout = "stereo" if params.channels == 2 else "mono"
        if params.codec == "aac" and params.extradata:
            probe = av.open(io.BytesIO(adts_frame(params, b"\x00" * 8)), "r", format="aac")
            try:
                self.stream = container.add_stream_from_template(probe.streams.audio[0])
            finally:
                probe.close()
            self.stream.codec_context.extradata = params.extradata
            self.stream.codec_context.sample_rate = params.sample_rate
        else:
            self._decoder = av.CodecContext.create(params.codec, "r")
            self._decoder.sample_rate = params.sample_rate
            self._decoder.layout = layout
            self.stream = container.add_stream("aac", rate=params.sample_rate)
            self.stream.codec_context.layout = layout
            self._resampler = av.AudioResampler(format="fltp", layout=layout, rate=self.rate)
        self.stream.time_base = Fraction(1, self.rate)

    def write(self, packets: tuple[AudioPacket, ...]) -> None:
        for packet in packets:
            if packet.mono < self.origin or packet.params != self.params:
                continue  # before the clip, or the camera changed its audio mid-clip
            if self._decoder is None:
                self._copy(packet)
            else:
                self._transcode(packet)

    def _copy(self, packet: AudioPacket) -> None:
        coded = av.Packet(packet.data)
        coded.stream = self.stream
        coded.time_base = Fraction(1, self.rate)
        pts = max(round((packet.mono - self.origin) * self.rate), self._next_pts)
        coded.pts = coded.dts = pts
        self._next_pts = pts + max(1, round(packet.duration * self.rate))
        self.container.mux(coded)

    def _transcode(self, packet: AudioPacket) -> None:
        try:
            decoded = self._decoder.decode(av.Packet(packet.data))
        except av.FFmpegError:
            return
        for samples in decoded:
            samples.pts = None
            for converted in self._resampler.resample(samples):
                self._encode(converted, packet.mono)

    def _encode(self, samples: Any, mono: float) -> None:
        samples.pts = max(round((mono - self.origin) * self.rate), self._next_pts)
        samples.time_base = Fraction(1, self.rate)
        self._next_pts = samples.pts + samples.samples
        for coded in self.stream.encode(samples):
            self.container.mux(coded)

    def flush(self) -> None:
        if self._decoder is None:
            return
        for coded in self.stream.encode(None):
            self.container.mux(coded)


def adts_frame(params: AudioParams, payload: bytes) -> bytes:
    """One AAC frame behind an ADTS header built from the stream's AudioSpecificConfig."""
    config = params.extradata
    object_type = config[0] >> 3
    frequency_index = ((config[0] & 0x07) << 1) | (config[1] >> 7)
    channels = (config[1] >> 3) & 0x0F
    length = 7 + len(payload)
    header = bytes(
        [
            0xFF,
            0xF1,  # MPEG-4, no CRC
            ((object_type - 1) & 0x03) << 6 | frequency_index << 2 | (channels >> 2),
            (channels & 0x03) << 6 | (length >> 11),
            (length >> 3) & 0xFF,
            (length & 0x07) << 5 | 0x1F,
            0xFC,
        ]
    )
    return header + payload


class OpenCVClipWriter:
    """cv2.VideoWriter with ``mp4v``: plays in VLC and ffplay, NOT in browsers; fixed frame rate."""

    def __init__(
        self, path: Path, width: int, height: int, fps: float, overlay: Overlay | None = None
    ) -> None:
        self.codec_name = "mpeg4"
        self.width, self.height = width, height
        self.size = (width, height)
        self.decoder = PictureDecoder(width, height, overlay)
        fourcc = cv2.VideoWriter.fourcc(*"mp4v")
        self.writer = cv2.VideoWriter(str(path), fourcc, fps, self.size)
        if not self.writer.isOpened():
            raise OSError(f"cv2.VideoWriter could not open {path}")

    def write(self, frame: Frame) -> None:
        for picture, _ in self.decoder.pictures(frame):
            image = picture.to_ndarray(format="bgr24")
            if (image.shape[1], image.shape[0]) != self.size:
                image = cv2.resize(image, self.size)
            self.writer.write(image)

    def close(self) -> None:
        self.writer.release()


def burn_overlay(image: np.ndarray, camera: str | None, wall: float | None) -> np.ndarray:
    """A copy of ``image`` with the camera name and/or local time written in its top left."""
    parts = []
    if camera:
        parts.append(camera)
    if wall is not None:
        parts.append(dt.datetime.fromtimestamp(wall).strftime("%Y-%m-%d %H:%M:%S"))
    result = image.copy()
    scale = max(0.5, image.shape[1] / 1280)
    origin = (int(10 * scale), int(30 * scale))
    text = "  ".join(parts)
    thickness = max(1, round(2 * scale))
    cv2.putText(result, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness + 2)
    cv2.putText(result, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness)
    return result
