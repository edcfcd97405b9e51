"""Nothing slow on the IOLoop: live-view encoding and SIGHUP reloads run elsewhere."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from pathlib import Path
from typing import Any

import cv2
import pytest
import tornado.httpclient
import tornado.testing
import tornado.websocket

from motiond.config import load_config
from motiond.daemon import Daemon
from testbed.mjpeg_server import MjpegServer
from tests.fixtures.daemon import free_port, wait_until, write_config
from tests.fixtures.mjpeg import still_jpegs
from tests.fixtures.web import WebTestCase


class TestLiveEncoding(WebTestCase):
    @tornado.testing.gen_test(timeout=30)
    async def test_scaled_frames_are_encoded_off_the_ioloop(self) -> None:
        calls: list[str] = []
        original = cv2.imencode

        def spy(*args: Any, **kwargs: Any) -> Any:
            calls.append(threading.current_thread().name)
            return original(*args, **kwargs)

        cv2.imencode = spy
        try:
            connection = await tornado.websocket.websocket_connect(
                self.ws_url("/ws/live/cam?width=160")
            )
            for _ in range(5):
                jpeg, _ = await self.receive_jpeg(connection)
                assert jpeg[:2] == b"\xff\xd8"
            connection.close()
        finally:
            cv2.imencode = original
        assert calls, "nothing was encoded"
        assert threading.current_thread().name not in calls, calls  # the IOLoop's thread


def test_a_reload_that_stops_a_slow_camera_leaves_the_ioloop_free(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, restore_process_state: None
) -> None:
    """SIGHUP changes a camera whose stream stalled: stopping it waits for its read to time out
    (5 s). Meanwhile the IOLoop answers /healthz, the other camera's live view goes on, and the
    watchdog sees no hung loop."""
    caplog.set_level(logging.INFO)
    server = MjpegServer(still_jpegs(), fps=15)
    server.start()
    port = free_port()
    cameras: list[dict[str, Any]] = [
        {"name": "slow", "source": server.url, "capture": {"read_timeout": "5s"}},
        {"name": "cam", "source": "demo", "capture": {"width": 320, "height": 240, "fps": 15}},
    ]
    config = {
        "storage": {"dir": str(tmp_path / "data")},
        "web": {"port": port},
        "cameras": cameras,
    }
    config_path = write_config(tmp_path / "motiond.yaml", config)
    daemon = Daemon(load_config(config_path), config_path)

    def logged(text: str) -> bool:
        return any(text in record.getMessage() for record in caplog.records)

    async def scenario() -> None:
        serving = asyncio.create_task(daemon.serve())
        await wait_until(
            lambda: len(daemon.cameras) == 2 and all(c.online for c in daemon.cameras.values()),
            20,
            "both cameras online",
        )
        viewer = await tornado.websocket.websocket_connect(f"ws://127.0.0.1:{port}/ws/live/cam")
        server.stall()
        cameras[0]["motion"] = {"blur": 3}  # a changed pipeline: "slow" restarts
        write_config(config_path, config)
        os.kill(os.getpid(), signal.SIGHUP)
        await wait_until(lambda: logged("reload: camera slow changed"), 10, "the reload")
        client = tornado.httpclient.AsyncHTTPClient()
        health = await client.fetch(f"http://127.0.0.1:{port}/healthz", raise_error=False)
        frames = 0
        while frames < 3:
            frames += isinstance(await viewer.read_message(), bytes)
        assert daemon.hung_loops() == []
        assert not logged("reloaded"), "the IOLoop waited for the reload"
        assert health.code == 200  # "slow" is out of the set while it stops
        await wait_until(lambda: logged("reloaded"), 20, "the reload to finish")
        viewer.close()
        daemon.request_stop()
        await serving

    try:
        asyncio.run(scenario())
    finally:
        server.stop()
