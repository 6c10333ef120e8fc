"""The page at GET /, driven in Debian's Chromium by Playwright, against a running clipmaker.

Each test does what a person would: fills the labelled fields, presses "Make clip", watches the
stages go by, plays the clip and downloads it. Screenshots of each state go to
``$CLIPMAKER_TEST_ARTIFACTS`` (default ``test-artifacts/``) for people to look at.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright, Route, expect, sync_playwright

from tests.api.conftest import Service
from tests.support.http_server import MediaServer

CHROMIUM = "/usr/bin/chromium"  # Debian's: Playwright's own browser downloads are not used
JOB_S = 120_000  # ms: the longest a clip of a few seconds may take on a busy CI machine

# The page talks to one deployment; the embedded one serves local files (Range, same origin).
pytestmark = pytest.mark.parametrize("service", ["embedded"], indirect=True)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    root = Path(os.environ.get("CLIPMAKER_TEST_ARTIFACTS", "test-artifacts")) / "page"
    root.mkdir(parents=True, exist_ok=True)
    return root


# Module-scoped: Playwright's sync API keeps an event loop in the main thread while it is
# open, which later tests that run their own loop (anyio.run) must not find there.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: scripts/bootstrap.sh --test installs it")
    browser = playwright.chromium.launch(executable_path=CHROMIUM)
    yield browser
    browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(accept_downloads=True, viewport={"width": 1100, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


def wait_js(page: Page, expression: str, timeout_s: float = 30.0) -> None:
    """Wait (bounded) until a JavaScript expression is true in the page.

    Not ``page.wait_for_function``: that evaluates a string inside the page, which the page's
    Content-Security-Policy (no 'unsafe-eval') rightly refuses; ``evaluate`` goes through the
    debugging protocol instead.
    """
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout_s:g} s: {expression}")
        page.wait_for_timeout(50)


def open_page(page: Page, service: Service) -> None:
    page.goto(f"{service.base_url}/")
    expect(page.get_by_role("heading", name="clipmaker")).to_be_visible()


def record_status(page: Page) -> None:
    """Keep every text the live status line shows (it changes faster than a test looks)."""
    page.evaluate(
        """() => {
          window.statusSeen = [];
          const status = document.getElementById('status');
          new MutationObserver(() => window.statusSeen.push(status.textContent))
            .observe(status, {childList: true, characterData: true, subtree: true});
        }"""
    )


def wait_for_clip(page: Page) -> None:
    expect(page.get_by_role("heading", name="Your clip", exact=True)).to_be_visible(timeout=JOB_S)


def clip_duration(page: Page) -> float:
    wait_js(page, "document.getElementById('clip-video').readyState >= 1")
    return page.evaluate("document.getElementById('clip-video').duration")


def play_clip(page: Page) -> None:
    """Play it and see the time move (muted: browsers refuse sound without a gesture)."""
    page.evaluate(
        "() => { const v = document.getElementById('clip-video'); v.muted = true; v.play(); }"
    )
    wait_js(page, "document.getElementById('clip-video').currentTime > 0.2")


def download(page: Page, name: str | re.Pattern[str], dest: Path) -> tuple[bytes, str]:
    link = page.get_by_role("link", name=name)
    with page.expect_download() as info:
        link.click()
    info.value.save_as(dest)
    return dest.read_bytes(), str(link.get_attribute("href"))


def test_clip_from_a_url_with_live_progress(
    service: Service, media_server: MediaServer, page: Page, artifacts: Path, tmp_path: Path
) -> None:
    open_page(page, service)
    page.get_by_label("Video URL").fill(media_server.url("talk.mp4"))
    page.get_by_label("Video URL").press("Tab")  # leaving the field loads the preview
    preview = page.locator("#preview-video")
    expect(preview).to_be_visible()
    wait_js(page, "document.getElementById('preview-video').duration > 19")
    # Scrub the preview to 5 s and take the start from it; type the end.
    page.evaluate("document.getElementById('preview-video').currentTime = 5")
    set_start = page.get_by_role("button", name=re.compile(r"^Set start to"))
    expect(set_start).to_have_text(re.compile("00:00:05.000"))
    set_start.click()
    expect(page.get_by_label("Start", exact=True)).to_have_value("00:00:05.000")
    page.get_by_label("End", exact=True).fill("00:00:09.5")
    page.get_by_label("Subtitles").select_option(label="SRT and WebVTT")
    page.screenshot(path=artifacts / "1-form-with-preview.png", full_page=True)

    record_status(page)
    page.get_by_role("button", name="Make clip").click()
    stages = page.get_by_role("list", name="Stages")
    expect(stages).to_be_visible()
    running = page.locator('#progress-section[data-status="running"]')
    expect(running).to_be_visible(timeout=JOB_S)
    page.screenshot(path=artifacts / "2-progress.png", full_page=True)

    wait_for_clip(page)
    seen = page.evaluate("window.statusSeen")
    steps = ["Fetching the source", "Cutting the clip", "Transcribing the speech", "Storing"]
    shown = list(dict.fromkeys(s for text in seen for s in steps if text.startswith(s)))
    # From the moment the page subscribed, every stage shows, in order, however brief.
    assert shown == steps[steps.index(shown[0]) :] and "Transcribing the speech" in shown
    assert seen[-1] == "Done: your clip is ready."
    assert page.locator("#progress").get_attribute("value") == "100"
    expect(stages.locator("li.done:visible")).to_have_count(5)  # queued .. storing, all ticked

    assert clip_duration(page) == pytest.approx(4.5, abs=0.1)
    play_clip(page)
    page.screenshot(path=artifacts / "3-done.png", full_page=True)

    clip, url = download(page, re.compile(r"^Download clip"), tmp_path / "clip.mp4")
    assert clip == httpx.get(url).content and clip[4:8] == b"ftyp"
    srt, _ = download(page, "Download subtitles (SRT)", tmp_path / "clip.srt")
    assert b"-->" in srt
    vtt, _ = download(page, "Download subtitles (WebVTT)", tmp_path / "clip.vtt")
    assert vtt.startswith(b"WEBVTT")


def test_clip_from_an_upload(
    service: Service, media_dir: Path, page: Page, artifacts: Path, tmp_path: Path
) -> None:
    open_page(page, service)
    page.get_by_label("Video file").set_input_files(media_dir / "talk.mp4")
    expect(page.locator("#preview-video")).to_be_visible()  # previewed from the file itself
    page.get_by_label("Start", exact=True).fill("2")
    page.get_by_label("End", exact=True).fill("00:00:04")
    record_status(page)
    page.get_by_role("button", name="Make clip").click()
    wait_for_clip(page)
    seen = page.evaluate("window.statusSeen")
    assert any(text.startswith("Uploading the file") for text in seen), seen
    expect(page.get_by_role("link", name="Download subtitles (SRT)")).to_be_hidden()

    assert clip_duration(page) == pytest.approx(2.0, abs=0.1)
    play_clip(page)
    page.screenshot(path=artifacts / "4-done-from-upload.png", full_page=True)
    clip, url = download(page, re.compile(r"^Download clip"), tmp_path / "clip.mp4")
    assert clip == httpx.get(url).content

    # The address names the job: opened again (a reload, a shared link), the page shows it.
    page.reload()
    wait_for_clip(page)
    assert clip_duration(page) == pytest.approx(2.0, abs=0.1)


def test_errors_are_shown_at_the_field_at_fault(
    service: Service, media_server: MediaServer, page: Page, artifacts: Path
) -> None:
    open_page(page, service)
    make = page.get_by_role("button", name="Make clip")

    # Nothing given: the page says what is missing before asking the API.
    make.click()
    expect(page.locator("#url-error")).to_have_text(re.compile("URL"))
    expect(page.get_by_label("Video URL")).to_be_focused()

    # End before start: the API's message, next to End.
    page.get_by_label("Video URL").fill(media_server.url("talk.mp4"))
    page.get_by_label("Start", exact=True).fill("00:00:08")
    page.get_by_label("End", exact=True).fill("3")
    make.click()
    end_error = page.locator("#end-error")
    expect(end_error).to_have_text(re.compile(r"end \(3 s\) must be after start \(8 s\)"))
    expect(page.get_by_label("End", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("End", exact=True)).to_be_focused()
    expect(page.locator("#url-error")).to_be_hidden()
    expect(page.locator("#start-error")).to_be_hidden()
    page.screenshot(path=artifacts / "5-error-end-before-start.png", full_page=True)

    # A URL that answers 404: the job fails, and the message sits next to Video URL.
    page.get_by_label("Video URL").fill(media_server.url("missing.mp4"))
    page.get_by_label("End", exact=True).fill("10")
    make.click()
    url_error = page.locator("#url-error")
    expect(url_error).to_be_visible(timeout=JOB_S)
    expect(url_error).not_to_be_empty()
    expect(end_error).to_be_hidden()
    expect(page.get_by_label("Video URL")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#stages li.failed")).to_have_text(re.compile("Fetching"))  # stopped here
    job_id = page.evaluate("location.hash").removeprefix("#job=")
    failed = service.client.job(job_id)
    assert failed.status == "failed" and failed.error is not None
    expect(url_error).to_have_text(re.compile(re.escape(failed.error.message)))
    page.screenshot(path=artifacts / "6-error-unreachable-url.png", full_page=True)


def test_keyboard_and_phone(service: Service, browser: Browser, artifacts: Path) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    try:
        open_page(page, service)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0  # nothing wider than the phone
        # Every control has an accessible name, in the order a person fills them in.
        expected = ["url", "file", "start", "end", "subtitles", "accuracy", "make"]
        page.get_by_label("Video URL").focus()
        order = [page.evaluate("document.activeElement.id")]
        while len(order) < len(expected):
            page.keyboard.press("Tab")
            order.append(page.evaluate("document.activeElement.id"))
        assert order == expected
        names = {
            "Video URL": page.get_by_label("Video URL"),
            "Video file": page.get_by_label("Video file"),
            "Start": page.get_by_label("Start", exact=True),
            "End": page.get_by_label("End", exact=True),
            "Subtitles": page.get_by_label("Subtitles"),
            "Make clip": page.get_by_role("button", name="Make clip"),
        }
        for name, control in names.items():
            expect(control, name).to_have_count(1)
        make_box = page.get_by_role("button", name="Make clip").bounding_box()
        assert make_box is not None and make_box["height"] >= 44  # a finger can hit it
        page.screenshot(path=artifacts / "7-phone.png", full_page=True)
    finally:
        context.close()


def test_asks_for_a_key_once_and_sends_it_everywhere(
    service: Service, media_server: MediaServer, page: Page, artifacts: Path
) -> None:
    """With auth on, the API answers 401 without a key; the page asks once, keeps the key in
    the browser and sends it on every request, the event stream included. (Auth itself is
    another module's: here a route in the browser plays the API's part of it.)"""
    key = "ck_test_0123456789"
    seen: list[tuple[str, str | None]] = []

    def gate(route: Route) -> None:
        given = route.request.headers.get("authorization")
        seen.append((route.request.url, given))
        if given != f"Bearer {key}":
            route.fulfill(
                status=401,
                json={"error": {"code": "unauthorized", "message": "an API key is required"}},
            )
        else:
            route.continue_()

    page.route(re.compile(r"/api/"), gate)
    open_page(page, service)
    page.get_by_label("Video URL").fill(media_server.url("talk.mp4"))
    page.get_by_label("Start", exact=True).fill("1")
    page.get_by_label("End", exact=True).fill("2")
    page.get_by_role("button", name="Make clip").click()

    dialog = page.get_by_role("dialog", name="API key")
    expect(dialog).to_be_visible()
    key_field = dialog.get_by_label("API key")
    expect(key_field).to_be_focused()
    key_field.fill(key)
    page.screenshot(path=artifacts / "8-asks-for-a-key.png", full_page=True)
    dialog.get_by_role("button", name="Use this key").click()
    wait_for_clip(page)

    assert page.evaluate("localStorage.getItem('clipmaker.apiKey')") == key
    refused = [url for url, given in seen if given is None]
    assert len(refused) == 1  # asked once
    after = [(url, given) for url, given in seen if given is not None]
    assert any(url.endswith("/events") for url, _ in after)
    assert all(given == f"Bearer {key}" for _, given in after)

    # The key is remembered: the page opened again makes a clip without asking.
    open_page(page, service)
    page.get_by_label("Video URL").fill(media_server.url("talk.mp4"))
    page.get_by_label("Start", exact=True).fill("2")
    page.get_by_label("End", exact=True).fill("3")
    page.get_by_role("button", name="Make clip").click()
    wait_for_clip(page)
    assert len([url for url, given in seen if given is None]) == 1


def test_the_page_is_self_contained_and_locked_down(service: Service) -> None:
    """Served from the package under the deployment's prefix, running only its own files."""
    page = httpx.get(f"{service.base_url}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    prefix = service.base_url.split("://", 1)[1].split("/", 1)[1]
    assert f'<base href="/{prefix}/">' in page.text  # every URL in the page is relative to it
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "<script>" not in page.text and " on" + "click=" not in page.text  # nothing inline
    for name, kind in (("app.js", "text/javascript"), ("app.css", "text/css")):
        asset = httpx.get(f"{service.base_url}/static/{name}")
        assert asset.status_code == 200 and asset.headers["content-type"].startswith(kind)
    missing = httpx.get(f"{service.base_url}/static/..%2Froutes.py")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
