"""Sample media whose content can be checked frame by frame and sample by sample.

``clipmaker demo`` clips one of these; the tests and benchmarks use them to check cuts.

Real-world test files hide what a cut got wrong: one frame off looks the same as the right one.
Every video frame made here carries its own frame index, drawn as big black/white blocks that
survive lossy encoding, so a test can decode a clip and ask *which source frame is this?*
Audio is a quiet tone with optional speech (espeak-ng) and optional short loud beeps at known
times, so a test can check that sound stayed in sync with picture after a cut.

The API:

- ``speech_wav(text, path)``: text to speech into a WAV file (espeak-ng).
- ``make_video(path, duration_s=...)``: an indexed video (container chosen by suffix).
- ``frame_index(frame)``: read the drawn index back from a decoded frame.
- ``first_frame_index_and_time(path)``, ``video_frame_count(path)``, ``frame_indices(path)``,
  ``audio_mono(path)``, ``beep_times(path)``: what tests check in a result.

Layout of a frame: the top three quarters hold a 4 x 5 grid of cells; cells 0-15 are the bits of
the frame index (least significant first), cells 16-19 a check nibble, so a black, grey or mangled
frame is reported as unreadable rather than misread. The bottom quarter is moving noise that gives
the encoder real work, so file sizes (and byte-range tests) resemble real video.
"""

from __future__ import annotations

import shutil
import subprocess
import wave
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

__all__ = [
    "AUDIO_RATE",
    "BEEP_HZ",
    "audio_mono",
    "beep_times",
    "first_frame_index_and_time",
    "frame_index",
    "frame_indices",
    "index_after_seek",
    "make_video",
    "speech_wav",
    "video_frame_count",
]

AUDIO_RATE = 48_000
BEEP_HZ = 1_000.0
BEEP_S = 0.04
_TONE_HZ = 220.0
_TONE_AMPLITUDE = 0.02  # about -34 dBFS: "silence" that still shows the track is alive
_SPEECH_PEAK = 0.4  # speech stays below the beep detector's threshold
_BEEP_AMPLITUDE = 0.9
_ROWS, _COLS = 4, 5
_INDEX_BITS = 16
_CHECK_BITS = 4
_WHITE, _BLACK = 235, 16  # video-range luma
_CHECK_SALT = 0b1010  # an all-black frame must not read as frame 0
_VFR_PATTERN = (2, 1, 3, 2)  # frame durations in half-frame ticks, for vfr=True (mean 2)


