"""Settings: embedded defaults with nothing set; the usual variables where they are set."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from clipmaker.settings import Settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "DATABASE_URL",
        "REDIS_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
    ):
        monkeypatch.delenv(name, raising=False)


def test_embedded_defaults_live_in_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.resolved_database_url == f"sqlite:///{tmp_path.resolve()}/clipmaker.db"
    assert settings.redis_url is None
    assert settings.resolved_storage_url == str((tmp_path / "results").resolve())
    assert settings.resolved_public_base_url == "http://127.0.0.1:8000"
    assert settings.whisper_model == "bundled"


def test_the_usual_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://u@db/clips")
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/1")
    monkeypatch.setenv("CLIPMAKER_STORAGE_URL", "s3://bucket/prefix")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://minio:9000")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "hunter2-value")
    monkeypatch.setenv("CLIPMAKER_MEDIA_WORKER_RESOURCES", '{"media": 1}')
    settings = Settings()
    assert settings.resolved_database_url == "postgresql+psycopg://u@db/clips"
    assert settings.redis_url == "redis://cache:6379/1"
    assert settings.resolved_storage_url == "s3://bucket/prefix"
    assert settings.s3_endpoint_url == "http://minio:9000"
    assert settings.s3_secret_access_key is not None
    assert settings.s3_secret_access_key.get_secret_value() == "hunter2-value"
    assert "hunter2" not in repr(settings)
    assert settings.media_worker_resources == {"media": 1}


def test_field_names_work_as_arguments() -> None:
    settings = Settings(database_url="sqlite:///x.db", redis_url="redis://r")
    assert (settings.database_url, settings.redis_url) == ("sqlite:///x.db", "redis://r")


def test_signing_key_is_made_once_and_kept(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path).resolved_signing_secret
    second = Settings(data_dir=tmp_path).resolved_signing_secret
    assert first == second and len(first) == 64
    chosen = Settings(data_dir=tmp_path, signing_secret="hunter2-key")
    assert chosen.resolved_signing_secret == b"hunter2-key"
    assert "hunter2" not in repr(chosen)


@pytest.mark.parametrize(
    "bad",
    [{"instance": "Bad Name"}, {"media_workers": 0}, {"lease_s": 0}, {"asr_use_gpu": "maybe"}],
)
def test_bad_settings_are_refused(bad: dict) -> None:
    with pytest.raises(ValidationError):
        Settings(**bad)
