"""The test media and server are instruments: check they measure what they claim."""

from __future__ import annotations

import http.client
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from clipmaker.testing.sample import (
    beep_times,
    first_frame_index_and_time,
    frame_index,
    frame_indices,
    speech_wav,
    video_frame_count,
)
from tests.media.conftest import BEEPS, FPS
from tests.support.http_server import MediaServer, serve_directory


def test_every_frame_reads_back_its_own_index(source_20s: Path) -> None:
    frames = frame_indices(source_20s)
    assert len(frames) == 20 * FPS
    assert [index for index, _ in frames] == list(range(20 * FPS))
    assert all(abs(time - index / FPS) < 1e-6 for index, time in frames)
    assert first_frame_index_and_time(source_20s) == (0, 0.0)
    assert video_frame_count(source_20s) == 20 * FPS


def test_keyframes_every_gop_and_b_frames(source_20s: Path) -> None:
    with av.open(str(source_20s)) as container:
        packets = [p for p in container.demux(video=0) if p.size]
    keyframe_pts = sorted(p.pts for p in packets if p.is_keyframe)
    step = packets[0].time_base
    assert [round(float(pts * step), 3) for pts in keyframe_pts] == [2.0 * i for i in range(10)]
    assert any(p.pts != p.dts for p in packets), "expected B-frames (pts reordered from dts)"


def test_unreadable_frames_are_rejected_not_misread() -> None:
    grey = av.VideoFrame.from_ndarray(np.full((240, 320), 128, dtype=np.uint8), format="gray")
    with pytest.raises(ValueError):
        frame_index(grey)
    black = av.VideoFrame.from_ndarray(np.zeros((240, 320), dtype=np.uint8), format="gray")
    with pytest.raises(ValueError):
        frame_index(black)  # the check nibble keeps an all-black frame from reading as 0


def test_beeps_are_found_where_they_were_put(source_20s: Path) -> None:
    found = beep_times(source_20s)
    assert len(found) == len(BEEPS)
    assert all(abs(a - b) < 0.002 for a, b in zip(found, BEEPS, strict=True))


def test_speech_wav_is_audible(tmp_path: Path) -> None:
    path = speech_wav("hello clip maker", tmp_path / "hello.wav")
    with wave.open(str(path)) as wav:
        assert wav.getnframes() / wav.getframerate() > 0.5
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    assert np.abs(samples).max() > 3000


def _get(server: MediaServer, name: str, headers: dict[str, str] | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", f"/{name}", headers=headers or {})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response, body


def test_server_honours_ranges_and_counts_bytes(tmp_path: Path) -> None:
    data = bytes(range(256)) * 1000
    (tmp_path / "clip.mp4").write_bytes(data)
    (tmp_path / "page.html").write_text("<html></html>")
    with serve_directory(tmp_path) as server:
        response, body = _get(server, "clip.mp4", {"Range": "bytes=1000-1999"})
        assert response.status == 206
        assert body == data[1000:2000]
        assert response.getheader("Content-Range") == f"bytes 1000-1999/{len(data)}"
        assert response.getheader("Accept-Ranges") == "bytes"
        assert response.getheader("Content-Type") == "video/mp4"
        assert server.bytes_sent == 1000

        response, body = _get(server, "clip.mp4", {"Range": "bytes=-10"})
        assert (response.status, body) == (206, data[-10:])
        response, _ = _get(server, "clip.mp4", {"Range": f"bytes={len(data)}-"})
        assert response.status == 416
        response, _ = _get(server, "missing.mp4")
        assert response.status == 404
        response, _ = _get(server, "page.html")
        assert response.getheader("Content-Type").startswith("text/html")
        assert [r.status for r in server.requests] == [206, 206, 416, 404, 200]

        server.reset_counts()
        assert (server.bytes_sent, server.requests) == (0, [])
        assert server.url("clip.mp4") == f"http://127.0.0.1:{server.port}/clip.mp4"


def test_server_without_ranges_sends_everything(tmp_path: Path) -> None:
    data = b"x" * 5000
    (tmp_path / "clip.mp4").write_bytes(data)
    with serve_directory(tmp_path, ranges=False) as server:
        response, body = _get(server, "clip.mp4", {"Range": "bytes=100-199"})
        assert (response.status, body) == (200, data)
        assert response.getheader("Accept-Ranges") is None
        assert server.bytes_sent == len(data)


def _keyframes(path: Path) -> list[tuple[int, bool, bool]]:
    """(frame number, IDR, has leading frames) of each keyframe, in decode order."""
    from clipmaker.media.cut.h264 import AvcConfig, nal_type

    with av.open(str(path)) as container:
        video = container.streams.video[0]
        config = AvcConfig.from_extradata(video.codec_context.extradata)
        packets = [p for p in container.demux(video) if p.size]
        step = 1 / FPS
        result = []
        for n, packet in enumerate(packets):
            if not packet.is_keyframe:
                continue
            idr = any(nal_type(nal) == 5 for nal in config.split(bytes(packet)))
            later = packets[n + 1 : n + 4]
            leading = any(p.pts < packet.pts for p in later)
            result.append((round(float(packet.pts * packet.time_base) / step), idr, leading))
        return result


def test_open_gop_source(source_open_gop: Path) -> None:
    keyframes = _keyframes(source_open_gop)
    assert [k for k, _, _ in keyframes] == [0, 50, 100, 150, 200, 250]
    assert [k for k, idr, _ in keyframes if idr] == [0, 150]  # the rest are open-GOP I-frames
    assert any(leading for _, idr, leading in keyframes if not idr)
    assert [i for i, _ in frame_indices(source_open_gop)] == list(range(12 * FPS))


def test_source_with_a_later_start(source_offset: Path) -> None:
    frames = frame_indices(source_offset)
    assert frames[0] == (0, pytest.approx(10.0))
    assert frames[-1] == (12 * FPS - 1, pytest.approx(10.0 + (12 * FPS - 1) / FPS))
    assert beep_times(source_offset) == [pytest.approx(10.0 + b, abs=0.002) for b in (3.0, 7.5)]


def test_variable_frame_rate_source(source_vfr: Path) -> None:
    frames = frame_indices(source_vfr)
    assert [i for i, _ in frames] == list(range(12 * FPS))
    steps = {round(b[1] - a[1], 3) for a, b in zip(frames, frames[1:], strict=False)}
    assert steps == {0.02, 0.04, 0.06}
    assert frames[-1][1] == pytest.approx(12.0 - 0.04, abs=0.03)  # the mean rate is FPS
    assert beep_times(source_vfr) == [pytest.approx(b, abs=0.002) for b in (3.0, 7.5)]
