"""What a user checks about a finished clip, read with PyAV from the bytes that came back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import httpx

from clipmaker.testing.sample import frame_index
from tests.support.waiting import wait_for

__all__ = ["ClipFacts", "clip_facts", "download", "wait_for"]


@dataclass(frozen=True)
class ClipFacts:
    video_duration: float  # frames shown x frame duration
    first_frame_time: float
    first_frame_index: int  # which source frame the clip opens on
    last_frame_index: int
    video_codec: str
    audio_codec: str | None
    audio_duration: float | None


def download(url: str, dest: Path) -> Path:
    response = httpx.get(url, timeout=60)
    response.raise_for_status()
    dest.write_bytes(response.content)
    return dest


def clip_facts(path: Path) -> ClipFacts:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        fps = float(video.average_rate)
        video_codec = video.codec_context.name
        frames = list(container.decode(video))
    with av.open(str(path)) as container:
        audio_codec = audio_duration = None
        if container.streams.audio:
            stream = container.streams.audio[0]
            audio_codec = stream.codec_context.name
            samples = sum(frame.samples for frame in container.decode(stream))
            audio_duration = samples / stream.rate
    return ClipFacts(
        video_duration=len(frames) / fps,
        first_frame_time=float(frames[0].time),
        first_frame_index=frame_index(frames[0]),
        last_frame_index=frame_index(frames[-1]),
        video_codec=video_codec,
        audio_codec=audio_codec,
        audio_duration=audio_duration,
    )
