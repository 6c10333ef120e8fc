"""A hostile user points clipmaker at internal addresses: every way is refused, alike.

The service under test admits exactly 127.0.0.1 (its media server); "internal" targets are
counting servers on 127.0.0.2 and ::1, loopback but outside the allow-list. Each test checks
what the attacker sees (``source_forbidden`` and the one message, at submit when the URL
already says so, else as the job's error) and that the target accepted no connection at all.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from clipmaker.net import FORBIDDEN_MESSAGE
from tests.api.conftest import Service
from tests.api.test_bad_input import error_of, post_job
from tests.support.http_server import MediaServer
from tests.support.streaming import make_hls
from tests.support.targets import Reply, Target, serve_target

INSIDE = "127.0.0.2"
HLS_TYPE = {"Content-Type": "application/vnd.apple.mpegurl"}


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.fixture
def inside(media_dir: Path) -> Iterator[Target]:
    """An internal server holding a real video: what an attacker would like to reach."""
    with serve_target(INSIDE, {"/v.mp4": Reply(200, (media_dir / "talk.mp4").read_bytes())}) as t:
        yield t


def _job_error(service: Service, url: str) -> tuple[str, str]:
    job = service.client.submit(url=url, start=1.0, end=2.0)
    done = service.client.wait(job.id, progress=False, timeout=120)
    assert done.status == "failed", done
    return done.error.code, done.error.message


@pytest.mark.parametrize(
    "spelling",
    [INSIDE, "2130706434", "0x7f000002", "0177.0.0.2", "localhost"],
)
def test_a_url_naming_an_internal_address_is_refused_at_submit(
    service: Service, inside: Target, spelling: str
) -> None:
    response = post_job(
        service, {"source": {"url": f"http://{spelling}:{inside.port}/v.mp4"}, "start": 1, "end": 2}
    )
    assert response.status_code == 422
    assert error_of(response) == {"code": "source_forbidden", "message": FORBIDDEN_MESSAGE}
    assert inside.connections == 0


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback here")
def test_ipv6_loopback_is_refused_at_submit(service: Service, media_dir: Path) -> None:
    with serve_target("::1", {"/v.mp4": Reply(200, b"secret")}) as target:
        response = post_job(
            service, {"source": {"url": target.url("/v.mp4")}, "start": 1, "end": 2}
        )
    assert response.status_code == 422
    assert error_of(response) == {"code": "source_forbidden", "message": FORBIDDEN_MESSAGE}
    assert target.connections == 0


def test_a_redirect_to_an_internal_address_fails_the_job(service: Service, inside: Target) -> None:
    hop = Reply(302, headers={"Location": inside.url("/v.mp4")})
    with serve_target("127.0.0.1", {"/v.mp4": hop}) as outside:
        assert _job_error(service, outside.url("/v.mp4")) == ("source_forbidden", FORBIDDEN_MESSAGE)
        assert outside.requests  # the allowed hop was asked
    assert inside.connections == 0


def test_a_page_embedding_an_internal_video_fails_the_job(service: Service, inside: Target) -> None:
    page = f'<html><body><video src="{inside.url("/v.mp4")}"></video></body></html>'
    routes = {"/page.html": Reply(200, page.encode(), {"Content-Type": "text/html"})}
    with serve_target("127.0.0.1", routes) as outside:
        error = _job_error(service, outside.url("/page.html"))
    assert error == ("source_forbidden", FORBIDDEN_MESSAGE)
    assert inside.connections == 0


def test_an_hls_segment_at_an_internal_address_fails_the_job(
    service: Service, media_dir: Path, tmp_path: Path
) -> None:
    playlist = make_hls(media_dir / "talk.mp4", tmp_path / "hls")
    segments = {p.name: p.read_bytes() for p in (tmp_path / "hls").glob("*.ts")}
    routes = {f"/{name}": Reply(200, data) for name, data in segments.items()}
    with serve_target(INSIDE, routes) as inside_segments:
        text = "".join(
            inside_segments.url(f"/{line}") + "\n" if line in segments else line + "\n"
            for line in playlist.read_text().splitlines()
        )
        with serve_target("127.0.0.1", {"/p.m3u8": Reply(200, text.encode(), HLS_TYPE)}) as outside:
            error = _job_error(service, outside.url("/p.m3u8"))
    assert error == ("source_forbidden", FORBIDDEN_MESSAGE)
    assert inside_segments.connections == 0


def test_refusals_tell_nothing_about_the_target(service: Service) -> None:
    """An open port answering 401, a closed port, the metadata address, a database port: the
    caller gets the same code and message for each (no port map from error texts)."""
    with serve_target(INSIDE, {"/": Reply(401, b"dashboard")}) as dashboard:
        targets = [
            dashboard.url("/"),
            f"http://{INSIDE}:1/",  # closed
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.1:5432/",
        ]
        errors = set()
        for target in targets:
            hop = Reply(302, headers={"Location": target})
            with serve_target("127.0.0.1", {"/go": hop}) as outside:
                errors.add(_job_error(service, outside.url("/go")))
    assert errors == {("source_forbidden", FORBIDDEN_MESSAGE)}
    assert dashboard.connections == 0


def test_an_allowed_source_still_makes_a_clip(service: Service, media_server: MediaServer) -> None:
    job = service.client.submit(url=media_server.url("talk.mp4"), start=1.0, end=2.0)
    assert service.client.wait(job.id, progress=False).status == "succeeded"
