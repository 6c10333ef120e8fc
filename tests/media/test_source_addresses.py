"""The media layer refuses forbidden addresses on every hop, and says so with one message.

The test servers run on 127.0.0.1 (admitted by the media conftest); "forbidden" targets run on
127.0.0.2, which is loopback too but outside the allow-list. Each test checks the error a user
would see and that the forbidden target accepted no connection at all.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from clipmaker.errors import SOURCE_FORBIDDEN, ClipError
from clipmaker.media import ByteCounter, SourceOpener, cut
from clipmaker.media.http import full_fetch
from clipmaker.media.locations import hls_data_url
from clipmaker.media.resolve import resolve
from clipmaker.net import FORBIDDEN_MESSAGE, AddressPolicy
from clipmaker.net.ytdlp import PolicedYoutubeDL, stop_cause
from clipmaker.testing.sample import index_after_seek
from tests.support.http_server import MediaServer
from tests.support.streaming import make_hls
from tests.support.targets import Reply, serve_target

FORBIDDEN_HOST = "127.0.0.2"


def _assert_forbidden(error: ClipError) -> None:
    assert (error.code, error.message) == (SOURCE_FORBIDDEN, FORBIDDEN_MESSAGE)


@pytest.mark.parametrize("spelling", [FORBIDDEN_HOST, "2130706434", "0x7f.0.0.2"])
def test_a_forbidden_media_url_is_never_connected_to(
    source_20s: Path, tmp_path: Path, spelling: str
) -> None:
    with (
        serve_target(FORBIDDEN_HOST, {"/v.mp4": Reply(200, source_20s.read_bytes())}) as inside,
        pytest.raises(ClipError) as caught,
    ):
        cut(f"http://{spelling}:{inside.port}/v.mp4", tmp_path / "clip.mp4", 1.0, 2.0)
    _assert_forbidden(caught.value)
    assert inside.connections == 0


def test_a_redirect_to_a_forbidden_address_is_refused(source_20s: Path, tmp_path: Path) -> None:
    with serve_target(FORBIDDEN_HOST, {"/v.mp4": Reply(200, source_20s.read_bytes())}) as inside:
        hop = Reply(302, headers={"Location": inside.url("/v.mp4")})
        with (
            serve_target("127.0.0.1", {"/v.mp4": hop}) as outside,
            pytest.raises(ClipError) as caught,
        ):
            cut(outside.url("/v.mp4"), tmp_path / "clip.mp4", 1.0, 2.0)
    _assert_forbidden(caught.value)
    assert outside.requests  # the allowed hop was asked...
    assert inside.connections == 0  # ...the forbidden one never


def test_an_hls_segment_at_a_forbidden_address_is_refused(
    media_dir: Path, source_20s: Path, tmp_path: Path
) -> None:
    playlist = make_hls(source_20s, media_dir / "hls")
    segments = {p.name: p.read_bytes() for p in (media_dir / "hls").glob("*.ts")}
    with serve_target(
        FORBIDDEN_HOST, {f"/{name}": Reply(200, data) for name, data in segments.items()}
    ) as inside:
        text = "".join(
            inside.url(f"/{line}") + "\n" if line in segments else line + "\n"
            for line in playlist.read_text().splitlines()
        )
        routes = {
            "/p.m3u8": Reply(200, text.encode(), {"Content-Type": "application/vnd.apple.mpegurl"})
        }
        with (
            serve_target("127.0.0.1", routes) as outside,
            pytest.raises(ClipError) as caught,
            SourceOpener(outside.url("/p.m3u8"), counter=ByteCounter()) as opener,
            opener() as container,
        ):
            index_after_seek(container, 12.0)
    _assert_forbidden(caught.value)
    assert "/p.m3u8" in outside.requests
    assert inside.connections == 0


def test_a_dash_fragment_list_at_a_forbidden_address_is_refused(
    media_dir: Path, source_20s: Path
) -> None:
    """DASH formats become a data: playlist that FFmpeg's hls demuxer reads: every fragment
    still goes through our reader (FFmpeg opens no URL itself)."""
    playlist = make_hls(source_20s, media_dir / "hls")
    segments = {p.name: p.read_bytes() for p in (media_dir / "hls").glob("*.ts")}
    with serve_target(
        FORBIDDEN_HOST, {f"/{name}": Reply(200, data) for name, data in segments.items()}
    ) as inside:
        text = "".join(
            inside.url(f"/{line}") + "\n" if line in segments else line + "\n"
            for line in playlist.read_text().splitlines()
        )
        with (
            pytest.raises(ClipError) as caught,
            SourceOpener(hls_data_url(text), counter=ByteCounter()) as opener,
            opener() as container,
        ):
            index_after_seek(container, 12.0)
    _assert_forbidden(caught.value)
    assert inside.connections == 0


def test_full_fetch_refuses_a_forbidden_address(tmp_path: Path) -> None:
    with (
        serve_target(FORBIDDEN_HOST, {"/v.mp4": Reply(200, b"x" * 100)}) as inside,
        pytest.raises(ClipError) as caught,
    ):
        full_fetch(inside.url("/v.mp4"), tmp_path / "v.mp4", counter=ByteCounter())
    _assert_forbidden(caught.value)
    assert inside.connections == 0
    assert list(tmp_path.iterdir()) == []


# --- yt-dlp's own requests --------------------------------------------------------------------


def test_a_page_embedding_a_forbidden_video_is_refused(source_20s: Path, tmp_path: Path) -> None:
    """The generic extractor finds the <video>; the read of it is refused, nothing reaches it."""
    with serve_target(FORBIDDEN_HOST, {"/v.mp4": Reply(200, source_20s.read_bytes())}) as inside:
        page = f'<html><body><video src="{inside.url("/v.mp4")}"></video></body></html>'
        routes = {"/page.html": Reply(200, page.encode(), {"Content-Type": "text/html"})}
        with (
            serve_target("127.0.0.1", routes) as outside,
            pytest.raises(ClipError) as caught,
        ):
            resolved = resolve(outside.url("/page.html"))
            cut(resolved.media_url, tmp_path / "clip.mp4", 1.0, 2.0)
    _assert_forbidden(caught.value)
    assert outside.requests == ["/page.html"]
    assert inside.connections == 0


def test_a_page_redirecting_to_a_forbidden_address_is_refused_by_ytdlp() -> None:
    with serve_target(FORBIDDEN_HOST, {"/page.html": Reply(200, b"<html></html>")}) as inside:
        hop = Reply(302, headers={"Location": inside.url("/page.html")})
        with (
            serve_target("127.0.0.1", {"/page.html": hop}) as outside,
            pytest.raises(ClipError) as caught,
        ):
            resolve(outside.url("/page.html"))
    _assert_forbidden(caught.value)
    assert outside.requests == ["/page.html"]
    assert inside.connections == 0


def test_every_ytdlp_request_goes_through_the_policy() -> None:
    """Not just the first page: any URL yt-dlp opens, in any spelling, through its one
    handler (there is no urllib/requests handler left to fall back to)."""
    policy = AddressPolicy(["127.0.0.1/32"])
    with (
        serve_target(FORBIDDEN_HOST, {"/x": Reply(200, b"secret")}) as inside,
        PolicedYoutubeDL({"quiet": True}, policy=policy) as ydl,
    ):
        assert list(ydl._request_director.handlers) == ["Clipmaker"]
        for url in (inside.url("/x"), f"http://2130706434:{inside.port}/x"):
            with pytest.raises(Exception) as caught:
                ydl.urlopen(url)
            assert stop_cause(caught.value).code == SOURCE_FORBIDDEN
    assert inside.connections == 0


def test_extractors_can_be_restricted(server: MediaServer, source_20s: Path) -> None:
    """With only the youtube extractor allowed, a direct link is not even fetched."""
    with pytest.raises(ClipError) as caught:
        resolve(server.url(source_20s.name), extractors=["youtube"])
    assert caught.value.code == "invalid_source_url"
    assert server.requests == []
    assert resolve(server.url(source_20s.name), extractors=["generic"]).extractor == "generic"


_PLUGIN = """
from pathlib import Path
Path({marker!r}).write_text("loaded")
from yt_dlp.extractor.common import InfoExtractor
class EvilIE(InfoExtractor):
    _VALID_URL = r"https?://evil\\.invalid/"
"""
_RUN = """
import sys
from clipmaker.media.resolve import resolve
try:
    resolve({url!r}, plugin_dirs={dirs!r})
except Exception:
    pass
"""


@pytest.mark.parametrize("named", [False, True])
def test_ytdlp_plugins_load_only_from_named_folders(
    server: MediaServer, source_20s: Path, tmp_path: Path, named: bool
) -> None:
    """A plugin in the user's yt-dlp folder or on sys.path is not loaded; one in a folder the
    deployment names is (which shows the check can tell)."""
    marker = tmp_path / "marker"
    home = tmp_path / "home"
    plugin = home / ".config/yt-dlp/plugins/evil/yt_dlp_plugins/extractor/evil.py"
    plugin.parent.mkdir(parents=True)
    plugin.write_text(_PLUGIN.format(marker=str(marker)))
    dirs = [str(home / ".config/yt-dlp/plugins")] if named else []  # holds plugin packages
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "PYTHONPATH": os.pathsep.join([str(home / ".config/yt-dlp/plugins/evil"), os.getcwd()]),
    }
    code = _RUN.format(url=server.url(source_20s.name), dirs=dirs)
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
    assert marker.exists() == named
