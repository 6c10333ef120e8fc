"""The YouTube policy on its own: error mapping, the choice between clients and formats, and
what is handed to yt-dlp. The whole-service tests are in ``tests/api/test_youtube.py``."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from yt_dlp.networking.common import Response
from yt_dlp.networking.exceptions import HTTPError
from yt_dlp.utils import DownloadError, ExtractorError, GeoRestrictedError

from clipmaker.errors import ClipError
from clipmaker.media.resolve import ytdlp_params
from clipmaker.media.resolved import ResolvedSource
from clipmaker.media.youtube import (
    MESSAGES,
    YoutubeOptions,
    choose,
    extraction_error,
    pot_provider_plugin_dir,
    private_cookies,
    url_expiry,
)

HINT = (
    "Use --cookies-from-browser or --cookies for the authentication. See  "
    "https://github.com/yt-dlp/yt-dlp/wiki/FAQ#how-do-i-pass-cookies-to-yt-dlp  for how to "
    "manually pass cookies. Also see  https://github.com/yt-dlp/yt-dlp/wiki/Extractors#"
    "exporting-youtube-cookies  for tips on effectively exporting YouTube cookies"
)


def _as_raised(message: str, *, ie: str = "youtube") -> DownloadError:
    """What ``YoutubeDL.extract_info`` raises for an extractor's ``raise_no_formats``."""
    error = ExtractorError(message, expected=True, video_id="dQw4w9WgXcQ", ie=ie)
    return DownloadError(f"ERROR: {error}", (type(error), error, None))


# The messages yt-dlp 2026.10.26's YoutubeIE builds (``_real_extract``) from YouTube's reasons.
CASES = [
    ("Private video. Sign in if you've been granted access to this video. " + HINT,
     "source_private"),
    ("Sign in to confirm your age. This video may be inappropriate for some users. " + HINT,
     "source_age_restricted"),
    ("This video has been removed for violating YouTube's Terms of Service", "source_removed"),
    ("Video unavailable. This video is no longer available because the YouTube account "
     "associated with this video has been terminated.", "source_removed"),
    ("Video unavailable", "source_removed"),
    ("This live event will begin in 3 hours.", "source_live"),
    ("Premieres in 20 minutes", "source_live"),
    ("Sign in to confirm you\u2019re not a bot. " + HINT, "source_needs_login"),
    ("Join this channel to get access to members-only content like this video, and other "
     "exclusive perks.", "source_needs_login"),
    ("Video unavailable. This content isn't available, try again later. The current session "
     "has been rate-limited by YouTube for up to an hour.", "source_rate_limited"),
]  # fmt: skip


@pytest.mark.parametrize(("message", "code"), CASES)
def test_youtube_reasons_map_to_codes_with_fixed_messages(message: str, code: str) -> None:
    error = extraction_error(_as_raised(message))
    assert error is not None and error.code == code
    assert error.message == MESSAGES[code]


def test_geo_restriction_and_http_429_map_for_any_extractor() -> None:
    geo = GeoRestrictedError("The uploader has not made this video available in your country")
    assert extraction_error(geo).code == "source_geo_blocked"
    response = Response(fp=None, url="https://example.com/api", headers={}, status=429)
    wrapped = ExtractorError("Unable to download API page", cause=HTTPError(response), ie="vimeo")
    assert extraction_error(wrapped).code == "source_rate_limited"
    # a 429 the extractor swallowed (a warning), seen only by the request handler
    lost = ExtractorError("Failed to extract any player response", ie="youtube")
    assert extraction_error(lost) is None
    assert extraction_error(lost, [200, 429]).code == "source_rate_limited"


def test_reason_texts_of_other_sites_are_not_read() -> None:
    assert extraction_error(_as_raised("Private video", ie="vimeo")) is None


def _source(**changes: object) -> ResolvedSource:
    base = ResolvedSource(
        url="https://www.youtube.com/watch?v=x",
        media_url="https://v.example/137",
        audio_url="https://v.example/140",
        extractor="youtube",
        format_id="137",
        audio_format_id="140",
        height=1080,
        adaptive_formats=1,
    )
    return dataclasses.replace(base, **changes)


