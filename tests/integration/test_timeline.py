"""GET /api/timeline and the /review page against the real app: three real clips on disk,
camera history written by the history's own writer, on-demand snapshot files."""

from __future__ import annotations

import json
from typing import Any

from motiond.store.history import CameraHistory, HistoryEntry
from motiond.store.layout import finished_segment_path, reserve_segment
from motiond.web.auth import hash_token
from tests.fixtures.web import TOKEN, WebTestCase

T0 = 1_800_000_000.0  # the seeded clips start at T0, T0 + 600 and T0 + 1200
H0 = 1_700_000_000.0


class TestTimeline(WebTestCase):
    def timeline(self, **query: str) -> Any:
        text = "&".join(f"{k}={v}" for k, v in query.items())
        return self.api("GET", f"/api/timeline?{text}")

    def test_clips_and_recorded_of_a_range(self) -> None:
        response = self.timeline(camera="cam", since=str(T0 - 60), until=str(T0 + 900))
        assert response.code == 200, response.body
        body = json.loads(response.body)
        assert (body["camera"], body["since"], body["until"]) == ("cam", T0 - 60, T0 + 900)
        index = {c.id: c for c in self.daemon.index.list(camera="cam")}
        assert len(body["clips"]) == 2  # the third starts after the range
        for clip in body["clips"]:
            record = index[clip["id"]]
            assert (clip["start"], clip["end"]) == (record.start_ts, record.end_ts)
            assert clip["url"] == f"media/{record.file}"
            assert clip["poster"] == f"media/{record.poster}"
            assert self.fetch("/" + clip["url"]).code == 200
            assert self.fetch("/" + clip["poster"]).code == 200
        assert [c["start"] for c in body["clips"]] == sorted(c["start"] for c in body["clips"])
        assert body["recorded"] == [{"start": c["start"], "end": c["end"]} for c in body["clips"]]
        assert body["offline"] == [] and body["tampered"] == [] and body["snapshots"] == []

    def test_a_clip_reaching_into_the_range_is_listed(self) -> None:
        first = min(self.daemon.index.list(camera="cam"), key=lambda c: c.start_ts)
        middle = (first.start_ts + first.end_ts) / 2
        body = json.loads(self.timeline(camera="cam", since=str(middle), until=str(T0 + 60)).body)
        assert [c["id"] for c in body["clips"]] == [first.id]

    def test_iso_times_are_accepted(self) -> None:
        since, until = "2027-01-15T08:00:00%2B00:00", "2027-01-15T08:30:00%2B00:00"
        body = json.loads(self.timeline(camera="cam", since=since, until=until).body)
        assert body["since"] == T0 and body["until"] == T0 + 1800  # T0 is 08:00 UTC that day
        assert len(body["clips"]) == 3

    def test_offline_spans_and_tamper_alerts_from_the_history(self) -> None:
        # In the past (an offline span still open ends now), unlike the seeded clips.
        history = CameraHistory(self.daemon.storage.root, 0)
        for entry in (
            HistoryEntry("cam", H0 - 7200, "offline", "lost"),  # before the range: still off
            HistoryEntry("cam", H0 + 100, "online", "demo"),
            HistoryEntry("cam", H0 + 300, "tampered", "covered up", "covered", H0 + 290),
            HistoryEntry("cam", H0 + 400, "offline", "lost"),
            HistoryEntry("cam", H0 + 460, "online", "demo"),
            HistoryEntry("cam", H0 + 2000, "offline", "stopped"),  # never back
        ):
            history.write(entry)
        body = json.loads(self.timeline(camera="cam", since=str(H0), until=str(H0 + 3600)).body)
        assert body["offline"] == [
            {"start": H0, "end": H0 + 100},
            {"start": H0 + 400, "end": H0 + 460},
            {"start": H0 + 2000, "end": H0 + 3600},
        ]
        assert body["tampered"] == [
            {"start": H0 + 290, "detected": H0 + 300, "kind": "covered", "detail": "covered up"}
        ]

    def test_on_demand_snapshots_of_the_range(self) -> None:
        storage = self.daemon.storage
        inside = storage.reserve_snapshot("cam", T0 + 30)
        outside = storage.reserve_snapshot("cam", T0 + 7200)
        for path in (inside, outside):
            path.write_bytes(b"\xff\xd8 not really a picture \xff\xd9")
            self.daemon.snapshot_index.add_file(path)  # as the recorder's event does
        body = json.loads(self.timeline(camera="cam", since=str(T0), until=str(T0 + 3600)).body)
        assert body["snapshots"] == [{"ts": T0 + 30, "url": f"media/{storage.relative(inside)}"}]

    def test_continuous_segments_and_their_coverage(self) -> None:
        storage = self.daemon.storage
        # Two consecutive segments (a frame interval apart) just before the first clip, then
        # an outage, then one overlapping the second clip.
        for start, duration in ((T0 - 120, 59.96), (T0 - 60, 60.0), (T0 + 590, 30.0)):
            partial = reserve_segment(storage, "cam", start)
            partial.rename(finished_segment_path(partial, duration))
        self.daemon.segments.rebuild()
        body = json.loads(
            self.timeline(camera="cam", since=str(T0 - 600), until=str(T0 + 900)).body
        )
        assert [(s["start"], s["end"]) for s in body["segments"]] == [
            (T0 - 120, T0 - 60.04),
            (T0 - 60, T0),
            (T0 + 590, T0 + 620),
        ]
        for segment in body["segments"]:
            assert segment["url"].startswith("media/continuous/cam/")
            assert self.fetch("/" + segment["url"]).code == 200
        first, second = body["clips"]
        assert body["recorded"] == [
            {"start": T0 - 120, "end": first["end"]},  # segments and the clip right after
            {"start": T0 + 590, "end": max(T0 + 620, second["end"])},
        ]

    def test_bad_requests(self) -> None:
        day = {"since": str(T0), "until": str(T0 + 86400)}
        cases = [
            ({"since": str(T0), "until": str(T0 + 60)}, 400, "camera, since and until"),
            ({"camera": "cam", "until": str(T0)}, 400, "camera, since and until"),
            ({"camera": "cam", "since": str(T0), "until": str(T0)}, 400, "until must be after"),
            ({"camera": "cam", "since": str(T0), "until": str(T0 + 8 * 86400)}, 400, "7 days"),
            ({"camera": "cam", "since": "yesterday", "until": str(T0)}, 400, "ISO 8601"),
            ({"camera": "../etc", **day}, 400, "camera"),
            ({"camera": "nobody", **day}, 404, "no camera"),
        ]
        for query, status, message in cases:
            response = self.timeline(**query)
            assert response.code == status, (query, response.code, response.body)
            assert message in json.loads(response.body)["error"], (query, response.body)
        seven = self.timeline(camera="cam", since=str(T0), until=str(T0 + 7 * 86400))
        assert seven.code == 200

    def test_review_page_is_served_and_linked(self) -> None:
        page = self.fetch("/review")
        assert page.code == 200
        html = page.body.decode()
        assert 'src="static/review.js"' in html and 'href="static/review.css"' in html
        for asset in ("review.js", "review.css"):
            assert self.fetch(f"/static/{asset}").code == 200
        for other in ("/", "/clips"):
            assert '<a href="review">Review</a>' in self.fetch(other).body.decode()


class TestTimelineAuth(WebTestCase):
    web_yaml = (
        f"web:\n  port: 0\n  auth:\n    tokens: [{{name: ci, token_hash: '{hash_token(TOKEN)}'}}]\n"
    )

    def test_behind_the_same_auth_as_the_clips(self) -> None:
        path = f"/api/timeline?camera=cam&since={T0}&until={T0 + 3600}"
        assert self.api("GET", path).code == 401
        assert self.api("GET", path, Authorization="Bearer wrong").code == 401
        response = self.api("GET", path, Authorization=f"Bearer {TOKEN}")
        assert response.code == 200 and len(json.loads(response.body)["clips"]) == 3
        page = self.fetch("/review", follow_redirects=False)
        assert page.code == 302 and "/login?next=/review" in page.headers["Location"]
