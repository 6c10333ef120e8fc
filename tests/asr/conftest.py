"""Shared ASR fixtures: one loaded model and one espeak-ng recording per test session."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from clipmaker.asr import Transcriber

SENTENCE = "The quick brown fox jumps over the lazy dog."


@pytest.fixture(scope="session")
def transcriber() -> Transcriber:
    """The bundled tiny.en model on CPU, loaded once: loading costs more than a short clip."""
    return Transcriber("bundled", device="cpu", cpu_threads=2)


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SENTENCE spoken by espeak-ng (22.05 kHz mono WAV, about 2.8 s)."""
    path = tmp_path_factory.mktemp("speech") / "fox.wav"
    subprocess.run(["espeak-ng", "-w", str(path), SENTENCE], check=True, capture_output=True)
    return path
