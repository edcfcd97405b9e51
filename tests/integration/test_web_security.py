"""Regression tests for the web side's security review (issue 9), one class per finding.

Each test asserts what came back (status, body, files, log), against the real app on a loopback
port or the real daemon run as a user runs it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import tornado.httpclient
import tornado.testing
import tornado.websocket
import yaml
from tornado.httpclient import HTTPRequest

import motiond.web.auth as auth_module
from motiond.capture.camera import CameraWorker
from motiond.capture.sources import open_source
from motiond.config import CameraConfig, CaptureConfig, HookConfig, HooksConfig
from motiond.notify.hooks import HookRunner
from motiond.store.layout import Storage
from motiond.web.auth import hash_password, hash_token, verify_password
from tests.fixtures.daemon import RunningDaemon, free_port, run_motiond, write_config
from tests.fixtures.events import LINKS, clip_ended
from tests.fixtures.web import PASSWORD, TOKEN, WebTestCase

EVIL = "rebind.evil.example"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def users_yaml(**users: str) -> str:
    entries = ", ".join(
        f"{{name: {name}, password_hash: '{hash_password(password)}'}}"
        for name, password in users.items()
    )
    return f"    users: [{entries}]\n"


class AuthTestCase(WebTestCase):
    web_yaml = (
        "web:\n  port: 0\n  trusted_proxies: [127.0.0.1]\n  auth:\n"
        + users_yaml(alice=PASSWORD)
        + f"    tokens: [{{name: ci, token_hash: '{hash_token(TOKEN)}'}}]\n"
    )

    def login(
        self, user: str, password: str, next_page: str = "/", **headers: str
    ) -> tornado.httpclient.HTTPResponse:
        """The login form as a browser posts it, with the page's token if it has one."""
        page = self.fetch("/login", headers=headers)
        form = {"username": user, "password": password, "next": next_page}
        token = re.search(r'name="_xsrf" type="hidden" value="([^"]+)"', page.body.decode())
        if token:
            form["_xsrf"] = token[1]
            headers = {**headers, "Cookie": page.headers["Set-Cookie"].split(";")[0]}
        return self.fetch(
            "/login",
            method="POST",
            body=urlencode(form),
            follow_redirects=False,
            raise_error=False,
            headers=headers,
        )

    def session_cookie(self, response: tornado.httpclient.HTTPResponse) -> str:
        assert response.code == 302, response.body
        cookies = response.headers.get_list("Set-Cookie")
        (session,) = [c.split(";")[0] for c in cookies if c.startswith("motiond_session=")]
        return session


# -- 1. the camera parameter --------------------------------------------------------------------


class TestCameraParameter(WebTestCase):
    def test_snapshot_and_clip_listings_take_only_a_known_camera_name(self) -> None:
        # JPEGs named like snapshots outside the storage directory, and a file where a folder
        # would be: neither may be listed or probed through ?camera=.
        outside = self.tmp / "outside"
        (outside / "x" / "2026-01-01").mkdir(parents=True)
        (outside / "x" / "2026-01-01" / "120000Z.jpg").write_bytes(b"\xff\xd8 outside")
        (outside / "y").write_text("a file")
        for camera in (
            "../../outside/x",
            "../../outside/y",
            "../../../../usr/share/**",
            "cam/../../../outside/x",
            "*",
            "cam\n",
            "c\u0430m",  # a Cyrillic a
        ):
            for path in ("/api/snapshots", "/api/clips"):
                response = self.api("GET", f"{path}?camera={quote(camera)}")
                assert response.code == 400, (path, camera, response.code, response.body)
                assert b"outside" not in response.body and b"120000Z" not in response.body
                assert "error" in json.loads(response.body)
        assert self.api("GET", "/api/snapshots?camera=nope").code == 404
        listed = json.loads(self.api("GET", "/api/snapshots?camera=cam").body)["snapshots"]
        assert listed and all(s["url"].startswith("media/warn/cam/") for s in listed)


# -- 2. DNS rebinding ---------------------------------------------------------------------------


