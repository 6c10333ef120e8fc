"""Audio in the one shape Whisper wants: float32 mono samples at 16 kHz.

Decoding goes through faster-whisper's own PyAV decoder (FFmpeg bundled in the wheel, no system
ffmpeg), so what we feed the model is exactly what faster-whisper would have decoded itself. A
clip with no audio stream is not an error (a silent screen recording still makes a clip); a file
FFmpeg cannot read is, and it carries a code the caller can report.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from faster_whisper import decode_audio

from clipmaker.errors import CORRUPT_MEDIA, ClipError

SAMPLE_RATE = 16000


def load_audio(path: str | Path) -> np.ndarray:
    """Decode the first audio stream of ``path`` to float32 mono at ``SAMPLE_RATE``.

    Returns an empty array when the file has no audio stream. Raises ``ClipError(corrupt_media)``
    when the file cannot be demuxed or decoded; a missing file stays ``FileNotFoundError`` (that
    is a bug upstream, not bad input).
    """
    path = str(path)
    try:
        # Probe first: decode_audio would fail on a file without audio, which is not corrupt.
        with av.open(path, mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                return np.zeros(0, dtype=np.float32)
        audio = decode_audio(path, sampling_rate=SAMPLE_RATE)
    except FileNotFoundError:
        raise
    except (av.FFmpegError, ValueError, IndexError) as exc:
        raise ClipError(CORRUPT_MEDIA, f"cannot decode the audio: {exc}") from exc
    return np.ascontiguousarray(audio, dtype=np.float32)
