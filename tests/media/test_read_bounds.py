"""Bounds reach through FFmpeg: a read stopped by the guard ends the open with the guard's
reason (not whatever FFmpeg made of a failed read), within the bound."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from clipmaker.errors import JOB_DEADLINE_EXCEEDED, SOURCE_TOO_SLOW, ClipError
from clipmaker.media import ByteCounter, SourceOpener, cut
from clipmaker.net.bounds import TransferGuard
from tests.support.targets import Reply, serve_target

MP4 = {"Content-Type": "video/mp4", "Accept-Ranges": "none"}


def test_a_source_that_stalls_mid_file_fails_at_the_deadline(
    source_20s: Path, tmp_path: Path
) -> None:
    data = source_20s.read_bytes()
    # the first 256 KiB at once, then one byte a minute: the read is mid-file when time is up
    head = Reply(200, data, MP4, drip_s=60.0, head=256 * 1024)
    guard = TransferGuard.within(1.5, tick_s=0.1)
    with serve_target("127.0.0.1", {"/v.mp4": head}) as target:
        started = time.monotonic()
        with (
            pytest.raises(ClipError) as caught,
            SourceOpener(target.url("/v.mp4"), counter=ByteCounter(), guard=guard) as opener,
        ):
            cut(opener, tmp_path / "clip.mp4", 1.0, 2.0)
        elapsed = time.monotonic() - started
    assert caught.value.code == JOB_DEADLINE_EXCEEDED
    assert elapsed < 4.0
    assert opener.counter.total >= 256 * 1024  # it did get the first part


def test_a_dripping_source_fails_as_too_slow_through_ffmpeg(
    source_20s: Path, tmp_path: Path
) -> None:
    drip = Reply(200, source_20s.read_bytes(), MP4, drip_s=0.05)  # 20 bytes a second
    guard = TransferGuard(min_bytes_per_s=1024, window_s=1.0, tick_s=0.1)
    with serve_target("127.0.0.1", {"/v.mp4": drip}) as target:
        started = time.monotonic()
        with (
            pytest.raises(ClipError) as caught,
            SourceOpener(target.url("/v.mp4"), counter=ByteCounter(), guard=guard) as opener,
        ):
            cut(opener, tmp_path / "clip.mp4", 1.0, 2.0)
        elapsed = time.monotonic() - started
    assert caught.value.code == SOURCE_TOO_SLOW
    assert elapsed < 4.0