class TestHostWithoutAuth(WebTestCase):
    def clip(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.api("GET", "/api/clips").body)["clips"][0]
        return result

    def test_a_foreign_host_gets_nothing_and_changes_nothing(self) -> None:
        port = self.get_http_port()
        rebound = {"Host": f"{EVIL}:{port}", "Origin": f"http://{EVIL}:{port}"}
        clip = self.clip()
        for path in ("/api/clips", "/api/cameras", "/", f"/{clip['url']}", "/static/app.css"):
            response = self.fetch(path, headers=rebound, raise_error=False)
            assert response.code == 421, (path, response.code)
            assert clip["id"].encode() not in response.body
        self.wait_online()
        response = self.api("POST", "/api/cameras/cam/disarm", **rebound)
        assert response.code == 421 and self.daemon.cameras["cam"].armed
        response = self.api("DELETE", f"/api/clips/{clip['id']}", **rebound)
        assert response.code == 421 and (self.tmp / "data" / clip["file"]).is_file()
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "localhost"):
            assert self.api("GET", "/api/clips", Host=host).code == 200, host

    @tornado.testing.gen_test(timeout=30)
    async def test_a_foreign_host_cannot_open_the_live_view(self) -> None:
        port = self.get_http_port()
        request = HTTPRequest(
            self.ws_url("/ws/live/cam"),
            headers={"Host": f"{EVIL}:{port}", "Origin": f"http://{EVIL}:{port}"},
        )
        with pytest.raises(tornado.httpclient.HTTPClientError) as refused:
            await tornado.websocket.websocket_connect(request)
        assert refused.value.code in (403, 421)
        request = HTTPRequest(
            self.ws_url("/ws/live/cam"),
            headers={"Host": f"127.0.0.1:{port}", "Origin": f"http://127.0.0.1:{port}"},
        )
        connection = await tornado.websocket.websocket_connect(request)
        await self.receive_jpeg(connection)
        connection.close()


class TestHostWithPublicUrl(WebTestCase):
    web_yaml = "web: {port: 0, public_url: 'https://cams.example.org/motiond'}\n"

    def test_the_public_url_host_is_answered(self) -> None:
        assert self.api("GET", "/api/clips", Host="cams.example.org").code == 200
        assert self.api("GET", "/api/clips", Host=EVIL).code == 421


class TestHostWithAuth(AuthTestCase):
    @tornado.testing.gen_test(timeout=30)
    async def test_the_live_view_checks_the_host_with_auth_too(self) -> None:
        port = self.get_http_port()
        token = {"Authorization": f"Bearer {TOKEN}"}
        request = HTTPRequest(
            self.ws_url("/ws/live/cam"),
            headers={**token, "Host": f"{EVIL}:{port}", "Origin": f"http://{EVIL}:{port}"},
        )
        with pytest.raises(tornado.httpclient.HTTPClientError) as refused:
            await tornado.websocket.websocket_connect(request)
        assert refused.value.code in (403, 421)
        connection = await tornado.websocket.websocket_connect(
            HTTPRequest(self.ws_url("/ws/live/cam"), headers=token)
        )
        await self.receive_jpeg(connection)
        connection.close()


# -- 3. sessions ----------------------------------------------------------------------------------


class TestLogout(AuthTestCase):
    def test_logout_ends_the_session_on_the_server(self) -> None:
        cookie = self.session_cookie(self.login("alice", PASSWORD))
        assert self.api("GET", "/api/cameras", Cookie=cookie).code == 200
        assert self.api("POST", "/logout", Cookie=cookie).code == 204
        # The browser forgets the cookie; one copied before the logout is worth nothing now.
        assert self.api("GET", "/api/cameras", Cookie=cookie).code == 401


