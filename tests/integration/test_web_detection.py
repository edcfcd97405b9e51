"""The web side of nuisance areas, day/night and tampering: API, health, metrics, live view."""

from __future__ import annotations

import json
from typing import Any

import tornado.gen
import tornado.testing
import tornado.websocket

from motiond.detect.tamper import SceneReport, TamperState
from tests.fixtures.web import WebTestCase

MASK = [[0, 0], [100, 0], [100, 50]]


async def read_until(
    connection: tornado.websocket.WebSocketClientConnection, kind: str, limit: int = 200
) -> dict[str, Any]:
    for _ in range(limit):
        message = await connection.read_message()
        assert message is not None, "socket closed"
        if isinstance(message, str):
            data: dict[str, Any] = json.loads(message)
            if data["type"] == kind:
                return data
    raise AssertionError(f"no {kind} message")


class TestDetectionState(WebTestCase):
    extra_cameras = f"    motion: {{masks: [{MASK}]}}\n"

    def test_cameras_carry_ignored_share_day_night_and_tamper(self) -> None:
        self.wait_online()
        (camera,) = json.loads(self.api("GET", "/api/cameras").body)
        assert camera["ignored_share"] == 0.0
        assert camera["day_night"] in ("day", None)  # None until the first colour sample
        assert camera["tampered"] is None and camera["tampered_since"] is None
        health = json.loads(self.api("GET", "/healthz").body)
        assert health["cameras"]["cam"]["tampered"] is None
        metrics = self.api("GET", "/metrics").body.decode()
        for line in (
            'motiond_camera_tampered{camera="cam"} 0',
            'motiond_ignored_share{camera="cam"} 0',
            "# TYPE motiond_night gauge",
        ):
            assert line in metrics

    def test_a_tampered_camera_makes_healthz_503_with_the_reason(self) -> None:
        self.wait_online()
        worker = self.daemon.cameras["cam"]
        # The capture thread replaces the report with every frame: stop feeding it first.
        worker.arm(False)
        tamper = TamperState(tampered="turned", tampered_since=100.0)
        worker.watch.scene.report = SceneReport(
            mode="day", switched=False, settling=False, tamper=tamper
        )
        response = self.api("GET", "/healthz")
        body = json.loads(response.body)
        assert response.code == 503 and body["ok"] is False
        assert body["cameras"]["cam"]["tampered"] == "turned"
        assert body["reason"] == "tampered with: cam (turned)"
        (camera,) = json.loads(self.api("GET", "/api/cameras").body)
        assert camera["tampered"] == "turned"
        metrics = self.api("GET", "/metrics").body.decode()
        assert 'motiond_camera_tampered{camera="cam"} 1' in metrics

    @tornado.testing.gen_test(timeout=30)
    async def test_live_view_sends_areas_and_regions(self) -> None:
        connection = await tornado.websocket.websocket_connect(self.ws_url("/ws/live/cam"))
        hello = json.loads(await connection.read_message())  # type: ignore[arg-type]
        assert hello["type"] == "hello"
        areas = await read_until(connection, "areas")
        assert areas["masks"] == [MASK] and areas["ignored"] == []
        status = await read_until(connection, "status")
        for key in (
            "boxes",
            "ignored_boxes",
            "largest",
            "min_area",
            "ignored_share",
            "day_night",
            "tampered",
        ):
            assert key in status, key
        assert isinstance(status["boxes"], list) and isinstance(status["ignored_boxes"], list)
        # Why each box counted or not, box by box (the overlay labels them).
        assert len(status["reasons"]) == len(status["boxes"])
        assert len(status["ignored_reasons"]) == len(status["ignored_boxes"])
        assert "mover" in status and "shift" in status
        # An area learned as always moving is sent once, in camera pixels. (Disarmed, the
        # capture thread no longer refreshes what the test puts in.)
        worker = self.daemon.cameras["cam"]
        worker.arm(False)
        await tornado.gen.sleep(0.3)  # a frame being detected right now is done
        nuisance = worker.watch.detector.nuisance
        assert nuisance is not None
        nuisance.areas = (((10, 10), (60, 10), (60, 40)),)
        areas = await read_until(connection, "areas")
        assert areas["ignored"] == [[[10, 10], [60, 10], [60, 40]]]
        connection.close()
