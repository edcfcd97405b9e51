"""Fake cameras and generated footage, for the tests and the benchmarks alike.

Not part of motiond (the wheel ships ``motiond`` only): ``tests/`` and ``scripts/`` import it
from the repository's root, where pytest and ``python -m scripts.NAME`` run.

- ``mjpeg_server``: an HTTP MJPEG camera serving JPEGs (``python -m testbed.mjpeg_server``);
- ``rtsp`` and ``rtsp_server``: an RTSP camera, GStreamer's rtsp-server serving video files;
- ``camera_video``: camera-like H.264/H.265 files with known motion, encoded by ffmpeg;
- ``synthetic``: a textured background with sensor noise and moving squares;
- ``framecode``: the frame number drawn in a strip along the bottom of a picture, and read back;
- ``VTEST``: real footage (people walking), kept beside the repository in ``../shared/data``.
"""

from __future__ import annotations

from pathlib import Path

VTEST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "vtest.avi"
