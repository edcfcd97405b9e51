"""Findings 2 and 3 of the abuse review (issue 16): logins counted before the password check,
and an owner who cannot be locked out by failures from elsewhere.

The real app on a loopback port; other client addresses are other loopback addresses
(127.0.0.2, 127.0.0.3, ...), used as the requests' source address.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from urllib.parse import urlencode

import tornado.gen
import tornado.httpclient
import tornado.testing
from tornado.httpclient import HTTPRequest, HTTPResponse

from motiond.web.auth import LoginLimiter, VerifiedCache, hash_password
from tests.fixtures.daemon import free_port
from tests.fixtures.web import PASSWORD, WebTestCase

OWNER = "127.0.0.4"
ATTACKERS = ("127.0.0.2", "127.0.0.3")


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class LoginTestCase(WebTestCase):
    web_yaml = (
        "web:\n  port: 0\n  auth:\n"
        f"    users: [{{name: alice, password_hash: '{hash_password(PASSWORD)}'}}]\n"
    )

    def request(self, path: str, source: str, **options: object) -> HTTPRequest:
        return HTTPRequest(
            self.get_url(path),
            network_interface=source,
            follow_redirects=False,
            **options,  # type: ignore[arg-type]
        )

    def form_login(self, source: str, password: str, cookies: dict[str, str]) -> HTTPResponse:
        """The login form as a browser at ``source`` posts it; keeps the cookies it is given."""
        page = self.fetch_from(source, "/login", cookies)
        token = re.search(r'name="_xsrf" type="hidden" value="([^"]+)"', page.body.decode())
        assert token is not None
        body = urlencode({"username": "alice", "password": password, "_xsrf": token[1]})
        response = self.fetch_from(source, "/login", cookies, method="POST", body=body)
        return response

    def fetch_from(
        self, source: str, path: str, cookies: dict[str, str], **options: object
    ) -> HTTPResponse:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())} if cookies else {}
        response: HTTPResponse = self.io_loop.run_sync(
            lambda: self.http_client.fetch(
                self.request(path, source, headers=headers, **options), raise_error=False
            )
        )
        for header in response.headers.get_list("Set-Cookie"):
            name, _, value = header.split(";")[0].partition("=")
            cookies[name] = value
        return response

    def forget_verified_logins(self) -> None:
        """As a minute later: credentials verified before are checked again (VERIFIED_TTL)."""
        app = self.daemon.web_app
        assert app is not None
        app.context.authenticator.verified = VerifiedCache()


class TestLoginsAreCountedBeforeTheCheck(LoginTestCase):
    @tornado.testing.gen_test(timeout=120)
    async def test_forty_guesses_at_once_get_at_most_five_checks(self) -> None:
        client = tornado.httpclient.AsyncHTTPClient(force_instance=True, max_clients=64)
        guesses = [f"guess {n}" for n in range(39)] + [PASSWORD]
        try:
            responses = await asyncio.gather(
                *(
                    client.fetch(
                        self.request(
                            "/api/cameras",
                            ATTACKERS[0],
                            headers={"Authorization": basic("alice", guess)},
                        ),
                        raise_error=False,
                    )
                    for guess in guesses
                )
            )
        finally:
            client.close()
        codes = [r.code for r in responses]
        checked = codes.count(401) + codes.count(200)  # what reached scrypt
        assert 1 <= checked <= 5, codes
        assert codes.count(429) == len(codes) - checked, codes
        assert all(b'"error"' in r.body for r in responses if r.code == 429)

    def test_the_same_credentials_at_once_cost_one_check(self) -> None:
        """A page's parallel requests with Basic: one attempt, all answered 200."""

        async def many() -> list[int]:
            client = tornado.httpclient.AsyncHTTPClient(force_instance=True, max_clients=16)
            try:
                responses = await asyncio.gather(
                    *(
                        client.fetch(
                            self.request(
                                "/api/cameras",
                                OWNER,
                                headers={"Authorization": basic("alice", PASSWORD)},
                            ),
                            raise_error=False,
                        )
                        for _ in range(12)
                    )
                )
            finally:
                client.close()
            return [r.code for r in responses]

        assert self.io_loop.run_sync(many, timeout=60) == [200] * 12


