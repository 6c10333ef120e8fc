"""Audio strategies: copy the source's packets, or decode, place on the video's clock and
re-encode to AAC.

Either way the clip's zero is its first video frame's time, and audio is one continuous stream
that lasts exactly as long as the picture: no gap at the video's joints. ``AudioCopy`` with
``exact`` (frame-accurate clips, AAC only) keeps one packet of pre-roll and lets the MP4 edit
list start and end playback to the sample; ``AudioReencode`` trims, pads and resamples.
"""

from __future__ import annotations

from fractions import Fraction

import av
import av.error
import numpy as np
from av.container import OutputContainer

from clipmaker.media.cut.encoders import AAC
from clipmaker.media.cut.track import AudioTrack

__all__ = ["AudioCopy", "AudioReencode", "audio_covers"]


class AudioReencode(AudioTrack):
    """Decode, place samples on the video's clock (trim, fill gaps), encode AAC."""

    def __init__(
        self, out: OutputContainer, source: av.AudioStream, end_s: float, margin_s: float
    ) -> None:
        super().__init__()
        self._out = out
        self._source = source
        ctx = source.codec_context
        channels = ctx.channels or 2
        self._layout = "mono" if channels == 1 else "stereo"  # what every browser plays
        self._channels = 1 if channels == 1 else 2
        rate = ctx.sample_rate or 48000
        self._rate = rate if rate in AAC.rates else 48000
        self._stream = out.add_stream(AAC.codec, rate=self._rate)
        self._stream.layout = self._layout
        self._stream.bit_rate = AAC.bitrate_per_channel * self._channels
        self._stream.codec_context.time_base = Fraction(1, self._rate)
        self._resampler = av.AudioResampler(format="fltp", layout=self._layout, rate=self._rate)
        self._zero: float | None = None
        self._waiting: list[av.AudioFrame] = []
        self._buffer = np.zeros((self._channels, 0), dtype=np.float32)
        self._placed = 0  # samples placed on the clip's timeline so far
        self._encoded = 0  # samples handed to the encoder so far
        # Absolute until set_zero, then clip seconds. The video's end is at or after end_s
        # (the frame shown at end_s runs past it) but not by more than a frame: place samples
        # up to end + margin, encode eagerly only up to end - margin, finish() trims exactly.
        self._end_s = end_s
        self._margin_s = margin_s
        self._cap_s = end_s + margin_s
        self._tolerance = max(64, self._rate // 500)  # 2 ms: treat as contiguous
        self._frame_size = 1024

    def set_zero(self, seconds: float) -> None:
        """The absolute source time that becomes 0 in the clip (the first video frame's)."""
        if self._zero is not None:
            return
        self._zero = seconds
        self._end_s -= seconds
        self._cap_s -= seconds
        self._frame_size = self._stream.codec_context.frame_size or 1024
        for frame in self._waiting:
            self._place(frame)
        self._waiting.clear()

    def feed(self, packet: av.Packet) -> None:
        if self.done:
            return
        try:
            frames = packet.decode()
        except av.error.InvalidDataError:
            return  # one damaged audio packet: leave a gap, the next frame is placed by time
        for frame in frames:
            for converted in self._resampler.resample(frame):
                if converted.pts is None and frame.pts is not None:
                    converted.pts, converted.time_base = frame.pts, frame.time_base
                if self._zero is None:
                    self._waiting.append(converted)
                else:
                    self._place(converted)

    def _place(self, frame: av.AudioFrame) -> None:
        if self.done or self._zero is None:
            return
        data = frame.to_ndarray().astype(np.float32, copy=False)
        if data.ndim == 1:
            data = data.reshape(self._channels, -1)
        at = self._placed
        if frame.pts is not None and frame.time_base is not None:
            at = round((float(frame.pts * frame.time_base) - self._zero) * self._rate)
        if at < self._placed:
            data = data[:, self._placed - at :]  # before the zero, or overlapping
        elif at > self._placed + self._tolerance:
            self._append(np.zeros((self._channels, at - self._placed), dtype=np.float32))
        if data.shape[1]:
            self._append(data)
        cap = round(self._cap_s * self._rate)
        if self._placed >= cap:
            self.done = True
        safe = round((self._end_s - self._margin_s) * self._rate)
        while (
            self._buffer.shape[1] >= self._frame_size and self._encoded + self._frame_size <= safe
        ):
            self._encode(self._buffer[:, : self._frame_size])
            self._buffer = self._buffer[:, self._frame_size :]

    def _append(self, data: np.ndarray) -> None:
        cap = round(self._cap_s * self._rate) - self._placed
        data = data[:, : max(cap, 0)]
        self._buffer = np.concatenate([self._buffer, data], axis=1)
        self._placed += data.shape[1]

    def finish(self, clip_seconds: float) -> None:
        """Make the audio exactly ``clip_seconds`` long (the video's length) and flush."""
        if self._zero is None:
            return
        for converted in self._resampler.resample(None):
            self._place(converted)
        total = round(clip_seconds * self._rate)
        self._cap_s = max(self._cap_s, clip_seconds)
        if self._placed < total:
            self._append(np.zeros((self._channels, total - self._placed), dtype=np.float32))
        keep = max(0, total - self._encoded)
        self._buffer = self._buffer[:, :keep]
        while self._buffer.shape[1]:
            self._encode(self._buffer[:, : self._frame_size])
            self._buffer = self._buffer[:, self._frame_size :]
        for packet in self._stream.encode(None):
            self._out.mux(packet)
        self.done = True

    def _encode(self, data: np.ndarray) -> None:
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(data), format="fltp", layout=self._layout
        )
        frame.sample_rate = self._rate
        frame.pts = self._encoded
        frame.time_base = Fraction(1, self._rate)
        self._encoded += data.shape[1]
        for packet in self._stream.encode(frame):
            self._out.mux(packet)


