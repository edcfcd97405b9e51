"""Finding 7 of the abuse review (issue 16): bad input and a failing disk get a 4xx or a 503/507
with a reason, never a 500; a log line never repeats a long URI. The real app on a loopback
port (the fuzz tests in tests/e2e/test_fuzz.py do the same against the daemon as a process)."""

from __future__ import annotations

import json
import logging
import shutil

import pytest

from motiond.web.bounds import json_depth, parse_json
from tests.fixtures.web import WebTestCase


class TestBadInput(WebTestCase):
    def test_numbers_with_signs_and_thousands_of_digits_get_400(self) -> None:
        for query in ("limit=--5", "offset=--1", "limit=" + "5" * 5000, "offset=-" + "9" * 5000):
            response = self.api("GET", f"/api/clips?{query}")
            assert response.code == 400, (query[:30], response.code)
            assert json.loads(response.body)["error"].startswith(("limit", "offset"))
        assert self.api("GET", "/api/clips?limit=+2").code == 200

    def test_deep_json_body_gets_400(self) -> None:
        clip_id = json.loads(self.api("GET", "/api/clips").body)["clips"][0]["id"]
        response = self.fetch(
            f"/api/clips/{clip_id}",
            method="PATCH",
            body="[" * 20000,
            headers={"Content-Type": "application/json"},
            raise_error=False,
        )
        assert response.code == 400
        assert "nested deeper than 32" in json.loads(response.body)["error"]

    def test_long_uris_are_cut_short_in_the_log(self) -> None:
        with self.assertLogs("tornado.access", logging.INFO) as logged:
            assert self.api("GET", "/api/clips?limit=" + "7" * 6000).code == 400
        lines = [r.getMessage() for r in logged.records]
        assert lines and all(len(line) < 400 for line in lines), lines
        assert "...(6017 characters)" in lines[-1]

    def test_a_snapshot_on_a_broken_disk_gets_503_with_a_reason(self) -> None:
        self.wait_online()
        snapshots = self.tmp / "data" / "snapshots"
        shutil.rmtree(snapshots, ignore_errors=True)
        snapshots.write_text("not a folder")  # root may write anywhere, but not below a file
        response = self.api("POST", "/api/cameras/cam/snapshot")
        assert response.code == 503, response.body
        assert json.loads(response.body)["error"].startswith("storage is not usable now")


def test_json_depth_is_measured_without_recursion() -> None:
    deep: list[object] = []
    for _ in range(5000):
        deep = [deep]
    assert json_depth(deep) == 5001
    assert json_depth({"a": [1, {"b": []}]}) == 4
    assert json_depth(7) == 0
    with pytest.raises(ValueError, match="nested deeper than 32"):
        parse_json("[" * 33 + "]" * 33)
    assert parse_json("[" * 32 + "]" * 32)
    with pytest.raises(ValueError, match="nested deeper"):
        parse_json("[" * 20000)
