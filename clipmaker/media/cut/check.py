"""Check a written clip before it is stored: what a user would look for first.

The clip must start with the frame at ``start`` (its first frame shown at 0, the source frame
the cut chose), hold exactly the frames the cut wrote (no hidden pre-roll, nothing lost at a
joint), and every packet must decode without an error. Decoding runs with FFmpeg's error
detection made fatal (``err_detect=explode``), so a concealed glitch at a joint is a failure,
not a grey block. A smart cut that fails is redone as a full re-encode (``clip.cut``).
"""

from __future__ import annotations

import av
import av.error

__all__ = ["clip_problem"]


def clip_problem(path: str, expected_frames: int) -> str | None:
    """Why the clip at ``path`` is not right, or None if it is."""
    try:
        with av.open(path) as container:
            video = container.streams.video[0]
            video.codec_context.options = {"err_detect": "explode"}
            count = 0
            first: float | None = None
            for packet in container.demux(video):
                for frame in packet.decode():
                    if first is None:
                        first = float(frame.time) if frame.time is not None else 0.0
                    count += 1
    except (av.error.FFmpegError, OSError, EOFError) as exc:
        return f"a frame does not decode ({exc})"
    if count == 0:
        return "no frame decodes"
    if first is not None and abs(first) > 1e-3:
        return f"its first frame is shown at {first:.3f} s, not 0"
    if count != expected_frames:
        return f"it decodes to {count} frames, not the {expected_frames} written"
    return None