class AudioCopy(AudioTrack):
    """Mux the source's audio packets that overlap the clip, untouched.

    ``exact`` (frame-accurate clips): one packet before the clip's zero is kept as pre-roll (an
    AAC frame only decodes right after the one before it), so the first packets have negative
    times and the MP4 edit list tells players to start at 0, to the sample, as it does for an
    encoder's priming. At the end, packets are kept while they start before the video's real
    end (up to ``margin_s`` after ``end_s``), and the last one's duration is cut to that end, so
    the track (and its edit list) lasts exactly as long as the picture.
    """

    def __init__(
        self,
        out: OutputContainer,
        source: av.AudioStream,
        end_s: float,
        *,
        exact: bool = False,
        margin_s: float = 0.0,
    ) -> None:
        super().__init__()
        self._out = out
        self._stream = out.add_stream_from_template(source)  # ValueError if MP4 can't hold it
        self._end_abs = end_s  # absolute until set_zero
        self._exact = exact
        self._margin_s = margin_s if exact else 0.0
        self._zero_pts: int | None = None
        self._end_pts: int | None = None  # packets from here on are past the clip
        self._cut_pts: int | None = None  # packets from here on wait for the video's real end
        self._waiting: list[av.Packet] = []
        self._preroll: av.Packet | None = None
        self._held: list[av.Packet] = []
        self._last: av.Packet | None = None  # exact: written once the next one comes
        self._time_base = source.time_base or Fraction(1, source.codec_context.sample_rate or 1)

    def set_zero(self, seconds: float) -> None:
        if self._zero_pts is not None:
            return
        self._zero_pts = round(seconds / self._time_base)
        self._cut_pts = round(self._end_abs / self._time_base)
        self._end_pts = round((self._end_abs + self._margin_s) / self._time_base)
        for packet in self._waiting:
            self.feed(packet)
        self._waiting.clear()

    def feed(self, packet: av.Packet) -> None:
        if self.done or packet.pts is None or packet.size == 0:
            return
        if self._zero_pts is None or self._end_pts is None or self._cut_pts is None:
            self._waiting.append(packet)
            return
        if packet.pts >= self._end_pts:
            self.done = True
            return
        if packet.pts + (packet.duration or 0) <= self._zero_pts:
            if self._exact:
                self._preroll = packet
            return  # wholly before the clip
        if self._preroll is not None:
            self._write(self._preroll)
            self._preroll = None
        if self._exact and packet.pts >= self._cut_pts:
            self._held.append(packet)
            return
        self._write(packet)

    def _write(self, packet: av.Packet) -> None:
        if self._exact:  # hold the latest packet back: the clip's end may cut it short
            packet, self._last = self._last, packet
            if packet is None:
                return
        self._mux(packet)

    def _mux(self, packet: av.Packet) -> None:
        assert packet.pts is not None and self._zero_pts is not None
        shift = self._zero_pts
        packet.pts -= shift
        if packet.dts is not None:
            packet.dts -= shift
        packet.stream = self._stream
        self._out.mux(packet)

    def finish(self, clip_seconds: float) -> None:
        if self._zero_pts is not None:
            limit = self._zero_pts + round(clip_seconds / self._time_base)
            for packet in self._held:
                if packet.pts is not None and packet.pts < limit:
                    self._write(packet)
            last, self._last = self._last, None
            if last is not None and last.pts is not None:
                # the edit list ends the track here: sound stops with the picture, to the sample
                if last.duration:
                    last.duration = max(1, min(last.duration, limit - last.pts))
                self._mux(last)
        self._held.clear()
        self.done = True


def audio_covers(audio: av.AudioStream, start_s: float, end_s: float) -> bool:
    """Whether the audio stream's header says it spans ``[start_s, end_s)`` (container clock).

    Copied packets can't fill a gap; where the audio starts late or ends early (or its span
    is unknown) it is re-encoded, which pads with silence.
    """
    time_base = audio.time_base
    container = audio.container
    if time_base is None or audio.start_time is None:
        return False
    begin = float(audio.start_time * time_base)
    if audio.duration:
        finish = begin + float(audio.duration * time_base)
    elif container is not None and container.duration:
        finish = ((container.start_time or 0) + container.duration) / av.time_base
    else:
        return False
    frame_s = 1024 / (audio.sample_rate or 48000)  # an AAC frame: what a copy is exact to
    return begin <= start_s + frame_s and finish >= end_s - frame_s