class SessionDaemon(RunningDaemon):
    """The daemon with users; ``login`` and ``get_with`` talk to it like a browser."""

    def __init__(self, tmp: Path, users: dict[str, str]) -> None:
        super().__init__(tmp, {"cameras": [{"name": "cam", "source": "demo"}]})
        self.set_users(users)

    def set_users(self, users: dict[str, str]) -> None:
        config = yaml.safe_load(self.config_path.read_text())
        config["web"]["auth"] = {
            "users": [{"name": n, "password_hash": h} for n, h in users.items()]
        }
        write_config(self.config_path, config)

    def login(self, user: str, password: str) -> str:
        body = urlencode({"username": user, "password": password, "next": "/"}).encode()
        request = urllib.request.Request(
            self.base + "/login", data=body, headers={"X-Motiond": "1"}
        )

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: Any) -> None:
                return None

        try:
            urllib.request.build_opener(NoRedirect).open(request, timeout=10)
        except urllib.error.HTTPError as error:
            assert error.code == 302, error.read()
            cookies = error.headers.get_all("Set-Cookie") or []
            (session,) = [c.split(";")[0] for c in cookies if c.startswith("motiond_session=")]
            return session
        raise AssertionError("no redirect after login")

    def status_with(self, cookie: str) -> int:
        request = urllib.request.Request(self.base + "/api/cameras", headers={"Cookie": cookie})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return error.code


def test_sessions_end_when_their_user_is_removed_or_gets_a_new_password(tmp_path: Path) -> None:
    hashes = {name: hash_password(f"{name} password") for name in ("alice", "bob", "carol")}
    daemon = SessionDaemon(tmp_path, hashes)
    daemon.start()
    try:
        cookies = {name: daemon.login(name, f"{name} password") for name in hashes}
        assert all(daemon.status_with(c) == 200 for c in cookies.values())
        assert daemon.stop() == 0
        # alice is removed, bob gets a new password, carol stays as she was.
        daemon.set_users({"bob": hash_password("a new password"), "carol": hashes["carol"]})
        daemon.start()
        assert daemon.status_with(cookies["alice"]) == 401
        assert daemon.status_with(cookies["bob"]) == 401
        assert daemon.status_with(cookies["carol"]) == 200  # sessions survive restarts
    finally:
        daemon.stop()


