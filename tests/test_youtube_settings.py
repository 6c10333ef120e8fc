"""The YouTube settings as a deployment writes them in its environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from clipmaker.pipeline import plugin_dirs, youtube_options
from clipmaker.settings import Settings


def test_youtube_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLIPMAKER_YOUTUBE_PLAYER_CLIENTS", " web, tv_simply ,")
    monkeypatch.setenv("CLIPMAKER_YOUTUBE_POT_PROVIDER_URL", "http://bgutil-provider:4416")
    monkeypatch.setenv("CLIPMAKER_YOUTUBE_COOKIES_FILE", "/run/secrets/cookies.txt")
    monkeypatch.setenv("CLIPMAKER_YTDLP_PROXY", "socks5://egress:1080")
    monkeypatch.setenv("CLIPMAKER_RATE_LIMIT_RETRIES", "2")
    settings = Settings()
    options = youtube_options(settings)
    assert options.player_clients == ("web", "tv_simply")
    assert options.pot_provider_url == "http://bgutil-provider:4416"
    assert options.cookies_file == "/run/secrets/cookies.txt"
    assert options.proxy == "socks5://egress:1080"
    assert settings.rate_limit_retries == 2
    # the provider is a yt-dlp plugin: its folder is loaded with the deployment's own
    dirs = plugin_dirs(settings)
    assert len(dirs) == 1 and any((p / "yt_dlp_plugins").is_dir() for p in Path(dirs[0]).iterdir())


def test_by_default_no_plugin_loads_and_youtube_needs_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("YOUTUBE_PLAYER_CLIENTS", "YOUTUBE_POT_PROVIDER_URL", "YTDLP_PLUGIN_DIRS"):
        monkeypatch.delenv(f"CLIPMAKER_{name}", raising=False)
    settings = Settings()
    assert plugin_dirs(settings) == ()
    options = youtube_options(settings)
    assert options.player_clients == ("default", "tv_simply")
    assert options.pot_provider_url is None and options.cookies_file is None
