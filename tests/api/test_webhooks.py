"""Webhooks: a job that ends is POSTed to its receiver, signed per Standard Webhooks, retried
after a failure, never sent again after a 2xx, and listed on the job; the secret never shows."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterator

import httpx
import pytest

from clipmaker.client import clip_request
from tests.api.conftest import Service
from tests.api.helpers import wait_for
from tests.support.http_server import MediaServer
from tests.support.webhook_receiver import Post, WebhookReceiver, receive_webhooks


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with receive_webhooks() as receiver:
        yield receiver


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def new_path() -> str:
    return f"/hooks/{secrets.token_hex(4)}"


def verify(secret: str, post: Post, *, tolerance_s: int = 300) -> bool:
    """The receiver's side of the spec, written here from standardwebhooks.com, not imported."""
    msg_id = post.headers["webhook-id"]
    timestamp = post.headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance_s:
        return False
    key = base64.b64decode(secret.split("_", 1)[1])
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + post.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for signature in post.headers["webhook-signature"].split(" "):
        version, _, value = signature.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return True
    return False


def test_signed_retried_after_a_500_and_not_sent_again_after_a_2xx(
    service: Service, media_server: MediaServer, receiver: WebhookReceiver
) -> None:
    path, secret = new_path(), new_secret()
    receiver.answer(path, 500)  # the first attempt fails, the second gets 204
    job = service.client.submit(
        url=media_server.url("talk.mp4"),
        start=1,
        end=3,
        webhook={"url": receiver.url(path), "secret": secret},
    )
    first, second = receiver.wait_for(path, 2)

    for post in (first, second):
        assert verify(secret, post), post.headers
        assert not verify(new_secret(), post)  # a signature by any other key does not pass
        assert post.headers["content-type"] == "application/json"
    assert first.headers["webhook-id"] == second.headers["webhook-id"]  # one message, retried
    assert first.body == second.body
    message = json.loads(first.body)
    assert message["type"] == "job.succeeded"
    assert message["data"]["id"] == job.id and message["data"]["status"] == "succeeded"
    assert secret.encode() not in first.body and b"whsec_" not in first.body

    def delivered() -> bool:
        return service.client.job(job.id).webhook.status == "delivered"

    wait_for(delivered, timeout=30)
    hook = service.client.job(job.id).webhook
    assert hook.url == receiver.url(path)
    assert [d.status_code for d in hook.deliveries] == [500, 204]
    assert hook.deliveries[0].at <= hook.deliveries[1].at
    # No delivery after the 2xx: wait well past the retry interval (0.5 s) and the senders'
    # poll (0.2 s) for a third POST, which must not come.
    assert len(receiver.wait_for(path, 3, timeout=3.0)) == 2


def test_the_secret_is_never_shown(
    service: Service, media_server: MediaServer, receiver: WebhookReceiver
) -> None:
    path, secret = new_path(), new_secret()
    body = clip_request(url=media_server.url("talk.mp4"), start=1, end=2)
    body["webhook"] = {"url": receiver.url(path), "secret": secret}
    created = httpx.post(f"{service.base_url}/api/jobs", json=body, timeout=30)
    assert created.status_code == 202
    job_id = created.json()["id"]
    receiver.wait_for(path, 1)
    shown = [
        created.text,
        httpx.get(f"{service.base_url}/api/jobs/{job_id}").text,
        httpx.get(f"{service.base_url}/api/jobs", params={"limit": 500}).text,
    ]
    secret_b64 = secret.removeprefix("whsec_")
    for text in shown:
        assert secret_b64 not in text and "whsec_" not in text
    job = httpx.get(f"{service.base_url}/api/jobs/{job_id}").json()
    assert set(job["webhook"]) == {"url", "status", "deliveries"}
    assert "webhook" not in job["request"] or job["request"]["webhook"] is None


def test_each_batch_item_and_a_failed_job_are_delivered(
    service: Service, media_server: MediaServer, receiver: WebhookReceiver
) -> None:
    good, bad, secret = new_path(), new_path(), new_secret()
    items = [
        clip_request(url=media_server.url("talk.mp4"), start=2, end=3),
        clip_request(url=media_server.url("page.html"), start=1, end=2),
    ]
    items[0]["webhook"] = {"url": receiver.url(good), "secret": secret}
    items[1]["webhook"] = {"url": receiver.url(bad), "secret": secret}
    batch = service.client.submit_batch(items)
    (ok,) = receiver.wait_for(good, 1)
    (failed,) = receiver.wait_for(bad, 1)
    assert verify(secret, ok) and verify(secret, failed)
    assert json.loads(ok.body)["type"] == "job.succeeded"
    failure = json.loads(failed.body)
    assert failure["type"] == "job.failed"
    assert failure["data"]["error"]["code"] == "not_media"
    assert failure["data"]["id"] == batch.items[1].job_id
    assert ok.headers["webhook-id"] != failed.headers["webhook-id"]


@pytest.mark.parametrize(
    ("webhook", "code", "says"),
    [
        ({"url": "http://169.254.169.254/hook", "secret": None}, "source_forbidden", "webhook"),
        ({"url": "http://127.0.0.2:9/hook", "secret": None}, "source_forbidden", "webhook"),
        ({"url": "ftp://example.com/hook", "secret": None}, "invalid_request", "webhook.url"),
        ({"url": "https://example.com/h", "secret": "s3cret"}, "invalid_request", "whsec_"),
        ({"url": "https://example.com/h", "secret": "whsec_c2hvcnQ="}, "invalid_request", "24"),
    ],
)
def test_bad_webhooks_are_refused_at_submit(
    service: Service, media_server: MediaServer, webhook: dict, code: str, says: str
) -> None:
    body = clip_request(url=media_server.url("talk.mp4"), start=1, end=2)
    body["webhook"] = {**webhook, "secret": webhook["secret"] or new_secret()}
    response = httpx.post(f"{service.base_url}/api/jobs", json=body, timeout=30)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == code and says in error["message"]
    if webhook["secret"]:
        assert webhook["secret"] not in response.text  # not even a bad secret is echoed
