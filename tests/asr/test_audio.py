"""load_audio: what the model is fed, and what a bad file turns into."""

from __future__ import annotations

import wave
from pathlib import Path

import av
import numpy as np
import pytest

from clipmaker.asr import SAMPLE_RATE, load_audio
from clipmaker.errors import ClipError


def test_speech_is_float32_mono_16k(speech_wav: Path) -> None:
    with wave.open(str(speech_wav)) as w:
        seconds = w.getnframes() / w.getframerate()
        assert w.getframerate() != SAMPLE_RATE  # so that resampling is really exercised

    audio = load_audio(speech_wav)

    assert audio.dtype == np.float32
    assert audio.ndim == 1
    assert abs(len(audio) / SAMPLE_RATE - seconds) < 0.05
    assert 0.01 < float(np.abs(audio).max()) <= 1.0  # speech, normalised


def test_non_media_file_is_corrupt_media(tmp_path: Path) -> None:
    junk = tmp_path / "clip.mp4"
    junk.write_bytes(b"this is not a video at all " * 200)
    with pytest.raises(ClipError) as err:
        load_audio(junk)
    assert err.value.code == "corrupt_media"


def test_video_without_audio_gives_empty_audio(tmp_path: Path) -> None:
    path = tmp_path / "silent.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(
                np.full((32, 32, 3), i * 40, dtype=np.uint8), format="rgb24"
            )
            out.mux(stream.encode(frame))
        out.mux(stream.encode())

    audio = load_audio(path)

    assert audio.dtype == np.float32
    assert audio.shape == (0,)


def test_missing_file_is_not_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_audio(tmp_path / "nope.wav")
