"""The media layer: find a video behind a URL, look inside it, cut a clip out of it.

Plain functions over files and URLs (no servers, queues or Ray), usable from a notebook:

    src = resolve("https://www.youtube.com/watch?v=...")       # yt-dlp, no download
    info = probe(src.media_url, http_headers=src.http_headers)  # duration, codecs
    clip = cut(src.media_url, Path("clip.mp4"), 65.5, 95.0, http_headers=src.http_headers)

Every failure caused by the input is a ``ClipError`` with a code from ``clipmaker.errors``.
"""

from clipmaker.media.cut import Accuracy, CutResult, ProgressCallback, cut
from clipmaker.media.fetch import ResolvedSource, resolve
from clipmaker.media.probe import AudioInfo, MediaInfo, Opener, VideoInfo, probe

__all__ = [
    "Accuracy",
    "AudioInfo",
    "CutResult",
    "MediaInfo",
    "Opener",
    "ProgressCallback",
    "ResolvedSource",
    "VideoInfo",
    "cut",
    "probe",
    "resolve",
]
