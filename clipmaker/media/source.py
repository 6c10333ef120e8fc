"""Opening a source: a local file, an http(s) URL or an HLS playlist, as a PyAV container.

``SourceOpener`` is what a job hands to ``cut``: a zero-argument callable returning a context
manager that yields an opened ``InputContainer``. It tries range reading (``media.http``) and
falls back to downloading the whole source into scratch (``full_fetch``) when the server
ignores Range or the source is live; ``fetch_path`` then says which ("range", "full" or
"local"). ``open_input`` is the one-shot form for a path or URL.

Sources that are HLS playlists (also the playlists ``resolve`` builds for DASH formats that are
lists of fragments, passed as ``data:`` URLs) are opened with FFmpeg's hls demuxer, reading
through ``nested_open``. A DASH manifest itself can't be opened: PyAV's FFmpeg is built without
libxml2, so it has no dash demuxer; ``resolve`` turns manifests into inputs.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import av
from av.container import InputContainer

from clipmaker.errors import NOT_MEDIA, ClipError
from clipmaker.media.failures import check_container, media_error
from clipmaker.media.http.counter import ByteCounter
from clipmaker.media.http.download import full_fetch
from clipmaker.media.http.errors import RangeNotSupported
from clipmaker.media.http.readers import RangeReader, nested_open
from clipmaker.media.http.session import HttpSession
from clipmaker.media.http.sizes import DEFAULT_MAX_FULL_FETCH, PYAV_BUFFER
from clipmaker.media.locations import (
    check_location,
    decode_data_url,
    describe_location,
    is_playlist_data,
    is_url,
)
from clipmaker.net import AddressPolicy
from clipmaker.net.bounds import TransferGuard

__all__ = [
    "NETWORK_TIMEOUT_S",
    "FetchPath",
    "OpenedSource",
    "Opener",
    "SourceOpener",
    "open_input",
]

NETWORK_TIMEOUT_S = 30.0
MP4_OPTIONS = {"probesize": "32", "analyzeduration": "0"}
FetchPath = Literal["range", "full", "local"]
# Opens a source its own way (``SourceOpener``); the container closes on exit.
Opener = Callable[[], contextlib.AbstractContextManager[InputContainer]]

# The hls demuxer must not try FFmpeg's keep-alive path (it needs FFmpeg's http protocol and
# asserts without it), nor open segments ahead in parallel. Segment names and extensions are
# whatever the host uses (DASH fragments are often .m4s or have none): the extension checks
# exist to stop playlists from reading local files, which our io_open never opens anyway.
HLS_OPTIONS = {
    "http_persistent": "0",
    "http_multiple": "0",
    "allowed_extensions": "ALL",
    "extension_picky": "0",
}


@dataclass(frozen=True)
class OpenedSource:
    container: InputContainer
    fetch_path: FetchPath  # "range": partial reads; "full": downloaded whole; "local": a file
    local_path: Path | None  # the downloaded copy (fetch_path "full") or the local file


# Demuxers that open further files named inside the input. On a local file (an upload, a full
# download) those names would be local paths: a crafted playlist could read other files.
_NESTING_DEMUXERS = frozenset({"hls", "applehttp", "concat", "dash", "image2"})


def _refuse_local_playlist(container: InputContainer, location: str | Path) -> InputContainer:
    name = container.format.name
    if set(name.split(",")) & _NESTING_DEMUXERS:
        container.close()
        raise ClipError(
            NOT_MEDIA,
            f"{describe_location(location)} is a playlist or list of files ({name}), "
            "not a media file",
        )
    return container


class SourceOpener:
    """Opens one source, as often as asked: ``with opener() as container: ...``.

    The first open decides how the source is read and records it in ``fetch_path``: a local
    file ("local"); range reads over http(s), HLS playlists included ("range"); or, when the
    server ignores Range or the source is live, a download into ``scratch_dir`` that later
    opens reuse ("full"). One HTTP session (connections, block cache, counter) serves every
    open. ``close()`` (or ``with opener:``) releases it and removes a download made into a
    temporary directory (a given ``scratch_dir`` is the caller's to clean).

    ``policy`` and ``guard`` go to the HTTP session (see ``HttpSession``). If a read met a
    forbidden address or the guard stopped it, ``open()`` raises that, whatever FFmpeg did
    with the failed read (the hls demuxer skips a segment it can't open).
    """

    def __init__(
        self,
        location: str | Path,
        *,
        headers: Mapping[str, str] | None = None,
        counter: ByteCounter,
        scratch_dir: Path | None = None,
        timeout_s: float = 30.0,
        live: bool = False,
        max_full_fetch_bytes: int = DEFAULT_MAX_FULL_FETCH,
        policy: AddressPolicy | None = None,
        guard: TransferGuard | None = None,
        proxy: str | None = None,
    ) -> None:
        self.location = location
        self.policy = policy
        self.guard = guard
        self.proxy = proxy
        self.headers = dict(headers or {})
        self.counter = counter
        self.scratch_dir = Path(scratch_dir) if scratch_dir is not None else None
        self.timeout_s = timeout_s
        self.live = live
        self.max_full_fetch_bytes = max_full_fetch_bytes
        self.fetch_path: FetchPath | None = None
        self.local_path: Path | None = None
        self._session: HttpSession | None = None
        self._range_url: str | None = None  # a file read with ranges (not a playlist)
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SourceOpener({describe_location(self.location)!r}, fetch_path={self.fetch_path!r})"

    def __call__(self) -> contextlib.AbstractContextManager[InputContainer]:
        return self._container()

    @contextlib.contextmanager
    def _container(self) -> Iterator[InputContainer]:
        with self.open() as opened:
            yield opened.container

    @contextlib.contextmanager
    def open(self) -> Iterator[OpenedSource]:
        """Open the source; yields an ``OpenedSource``. Errors are ``ClipError``s."""
        try:
            container, fetch_path = self._open()
        except BaseException as exc:
            self._raise_fatal(exc)
            raise
        try:
            check_container(container, self.location)
            yield OpenedSource(container, fetch_path, self.local_path)
        except BaseException as exc:
            self._raise_fatal(exc)
            raise
        finally:
            container.close()
        self._raise_fatal(None)

    def _raise_fatal(self, current: BaseException | None) -> None:
        """Raise the session's fatal error (forbidden address, cancelled, deadline, too slow)
        in place of ``current``; FFmpeg reports those as a read error, or not at all."""
        with self._lock:
            session = self._session
        fatal = session.fatal_error() if session is not None else None
        if fatal is None and self.guard is not None:
            fatal = self.guard.error
        if fatal is not None and fatal is not current:
            raise fatal from current

    def plan(self, byte_ranges: list[tuple[int, int]]) -> None:
        """Which bytes a cut still needs, from the container's index (``cut`` says): the
        reader then fetches those ranges and nothing beyond them but single blocks."""
        if self._range_url is not None:
            self.session().plan(self._range_url, byte_ranges)

    def session(self) -> HttpSession:
        with self._lock:
            if self._session is None:
                self._session = HttpSession(
                    headers=self.headers,
                    counter=self.counter,
                    timeout_s=self.timeout_s,
                    policy=self.policy,
                    guard=self.guard,
                    proxy=self.proxy,
                )
            return self._session

    @property
    def error_statuses(self) -> list[int]:
        """HTTP statuses >= 400 the source answered so far (see ``HttpSession``)."""
        with self._lock:
            return list(self._session.error_statuses) if self._session is not None else []

    def close(self) -> None:
        with self._lock:
            session, self._session = self._session, None
            tempdir, self._tempdir = self._tempdir, None
        if session is not None:
            session.close()
        if tempdir is not None:
            tempdir.cleanup()

    def __enter__(self) -> SourceOpener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # how each kind of source is opened

    def _open(self) -> tuple[InputContainer, FetchPath]:
        location = self.location
        if is_playlist_data(location):
            return self._av_open(io.BytesIO(decode_data_url(str(location))), "range", format="hls")
        name = check_location(location)
        if not is_url(location):
            self.local_path = Path(name)
            self.fetch_path = "local"
            try:
                container = av.open(name, mode="r", options={"protocol_whitelist": "file"})
            except Exception as exc:
                raise media_error(exc, location, opening=True) from exc
            return _refuse_local_playlist(container, location), "local"
        url = name
        if self.fetch_path == "full" and self.local_path is not None:
            return self._av_open(str(self.local_path), "full")
        if self.live:
            return self._av_open(str(self._download(url)), "full")
        session = self.session()
        try:
            reader = RangeReader(session, url)
        except RangeNotSupported:
            return self._av_open(str(self._download(url)), "full")
        head = reader.read(1024)
        reader.seek(0)
        if head.lstrip(b"\xef\xbb\xbf").startswith(b"#EXTM3U"):
            reader.close()
            # the hls demuxer opens the playlist itself, through io_open (from the cache)
            return self._av_open(url, "range", format="hls")
        if _looks_like_mpd(head):
            reader.close()
            # PyAV's FFmpeg is built without libxml2: it has no DASH demuxer
            raise ClipError(
                NOT_MEDIA,
                f"{describe_location(url)} is a DASH manifest; resolve it first (resolve "
                "picks its video and audio streams)",
            )
        self._range_url = url
        if head[4:8] == b"ftyp":
            # An MP4's header describes every stream: probing packets past it would read the
            # file in order until each stream showed up, all of it where audio comes after
            # all video (FFmpeg's find_stream_info). The cut reads what its index says.
            return self._av_open(reader, "range", options=MP4_OPTIONS)
        return self._av_open(reader, "range")

    def _av_open(
        self,
        source: str | io.RawIOBase,
        fetch_path: FetchPath,
        *,
        format: str | None = None,
        options: Mapping[str, str] | None = None,
    ) -> tuple[InputContainer, FetchPath]:
        options = dict(options or {})
        io_open = None
        if isinstance(source, str) and not is_url(source):
            options["protocol_whitelist"] = "file"  # a downloaded copy: local reads only
        else:
            io_open = nested_open(self.session())
            if format == "hls":
                options.update(HLS_OPTIONS)
        try:
            container = av.open(
                source,
                mode="r",
                format=format,
                options=options,
                io_open=io_open,
                buffer_size=PYAV_BUFFER,
            )
        except Exception as exc:
            if isinstance(source, io.IOBase):
                source.close()
            raise media_error(exc, self.location, opening=True) from exc
        if isinstance(source, str) and not is_url(source):
            _refuse_local_playlist(container, self.location)
        self.fetch_path = fetch_path
        return container, fetch_path

    def _download(self, url: str) -> Path:
        if self.local_path is not None and self.local_path.exists():
            return self.local_path
        if self.scratch_dir is not None:
            directory = self.scratch_dir
        else:
            with self._lock:
                if self._tempdir is None:
                    self._tempdir = tempfile.TemporaryDirectory(prefix="clipmaker-fetch-")
                directory = Path(self._tempdir.name)
        suffix = Path(urlsplit(url).path).suffix
        if not re.fullmatch(r"\.[A-Za-z0-9]{1,8}", suffix):
            suffix = ""
        digest = hashlib.sha256(url.encode()).hexdigest()[:16]
        dest = directory / f"source-{digest}{suffix}"
        full_fetch(
            url,
            dest,
            counter=self.counter,
            max_bytes=self.max_full_fetch_bytes,
            session=self.session(),
        )
        self.local_path = dest
        self.fetch_path = "full"
        return dest


def _looks_like_mpd(head: bytes) -> bool:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return text.startswith(b"<") and re.search(rb"<(?:\w+:)?MPD[\s>]", text) is not None


@contextlib.contextmanager
def open_input(
    location: str | Path,
    *,
    http_headers: Mapping[str, str] | None = None,
    timeout_s: float = NETWORK_TIMEOUT_S,
    counter: ByteCounter | None = None,
) -> Iterator[InputContainer]:
    """Open a local file or http(s) media URL with PyAV, mapping failures to ``ClipError``.

    URLs are read with bounded Range requests through ``media.http`` (bytes received are added
    to ``counter`` when given); a server without Range support is downloaded whole into a
    temporary directory, removed on exit. HLS playlists open with the hls demuxer. Local files
    are read with FFmpeg's file protocol only.

    The container is closed on exit. Errors raised inside the ``with`` body are the caller's
    to map (``media_error``), since only the caller knows what it was doing.
    """
    check_location(location)
    opener = SourceOpener(
        location,
        headers=http_headers,
        counter=counter if counter is not None else ByteCounter(),
        timeout_s=timeout_s,
    )
    with opener, opener() as container:
        yield container
