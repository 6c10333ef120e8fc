"""The media layer: find a video behind a URL, look inside it, cut a clip out of it.

Plain functions over files and URLs (no servers, queues or Ray), usable from a notebook:

    src = resolve("https://www.youtube.com/watch?v=...")       # yt-dlp, no download
    info = probe(src.media_url, http_headers=src.http_headers)  # duration, codecs
    clip = cut(src.media_url, Path("clip.mp4"), 65.5, 95.0, http_headers=src.http_headers)

The path of a clip, one module (or package) each:

    resolve.py   yt-dlp: the URL a user pasted -> media URLs (resolved.py, ytdlp_errors.py,
                 youtube.py for YouTube's format policy)
    source.py    open a path, URL or playlist as a PyAV container (http/: session, readers,
                 download; locations.py names, failures.py error mapping)
    probe.py     what is in it
    cut/         plan the cut -> copy / smart-cut / encode -> write the MP4

Every failure caused by the input is a ``ClipError`` with a code from ``clipmaker.errors``.
"""

from clipmaker.media.cut import Accuracy, CutResult, ProgressCallback, cut
from clipmaker.media.http.counter import ByteCounter
from clipmaker.media.probe import AudioInfo, MediaInfo, VideoInfo, probe
from clipmaker.media.resolve import resolve
from clipmaker.media.resolved import ResolvedSource
from clipmaker.media.source import Opener, SourceOpener

__all__ = [
    "Accuracy",
    "AudioInfo",
    "ByteCounter",
    "CutResult",
    "MediaInfo",
    "Opener",
    "ProgressCallback",
    "ResolvedSource",
    "SourceOpener",
    "VideoInfo",
    "cut",
    "probe",
    "resolve",
]
