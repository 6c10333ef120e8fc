"""``cut``: the public entry point. Open the inputs, run the cut (again as a full re-encode if
a smart cut fails mid-way), and put the clip at ``dest`` atomically: it is written next to
``dest`` and renamed into place only when complete, so on any failure, including a
``progress`` callback that raises to cancel, nothing is left there."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import av.error
from av.container import InputContainer

from clipmaker.errors import INVALID_REQUEST, ClipError
from clipmaker.media.cut.byteplan import Planner
from clipmaker.media.cut.check import clip_problem
from clipmaker.media.cut.errors import SmartCutFailed
from clipmaker.media.cut.mux import describe_output, part_path
from clipmaker.media.cut.plan import Accuracy, Progress, ProgressCallback, check_arguments
from clipmaker.media.cut.run import reset_decoders, run
from clipmaker.media.failures import media_error
from clipmaker.media.http.counter import ByteCounter
from clipmaker.media.locations import check_location
from clipmaker.media.source import NETWORK_TIMEOUT_S, Opener, SourceOpener

__all__ = ["CutResult", "cut"]


@dataclass(frozen=True)
class CutResult:
    path: Path
    duration: float  # seconds, measured from the written file
    first_frame_time: float  # presentation time of the clip's first frame (0 when all is well)
    bytes: int
    video_codec: str
    audio_codec: str | None
    # "smart": partial GOPs re-encoded, whole GOPs copied; "reencode": every frame encoded by
    # us; "copy": a stream copy from a keyframe (accuracy="keyframe")
    mode: str
    source_start: float  # source time (s) of the clip's first frame; <= start
    frames_reencoded: int = 0  # video frames encoded by us
    frames_copied: int = 0  # video frames whose packets were copied from the source
    note: str | None = None  # why the cut fell back to a slower or less exact way, if it did


def _where(location: str | Path | Opener, default: str) -> str | Path:
    """What messages call an input: its path or URL, or an opener's ``location`` attribute."""
    if isinstance(location, str | Path):
        return location
    return str(getattr(location, "location", None) or default)


def _enter(
    stack: contextlib.ExitStack,
    location: str | Path | Opener,
    where: str | Path,
    http_headers: Mapping[str, str] | None,
    timeout_s: float,
) -> tuple[InputContainer, Planner | None]:
    """The opened input, and where to tell it which bytes the cut needs (if it can be told)."""
    if isinstance(location, str | Path):
        check_location(location)
        opener = stack.enter_context(
            SourceOpener(location, headers=http_headers, counter=ByteCounter(), timeout_s=timeout_s)
        )
        return stack.enter_context(opener()), opener.plan
    if not callable(location):
        raise ClipError(INVALID_REQUEST, f"cannot open {type(location).__name__} as a source")
    try:
        container = stack.enter_context(location())
    except ClipError:
        raise
    except (av.error.FFmpegError, OSError, EOFError) as exc:
        raise media_error(exc, where, opening=True) from exc
    plan = getattr(location, "plan", None)
    return container, plan if callable(plan) else None


def cut(
    source: str | Path | Opener,
    dest: Path,
    start: float,
    end: float,
    *,
    accuracy: Accuracy = "frame",
    http_headers: Mapping[str, str] | None = None,
    progress: ProgressCallback | None = None,
    timeout_s: float = NETWORK_TIMEOUT_S,
    audio: str | Path | Opener | None = None,
) -> CutResult:
    """Write the part of ``source`` from ``start`` to ``end`` (seconds, end exclusive) to ``dest``.

    ``source`` is a local path, an http(s) media URL (``http_headers`` go with every request) or
    an ``Opener``. ``audio``, if given, is a separate audio input (same kinds) whose audio goes
    into the clip instead of the source's own, on the same clock. ``progress`` is called with
    0..1 as work proceeds; if it raises, the cut stops, nothing is left at ``dest`` and the
    exception propagates. Raises ``ClipError`` for bad input: ``invalid_request``,
    ``range_out_of_bounds``, ``no_video_stream``, ``not_media``, ``corrupt_media``,
    ``source_unreachable``, ``invalid_source_url``.
    """
    check_arguments(start, end, accuracy)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    where = _where(source, "the source")
    audio_where = _where(audio, "the audio source") if audio is not None else None
    meter = Progress(progress, end - start)
    try:
        with contextlib.ExitStack() as stack:
            container, plan = _enter(stack, source, where, http_headers, timeout_s)
            audio_plan: Planner | None = None
            audio_input = None
            if audio is not None:
                assert audio_where is not None
                audio_container, audio_plan = _enter(
                    stack, audio, audio_where, http_headers, timeout_s
                )
                audio_input = (audio_container, audio_where)
            smart_failed: str | None = None
            while True:
                try:
                    outcome = run(
                        container,
                        audio_input,
                        where,
                        part,
                        start,
                        end,
                        accuracy,
                        meter,
                        smart=smart_failed is None,
                        planners=(plan, audio_plan),
                    )
                    if accuracy == "frame" and smart_failed is None:
                        written = outcome.frames_copied + outcome.frames_reencoded
                        problem = clip_problem(str(part), written)
                        if problem is not None:
                            raise SmartCutFailed(
                                f"the clip failed its check ({problem}); re-encoded"
                            )
                except SmartCutFailed as exc:
                    if smart_failed is not None:
                        raise AssertionError("a full re-encode raised SmartCutFailed") from exc
                    smart_failed = exc.note  # start again, re-encoding every frame
                    part.unlink(missing_ok=True)
                    reset_decoders(container, audio_input)
                    continue
                except ClipError:
                    raise
                except (av.error.FFmpegError, OSError, EOFError) as exc:
                    raise media_error(exc, where) from exc
                break
            if smart_failed is not None:
                outcome = replace(outcome, note=smart_failed)
        duration, first_time, video_codec, audio_codec = describe_output(part)
        size = part.stat().st_size
        if progress is not None:
            progress(1.0)  # last chance to cancel before the clip appears at dest
        os.replace(part, dest)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return CutResult(
        path=dest,
        duration=duration,
        first_frame_time=first_time,
        bytes=size,
        video_codec=video_codec,
        audio_codec=audio_codec,
        mode=outcome.mode,
        source_start=outcome.source_start,
        frames_reencoded=outcome.frames_reencoded,
        frames_copied=outcome.frames_copied,
        note=outcome.note,
    )
