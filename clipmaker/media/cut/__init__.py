"""Cut ``[start, end)`` out of a video into an MP4 that browsers play at once.

Two accuracies, because users want two different things:

- ``"frame"``: the clip's first frame is exactly the source frame shown at ``start`` and its
  last the one before ``end``. For H.264 this is a *smart cut* (``smart.py``): only the partial
  GOPs at the edges are decoded and re-encoded, with settings matched to the source, and every
  whole GOP in between is copied bit for bit (``CutResult.mode == "smart"``). Other codecs, and
  H.264 that can't be spliced safely, are decoded from the keyframe before ``start`` and wholly
  re-encoded to H.264 (``"reencode"``; ``CutResult.note`` says why). The clip's zero is its
  first frame's time, for sound as for picture. AAC audio that spans the clip is copied packet
  for packet from one packet before the zero (pre-roll) to the video's end; the MP4 edit list
  starts playback at the zero and ends it with the picture, to the sample, as it does for
  encoder priming (a player that ignores edit lists is off by less than one AAC frame at each
  end, 21 ms at 48 kHz). Other audio (or AAC that starts late or ends early)
  is decoded, trimmed to the sample at the zero, padded where missing and re-encoded to AAC.
  Either way audio is one continuous stream: no gap at the video's joints.
- ``"keyframe"``: a pure stream copy (no decoding, bit-identical packets) from the keyframe at or
  before ``start``: fast and lossless, but the clip may begin up to one GOP early.

Audio can come from a separate input (``audio=``: DASH-style video-only and audio-only streams,
as YouTube serves them); it is read over the same range, on the same clock, and the video
source's own audio is then ignored. Each input is a path, an http(s) URL, or an ``Opener``: a
callable returning a context manager that yields an opened PyAV input container (for callers
that read through their own byte source).

The source is opened with PyAV (FFmpeg), locally or over http(s). We seek before reading, so over
the network FFmpeg's http protocol fetches only the byte ranges around the clip, never the whole
file. The output is written to a temporary file next to ``dest`` and renamed into place only when
complete: on any failure, including a ``progress`` callback that raises to cancel, nothing is left
at ``dest``.

The path of a clip, one module each:

    plan.py      check the request, put the source on one clock, check the range
    strategy.py  choose the tracks (track.py: the base classes they share)
      video.py     full re-encode, stream copy      smart.py + splice.py  smart cut (h264.py)
      audio.py     AAC copy with pre-roll, or decode, place and re-encode
      encoders.py  ONE encoder configuration per codec
    demux.py     seek to the keyframe before the start, merge audio, pump packets
    run.py       one attempt; mux.py the MP4 written; clip.py ``cut`` itself, atomic output

A smart cut that finds mid-way that it can't splice safely raises ``SmartCutFailed``; the cut
then starts again as a full re-encode and says so.
"""

from clipmaker.media.cut.clip import CutResult, cut
from clipmaker.media.cut.plan import Accuracy, ProgressCallback
from clipmaker.media.source import Opener

__all__ = ["Accuracy", "CutResult", "Opener", "ProgressCallback", "cut"]
