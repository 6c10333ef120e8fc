"""Local result links answer Range requests, so a <video> can seek and a download resume."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import Service
from tests.support.http_server import MediaServer

# Local signed links exist only with the local result store (S3 answers ranges itself): these
# tests run in that shape alone.
pytestmark = pytest.mark.parametrize("service", ["embedded"], indirect=True)


@pytest.fixture
def clip(service: Service, media_server: MediaServer) -> tuple[str, bytes]:
    job = service.client.submit(url=media_server.url("talk.mp4"), start=1, end=5)
    url = service.client.wait_result(job.id, progress=False).video.url
    whole = httpx.get(url)
    assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes"
    return url, whole.content


def test_a_range_is_206_with_exactly_those_bytes(clip: tuple[str, bytes]) -> None:
    url, whole = clip
    response = httpx.get(url, headers={"Range": "bytes=100-1099"})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes 100-1099/{len(whole)}"
    assert response.headers["content-length"] == "1000"
    assert response.content == whole[100:1100]


def test_an_interrupted_download_resumes(clip: tuple[str, bytes]) -> None:
    url, whole = clip
    got = bytearray()
    with httpx.stream("GET", url) as response:  # the connection drops after the first chunk
        for chunk in response.iter_bytes():
            got += chunk[:5000]
            break
    rest = httpx.get(url, headers={"Range": f"bytes={len(got)}-"})
    assert rest.status_code == 206
    assert rest.headers["content-range"] == f"bytes {len(got)}-{len(whole) - 1}/{len(whole)}"
    assert bytes(got) + rest.content == whole
    tail = httpx.get(url, headers={"Range": "bytes=-10"})  # the last 10 bytes
    assert tail.status_code == 206 and tail.content == whole[-10:]


def test_an_unsatisfiable_range_is_416(clip: tuple[str, bytes]) -> None:
    url, whole = clip
    for past_the_end in (f"bytes={len(whole)}-", f"bytes={len(whole) + 5}-{len(whole) + 9}"):
        response = httpx.get(url, headers={"Range": past_the_end})
        assert response.status_code == 416
        assert response.headers["content-range"] == f"bytes */{len(whole)}"
        assert response.json()["error"]["code"] == "range_not_satisfiable"
    # A range that starts inside the file is served, clipped to its end.
    tail = httpx.get(url, headers={"Range": f"bytes={len(whole) - 4}-{len(whole) + 100}"})
    assert tail.status_code == 206 and tail.content == whole[-4:]
