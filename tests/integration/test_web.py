"""The web side against the real app on a loopback port: API, media, live view, auth."""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import cv2
import numpy as np
import tornado.gen
import tornado.httpclient
import tornado.testing
import tornado.web
import tornado.websocket
from tornado.httpclient import HTTPRequest

from motiond.config import parse_config
from motiond.frames import Frame
from motiond.web.auth import hash_password, hash_token
from motiond.web.live import forwarded_jpeg, size_key
from tests.fixtures.web import PASSWORD, TOKEN, WebTestCase, camera_yaml


class TestApi(WebTestCase):
    def test_cameras(self) -> None:
        self.wait_online()
        response = self.api("GET", "/api/cameras")
        assert response.code == 200
        (camera,) = json.loads(response.body)
        assert camera["name"] == "cam" and camera["online"] and camera["armed"]
        assert camera["width"] == 320 and camera["live_url"] == "ws/live/cam"
        assert "source" not in camera  # may hold credentials

    def test_clips_list_filters_and_pages(self) -> None:
        data = json.loads(self.api("GET", "/api/clips").body)
        assert data["total"] == 3
        starts = [c["start_ts"] for c in data["clips"]]
        assert starts == sorted(starts, reverse=True)
        clip = data["clips"][0]
        assert clip["url"] == f"media/{clip['file']}" and clip["poster_url"].endswith("-start.jpg")
        page = json.loads(self.api("GET", "/api/clips?limit=1&offset=1").body)
        assert page["total"] == 3 and page["clips"][0]["id"] == data["clips"][1]["id"]
        since = json.loads(self.api("GET", f"/api/clips?since={starts[1]}").body)
        assert [c["id"] for c in since["clips"]] == [c["id"] for c in data["clips"][:2]]
        assert json.loads(self.api("GET", "/api/clips?camera=cam").body)["total"] == 3
        assert self.api("GET", "/api/clips?camera=other").code == 404  # not a camera here
        iso = json.loads(self.api("GET", "/api/clips?until=2000-01-01T00:00:00Z").body)
        assert iso["total"] == 0

    def test_bad_queries_are_400_json(self) -> None:
        for query in ("limit=abc", "limit=0", "offset=-1", "since=yesterday"):
            response = self.api("GET", f"/api/clips?{query}")
            assert response.code == 400, query
            assert "error" in json.loads(response.body)

    def test_one_clip_keep_and_delete(self) -> None:
        clip = json.loads(self.api("GET", "/api/clips").body)["clips"][-1]
        path = f"/api/clips/{clip['id']}"
        assert json.loads(self.api("GET", path).body)["id"] == clip["id"]
        response = self.api("PATCH", path, {"keep": True})
        assert response.code == 200 and json.loads(response.body)["keep"] is True
        sidecar = self.tmp / "data" / Path(clip["file"]).with_suffix(".json")
        assert json.loads(sidecar.read_text())["keep"] is True
        assert self.api("PATCH", path, {"keep": "yes"}).code == 400
        assert self.api("PATCH", path, {"keep": True, "x": 1}).code == 400
        response = self.fetch(path, method="PATCH", body="not json", headers={"X-Motiond": "1"})
        assert response.code == 400 and json.loads(response.body)["error"] == "the body is not JSON"
        assert self.api("DELETE", path).code == 204
        assert not (self.tmp / "data" / clip["file"]).exists() and not sidecar.exists()
        for snapshot in clip["snapshots"]:
            assert not (self.tmp / "data" / snapshot).exists()
        assert self.api("GET", path).code == 404
        assert json.loads(self.api("GET", "/api/clips").body)["total"] == 2

    def test_clip_ids_are_validated(self) -> None:
        for clip_id in ("..%2F..%2Fetc%2Fpasswd", "cam/2026-01-01/../../../x.mp4", "cam/x"):
            response = self.api("GET", f"/api/clips/{clip_id}")
            assert response.code in (400, 404), clip_id
            assert "error" in json.loads(response.body)

    def test_state_changes_need_a_non_simple_request(self) -> None:
        clip = json.loads(self.api("GET", "/api/clips").body)["clips"][0]
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        response = self.fetch(
            f"/api/clips/{clip['id']}",
            method="DELETE",
            headers=form,
            allow_nonstandard_methods=True,
        )
        assert response.code == 403
        response = self.fetch("/api/cameras/cam/disarm", method="POST", body="", headers=form)
        assert response.code == 403
        assert self.daemon.cameras["cam"].armed

    def test_arm_disarm_and_snapshot(self) -> None:
        self.wait_online()
        response = self.api("POST", "/api/cameras/cam/disarm")
        assert response.code == 200 and json.loads(response.body)["armed"] is False
        assert self.daemon.cameras["cam"].armed is False
        assert json.loads(self.api("POST", "/api/cameras/cam/arm").body)["armed"] is True
        assert self.api("POST", "/api/cameras/nope/arm").code == 404
        response = self.api("POST", "/api/cameras/cam/snapshot")
        assert response.code == 201
        url = json.loads(response.body)["url"]
        image = self.fetch(f"/{url}")
        assert image.code == 200 and image.headers["Content-Type"] == "image/jpeg"
        assert cv2.imdecode(np.frombuffer(image.body, np.uint8), cv2.IMREAD_COLOR).shape == (
            240,
            320,
            3,
        )
        listed = json.loads(self.api("GET", "/api/snapshots?kind=snapshot").body)
        assert listed["total"] == 1 and listed["snapshots"][0]["url"] == url
        warn = json.loads(self.api("GET", "/api/snapshots?kind=warn").body)
        assert warn["total"] == 6 and warn["snapshots"][0]["clip_id"]
        assert self.api("GET", "/api/snapshots?kind=bad").code == 400

    def test_health_and_metrics(self) -> None:
        self.wait_online()
        response = self.api("GET", "/healthz")
        assert response.code == 200
        assert json.loads(response.body)["cameras"]["cam"]["online"] is True
        metrics = self.api("GET", "/metrics").body.decode()
        for line in (
            'motiond_camera_online{camera="cam"} 1',
            "motiond_clips 3",
            "motiond_disk_free_bytes",
        ):
            assert line in metrics
        assert 'motiond_frames_total{camera="cam"}' in metrics
        # Memory: the camera's buffers and the whole process (tens of MB at least: Python,
        # numpy, OpenCV, PyAV), as numbers a monitor can graph.
        values = dict(
            line.rsplit(" ", 1) for line in metrics.splitlines() if not line.startswith("#")
        )
        assert float(values['motiond_buffered_bytes{camera="cam"}']) >= 0
        resident = float(values["motiond_process_resident_bytes"])
        assert 20e6 < resident <= float(values["motiond_process_peak_resident_bytes"])

    def test_unknown_paths_and_security_headers(self) -> None:
        response = self.api("GET", "/no/such/thing")
        assert response.code == 404 and json.loads(response.body) == {"error": "not found"}
        headers = self.api("GET", "/api/cameras").headers
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"

    def test_oversized_body_is_refused(self) -> None:
        clip = json.loads(self.api("GET", "/api/clips").body)["clips"][0]
        response = self.fetch(
            f"/api/clips/{clip['id']}",
            method="PATCH",
            body="x" * (200 * 1024),
            headers={"Content-Type": "application/json"},
            raise_error=False,
        )
        assert response.code in (400, 413) or response.code == 599


