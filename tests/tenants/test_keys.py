"""API keys on the real databases: only a hash is kept, revoked keys stop working, and the
``auto`` auth mode turns on with the first key or a non-loopback address."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from clipmaker.api.auth import auth_required
from clipmaker.jobs.db import make_engine, migrate
from clipmaker.settings import Settings
from clipmaker.tenants.keys import KeyRepository, hash_key
from clipmaker.tenants.models import ApiKeyCreate


@pytest.fixture(params=["sqlite", "postgres"])
def keys(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KeyRepository]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'keys.db'}"
    else:
        from tests.conftest import fresh_postgres_database

        context = fresh_postgres_database()
        url = context.__enter__()
        request.addfinalizer(lambda: context.__exit__(None, None, None))
    migrate(url)
    repo = KeyRepository(make_engine(url))
    yield repo
    repo.engine.dispose()


def test_only_a_hash_is_stored(keys: KeyRepository) -> None:
    record, key = keys.create(ApiKeyCreate(tenant="acme", requests_per_minute=10))
    with keys.engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM api_keys")).mappings().all()
    stored = " ".join(str(value) for value in rows[0].values())
    assert key not in stored
    assert rows[0]["key_hash"] == hash_key(key)
    assert key.startswith(record.prefix) and len(record.prefix) < len(key) // 3
    assert len(key) >= 40  # 256 random bits, url-safe


def test_authenticate_and_revoke(keys: KeyRepository) -> None:
    record, key = keys.create(ApiKeyCreate(tenant="acme", admin=True, max_running=3))
    found = keys.authenticate(key)
    assert found is not None and (found.tenant, found.admin, found.max_running) == (
        "acme",
        True,
        3,
    )
    assert keys.authenticate(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert keys.authenticate("") is None
    assert keys.revoke(record.id).revoked_at is not None
    assert keys.authenticate(key) is None
    assert keys.revoke(record.id).revoked_at is not None  # twice is fine


def test_auto_auth_turns_on_with_the_first_key(keys: KeyRepository) -> None:
    loopback = Settings(auth="auto", http_host="127.0.0.1")
    assert not auth_required(loopback, keys)
    assert auth_required(Settings(auth="auto", http_host="0.0.0.0"), keys)
    assert auth_required(Settings(auth="required"), keys)
    record, _ = keys.create(ApiKeyCreate(tenant="acme"))
    fresh = KeyRepository(keys.engine)  # another replica, nothing remembered
    assert auth_required(loopback, fresh)
    assert auth_required(loopback, keys)  # the creating process forgot its "no keys" at once
    assert not auth_required(Settings(auth="off", http_host="0.0.0.0"), fresh)
    keys.revoke(record.id)
    assert not auth_required(loopback, KeyRepository(keys.engine))
