"""Signing, the retry schedule, and single delivery attempts against a loopback receiver."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from clipmaker.jobs.db import make_engine, migrate
from clipmaker.jobs.models import ClipRequest
from clipmaker.jobs.repository import JobRepository, WebhookClaim
from clipmaker.settings import Settings
from clipmaker.webhooks import deliver_one, headers, retry_at, sign
from tests.support.webhook_receiver import receive_webhooks

# The test vector published with the Standard Webhooks reference implementations.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signature_matches_the_specs_test_vector() -> None:
    assert sign(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE
    sent = headers(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)
    assert sent["webhook-id"] == SPEC_ID
    assert sent["webhook-timestamp"] == str(SPEC_TIMESTAMP)
    assert sent["webhook-signature"] == SPEC_SIGNATURE


def claim(attempt: int, finished_at: datetime) -> WebhookClaim:
    return WebhookClaim("j", attempt, "https://example.com/", SPEC_SECRET, finished_at)


def test_retries_back_off_exponentially_and_stop_after_the_window(tmp_path) -> None:
    settings = Settings(
        data_dir=tmp_path, webhook_retry_base_s=5, webhook_retry_for_s=3 * 3600
    )
    ended = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    waits = [
        (retry_at(settings, claim(n, ended), ended) - ended).total_seconds() for n in (1, 2, 3, 4)
    ]
    assert waits == [5, 10, 20, 40]
    assert retry_at(settings, claim(30, ended), ended) == ended + timedelta(hours=1)  # capped
    late = ended + timedelta(hours=2, minutes=30)
    assert retry_at(settings, claim(30, ended), late) is None  # past the window: give up


# --- one delivery attempt, against a real receiver on loopback ---------------------------------


@pytest.fixture
def jobs(tmp_path: Path) -> Iterator[JobRepository]:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    migrate(url)
    engine = make_engine(url)
    yield JobRepository(engine)
    engine.dispose()


def ended_job(jobs: JobRepository, hook_url: str) -> str:
    request = ClipRequest.model_validate(
        {
            "source": {"url": "https://example.com/v.mp4"},
            "start": 1,
            "end": 2,
            "webhook": {"url": hook_url, "secret": SPEC_SECRET},
        }
    )
    job, _ = jobs.create(request)
    jobs.cancel(job.id)
    return job.id


def test_a_receiver_that_never_answers_2xx_is_given_up(
    jobs: JobRepository, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        allowed_source_networks="127.0.0.1/32",
        webhook_retry_base_s=0.05,
        webhook_retry_for_s=0.3,
    )
    with receive_webhooks() as receiver:
        receiver.answer("/down", *[503] * 50)
        job_id = ended_job(jobs, receiver.url("/down"))
        deadline = time.monotonic() + 30
        while jobs.get(job_id).webhook_status == "pending":  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "never given up"
            if not deliver_one(settings, jobs):
                time.sleep(0.02)  # the next retry is not due yet
        posts = receiver.posts("/down")
    job = jobs.get(job_id)
    assert job is not None and job.webhook_status == "failed" and job.webhook_secret is None
    deliveries = jobs.deliveries([job_id])[job_id]
    assert len(deliveries) == len(posts) >= 2
    assert {d.status_code for d in deliveries} == {503}
    gaps = [b.received_at - a.received_at for a, b in pairwise(posts)]
    assert len(gaps) < 2 or gaps[-1] > gaps[0]  # the waits grow


def test_a_forbidden_receiver_is_never_contacted(jobs: JobRepository, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path).with_overrides(allowed_source_networks=())  # public only
    with receive_webhooks() as receiver:
        job_id = ended_job(jobs, receiver.url("/inside").replace("127.0.0.1", "localhost"))
        assert deliver_one(settings, jobs)
        assert receiver.posts("/inside") == []
    (attempt,) = jobs.deliveries([job_id])[job_id]
    assert attempt.status_code is None and "not allowed" in (attempt.error or "")
    assert jobs.get(job_id).webhook_status == "pending"  # type: ignore[union-attr]