class TestMedia(WebTestCase):
    def clip(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.api("GET", "/api/clips").body)["clips"][0]
        return result

    def test_range_requests_etag_and_download(self) -> None:
        clip = self.clip()
        path = self.tmp / "data" / clip["file"]
        full = self.fetch(f"/{clip['url']}")
        assert full.code == 200 and full.body == path.read_bytes()
        assert full.headers["Content-Type"] == "video/mp4"
        assert full.headers["Accept-Ranges"] == "bytes"
        stat = path.stat()
        assert full.headers["Etag"] == f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"'
        part = self.fetch(f"/{clip['url']}", headers={"Range": "bytes=100-199"})
        assert part.code == 206 and part.body == path.read_bytes()[100:200]
        assert part.headers["Content-Range"] == f"bytes 100-199/{stat.st_size}"
        cached = self.fetch(f"/{clip['url']}", headers={"If-None-Match": full.headers["Etag"]})
        assert cached.code == 304
        download = self.fetch(f"/{clip['url']}?download=1")
        assert "attachment" in download.headers["Content-Disposition"]

    def test_growing_clip_gets_a_new_etag(self) -> None:
        clip = self.clip()
        path = self.tmp / "data" / clip["file"]
        before = self.fetch(f"/{clip['url']}").headers["Etag"]
        with open(path, "ab") as handle:
            handle.write(b"\0" * 10)
        assert self.fetch(f"/{clip['url']}").headers["Etag"] != before

    def test_no_traversal_and_no_symlink_escape(self) -> None:
        for bad in (
            "/media/../../etc/passwd",
            "/media/clips/../../../etc/passwd",
            "/media/.cookie-secret",
        ):
            assert self.fetch(bad).code == 404, bad
        link = self.tmp / "data" / "clips" / "cam" / "2026-01-01" / "000000Z.mp4"
        link.parent.mkdir(parents=True)
        os.symlink("/etc/passwd", link)
        response = self.fetch("/media/clips/cam/2026-01-01/000000Z.mp4")
        assert response.code == 404 and b"root:" not in response.body


