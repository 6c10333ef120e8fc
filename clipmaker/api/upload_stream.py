"""Receive a multipart upload straight from the socket to disk, under a size cap.

Starlette's ``request.form()`` spools the whole body before a handler can look at it, so a
client could make us write gigabytes past the cap. Here the body is parsed chunk by chunk as
it arrives, the file part goes to disk, and the upload is refused (and the partial file
removed) the moment it passes the cap.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from clipmaker.errors import INVALID_REQUEST, UPLOAD_TOO_LARGE, ClipError

FILE_FIELD = "file"
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


@dataclass(frozen=True)
class ReceivedFile:
    path: Path
    filename: str
    size: int


def safe_filename(name: str) -> str:
    """A display/storage name with no path parts or odd characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = _UNSAFE.sub("_", base).strip(" .")[:200]
    return cleaned or "upload"


def _too_large(cap: int) -> ClipError:
    return ClipError(
        UPLOAD_TOO_LARGE, f"the upload is larger than the {cap} byte limit", status_code=413
    )


class _FilePartWriter:
    """Multipart callbacks that write the ``file`` part to disk and count its bytes."""

    def __init__(self, dest: Path, max_bytes: int) -> None:
        self.dest = dest
        self.max_bytes = max_bytes
        self.filename: str | None = None
        self.size = 0
        self._out: IO[bytes] | None = None
        self._in_file = False
        self._headers: dict[bytes, bytes] = {}
        self._field = bytearray()

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda d, s, e: self._field.extend(d[s:e]),
            "on_header_value": self._header_value,
            "on_header_end": self._field.clear,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _part_begin(self) -> None:
        self._headers = {}

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        key = bytes(self._field).lower()
        self._headers[key] = self._headers.get(key, b"") + data[start:end]

    def _headers_finished(self) -> None:
        _, disposition = parse_options_header(self._headers.get(b"content-disposition", b""))
        is_file = disposition.get(b"name") == FILE_FIELD.encode() and self.filename is None
        if is_file:
            self.filename = disposition.get(b"filename", b"upload").decode("utf-8", "replace")
            self._out = self.dest.open("wb")
        self._in_file = is_file

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if not self._in_file or self._out is None:
            return
        self.size += end - start
        if self.size > self.max_bytes:
            raise _too_large(self.max_bytes)
        self._out.write(data[start:end])

    def _part_end(self) -> None:
        if self._in_file and self._out is not None:
            self._out.close()
        self._in_file = False

    def discard(self) -> None:
        if self._out is not None:
            with contextlib.suppress(Exception):
                self._out.close()
        self.dest.unlink(missing_ok=True)


async def receive_file(request: Request, dest: Path, *, max_bytes: int) -> ReceivedFile:
    """Stream the ``file`` part of a multipart body to ``dest``; nothing stays behind on error."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise ClipError(
            INVALID_REQUEST,
            "send the file as multipart/form-data with a part named 'file'",
            status_code=415,
        )
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + 64 * 1024:
        raise _too_large(max_bytes)  # refuse before reading a byte of the body

    dest.parent.mkdir(parents=True, exist_ok=True)
    writer = _FilePartWriter(dest, max_bytes)
    parser = MultipartParser(boundary, writer.callbacks())
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
        if writer.filename is None:
            raise ClipError(INVALID_REQUEST, "the multipart body has no part named 'file'")
        if writer.size == 0:
            raise ClipError(INVALID_REQUEST, "the uploaded file is empty")
    except ClipError:
        writer.discard()
        raise
    except Exception as exc:  # a client that hangs up or sends a broken body
        writer.discard()
        # The exception's text may name the file on our disk: give its kind only.
        raise ClipError(
            INVALID_REQUEST, f"the multipart body could not be read ({type(exc).__name__})"
        ) from exc
    return ReceivedFile(dest, safe_filename(writer.filename), writer.size)
