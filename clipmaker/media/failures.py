"""What went wrong with an input, in words a user can act on.

FFmpeg reports "invalid data" both for bytes that are no media at all and for a damaged file;
``media_error`` tells them apart (a file that starts like a known container is damaged), and
maps network and file-system failures to ``source_unreachable``. ``check_container`` refuses
what FFmpeg opens but is not audio or video (text art, pictures, subtitles).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import av
import av.error
from av.container import InputContainer

from clipmaker.errors import CORRUPT_MEDIA, NOT_MEDIA, SOURCE_UNREACHABLE, ClipError
from clipmaker.media.locations import describe_location, is_remote

__all__ = ["check_container", "media_error"]

# Demuxers FFmpeg picks for things that are not videos (text art, pictures, subtitles);
# "not media" is the honest answer for those.
_NOT_VIDEO_FORMATS = frozenset(
    {"tty", "bin", "xbin", "adf", "idf", "image2", "lrc", "srt", "webvtt", "ass", "sup"}
)
# Magic numbers of containers: a file that starts like media but can't be read is damaged.
_MEDIA_MAGIC: tuple[tuple[int, bytes], ...] = (
    (4, b"ftyp"),  # MP4 / MOV / 3GP
    (4, b"moov"),
    (4, b"mdat"),
    (4, b"free"),
    (4, b"wide"),
    (0, b"\x1a\x45\xdf\xa3"),  # Matroska / WebM (EBML)
    (0, b"RIFF"),  # AVI / WAV
    (0, b"FLV"),
    (0, b"OggS"),
    (0, b"\x00\x00\x01\xba"),  # MPEG-PS
    (0, b"\x30\x26\xb2\x75"),  # ASF / WMV
)


def _looks_like_media(location: str | Path) -> bool:
    """Whether a local file starts with a known container signature."""
    if is_remote(location):
        return False
    try:
        with open(location, "rb") as fh:
            head = fh.read(16)
    except OSError:
        return False
    return any(head[at : at + len(magic)] == magic for at, magic in _MEDIA_MAGIC)


def media_error(exc: BaseException, location: str | Path, *, opening: bool = False) -> ClipError:
    """The ``ClipError`` for an FFmpeg (or OS) error met while opening or reading ``location``.

    ``opening``: the error came from opening the container, where "invalid data" means the
    bytes are not a format FFmpeg knows (``not_media``) unless they start like a known
    container; while reading, it means damage (``corrupt_media``).
    """
    if isinstance(exc, ClipError):
        return exc
    where = describe_location(location)
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    if isinstance(exc, av.error.HTTPError | av.error.HTTPClientError):
        return ClipError(SOURCE_UNREACHABLE, f"the server refused {where}: {reason}")
    if isinstance(exc, TimeoutError | av.error.ExitError):
        return ClipError(SOURCE_UNREACHABLE, f"timed out reading {where}")
    if isinstance(exc, ConnectionError):
        return ClipError(SOURCE_UNREACHABLE, f"could not connect to {where}: {reason}")
    if isinstance(exc, PermissionError) and is_remote(location):
        # The server answered; FFmpeg refused what the bytes asked it to open (a damaged
        # index pointing at a file or protocol outside the allowed list).
        return ClipError(CORRUPT_MEDIA, f"{where} is damaged and cannot be read ({reason})")
    if isinstance(exc, PermissionError) and os.access(location, os.R_OK):
        # We may read the file; FFmpeg refused a file it names (a concat list, a playlist).
        return ClipError(NOT_MEDIA, f"{where} refers to other files; it is not a media file")
    if isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError):
        return ClipError(SOURCE_UNREACHABLE, f"cannot read {where}: {reason}")
    if isinstance(exc, av.error.InvalidDataError):
        if opening and not _looks_like_media(location):
            return ClipError(
                NOT_MEDIA, f"{where} is not a video or audio file FFmpeg can read ({reason})"
            )
        return ClipError(CORRUPT_MEDIA, f"{where} is damaged and cannot be read ({reason})")
    if isinstance(exc, EOFError):
        return ClipError(CORRUPT_MEDIA, f"{where} ends early: the file looks truncated")
    if isinstance(exc, OSError) and is_remote(location):
        # EIO from the network stack covers DNS failures and dropped connections.
        return ClipError(SOURCE_UNREACHABLE, f"could not read {where}: {reason}")
    if isinstance(exc, OSError) and getattr(exc, "errno", None) == errno.EIO:
        return ClipError(SOURCE_UNREACHABLE, f"could not read {where}: {reason}")
    return ClipError(CORRUPT_MEDIA, f"{where} could not be read: {reason}")


def check_container(container: InputContainer, location: str | Path) -> None:
    """Refuse what opened but is not audio or video (text art, pictures, subtitles)."""
    if container.format.name in _NOT_VIDEO_FORMATS or container.format.name.endswith("_pipe"):
        raise ClipError(
            NOT_MEDIA,
            f"{describe_location(location)} is not a video or audio file "
            f"(it reads as {container.format.long_name or container.format.name})",
        )
