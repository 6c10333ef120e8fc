"""Writing the clip: an MP4 that browsers play at once, written beside its destination and
read back to report what was written."""

from __future__ import annotations

import uuid
from pathlib import Path

import av
from av.container import OutputContainer

from clipmaker.media.probe import codec_name

__all__ = ["describe_output", "open_output", "part_path"]


def open_output(path: Path) -> OutputContainer:
    return av.open(str(path), "w", format="mp4", container_options={"movflags": "+faststart"})


def describe_output(path: Path) -> tuple[float, float, str, str | None]:
    """(duration, first frame time, video codec, audio codec) read back from ``path``."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        duration = (container.duration or 0) / av.time_base
        first_time = 0.0
        for frame in container.decode(video):
            first_time = float(frame.time) if frame.time is not None else 0.0
            break
        return duration, first_time, codec_name(video), codec_name(audio) if audio else None


def part_path(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:12]}.part")
