"""The MP4 live view's socket on the real app (demo camera): the same rules as the JPEG view,
a refusal that sends the page to JPEG pictures, and the JPEG socket's status-only mode. Its
pictures, from a real RTSP camera, are checked in tests/e2e/test_live_mp4.py."""

from __future__ import annotations

import asyncio
import json

import tornado.httpclient
import tornado.testing
import tornado.web
import tornado.websocket
from tornado.httpclient import HTTPRequest

from motiond.web.auth import hash_token
from motiond.web.livemp4 import write_binary
from tests.fixtures.web import TOKEN, WebTestCase


class TestLiveMp4(WebTestCase):
    @tornado.testing.gen_test(timeout=30)
    async def test_a_camera_of_pictures_is_refused_so_the_page_shows_jpeg(self) -> None:
        connection = await tornado.websocket.websocket_connect(
            self.ws_url("/ws/live/cam?format=mp4&stream=main")
        )
        message = await connection.read_message()
        assert isinstance(message, str)
        assert json.loads(message) == {
            "type": "unsupported",
            "reason": "the camera sends pictures, not a coded stream",
        }
        assert await connection.read_message() is None
        assert connection.close_code == 4415
        # The feed is gone with its last viewer: nothing is kept for a stream nobody watches.
        await asyncio.sleep(0.2)
        assert self.daemon.web_app is not None
        assert self.daemon.web_app.mp4_hub.feeds == {}

    @tornado.testing.gen_test(timeout=30)
    async def test_bad_origin_and_unknown_camera(self) -> None:
        request = HTTPRequest(
            self.ws_url("/ws/live/cam?format=mp4"), headers={"Origin": "http://evil.example"}
        )
        try:
            await tornado.websocket.websocket_connect(request)
            raise AssertionError("connected with a foreign Origin")
        except tornado.httpclient.HTTPClientError as exc:
            assert exc.code == 403
        connection = await tornado.websocket.websocket_connect(
            self.ws_url("/ws/live/nope?format=mp4")
        )
        assert await connection.read_message() is None
        assert connection.close_code == 4404

    @tornado.testing.gen_test(timeout=30)
    async def test_frames_0_sends_status_without_pictures(self) -> None:
        connection = await tornado.websocket.websocket_connect(self.ws_url("/ws/live/cam?frames=0"))
        kinds: list[str] = []
        binaries = 0
        deadline = asyncio.get_running_loop().time() + 3.0
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            try:
                message = await asyncio.wait_for(connection.read_message(), left)
            except TimeoutError:
                break
            assert message is not None
            if isinstance(message, bytes):
                binaries += 1
            else:
                kinds.append(json.loads(message)["type"])
        connection.close()
        assert binaries == 0
        assert kinds[0] == "hello" and kinds.count("status") >= 2


class TestLiveMp4Auth(WebTestCase):
    web_yaml = (
        f"web:\n  port: 0\n  auth:\n    tokens: [{{name: ci, token_hash: '{hash_token(TOKEN)}'}}]\n"
    )

    @tornado.testing.gen_test(timeout=30)
    async def test_the_mp4_view_needs_auth(self) -> None:
        try:
            await tornado.websocket.websocket_connect(self.ws_url("/ws/live/cam?format=mp4"))
            raise AssertionError("connected without auth")
        except tornado.httpclient.HTTPClientError as exc:
            assert exc.code == 401
        request = HTTPRequest(
            self.ws_url("/ws/live/cam?format=mp4"), headers={"Authorization": f"Bearer {TOKEN}"}
        )
        connection = await tornado.websocket.websocket_connect(request)
        message = await connection.read_message()
        assert isinstance(message, str) and json.loads(message)["type"] == "unsupported"
        connection.close()


SIZES = [0, 1, 125, 126, 65535, 65536, 300_000]  # each length form of RFC 6455 5.2, and edges


class _WritesBinary(tornado.websocket.WebSocketHandler):
    def open(self, *args: str, **kwargs: str) -> None:
        for size in SIZES:
            write_binary(self, bytes([size % 251]) * size)
        self.write_message("done")  # Tornado's own frames keep their place among them


class TestWriteBinary(tornado.testing.AsyncHTTPTestCase):
    """The live view's media segments skip ``write_message``: a real client reads them as
    the same messages, whatever their length."""

    def get_app(self) -> tornado.web.Application:
        return tornado.web.Application([("/ws", _WritesBinary)])

    @tornado.testing.gen_test(timeout=30)
    async def test_messages_of_every_length_arrive_whole_and_in_order(self) -> None:
        url = f"ws://127.0.0.1:{self.get_http_port()}/ws"
        connection = await tornado.websocket.websocket_connect(url, max_message_size=1 << 20)
        for size in SIZES:
            message = await connection.read_message()
            assert message == bytes([size % 251]) * size
        assert await connection.read_message() == "done"
        connection.close()
