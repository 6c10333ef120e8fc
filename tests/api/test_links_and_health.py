"""Signed links refuse tampering and expiry; health, readiness and the API docs."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from clipmaker.storage import sign_key
from tests.api.conftest import Service
from tests.support.http_server import MediaServer

# Local signed links exist only with the local result store: these tests run in that shape
# alone (S3 links are signed by the store itself).
local_store_only = pytest.mark.parametrize("service", ["embedded"], indirect=True)


@pytest.fixture
def local_link(service: Service, media_server: MediaServer) -> str:
    assert service.mode == "embedded"
    job = service.client.submit(url=media_server.url("talk.mp4"), start=1, end=2)
    return service.client.wait_result(job.id, progress=False).video.url


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | changes
    return urlunsplit(parts._replace(query=urlencode(query)))


@local_store_only
def test_genuine_link_serves_the_clip(local_link: str) -> None:
    response = httpx.get(local_link)
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"
    assert response.content[4:8] == b"ftyp"


@local_store_only
def test_tampered_links_are_refused(local_link: str) -> None:
    parts = urlsplit(local_link)
    query = parse_qs(parts.query)
    later = str(int(query["expires"][0]) + 3600)
    tampered = [
        with_query(local_link, sig="0" * 64),
        with_query(local_link, expires=later),
        local_link.replace("clip.mp4", "clip.srt"),
        local_link.replace("/files/jobs/", "/files/uploads/"),
    ]
    for url in tampered:
        response = httpx.get(url)
        assert response.status_code == 403, url
        assert response.json()["error"]["code"] == "bad_signature"


@local_store_only
def test_expired_link_is_refused(service: Service, local_link: str) -> None:
    key = urlsplit(local_link).path.split("/files/", 1)[1]
    tenant = parse_qs(urlsplit(local_link).query)["tenant"][0]
    expires = int(time.time()) - 1
    sig = sign_key(service.settings.resolved_signing_secret, key, expires, tenant)
    response = httpx.get(with_query(local_link, expires=str(expires), sig=sig))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "link_expired"


@local_store_only
def test_links_minted_before_tenants_still_work(service: Service, local_link: str) -> None:
    parts = urlsplit(local_link)
    key = parts.path.split("/files/", 1)[1]
    expires = int(time.time()) + 60
    sig = sign_key(service.settings.resolved_signing_secret, key, expires)  # no tenant in it
    legacy = urlunsplit(parts._replace(query=urlencode({"expires": expires, "sig": sig})))
    assert httpx.get(legacy).status_code == 200
    # ...but a scoped link's signature is no good without its tenant, or with another one.
    assert httpx.get(with_query(local_link, tenant="someone-else")).status_code == 403


@local_store_only
def test_path_traversal_is_refused(service: Service, local_link: str) -> None:
    key = "../signing.key"
    expires = int(time.time()) + 60
    sig = sign_key(service.settings.resolved_signing_secret, key, expires)
    response = httpx.get(f"{service.base_url}/files/{key}?expires={expires}&sig={sig}")
    assert response.status_code in (403, 404, 422)
    assert service.settings.resolved_signing_secret.decode() not in response.text


def test_health_and_readiness(service: Service) -> None:
    assert service.client.http.get("/healthz").json() == {"status": "ok", "checks": {}}
    ready = service.client.http.get("/readyz")
    assert ready.status_code == 200
    checks = ready.json()["checks"]
    assert set(checks) == {"database", "redis", "storage", "workers"}
    assert "1 media, 1 asr (cpu)" in checks["workers"]


def test_openapi_documents_every_route_and_model(service: Service) -> None:
    assert service.client.http.get("/docs").status_code == 200
    spec = service.client.http.get("/openapi.json").json()
    paths = set(spec["paths"])
    assert {
        "/api/jobs",
        "/api/jobs/{job_id}",
        "/api/jobs/{job_id}/result",
        "/api/uploads",
        "/api/batches",
        "/api/batches/{batch_id}",
        "/healthz",
        "/readyz",
    } <= paths
    schemas = spec["components"]["schemas"]
    for name in ("ClipRequest", "JobPublic", "JobResult", "UploadPublic", "BatchPublic"):
        assert name in schemas
    assert "multipart/form-data" in spec["paths"]["/api/uploads"]["post"]["requestBody"]["content"]