class TestLive(WebTestCase):
    @tornado.testing.gen_test(timeout=30)
    async def test_frames_arrive_as_jpeg_with_status(self) -> None:
        connection = await tornado.websocket.websocket_connect(self.ws_url("/ws/live/cam"))
        hello = json.loads(await connection.read_message())  # type: ignore[arg-type]
        assert hello["type"] == "hello" and hello["camera"] == "cam"
        jpeg, texts = await self.receive_jpeg(connection)
        image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and image.shape == (240, 320, 3)
        kinds = {t["type"] for t in texts}
        assert "frame" in kinds or "status" in kinds
        for _ in range(20):
            message = await connection.read_message()
            if isinstance(message, str) and json.loads(message)["type"] == "status":
                status = json.loads(message)
                assert status["online"] is True and status["threshold"] == 0.003
                break
        else:
            raise AssertionError("no status message")
        await connection.write_message(json.dumps({"type": "ping", "id": 7}))
        for _ in range(50):
            message = await connection.read_message()
            if isinstance(message, str) and json.loads(message) == {"type": "pong", "id": 7}:
                break
        else:
            raise AssertionError("no pong")
        connection.close()

    @tornado.testing.gen_test(timeout=30)
    async def test_nothing_is_encoded_while_nobody_watches(self) -> None:
        feed = self.daemon.hub.feed("cam")
        camera = self.daemon.cameras["cam"]
        frames_before = camera.frames
        await tornado.gen.sleep(1.0)
        assert camera.frames > frames_before + 5  # the camera runs ...
        assert feed.encodes == 0 and feed.latest is None  # ... and nothing is handed over
        connection = await tornado.websocket.websocket_connect(self.ws_url("/ws/live/cam"))
        await self.receive_jpeg(connection)
        assert feed.encodes > 0  # the demo's raw frames are encoded for a viewer
        connection.close()
        deadline = time.monotonic() + 5
        while feed.viewers:
            assert time.monotonic() < deadline
            await tornado.gen.sleep(0.05)
        await tornado.gen.sleep(0.2)
        encodes = feed.encodes
        await tornado.gen.sleep(1.0)
        assert feed.encodes == encodes

    @tornado.testing.gen_test(timeout=30)
    async def test_width_and_fps_requests(self) -> None:
        connection = await tornado.websocket.websocket_connect(
            self.ws_url("/ws/live/cam?width=150&fps=2")
        )
        jpeg, _ = await self.receive_jpeg(connection)
        image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert image.shape[1] == 160  # rounded up to the next 160-pixel step
        started = time.monotonic()
        frames = 0
        while time.monotonic() - started < 2.0:
            message = await connection.read_message()
            frames += isinstance(message, bytes)
        assert frames <= 6  # 2 fps asked (15 delivered)
        connection.close()

    @tornado.testing.gen_test(timeout=30)
    async def test_each_size_is_encoded_once_for_all_viewers(self) -> None:
        connections = [
            await tornado.websocket.websocket_connect(self.ws_url("/ws/live/cam?width=160"))
            for _ in range(4)
        ]
        feed = self.daemon.hub.feed("cam")
        for connection in connections:
            await self.receive_jpeg(connection)
        encodes_before = feed.encodes
        frames_before = self.daemon.cameras["cam"].frames
        for _ in range(10):
            for connection in connections:
                await self.receive_jpeg(connection)
        frames = self.daemon.cameras["cam"].frames - frames_before
        assert feed.encodes - encodes_before <= frames + 1  # once per frame, not per viewer
        for connection in connections:
            connection.close()

    @tornado.testing.gen_test(timeout=30)
    async def test_bad_origin_unknown_camera_and_viewer_limits(self) -> None:
        request = HTTPRequest(
            self.ws_url("/ws/live/cam"), headers={"Origin": "http://evil.example"}
        )
        try:
            await tornado.websocket.websocket_connect(request)
            raise AssertionError("connected with a foreign Origin")
        except tornado.httpclient.HTTPClientError as exc:
            assert exc.code == 403
        connection = await tornado.websocket.websocket_connect(self.ws_url("/ws/live/nope"))
        assert await connection.read_message() is None
        assert connection.close_code == 4404
        self.daemon.hub.max_per_client = 2
        kept = [
            await tornado.websocket.websocket_connect(self.ws_url("/ws/live/cam")) for _ in range(2)
        ]
        refused = await tornado.websocket.websocket_connect(self.ws_url("/ws/live/cam"))
        assert await refused.read_message() is None and refused.close_code == 1013
        for connection in kept:
            connection.close()

    @tornado.testing.gen_test(timeout=60)
    async def test_a_slow_reader_gets_newest_frames_and_delays_nobody(self) -> None:
        # A viewer that never reads, with a tiny receive buffer (loopback buffers megabytes).
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.connect(("127.0.0.1", self.get_http_port()))
        key = base64.b64encode(os.urandom(16)).decode()
        slow.sendall(
            (
                "GET /ws/live/cam HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        feed = self.daemon.hub.feed("cam")
        deadline = time.monotonic() + 5
        while not feed.viewers:
            assert time.monotonic() < deadline
            await tornado.gen.sleep(0.05)
        (slow_viewer,) = feed.viewers
        # The server side's send buffer too: else the kernel absorbs megabytes of frames.
        stream = slow_viewer.socket.ws_connection.stream  # type: ignore[union-attr]
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        fast = await tornado.websocket.websocket_connect(self.ws_url("/ws/live/cam"))
        await self.receive_jpeg(fast)
        started = time.monotonic()
        received = 0
        while time.monotonic() - started < 4.0:
            message = await fast.read_message()
            received += isinstance(message, bytes)
        assert received >= 4.0 * 15 * 0.6  # the fast viewer keeps (most of) the frame rate
        assert slow_viewer.frames_sent < received / 2
        assert slow_viewer.frames_skipped > 20  # newest frame only, no backlog
        pending = stream._total_write_index - stream._total_write_done_index
        assert pending < 2 * 1024 * 1024  # bounded: at most one frame or two in flight
        slow.close()
        fast.close()


def test_camera_jpeg_is_forwarded_unchanged() -> None:
    jpeg = cv2.imencode(".jpg", np.zeros((240, 320, 3), np.uint8))[1].tobytes()
    frame = Frame.from_jpeg(0, 0.0, 0.0, jpeg)
    assert forwarded_jpeg(frame, None) is jpeg  # no decode, no encode
    assert size_key(frame, 640) is None and size_key(frame, 150) == 160
    assert forwarded_jpeg(frame, 160) is None


class TestAuth(WebTestCase):
    web_yaml = (
        "web:\n  port: 0\n  trusted_proxies: [127.0.0.1]\n  auth:\n"
        f"    users: [{{name: alice, password_hash: '{hash_password(PASSWORD)}'}}]\n"
        f"    tokens: [{{name: ci, token_hash: '{hash_token(TOKEN)}'}}]\n"
    )

    def basic(self, user: str, password: str) -> str:
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def login(
        self, user: str, password: str, next_page: str = "/", **headers: str
    ) -> tornado.httpclient.HTTPResponse:
        """The login form as a browser posts it: with the token and cookie from the page."""
        page = self.fetch("/login", headers=headers)
        token = re.search(r'name="_xsrf" type="hidden" value="([^"]+)"', page.body.decode())
        assert token, page.body
        cookie = page.headers["Set-Cookie"].split(";")[0]
        form = urlencode(
            {"username": user, "password": password, "next": next_page, "_xsrf": token[1]}
        )
        return self.fetch(
            "/login",
            method="POST",
            body=form,
            follow_redirects=False,
            raise_error=False,
            headers={**headers, "Cookie": cookie},
        )

    def test_api_needs_credentials(self) -> None:
        response = self.api("GET", "/api/cameras")
        assert response.code == 401 and "WWW-Authenticate" in response.headers
        assert json.loads(response.body)["error"] == "authentication required"
        assert self.api("GET", "/api/cameras", Authorization=f"Bearer {TOKEN}").code == 200
        assert self.api("GET", "/api/cameras", Authorization="Bearer wrong").code == 401
        assert (
            self.api("GET", "/api/cameras", Authorization=self.basic("alice", PASSWORD)).code == 200
        )
        assert self.api("GET", "/metrics").code == 401
        clip = json.loads(self.api("GET", "/api/clips", Authorization=f"Bearer {TOKEN}").body)[
            "clips"
        ][0]
        assert self.fetch(f"/{clip['url']}").code == 401
        assert self.api("GET", "/healthz").code in (200, 503)  # for monitors

    def test_failed_logins_are_rate_limited(self) -> None:
        client = {"X-Forwarded-For": "192.0.2.8"}  # through the trusted proxy, from one client
        codes = [
            self.api(
                "GET", "/api/cameras", Authorization=self.basic("alice", "nope"), **client
            ).code
            for _ in range(6)
        ]
        assert codes[:5] == [401] * 5 and codes[5] == 429
        response = self.api(
            "GET", "/api/cameras", Authorization=self.basic("alice", PASSWORD), **client
        )
        assert response.code == 429

    def test_browser_login_flow(self) -> None:
        page = self.fetch("/clips", follow_redirects=False, raise_error=False)
        assert page.code == 302 and page.headers["Location"] == "/login?next=/clips"
        wrong = self.login("alice", "nope", "/clips")
        assert wrong.code == 401
        login = self.login("alice", PASSWORD, "/clips")
        assert login.code == 302 and login.headers["Location"] == "/clips"
        cookie = login.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
        session = cookie.split(";")[0]
        assert self.api("GET", "/api/cameras", Cookie=session).code == 200
        # A cookie alone is not enough to change state: a cross-site form cannot add the header.
        form = self.fetch(
            "/api/cameras/cam/disarm",
            method="POST",
            body="",
            raise_error=False,
            headers={"Cookie": session, "Content-Type": "application/x-www-form-urlencoded"},
        )
        assert form.code == 403
        assert self.api("POST", "/api/cameras/cam/disarm", Cookie=session).code == 200

    def test_login_next_cannot_leave_the_site_and_secure_behind_https_proxy(self) -> None:
        login = self.login(
            "alice",
            PASSWORD,
            "//evil.example/x",
            **{
                "X-Forwarded-Proto": "https",
                "X-Forwarded-For": "192.0.2.7",
                "X-Forwarded-Prefix": "/cams",
            },
        )
        assert login.code == 302 and login.headers["Location"] == "/cams/"
        assert "Secure" in login.headers["Set-Cookie"]

    @tornado.testing.gen_test(timeout=30)
    async def test_live_view_needs_auth(self) -> None:
        try:
            await tornado.websocket.websocket_connect(self.ws_url("/ws/live/cam"))
            raise AssertionError("connected without auth")
        except tornado.httpclient.HTTPClientError as exc:
            assert exc.code == 401
        request = HTTPRequest(
            self.ws_url("/ws/live/cam"), headers={"Authorization": f"Bearer {TOKEN}"}
        )
        connection = await tornado.websocket.websocket_connect(request)
        jpeg, _ = await self.receive_jpeg(connection)
        assert jpeg[:2] == b"\xff\xd8"
        connection.close()


def test_listening_beyond_loopback_needs_auth(tmp_path: Path) -> None:
    from motiond.config import ConfigError

    try:
        parse_config("web: {listen: 0.0.0.0}\n" + camera_yaml(), source_path="m.yaml")
        raise AssertionError("accepted")
    except ConfigError as exc:
        assert str(exc).startswith("m.yaml: web.listen: listening on 0.0.0.0 needs web.auth")
        assert "motiond hash-password" in str(exc)


def test_openapi_documents_every_api_route() -> None:
    import re

    import yaml

    from tests.fixtures import REPO

    spec = yaml.safe_load((REPO / "openapi.yaml").read_text())
    documented = set(spec["paths"])
    source = (REPO / "motiond" / "web" / "app.py").read_text()
    routes = set(re.findall(r'\(r"(/(?:api|healthz|metrics)[^"]*)"', source))
    as_openapi = {
        r.replace("([^/]+)/(arm|disarm|snapshot)", "{name}/X").replace("(.+)", "{clip_id}")
        for r in routes
    }
    expanded = set()
    for route in as_openapi:
        if route.endswith("/X"):
            expanded |= {route[:-1] + action for action in ("arm", "disarm", "snapshot")}
        else:
            expanded.add(route)
    assert documented == expanded


def test_https_with_tls_cert_and_key(tmp_path: Path) -> None:
    import re
    import signal
    import ssl
    import subprocess
    import urllib.parse
    import urllib.request

    from tests.fixtures.daemon import clean_env, motiond_command

    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
            str(tmp_path / "key.pem"),
            "-out",
            str(tmp_path / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )
    config = tmp_path / "c.yaml"
    config.write_text(
        f"storage: {{dir: {tmp_path / 'data'}}}\n"
        "web:\n  port: 0\n  tls_cert: cert.pem\n  tls_key: key.pem\n"
        f"  auth: {{users: [{{name: alice, password_hash: '{hash_password(PASSWORD)}'}}]}}\n"
        + camera_yaml()
    )
    log_path = tmp_path / "log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            motiond_command("run", "-c", str(config)), stderr=log, env=clean_env()
        )
    try:
        deadline = time.monotonic() + 20
        while not (
            match := re.search(r"listening on https://127.0.0.1:(\d+)/", log_path.read_text())
        ):
            assert time.monotonic() < deadline and process.poll() is None, log_path.read_text()
            time.sleep(0.1)
        base = f"https://127.0.0.1:{match.group(1)}"
        context = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
        context.check_hostname = False
        with urllib.request.urlopen(f"{base}/api/session", context=context) as response:
            assert json.loads(response.read()) == {"auth": True, "user": None}

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: Any) -> None:
                return None

        opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=context), NoRedirect
        )
        body = urllib.parse.urlencode({"username": "alice", "password": PASSWORD, "next": "/"})
        try:
            # As the login page's script posts it (a plain form would carry its token).
            opener.open(
                urllib.request.Request(
                    f"{base}/login", data=body.encode(), headers={"X-Motiond": "1"}
                )
            )
            raise AssertionError("no redirect after login")
        except urllib.error.HTTPError as exc:
            assert exc.code == 302
            cookie = exc.headers["Set-Cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie
        assert "login over plain HTTP" not in log_path.read_text()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)


class TestOrphanSnapshots(WebTestCase):
    def test_a_warn_snapshot_whose_clip_is_gone_links_nowhere(self) -> None:
        clip = json.loads(self.api("GET", "/api/clips").body)["clips"][0]
        self.daemon.index.remove(clip["id"])  # as after a crash that left nothing playable
        (self.tmp / "data" / clip["file"]).unlink()
        warn = json.loads(self.api("GET", "/api/snapshots?kind=warn").body)["snapshots"]
        mine = [s for s in warn if clip["file"].rsplit("/", 1)[1][:7] in s["url"]]
        assert mine and all(s["clip_id"] is None for s in mine)
        assert all(s["clip_id"] for s in warn if s not in mine)