def test_rotate_secret_ends_every_session(tmp_path: Path) -> None:
    daemon = SessionDaemon(tmp_path, {"alice": hash_password(PASSWORD)})
    daemon.start()
    try:
        cookie = daemon.login("alice", PASSWORD)
        assert daemon.status_with(cookie) == 200
        result = run_motiond(["rotate-secret", "-c", str(daemon.config_path)], cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert ".cookie-secret" in result.stdout and "reload" in result.stdout
        assert daemon.status_with(cookie) == 200  # until the daemon reloads
        assert daemon.process is not None
        os.kill(daemon.process.pid, signal.SIGHUP)
        daemon.wait_for(lambda: "every session has ended" in daemon.log(), 10, "the new secret")
        assert daemon.status_with(cookie) == 401
        # Removing the file by hand and restarting does the same.
        cookie = daemon.login("alice", PASSWORD)
        assert daemon.stop() == 0
        (daemon.storage / ".cookie-secret").unlink()
        daemon.start()
        assert daemon.status_with(cookie) == 401
        assert daemon.status_with(daemon.login("alice", PASSWORD)) == 200
    finally:
        daemon.stop()


# -- 4. secrets in logs and output --------------------------------------------------------------

SECRETS = (
    "Cam3ra-pw",
    "QueryPw9",
    "Tok3nAsUserPart0123456789",
    "AnotherPw7",
    "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
    "Hook-pw5",
)
BOT_URL = "https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/sendMessage"


def test_check_config_prints_no_secrets(tmp_path: Path) -> None:
    config = {
        "storage": {"dir": str(tmp_path / "data")},
        "web": {
            "auth": {
                "users": [{"name": "alice", "password_hash": hash_password(PASSWORD)}],
                "tokens": [{"name": "ci", "token_hash": hash_token(TOKEN)}],
            }
        },
        "hooks": {
            "on_clip_end": {
                "url": BOT_URL + "?chat_id=42",
                "command": ["curl", "-d", "x", "https://user:Hook-pw5@127.0.0.1/notify"],
            }
        },
        "cameras": [
            {"name": "door", "source": "rtsp://admin:Cam3ra-pw@127.0.0.1:554/stream?pwd=QueryPw9"},
            {
                "name": "shed",
                "source": "http://Tok3nAsUserPart0123456789@127.0.0.1/video?password=AnotherPw7",
            },
        ],
    }
    write_config(tmp_path / "c.yaml", config)
    result = run_motiond(["check-config", "-c", str(tmp_path / "c.yaml")], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    printed = result.stdout
    for secret in (*SECRETS, "scrypt$", "sha256$", hash_token(TOKEN)[7:]):
        assert secret not in printed, secret
    # Still useful: where each camera is, which hooks run.
    assert "rtsp://admin:***@127.0.0.1:554/stream?pwd=***" in printed
    assert "api.telegram.org" in printed and "curl" in printed
    assert yaml.safe_load(printed.split("\n", 1)[1])["cameras"][0]["name"] == "door"


def test_failed_hooks_log_no_secrets(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = free_port()
    env_file = tmp_path / "env"
    monkeypatch.setenv("MOTIOND_TEST_SECRET", "from-the-daemons-environment")
    failing = (
        "import os, sys; open(sys.argv[1], 'w').write(repr(dict(os.environ))); "
        "sys.stderr.write('curl: (7) https://user:Hook-pw5@127.0.0.1/x password=AnotherPw7')"
        "; sys.exit(3)"
    )
    hook = HookConfig(
        command=(shutil.which("python3") or "python3", "-c", failing, str(env_file)),
        url=f"http://127.0.0.1:{closed}/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/send",
        timeout=5.0,
    )
    runner = HookRunner(HooksConfig(on_clip_end=hook), {}, LINKS)
    caplog.set_level(logging.DEBUG)
    runner.start()
    runner.on_event(clip_ended("cam"))
    deadline = time.monotonic() + 20
    while runner.failures < 2:
        assert time.monotonic() < deadline, caplog.text
        time.sleep(0.05)
    runner.stop(5)
    for secret in SECRETS:
        assert secret not in caplog.text, secret
    assert "exit status 3" in caplog.text and "127.0.0.1" in caplog.text
    # A hook gets a minimal environment, not the daemon's own.
    environment = env_file.read_text()
    assert "MOTIOND_TEST_SECRET" not in environment
    assert "MOTIOND_EVENT" in environment and "'PATH'" in environment


def test_camera_urls_are_redacted_in_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    closed = free_port()
    url = f"http://127.0.0.1:{closed}/video.cgi?user=admin&pwd=QueryPw9"
    config = CameraConfig(
        name="cam",
        capture=CaptureConfig(source=url, kind="url", open_timeout=1.0, read_timeout=1.0),
    )
    caplog.set_level(logging.INFO)
    worker = CameraWorker(config, Storage(tmp_path), lambda event: None, source_factory=open_source)
    worker.start()
    try:
        deadline = time.monotonic() + 15
        while "cannot open" not in caplog.text:
            assert time.monotonic() < deadline, caplog.text
            time.sleep(0.05)
    finally:
        worker.stop(10)
    assert "QueryPw9" not in caplog.text and "pwd=***" in caplog.text


# -- 5. scrypt ------------------------------------------------------------------------------------


def test_new_hashes_meet_owasp_scrypt_and_old_ones_still_verify() -> None:
    stored = hash_password(PASSWORD)
    assert stored.split("$")[1:4] == ["16384", "8", "5"]  # N=2^14, r=8, p=5: 16 MiB
    assert verify_password(PASSWORD, stored) and not verify_password("nope", stored)
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(PASSWORD.encode(), salt=salt, n=2**14, r=8, p=1)
    encoded = [base64.b64encode(salt).decode(), base64.b64encode(digest).decode()]
    old = "$".join(["scrypt", "16384", "8", "1", *encoded])
    assert verify_password(PASSWORD, old)  # made by an earlier version


class TestScryptOffTheLoop(AuthTestCase):
    def test_basic_auth_verifies_off_the_loop_and_once(self) -> None:
        calls: list[str] = []
        original = auth_module.verify_password

        def spy(password: str, stored: str) -> bool:
            calls.append(threading.current_thread().name)
            return original(password, stored)

        auth_module.verify_password = spy  # type: ignore[assignment]
        try:
            for _ in range(3):  # a script, or a clip's Range requests
                response = self.api("GET", "/api/cameras", Authorization=basic("alice", PASSWORD))
                assert response.code == 200
            assert len(calls) == 1, calls  # remembered after the first
            for _ in range(2):
                response = self.api("GET", "/api/cameras", Authorization=basic("alice", "wrong"))
                assert response.code == 401
            assert len(calls) == 3, calls  # a wrong password is never remembered
        finally:
            auth_module.verify_password = original
        ioloop_thread = threading.main_thread().name
        assert ioloop_thread not in calls, calls


# -- 6. login -------------------------------------------------------------------------------------


class TestLogin(AuthTestCase):
    def test_next_cannot_leave_the_site(self) -> None:
        for target in ("/\\evil.example/x", "/\t/evil.example/x", "/\\/evil.example", "//x"):
            response = self.login("alice", PASSWORD, target)
            assert response.code == 302 and response.headers["Location"] == "/", target
        response = self.login("alice", PASSWORD, "/clips?camera=cam")
        assert response.headers["Location"] == "/clips?camera=cam"

    def test_the_login_form_must_come_from_our_page(self) -> None:
        body = urlencode({"username": "alice", "password": PASSWORD, "next": "/"})
        forged = self.fetch(
            "/login",
            method="POST",
            body=body,
            follow_redirects=False,
            raise_error=False,
            headers={"Origin": "http://evil.example"},
        )
        assert forged.code == 403
        assert "motiond_session" not in " ".join(forged.headers.get_list("Set-Cookie"))
        assert self.login("alice", PASSWORD).code == 302  # with the page's token
        scripted = self.fetch(  # the page's script sends X-Motiond, which no form can
            "/login",
            method="POST",
            body=body,
            follow_redirects=False,
            raise_error=False,
            headers={"X-Motiond": "1"},
        )
        assert scripted.code == 302

    def test_a_proxy_without_forwarded_for_is_not_one_bucket(self) -> None:
        # 127.0.0.1 is a trusted proxy here; requests without X-Forwarded-For have no address.
        for _ in range(6):
            response = self.api("GET", "/api/cameras", Authorization=basic("mallory", "guess"))
            assert response.code == 401
        response = self.api("GET", "/api/cameras", Authorization=basic("alice", PASSWORD))
        assert response.code == 200

    def test_failed_logins_are_limited_per_account(self) -> None:
        for n in range(10):  # from ten addresses, two failures each would pass per address
            address = {"X-Forwarded-For": f"192.0.2.{n}"}
            response = self.api(
                "GET", "/api/cameras", Authorization=basic("alice", "guess"), **address
            )
            assert response.code == 401
        response = self.api(
            "GET",
            "/api/cameras",
            Authorization=basic("alice", PASSWORD),
            **{"X-Forwarded-For": "198.51.100.1"},
        )
        assert response.code == 429
        assert self.api("GET", "/api/cameras", Authorization=f"Bearer {TOKEN}").code == 200


# -- 7. smaller ones ------------------------------------------------------------------------------


class TestSmaller(WebTestCase):
    def test_websockets_may_only_connect_to_this_host(self) -> None:
        port = self.get_http_port()
        allowed = {"'self'", f"ws://127.0.0.1:{port}", f"wss://127.0.0.1:{port}"}
        for path in ("/api/cameras", "/", "/static/live.js"):
            policy = self.fetch(path).headers["Content-Security-Policy"]
            (connect,) = [d.split()[1:] for d in policy.split(";") if d.split()[0] == "connect-src"]
            assert set(connect) <= allowed, (path, connect)  # no bare ws: or wss: (any host)

    def test_ids_are_full_matches_of_ascii_digits(self) -> None:
        clip = json.loads(self.api("GET", "/api/clips").body)["clips"][0]
        camera, day, name = clip["id"].split("/")
        arabic = day.translate({ord("0") + d: 0x0660 + d for d in range(10)})  # Arabic-Indic
        for bad in (clip["id"] + "\n", f"{camera}/{arabic}/{name}"):
            response = self.api("GET", f"/api/clips/{quote(bad, safe='/')}")
            assert response.code == 400, (bad, response.code)
        assert self.api("GET", f"/api/clips/{clip['id']}").code == 200

    def test_metrics_counters_are_exact(self) -> None:
        self.wait_online()
        camera = self.daemon.cameras["cam"]
        camera.stop(10)  # so the capture thread no longer counts
        camera.frames = 1_234_567_891
        metrics = self.api("GET", "/metrics").body.decode()
        (line,) = [m for m in metrics.splitlines() if m.startswith("motiond_frames_total{")]
        assert line == 'motiond_frames_total{camera="cam"} 1234567891', line


def server_frames(sock: socket.socket, pump: Callable[[], None], timeout: float) -> Any:
    """The opcodes of the WebSocket frames a server sends on ``sock`` (after its handshake
    answer), as they arrive; ``pump`` lets the server's IOLoop run between reads."""
    buffer = b""
    deadline = time.monotonic() + timeout
    sock.setblocking(False)
    handshake_done = False
    while time.monotonic() < deadline:
        pump()
        try:
            buffer += sock.recv(1 << 20)
        except BlockingIOError:
            continue
        if not handshake_done:
            if b"\r\n\r\n" not in buffer:
                continue
            head, buffer = buffer.split(b"\r\n\r\n", 1)
            assert head.startswith(b"HTTP/1.1 101"), head
            handshake_done = True
        while len(buffer) >= 2:
            opcode, length, offset = buffer[0] & 0x0F, buffer[1] & 0x7F, 2
            if length == 126:
                length, offset = int.from_bytes(buffer[2:4]), 4
            elif length == 127:
                length, offset = int.from_bytes(buffer[2:10]), 10
            if len(buffer) < offset + length:
                break
            buffer = buffer[offset + length :]
            yield opcode


def raw_viewer(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            "GET /ws/live/cam HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    return sock


class TestViewerPings(WebTestCase):
    def pump(self) -> None:
        self.io_loop.run_sync(lambda: tornado.gen.sleep(0.02))

    def test_viewers_are_pinged(self) -> None:
        """A viewer that vanished (no close, no TCP reset) is found by pings, not by TCP giving
        up minutes later; the daemon pings every viewer, at most 10 s apart."""
        sock = raw_viewer(self.get_http_port())
        try:
            opcodes = set()
            for opcode in server_frames(sock, self.pump, timeout=15):
                opcodes.add(opcode)
                if opcode == 0x9:
                    break
            assert 0x9 in opcodes, f"no ping within 15 s, only {sorted(opcodes)}"
        finally:
            sock.close()


class TestVanishedViewer(WebTestCase):
    web_options = {"ping_interval": 0.3, "ping_timeout": 1.0}

    def test_a_viewer_that_never_answers_loses_its_slot(self) -> None:
        sock = raw_viewer(self.get_http_port())
        try:
            deadline = time.monotonic() + 5
            while self.daemon.hub.viewers("cam") != 1:
                assert time.monotonic() < deadline
                self.pump()
            # It reads nothing and answers no ping from now on.
            deadline = time.monotonic() + 15
            while self.daemon.hub.viewers("cam"):
                assert time.monotonic() < deadline, "the silent viewer kept its slot"
                self.pump()
            viewers = json.loads(self.api("GET", "/api/cameras").body)[0]["viewers"]
            assert viewers == 0
        finally:
            sock.close()

    def pump(self) -> None:
        self.io_loop.run_sync(lambda: tornado.gen.sleep(0.05))
