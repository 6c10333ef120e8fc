"""Signing and the retry schedule, without a server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from clipmaker.jobs.repository import WebhookClaim
from clipmaker.settings import Settings
from clipmaker.webhooks import headers, retry_at, sign

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
