"""Transcriber with the bundled tiny.en model on CPU, fed espeak-ng speech."""

from __future__ import annotations

import re
from pathlib import Path

import ctranslate2
import numpy as np
import pytest

from clipmaker.asr import (
    SAMPLE_RATE,
    Transcriber,
    Transcript,
    Word,
    build_cues,
    load_audio,
    resolve_model,
    to_vtt,
)

KEY_WORDS = ("quick", "brown", "fox", "jump", "over", "lazy", "dog")


def heard(transcript: Transcript) -> set[str]:
    """Key words heard, ignoring case, punctuation and inflection ("jumps" ~ "jump")."""
    spoken = [re.sub(r"\W", "", w.text.lower()) for w in transcript.words]
    return {key for key in KEY_WORDS if any(s.startswith(key) for s in spoken)}


def assert_well_timed(words: tuple[Word, ...], lo: float, hi: float) -> None:
    assert words
    for w in words:
        assert lo <= w.start <= w.end <= hi, w
        assert isinstance(w.start, float) and isinstance(w.end, float)
        assert 0.0 <= w.probability <= 1.0
    for a, b in zip(words, words[1:], strict=False):
        assert a.start <= b.start and a.end <= b.start + 1e-6, (a, b)


@pytest.fixture(scope="module")
def speech(speech_wav: Path) -> np.ndarray:
    return load_audio(speech_wav)


@pytest.fixture(scope="module")
def fox(transcriber: Transcriber, speech: np.ndarray) -> Transcript:
    return transcriber.transcribe(speech)


def test_model_runs_on_cpu_int8(transcriber: Transcriber) -> None:
    assert transcriber.device == "cpu"
    assert transcriber.compute_type == "int8"
    assert transcriber.english_only


def test_auto_device_follows_cuda_availability() -> None:
    expected = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    t = Transcriber(device="auto")
    assert t.device == expected
    assert t.compute_type == ("float16" if expected == "cuda" else "int8")


def test_sentence_is_transcribed(fox: Transcript, speech: np.ndarray) -> None:
    duration = len(speech) / SAMPLE_RATE
    assert fox.language == "en"
    assert fox.duration == pytest.approx(duration, abs=0.01)
    assert len(heard(fox)) >= 5, fox.text
    assert "quick" in fox.text.lower() and "lazy" in fox.text.lower()
    assert_well_timed(fox.words, 0.0, duration)
    assert fox.words[-1].end > duration / 2  # spread over the speech, not bunched at 0


def test_offset_shifts_every_time(
    transcriber: Transcriber, speech: np.ndarray, fox: Transcript
) -> None:
    shifted = transcriber.transcribe(speech, offset=12.5)
    assert [w.text for w in shifted.words] == [w.text for w in fox.words]
    for a, b in zip(fox.words, shifted.words, strict=True):
        assert b.start == pytest.approx(a.start + 12.5, abs=0.002)
        assert b.end == pytest.approx(a.end + 12.5, abs=0.002)
    assert shifted.duration == fox.duration  # the audio's length, not the timeline's


def test_times_are_relative_to_the_audio_start(
    transcriber: Transcriber, speech: np.ndarray
) -> None:
    # 2 s of silence first: VAD drops it, and times must still count from the audio's start.
    lead = 2.0
    padded = np.concatenate([np.zeros(int(lead * SAMPLE_RATE), np.float32), speech])
    transcript = transcriber.transcribe(padded)
    assert len(heard(transcript)) >= 5, transcript.text
    # Whisper tends to start a first word early, into VAD's 0.4 s padding: allow that much.
    assert transcript.words[0].start >= lead - 0.5
    assert transcript.words[0].end > lead
    assert_well_timed(transcript.words, 0.0, len(padded) / SAMPLE_RATE)


def test_silence_gives_no_words(transcriber: Transcriber) -> None:
    silence = transcriber.transcribe(np.zeros(3 * SAMPLE_RATE, np.float32))
    assert silence.words == ()
    assert silence.text == ""
    assert silence.duration == pytest.approx(3.0)

    empty = transcriber.transcribe(np.zeros(0, np.float32))
    assert empty.words == ()
    assert empty.duration == 0.0
    assert empty.language == "en"


def test_resolve_model(tmp_path: Path) -> None:
    bundled = Path(resolve_model("bundled"))
    assert (bundled / "model.bin").is_file()
    assert resolve_model(str(tmp_path)) == str(tmp_path)
    assert resolve_model("large-v3") == "large-v3"


def test_transcript_text_joins_words() -> None:
    words = (Word(0, 0.5, "Hello,", 0.9), Word(0.5, 1, "world.", 0.9))
    assert Transcript("en", 1.0, words).text == "Hello, world."
    cjk = (Word(0, 0.5, "你好", 0.9), Word(0.5, 1, "世界", 0.9), Word(1, 1.5, "ok", 0.9))
    assert Transcript("zh", 1.5, cjk).text == "你好世界 ok"


def test_subtitles_from_real_speech(fox: Transcript) -> None:
    cues = build_cues(fox.words)
    assert cues
    assert cues[0].start >= 0.0 and cues[-1].end <= fox.duration + 1.0
    vtt = to_vtt(cues)
    assert vtt.startswith("WEBVTT\n\n00:00:0")
    assert "lazy" in vtt.lower()