class TestTheOwnerIsNotLockedOut(LoginTestCase):
    def test_the_owners_browser_logs_in_after_failures_from_elsewhere(self) -> None:
        owner: dict[str, str] = {}
        first = self.form_login(OWNER, PASSWORD, owner)
        assert first.code == 302, first.body
        assert "motiond_device" in owner  # the browser is remembered
        owner.pop("motiond_session")  # a later visit: the session is gone, the device stays
        self.forget_verified_logins()
        for attacker in ATTACKERS:
            codes = [self.form_login(attacker, "guess", {}).code for _ in range(5)]
            assert codes == [401] * 5, (attacker, codes)
        # The account's allowance for unknown browsers is spent: a new browser must wait.
        assert self.form_login("127.0.0.5", PASSWORD, {}).code == 429
        # The owner's browser has its own.
        again = self.form_login(OWNER, PASSWORD, owner)
        assert again.code == 302, again.body
        assert self.fetch_from(OWNER, "/api/cameras", owner).code == 200

    def test_a_forged_device_cookie_gives_no_allowance(self) -> None:
        owner: dict[str, str] = {}
        assert self.form_login(OWNER, PASSWORD, owner).code == 302
        device = owner["motiond_device"]
        self.forget_verified_logins()
        for attacker in ATTACKERS:
            for _ in range(5):
                self.form_login(attacker, "guess", {})
        # The cookie is signed: changed in any way, it is nothing.
        value = device.strip('"')
        forged = {"motiond_device": value[:-1] + ("0" if value[-1] != "0" else "1")}
        assert self.form_login("127.0.0.6", PASSWORD, forged).code == 429


def test_the_account_is_slowed_down_not_locked() -> None:
    limiter = LoginLimiter()
    now = 1000.0
    for n in range(10):  # ten addresses, one failure each
        attempt = limiter.reserve(f"192.0.2.{n}", "alice", None, now)
        assert attempt is not None
        limiter.finish(attempt, succeeded=False)
    assert limiter.reserve("198.51.100.1", "alice", None, now + 1) is None
    # One attempt per window / per_account (30 s) from an unknown client, not none for 5 min.
    later = limiter.reserve("198.51.100.1", "alice", None, now + 31)
    assert later is not None
    limiter.finish(later, succeeded=False)
    assert limiter.reserve("198.51.100.2", "alice", None, now + 32) is None
    # A remembered browser is not held by the account's failures at all.
    assert limiter.reserve("198.51.100.3", "alice", "device-1", now + 32) is not None


def test_password_checks_in_flight_are_capped() -> None:
    limiter = LoginLimiter()
    first = limiter.reserve("192.0.2.1", "alice", None, 0.0)
    second = limiter.reserve("192.0.2.1", "bob", None, 0.0)
    assert first is not None and second is not None
    assert limiter.reserve("192.0.2.1", "carol", None, 0.0) is None  # two running already
    limiter.finish(first, succeeded=True)
    assert limiter.reserve("192.0.2.1", "carol", None, 0.0) is not None


class TestHealthWithoutLogin(LoginTestCase):
    """/healthz answers anyone (monitors), but names no broker host or user without a login."""

    broker_port = free_port()  # nothing listens there: the broker is "down"
    web_yaml = LoginTestCase.web_yaml + (
        f"mqtt: {{host: 127.0.0.1, port: {broker_port}, username: secret-user, password: x}}\n"
    )

    def test_health_says_states_not_hosts(self) -> None:
        mqtt = self.daemon.mqtt
        assert mqtt is not None
        mqtt.start()
        try:
            deadline = time.monotonic() + 10
            while mqtt.client.last_error is None:
                assert time.monotonic() < deadline, "no connection attempt"
                self.io_loop.run_sync(lambda: tornado.gen.sleep(0.1))
            anonymous = json.loads(self.fetch("/healthz", raise_error=False).body)
            assert anonymous["mqtt"] == {"connected": False, "failing": True}
            logged_in = self.fetch(
                "/healthz",
                raise_error=False,
                headers={"Authorization": basic("alice", PASSWORD)},
            )
            error = json.loads(logged_in.body)["mqtt"]["error"]
            assert f"127.0.0.1:{self.broker_port}" in error
        finally:
            mqtt.stop()