def speech_wav(text: str, path: Path, *, voice: str = "en-us", wpm: int = 150) -> Path:
    """Speak ``text`` into ``path`` (mono 16-bit WAV, espeak-ng's rate, 22050 Hz)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [exe, "-v", voice, "-s", str(wpm), "-w", str(path), text],
        check=True,
        capture_output=True,
    )
    return path


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as wav:
        rate, channels, width = wav.getframerate(), wav.getnchannels(), wav.getsampwidth()
        raw = wav.readframes(wav.getnframes())
    if width != 2:
        raise ValueError(f"{path}: expected 16-bit samples, got {8 * width}-bit")
    samples = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    return samples.reshape(-1, channels).mean(axis=1), rate


def _resample(samples: np.ndarray, rate: int, new_rate: int) -> np.ndarray:
    if rate == new_rate or len(samples) == 0:
        return samples
    n_out = round(len(samples) * new_rate / rate)
    positions = np.arange(n_out) * (rate / new_rate)
    return np.interp(positions, np.arange(len(samples)), samples).astype(np.float32)


def _soundtrack(
    duration_s: float,
    speech: Sequence[tuple[float, str]],
    beeps: Sequence[float],
    workdir: Path,
) -> np.ndarray:
    """Mono float32 samples at AUDIO_RATE: tone + speech + beeps."""
    n = round(duration_s * AUDIO_RATE)
    t = np.arange(n, dtype=np.float64) / AUDIO_RATE
    track = (_TONE_AMPLITUDE * np.sin(2 * np.pi * _TONE_HZ * t)).astype(np.float32)
    for i, (at, text) in enumerate(speech):
        voice, rate = _read_wav(speech_wav(text, workdir / f"speech-{i}.wav"))
        voice = _resample(voice, rate, AUDIO_RATE)
        voice *= _SPEECH_PEAK / max(float(np.abs(voice).max()), 1e-6)
        first = round(at * AUDIO_RATE)
        if first >= n:
            continue
        voice = voice[: n - first]
        track[first : first + len(voice)] += voice
    beep_n = round(BEEP_S * AUDIO_RATE)
    beep = _BEEP_AMPLITUDE * np.sin(2 * np.pi * BEEP_HZ * np.arange(beep_n) / AUDIO_RATE)
    for at in beeps:
        first = round(at * AUDIO_RATE)
        chunk = beep[: max(0, n - first)]
        track[first : first + len(chunk)] += chunk.astype(np.float32)
    return np.clip(track, -1.0, 1.0)


def _draw(index: int, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """The luma plane of frame ``index``."""
    if not 0 <= index < 1 << _INDEX_BITS:
        raise ValueError(f"frame index {index} does not fit in {_INDEX_BITS} bits")
    y = np.full((height, width), 128, dtype=np.uint8)
    bits = _bits(index)
    grid_h = height * 3 // 4
    for k, bit in enumerate(bits):
        top, bottom, left, right = _cell(k, width, grid_h)
        y[top:bottom, left:right] = _WHITE if bit else _BLACK
    y[grid_h:, :] = rng.integers(40, 216, size=(height - grid_h, width), dtype=np.uint8)
    return y


def _bits(index: int) -> list[int]:
    nibbles = [(index >> shift) & 0xF for shift in range(0, _INDEX_BITS, 4)]
    check = (sum(nibbles) & 0xF) ^ _CHECK_SALT
    value = index | (check << _INDEX_BITS)
    return [(value >> k) & 1 for k in range(_INDEX_BITS + _CHECK_BITS)]


def _cell(k: int, width: int, grid_h: int) -> tuple[int, int, int, int]:
    """Bounds of cell ``k`` with a 2-pixel grey border, so neighbours don't bleed."""
    row, col = divmod(k, _COLS)
    top, bottom = row * grid_h // _ROWS, (row + 1) * grid_h // _ROWS
    left, right = col * width // _COLS, (col + 1) * width // _COLS
    return top + 2, bottom - 2, left + 2, right - 2


def frame_index(frame: av.VideoFrame) -> int:
    """The source frame index drawn into ``frame``; ValueError if it cannot be read.

    Samples the middle of each cell and thresholds it, so blur and quantisation from lossy
    codecs don't matter; a cell that is neither clearly black nor clearly white, or a failed
    check nibble, means this is not (cleanly) one of our frames.
    """
    luma = frame.reformat(format="gray").to_ndarray()
    height, width = luma.shape
    grid_h = height * 3 // 4
    value = 0
    for k in range(_INDEX_BITS + _CHECK_BITS):
        top, bottom, left, right = _cell(k, width, grid_h)
        dy, dx = (bottom - top) // 4, (right - left) // 4
        level = float(luma[top + dy : bottom - dy, left + dx : right - dx].mean())
        if 70 < level < 185:
            raise ValueError(f"cell {k} is grey ({level:.0f}): not a cleanly indexed frame")
        value |= int(level >= 128) << k
    index = value & ((1 << _INDEX_BITS) - 1)
    if _bits(index) != [(value >> k) & 1 for k in range(_INDEX_BITS + _CHECK_BITS)]:
        raise ValueError(f"check nibble does not match (read {value:#x})")
    return index


def _codec_options(
    codec: str, fps: int, gop: int, bframes: bool, crf: int, open_gop: bool = False
) -> tuple[dict[str, str], str]:
    """Encoder options that put a keyframe exactly every ``gop`` frames, and the pixel format."""
    if codec == "libx264":
        params = f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes={3 if bframes else 0}"
        if open_gop:
            params += ":open-gop=1"
        return {"preset": "veryfast", "crf": str(crf), "x264-params": params}, "yuv420p"
    if codec == "libx265":
        params = (
            f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes={3 if bframes else 0}"
            f":log-level=error:open-gop={int(open_gop)}"
        )
        return {"preset": "ultrafast", "crf": str(crf), "x265-params": params}, "yuv420p"
    if codec == "libvpx-vp9":
        return {
            "g": str(gop),
            "keyint_min": str(gop),
            "deadline": "realtime",
            "cpu-used": "8",
            "crf": str(crf + 10),
            "b": "0",
            "row-mt": "1",
        }, "yuv420p"
    return {"g": str(gop)}, "yuv420p"


