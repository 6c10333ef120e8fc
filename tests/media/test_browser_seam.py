"""A browser plays every smart-cut output through its joints (Debian's Chromium, headless).

For each codec a clip is cut so that its head is re-encoded and the GOP after it copied; the
page seeks to frames on both sides of the joint and draws each onto a canvas: the pixels must
carry the index of the source frame that belongs there. Then it plays across the joint and the
video must run on without an error.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from clipmaker.media import cut
from clipmaker.testing.sample import frame_index, frame_indices
from tests.media.conftest import FPS
from tests.support.http_server import MediaServer, serve_directory

CHROMIUM = "/usr/bin/chromium"  # Debian's: Playwright's own browser downloads are not used
START, END = 2.3, 6.7  # keyframes every 2 s: head 2.28-4 re-encoded, then copied GOPs
MIME = {
    "h264": 'video/mp4; codecs="avc1.64001e"',
    "hevc": 'video/mp4; codecs="hev1.1.6.L93.B0"',
    "vp9": 'video/mp4; codecs="vp09.00.10.08"',
    "av1": 'video/mp4; codecs="av01.0.04M.08"',
}
PAGE = """<!doctype html><html><body>
<video id="v" muted playsinline preload="auto"></video><canvas id="c"></canvas>
</body></html>"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: scripts/bootstrap.sh --test installs it")
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def clips_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("seam")
    (root / "index.html").write_text(PAGE)
    return root


@pytest.fixture(scope="module")
def clips_server(clips_dir: Path) -> Iterator[MediaServer]:
    with serve_directory(clips_dir) as server:
        yield server


def _seek_and_grab(page: Page, seconds: float) -> np.ndarray:
    """Seek the video to ``seconds``, draw the frame shown onto the canvas, return its luma."""
    data = page.evaluate(
        """async (t) => {
            const v = document.getElementById("v"), c = document.getElementById("c");
            const seeked = new Promise((ok) => v.addEventListener("seeked", ok, {once: true}));
            v.currentTime = t;
            await seeked;
            if (v.error) throw new Error("video error " + v.error.code);
            c.width = v.videoWidth; c.height = v.videoHeight;
            const g = c.getContext("2d", {willReadFrequently: true});
            g.drawImage(v, 0, 0);
            const rgba = g.getImageData(0, 0, c.width, c.height).data;
            const luma = new Array(c.width * c.height);
            for (let i = 0; i < luma.length; i++) {
                luma[i] = Math.round(
                    0.299 * rgba[4 * i] + 0.587 * rgba[4 * i + 1] + 0.114 * rgba[4 * i + 2]);
            }
            return {w: c.width, h: c.height, luma: luma};
        }""",
        seconds,
    )
    return np.array(data["luma"], dtype=np.uint8).reshape(data["h"], data["w"])


def _index(luma: np.ndarray) -> int:
    return frame_index(av.VideoFrame.from_ndarray(luma, format="gray"))


# HEVC is not here: Debian's Chromium has no HEVC decoder (proprietary codecs are left out of
# its build). HEVC seams are checked by FFmpeg decoding every frame in test_smartcut_codecs.
@pytest.mark.parametrize("name", ["h264", "vp9-webm", "av1-mp4"])
def test_chromium_plays_and_seeks_across_the_joint(
    name: str,
    browser: Browser,
    clips_dir: Path,
    clips_server: MediaServer,
    codec_sources: dict[str, Path],
    source_20s: Path,
) -> None:
    source = source_20s if name == "h264" else codec_sources[name]
    result = cut(source, clips_dir / f"{name}.mp4", START, END)
    codec = result.video_codec
    assert result.mode == "smart" and result.frames_copied > 0
    page = browser.new_page()
    try:
        page.goto(clips_server.url("index.html"))
        supported = page.evaluate("(m) => MediaSource.isTypeSupported(m)", MIME[codec])
        assert supported, f"this Chromium build does not play {codec}"
        page.evaluate(
            """async (src) => {
                const v = document.getElementById("v");
                const ready = new Promise((ok, no) => {
                    v.addEventListener("loadeddata", ok, {once: true});
                    v.addEventListener("error", () => no(new Error("error " + v.error.code)));
                });
                v.src = src;
                await ready;
            }""",
            clips_server.url(f"{name}.mp4"),
        )
        shown = frame_indices(result.path)
        first = shown[0][0]
        joint = result.frames_reencoded  # the first copied frame, in display order
        half = 0.5 / FPS
        for k in (0, joint - 2, joint - 1, joint, joint + 1, len(shown) - 1):
            index, at = shown[k]
            assert _index(_seek_and_grab(page, at + half)) == index == first + k
        # play from before the joint to past it: time runs on, no error, nothing dropped
        played = page.evaluate(
            """async ([from, to]) => {
                const v = document.getElementById("v");
                v.currentTime = from;
                await new Promise((ok) => v.addEventListener("seeked", ok, {once: true}));
                await v.play();
                await new Promise((ok, no) => {
                    const tick = () => {
                        if (v.error) return no(new Error("error " + v.error.code));
                        if (v.currentTime >= to || v.ended) return ok();
                        v.requestVideoFrameCallback(tick);
                    };
                    v.requestVideoFrameCallback(tick);
                });
                v.pause();
                const q = v.getVideoPlaybackQuality();
                return {t: v.currentTime, corrupted: q.corruptedVideoFrames};
            }""",
            [shown[joint][1] - 0.5, shown[joint][1] + 0.5],
        )
        assert played["t"] >= shown[joint][1] + 0.5 - 1e-3
        assert played["corrupted"] == 0
    finally:
        page.close()
