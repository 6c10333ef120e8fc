"""Range reads against a CDN's passing faults: a 5xx is tried again, a 403 is reported (and
recorded, so a job can resolve an expired URL again)."""

from __future__ import annotations

import pytest

from clipmaker.errors import ClipError
from clipmaker.media.http import HttpSession, RangeReader
from clipmaker.net import AddressPolicy
from tests.support.targets import Reply, serve_target

BODY = bytes(range(256)) * 4096  # 1 MiB
LOOPBACK = AddressPolicy(["127.0.0.1/32"])


def _ranged(statuses: list[int]):
    """A route answering the statuses in turn (then 206s) for the first 256 KiB."""

    def reply() -> Reply:
        status = statuses.pop(0) if statuses else 206
        if status != 206:
            return Reply(status, b"")
        first, last = 0, 256 * 1024 - 1
        return Reply(206, BODY[: last + 1], {"Content-Range": f"bytes {first}-{last}/{len(BODY)}"})

    return reply


def test_a_passing_5xx_is_tried_again() -> None:
    with serve_target("127.0.0.1", {"/v": _ranged([503, 502])}) as target:
        with HttpSession(policy=LOOPBACK) as session:
            reader = RangeReader(session, target.url("/v"))
            assert reader.read(1000) == BODY[:1000]
            assert session.error_statuses == [503, 502]
        assert len(target.requests) == 3


def test_a_403_is_reported_at_once_and_recorded() -> None:
    with serve_target("127.0.0.1", {"/v": _ranged([403, 403, 403])}) as target:
        with HttpSession(policy=LOOPBACK) as session, pytest.raises(ClipError) as caught:
            RangeReader(session, target.url("/v"))
        assert session.error_statuses == [403]
        assert "403" in caught.value.message
        assert len(target.requests) == 1