def make_video(
    path: Path,
    *,
    duration_s: float,
    fps: int = 25,
    gop_s: float = 2.0,
    size: tuple[int, int] = (320, 240),
    speech: Sequence[tuple[float, str]] = (),
    video_codec: str = "libx264",
    audio_codec: str = "aac",
    bframes: bool = True,
    faststart: bool = True,
    audio: bool = True,
    beeps: Sequence[float] = (),
    crf: int = 23,
    seed: int = 0,
    open_gop: bool = False,
    idr_frames: Sequence[int] = (),
    start_s: float = 0.0,
    vfr: bool = False,
) -> Path:
    """Write an indexed test video to ``path`` and return it.

    - Frame ``i`` shows index ``i`` (see ``frame_index``) at ``i / fps`` seconds (plus the
      container's own offset: MPEG-TS starts its clock at 1.4 s).
    - A keyframe every ``gop_s`` seconds exactly (scene-cut detection off), closed GOPs;
      ``bframes`` toggles B-frames (H.264/H.265). ``open_gop`` (x264/x265): keyframes after the
      first are open-GOP I-frames (not IDR) whose leading B-frames reference the previous GOP;
      ``idr_frames`` (x264) forces IDR pictures (clean entry points) at those frame indices.
    - ``start_s``: every timestamp (video and audio) is shifted by this much, so the file's
      first frame is at ``start_s`` (as in a recording cut from a live stream).
    - ``vfr``: variable frame rate; frame ``i`` lasts ``_VFR_PATTERN[i % 4] / (2 * fps)``
      seconds (the mean rate is still ``fps``; keyframes every ``gop_s * fps`` frames). Read the
      times back with ``frame_indices``.
    - Audio (``audio=True``): 48 kHz stereo, a quiet 220 Hz tone, ``speech`` as (seconds, text)
      spoken by espeak-ng from that time, and 40 ms 1 kHz ``beeps`` starting at the given times.
    - Container by suffix: ``.mp4`` (``faststart`` moves the index to the front), ``.mkv``,
      ``.webm`` (use ``libvpx-vp9`` + ``libopus``), ``.mov``, ...
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    n_frames = round(duration_s * fps)
    gop = max(1, round(gop_s * fps))
    # video clock: 1/fps ticks, or half-frame ticks for VFR; audio: samples; both offset
    ticks_per_frame = 2 if vfr else 1
    video_tb = Fraction(1, fps * ticks_per_frame)
    frame_at = [0]
    for i in range(n_frames):
        step = _VFR_PATTERN[i % len(_VFR_PATTERN)] if vfr else ticks_per_frame
        frame_at.append(frame_at[-1] + step)
    video_offset = round(start_s / video_tb)
    audio_offset = round(start_s * AUDIO_RATE)
    rng = np.random.default_rng(seed)
    container_options = (
        {"movflags": "+faststart"}
        if faststart
        and path.suffix
        in (
            ".mp4",
            ".mov",
            ".m4v",
        )
        else {}
    )
    with av.open(str(path), "w", container_options=container_options) as out:
        options, pix_fmt = _codec_options(video_codec, fps, gop, bframes, crf, open_gop)
        forced_idr = frozenset(idr_frames)
        if forced_idr:
            options["forced-idr"] = "1"  # libx264: a frame typed I becomes an IDR
        vstream = out.add_stream(video_codec, rate=fps, options=options)
        vstream.width, vstream.height, vstream.pix_fmt = width, height, pix_fmt
        vstream.codec_context.time_base = video_tb
        astream = None
        if audio:
            astream = out.add_stream(audio_codec, rate=AUDIO_RATE)
            astream.layout = "stereo"
            astream.codec_context.time_base = Fraction(1, AUDIO_RATE)
        out.start_encoding()  # opens the encoders, so the audio frame size is known

        samples = None
        resampler = None
        if astream is not None:
            workdir = path.parent / f".{path.name}.speech"
            workdir.mkdir(exist_ok=True)
            try:
                samples = _soundtrack(float(frame_at[-1] * video_tb), speech, beeps, workdir)
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
            resampler = av.AudioResampler(
                format=astream.codec_context.format,
                layout="stereo",
                rate=AUDIO_RATE,
                frame_size=astream.codec_context.frame_size or 1024,
            )
        audio_pos = 0

        def push_audio(until: int) -> None:
            nonlocal audio_pos
            assert samples is not None and resampler is not None and astream is not None
            while audio_pos < until:
                chunk = samples[audio_pos : min(until, audio_pos + 4800)]
                frame = av.AudioFrame.from_ndarray(
                    np.stack([chunk, chunk]), format="fltp", layout="stereo"
                )
                frame.sample_rate = AUDIO_RATE
                frame.pts = audio_offset + audio_pos
                frame.time_base = Fraction(1, AUDIO_RATE)
                audio_pos += len(chunk)
                for resampled in resampler.resample(frame):
                    out.mux(astream.encode(resampled))

        for i in range(n_frames):
            y = _draw(i, width, height, rng)
            chroma = np.full((height // 2, width), 128, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(np.concatenate([y, chroma]), format="yuv420p")
            if i in forced_idr:
                frame.pict_type = av.video.frame.PictureType.I
            frame.pts = video_offset + frame_at[i]
            frame.time_base = video_tb
            out.mux(vstream.encode(frame))
            if samples is not None:
                push_audio(min(len(samples), round(frame_at[i + 1] * video_tb * AUDIO_RATE)))
        out.mux(vstream.encode(None))
        if samples is not None and resampler is not None and astream is not None:
            push_audio(len(samples))
            for resampled in resampler.resample(None):
                out.mux(astream.encode(resampled))
            out.mux(astream.encode(None))
    return path


def frame_indices(path: Path | str, *, limit: int | None = None) -> list[tuple[int, float]]:
    """(drawn index, presentation time in seconds) of each video frame, in display order."""
    result: list[tuple[int, float]] = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            result.append((frame_index(frame), float(frame.time)))
            if limit is not None and len(result) >= limit:
                break
    return result


def index_after_seek(container: av.container.InputContainer, seconds: float) -> int:
    """The drawn index of the first frame at or after ``seconds`` of source time, reached
    by seeking an open container (what a cutter does)."""
    video = container.streams.video[0]
    origin = float((video.start_time or 0) * video.time_base)
    container.seek(round((origin + seconds) / video.time_base), stream=video, backward=True)
    for frame in container.decode(video):
        if frame.time is not None and frame.time >= origin + seconds - 1e-6:
            return frame_index(frame)
    raise ValueError(f"no frame at or after {seconds} s")


def first_frame_index_and_time(path: Path | str) -> tuple[int, float]:
    """The drawn index and the presentation time (seconds) of the first video frame."""
    frames = frame_indices(path, limit=1)
    if not frames:
        raise ValueError(f"{path}: no video frame")
    return frames[0]


def video_frame_count(path: Path | str) -> int:
    """How many video frames a player would show (decoded, not counted from headers)."""
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def audio_mono(path: Path | str) -> tuple[np.ndarray, int, float]:
    """The first audio track mixed to mono float32: (samples, rate, time of the first sample)."""
    chunks: list[np.ndarray] = []
    first_time: float | None = None
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=stream.rate)
        for frame in container.decode(stream):
            if first_time is None:
                first_time = float(frame.time) if frame.time is not None else 0.0
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray()[0])
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray()[0])
        rate = stream.rate
    samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    return samples, rate, first_time or 0.0


def beep_times(path: Path | str, *, threshold: float = 0.6) -> list[float]:
    """Start times (seconds on the file's timeline) of the 1 kHz beeps in the audio track.

    A beep is where the signal's 5 ms envelope first rises above ``threshold`` (the tone and
    the speech stay below it); accurate to about a millisecond.
    """
    samples, rate, first_time = audio_mono(path)
    window = max(1, rate // 200)
    n = len(samples) // window
    envelope = np.abs(samples[: n * window]).reshape(n, window).max(axis=1)
    loud = envelope > threshold
    starts: list[float] = []
    i = 0
    while i < n:
        if loud[i]:
            first = i * window
            # refine to the first loud sample inside the window
            offset = int(np.argmax(np.abs(samples[first : first + window]) > threshold))
            starts.append(first_time + (first + offset) / rate)
            while i < n and loud[i]:
                i += 1
            i += round(BEEP_S * rate / window)  # skip the rest of this beep
        else:
            i += 1
    return starts
