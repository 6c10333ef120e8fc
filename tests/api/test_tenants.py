"""Keys and tenants over real HTTP: who may call, and who sees what.

Every check is what an attacker holding a valid key of their own would try against another
tenant's ids: read, fetch results, cancel, list, replay an idempotency key, use an upload,
rewrite a result link.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from clipmaker.tenants.models import ApiKeyCreate
from tests.api.conftest import KeyedService
from tests.support.http_server import MediaServer


def _job_body(media_server: MediaServer, start: float = 1.0, end: float = 2.0) -> dict:
    return {"source": {"url": media_server.url("talk.mp4")}, "start": start, "end": end}


def _unknown_id_answer(http: httpx.Client, path: str, method: str = "GET") -> httpx.Response:
    return http.request(method, path.format(id=secrets.token_hex(16)))


@pytest.fixture(scope="module")
def acme(keyed_service: KeyedService) -> str:
    return keyed_service.key("acme")


@pytest.fixture(scope="module")
def globex(keyed_service: KeyedService) -> str:
    return keyed_service.key("globex")


@pytest.fixture(scope="module")
def acme_job(keyed_service: KeyedService, acme: str, media_server: MediaServer) -> str:
    """A finished job of tenant acme."""
    with keyed_service.client(acme) as client:
        job = client.submit(url=media_server.url("talk.mp4"), start=1, end=2)
        done = client.wait(job.id, progress=False, timeout=120)
    assert done.status == "succeeded", done.error
    return job.id


def test_no_key_wrong_key_and_revoked_key_are_401(keyed_service: KeyedService) -> None:
    record, key = keyed_service.keys.create(ApiKeyCreate(tenant="initech"))
    keyed_service.keys.revoke(record.id)
    for presented in (None, "cmk_" + secrets.token_urlsafe(32), "not-even-a-key", key):
        with keyed_service.http(presented) as http:
            for method, path in (
                ("GET", "/api/jobs"),
                ("POST", "/api/jobs"),
                ("GET", f"/api/jobs/{secrets.token_hex(16)}"),
                ("POST", "/api/batches"),
                ("POST", "/api/uploads"),
            ):
                response = http.request(method, path, json={})
                assert response.status_code == 401, (presented, method, path)
                assert response.json()["error"]["code"] == "unauthorized"
                assert response.headers["www-authenticate"].startswith("Bearer")
    with keyed_service.http() as http:  # load balancers have no key
        assert http.get("/healthz").status_code == 200
        assert http.get("/readyz").status_code == 200


def _clipmaker(keyed_service: KeyedService, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as an operator runs it, in a process of its own, on the service's database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLIPMAKER_")}
    env["DATABASE_URL"] = keyed_service.settings.resolved_database_url
    env["CLIPMAKER_DATA_DIR"] = str(keyed_service.settings.data_dir)
    command = [str(Path(sys.executable).with_name("clipmaker")), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def test_a_key_made_with_the_cli_works(keyed_service: KeyedService) -> None:
    made = _clipmaker(keyed_service, "keys", "create", "--tenant", "umbrella")
    assert made.returncode == 0, made.stdout + made.stderr
    key = made.stdout.strip().splitlines()[-1]  # the key, alone on the last line
    assert key.startswith("cmk_") and " " not in key
    with keyed_service.http(key) as http:
        assert http.get("/api/jobs").status_code == 200
    listed = _clipmaker(keyed_service, "keys", "list").stdout
    assert "tenant=umbrella" in listed
    assert key not in listed  # only a prefix is ever shown again
    key_id = next(line.split()[0] for line in listed.splitlines() if "tenant=umbrella" in line)
    assert _clipmaker(keyed_service, "keys", "revoke", key_id).returncode == 0
    with keyed_service.http(key) as http:
        assert http.get("/api/jobs").status_code == 401


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/jobs/{id}"),
        ("GET", "/api/jobs/{id}/result"),
        ("DELETE", "/api/jobs/{id}"),
    ],
)
def test_another_tenants_job_is_exactly_an_unknown_one(
    keyed_service: KeyedService, acme_job: str, globex: str, method: str, path: str
) -> None:
    with keyed_service.http(globex) as http:
        theirs = http.request(method, path.format(id=acme_job))
        unknown = _unknown_id_answer(http, path, method)
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json()["error"]["code"] == unknown.json()["error"]["code"]
    # Same words too, apart from the id itself: nothing tells "exists, not yours" apart.
    other_id = urlsplit(str(unknown.request.url)).path.split("/")[-1 - path.endswith("result")]
    assert theirs.json()["error"]["message"].replace(acme_job, "ID") == unknown.json()["error"][
        "message"
    ].replace(other_id, "ID")


def test_cancel_by_another_tenant_leaves_the_job_alone(
    keyed_service: KeyedService, acme: str, globex: str, media_server: MediaServer
) -> None:
    with keyed_service.http(acme) as http:
        job = http.post("/api/jobs", json=_job_body(media_server, 3, 4)).json()
    with keyed_service.http(globex) as http:
        assert http.delete(f"/api/jobs/{job['id']}").status_code == 404
    with keyed_service.client(acme) as client:
        assert client.wait(job["id"], progress=False, timeout=120).status == "succeeded"


def test_lists_show_only_the_callers_jobs_and_admins_see_all(
    keyed_service: KeyedService, acme_job: str, globex: str, media_server: MediaServer
) -> None:
    with keyed_service.http(globex) as http:
        mine = http.post("/api/jobs", json=_job_body(media_server, 5, 6)).json()["id"]
        listed = http.get("/api/jobs", params={"limit": 500}).json()
    ids = {item["id"] for item in listed["items"]}
    assert mine in ids and acme_job not in ids
    assert {item["tenant"] for item in listed["items"]} == {"globex"}
    assert listed["total"] == len(listed["items"])
    # No other tenant's source URLs or requests leak through the list either.
    admin = keyed_service.key("ops", admin=True)
    with keyed_service.http(admin) as http:
        everything = http.get("/api/jobs", params={"limit": 500}).json()
        assert http.get(f"/api/jobs/{acme_job}").status_code == 200
    assert {mine, acme_job} <= {item["id"] for item in everything["items"]}


def test_result_links_are_scoped_to_their_tenant(
    keyed_service: KeyedService, acme: str, globex: str, acme_job: str
) -> None:
    with keyed_service.http(acme) as http:
        link = http.get(f"/api/jobs/{acme_job}/result").json()["video"]["url"]
    parts = urlsplit(link)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query["tenant"] == "acme"
    assert httpx.get(link).status_code == 200  # the link alone is the credential
    with keyed_service.http(acme) as http:
        assert http.get(link).status_code == 200
    with keyed_service.http(globex) as http:  # B presenting its own key gets nothing
        refused = http.get(link)
    assert refused.status_code == 404
    assert refused.json()["error"]["code"] == "file_not_found"
    # Rewriting the tenant breaks the signature; dropping it too.
    unscoped = {k: v for k, v in query.items() if k != "tenant"}
    for changed in ({**query, "tenant": "globex"}, unscoped):
        forged = urlunsplit(parts._replace(query=urlencode(changed)))
        assert httpx.get(forged).status_code == 403


def test_idempotency_keys_are_per_tenant(
    keyed_service: KeyedService, acme: str, globex: str, media_server: MediaServer
) -> None:
    shared = {"Idempotency-Key": f"order-{secrets.token_hex(4)}"}
    with keyed_service.http(acme) as http:
        first = http.post("/api/jobs", json=_job_body(media_server, 1, 3), headers=shared)
        again = http.post("/api/jobs", json=_job_body(media_server, 1, 3), headers=shared)
    with keyed_service.http(globex) as http:
        # Another tenant's same key is a new job, not a replay of (or conflict with) acme's.
        theirs = http.post("/api/jobs", json=_job_body(media_server, 2, 3), headers=shared)
    assert first.status_code == again.status_code == theirs.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert theirs.json()["id"] != first.json()["id"]
    assert "idempotent-replayed" not in theirs.headers


def test_uploads_and_batches_of_another_tenant_are_unknown(
    keyed_service: KeyedService, acme: str, globex: str, media_dir, media_server: MediaServer
) -> None:
    with keyed_service.client(acme) as client:
        upload = client.upload(media_dir / "talk.mp4")
        batch = client.submit_batch([_job_body(media_server, 1, 2)])
        assert batch.counts == {"queued": 1} or sum(batch.counts.values()) == 1
    body = {"source": {"upload_id": upload.upload_id}, "start": 1, "end": 2}
    with keyed_service.http(globex) as http:
        theirs = http.post("/api/jobs", json=body)
        unknown = http.post(
            "/api/jobs", json={**body, "source": {"upload_id": secrets.token_hex(16)}}
        )
        assert theirs.status_code == unknown.status_code == 422
        assert theirs.json()["error"]["code"] == unknown.json()["error"]["code"]
        assert theirs.json()["error"]["code"] == "upload_not_found"
        assert http.get(f"/api/batches/{batch.id}").status_code == 404
    with keyed_service.http(acme) as http:
        assert http.post("/api/jobs", json=body).status_code == 202
        assert http.get(f"/api/batches/{batch.id}").status_code == 200
