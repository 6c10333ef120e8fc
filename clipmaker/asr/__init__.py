"""Speech recognition for clips: audio loading, faster-whisper transcription, subtitle files.

Plain functions and classes with no knowledge of HTTP, Redis or Ray, so a notebook can use them
as they are: ``Transcriber().transcribe(load_audio(path))`` then ``to_srt(build_cues(words))``.
"""

from clipmaker.asr.audio import SAMPLE_RATE, load_audio
from clipmaker.asr.subtitles import Cue, build_cues, to_srt, to_vtt
from clipmaker.asr.transcriber import Transcriber, Transcript, Word, resolve_model

__all__ = [
    "SAMPLE_RATE",
    "Cue",
    "Transcriber",
    "Transcript",
    "Word",
    "build_cues",
    "load_audio",
    "resolve_model",
    "to_srt",
    "to_vtt",
]