def test_the_next_client_is_tried_when_formats_are_refused() -> None:
    asked: list[tuple[str | None, bool]] = []

    def again(client: str | None, progressive: bool) -> ResolvedSource:
        asked.append((client, progressive))
        return _source(media_url=f"https://v.example/{client}/137")

    def probe(url: str, headers: dict[str, str]) -> int:
        return 403 if url == "https://v.example/137" else 206  # the first (web) client's

    chosen = choose(_source(), ["web", "tv"], again, probe)
    assert chosen.player_client == "tv" and asked == [("tv", False)]
    assert chosen.note is not None and "player client tv" in chosen.note and "403" in chosen.note


def test_progressive_fallback_and_nothing_readable() -> None:
    progressive = _source(
        media_url="https://v.example/18", audio_url=None, format_id="18", height=360
    )
    sabr = dataclasses.replace(progressive, adaptive_formats=0)

    def again(client: str | None, want_progressive: bool) -> ResolvedSource:
        return progressive if want_progressive else _source()

    def probe(url: str, headers: dict[str, str]) -> int:
        return 206 if url.endswith("/18") else 403

    chosen = choose(_source(), ["web", "tv"], again, probe)
    assert chosen.format_id == "18" and "progressive 360p format 18" in (chosen.note or "")
    with pytest.raises(ClipError) as caught:
        choose(_source(), ["web"], again, lambda url, headers: 403)
    assert caught.value.code == "source_unreachable"
    # SABR-only (no adaptive format at all): the next client, then the readable progressive
    chosen = choose(sabr, ["web", "tv"], lambda client, _: sabr, probe)
    assert chosen.format_id == "18" and "SABR" in (chosen.note or "")
    # a progressive format chosen while adaptive ones exist (a low height cap) is no fallback
    assert choose(progressive, ["web", "tv"], again, probe).note is None


def test_ytdlp_gets_the_client_the_provider_and_the_account() -> None:
    options = YoutubeOptions(
        player_clients=("web", "tv"),
        pot_provider_url="http://pot:4416",
        cookies_file="/etc/clipmaker/cookies.txt",
    )
    params = ytdlp_params(1080, 30, youtube_options=options, player_client="tv")
    assert params["extractor_args"] == {
        "youtube": {"player_client": ["tv"]},
        "youtubepot-bgutilhttp": {"base_url": ["http://pot:4416"]},
    }
    assert params["cookiefile"] == "/etc/clipmaker/cookies.txt"
    deno = Path(params["js_runtimes"]["deno"]["path"])  # the pinned runtime, not PATH's
    assert deno.name == "deno" and os.access(deno, os.X_OK)
    assert "extractor_args" not in ytdlp_params(1080, 30)


def test_the_installed_pot_provider_is_found_as_a_plugin_folder() -> None:
    folder = pot_provider_plugin_dir()
    assert folder is not None
    plugins = [p for p in Path(folder).iterdir() if (p / "yt_dlp_plugins").is_dir()]
    assert any((p / "yt_dlp_plugins" / "extractor").is_dir() for p in plugins)


def test_url_expiry_reads_googlevideo_expire() -> None:
    url = "https://r1.googlevideo.com/videoplayback?expire=1767225600&id=x"
    assert url_expiry(url) == 1767225600
    assert url_expiry("https://example.com/v.mp4") is None


def test_the_cookies_file_is_only_read(tmp_path: Path) -> None:
    """yt-dlp writes its jar back on close; the deployment's file (read-only) stays as it was."""
    cookies = tmp_path / "cookies.txt"
    cookies.write_text("# Netscape HTTP Cookie File\n")
    cookies.chmod(0o444)
    with private_cookies({"cookiefile": str(cookies)}) as params:
        copy = Path(params["cookiefile"])
        assert copy != cookies and copy.read_text() == cookies.read_text()
        copy.write_text("# Netscape HTTP Cookie File\n.youtube.com\tTRUE\t/\tTRUE\t0\tX\t1\n")
    assert not copy.exists()
    assert cookies.read_text() == "# Netscape HTTP Cookie File\n"
