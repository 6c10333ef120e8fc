"""Streaming presentations (DASH, HLS) built from sample videos, for tests that serve them.

Each builder remuxes (no re-encoding) with PyAV into ``out_dir`` and returns the manifest's
path; calling it again with the same ``out_dir`` returns the existing manifest, so several test
modules can share one session directory without building twice.

- ``make_dash_segment_base``: the YouTube shape. One fragmented MP4 per representation (video
  only, audio only) with a global ``sidx``, and a hand-written MPD that gives each as
  ``BaseURL`` + ``SegmentBase`` (``indexRange``, ``Initialization``). yt-dlp reports these as
  plain http(s) formats: one file each, range-read.
- ``make_dash_template``: what FFmpeg's dash muxer writes: ``SegmentTemplate`` with a
  ``SegmentTimeline``, an init segment and numbered ``.m4s`` fragments per representation.
  yt-dlp reports these as ``http_dash_segments`` formats with a fragment list.
- ``make_hls``: FFmpeg's hls muxer: a VOD media playlist of MPEG-TS segments (audio + video),
  as separate files or as byte ranges of one file.

Several video sources of different sizes become several video representations of one
manifest (for height-cap tests); they must share frame rate and GOP.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path

import av

__all__ = [
    "boxes",
    "make_dash_segment_base",
    "make_dash_template",
    "make_hls",
    "remux",
]

FRAGMENTED = "frag_keyframe+empty_moov+default_base_moof+global_sidx"


def boxes(path: Path) -> list[tuple[str, int, int]]:
    """The top-level boxes of an MP4 file: (type, offset, size)."""
    data = Path(path).read_bytes()
    found: list[tuple[str, int, int]] = []
    at = 0
    while at + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        if size == 1:
            size = struct.unpack(">Q", data[at + 8 : at + 16])[0]
        elif size == 0:
            size = len(data) - at
        found.append((kind.decode("latin-1"), at, size))
        at += size
    return found


def remux(
    sources: Sequence[tuple[Path, str]],
    dest: Path,
    *,
    format: str | None = None,
    container_options: dict[str, str] | None = None,
) -> Path:
    """Copy the first ``kind`` ("video"/"audio") stream of each (path, kind) into ``dest``,
    interleaved by time, without re-encoding."""
    inputs = [av.open(str(path)) for path, _ in sources]
    try:
        with av.open(
            str(dest), "w", format=format, container_options=container_options or {}
        ) as out:
            packets: list[tuple[float, int, av.Packet]] = []
            for n, (container, (_, kind)) in enumerate(zip(inputs, sources, strict=True)):
                stream = getattr(container.streams, kind)[0]
                target = out.add_stream_from_template(stream)
                for packet in container.demux(stream):
                    if packet.dts is None:
                        continue
                    packet.stream = target
                    packets.append((float(packet.dts * stream.time_base), n, packet))
            packets.sort(key=lambda item: (item[0], item[1]))
            for _, _, packet in packets:
                out.mux(packet)
    finally:
        for container in inputs:
            container.close()
    return dest


def _stream_info(path: Path, kind: str) -> dict[str, str]:
    with av.open(str(path)) as container:
        stream = getattr(container.streams, kind)[0]
        ctx = stream.codec_context
        if kind == "video":
            rate = stream.average_rate or stream.guessed_rate
            return {
                "width": str(ctx.width),
                "height": str(ctx.height),
                "frameRate": f"{rate.numerator}/{rate.denominator}" if rate else "25",
                "codecs": "avc1.64001e" if stream.codec_context.name == "h264" else ctx.name,
            }
        return {
            "audioSamplingRate": str(ctx.sample_rate),
            "codecs": "mp4a.40.2" if ctx.name == "aac" else ctx.name,
            "channels": str(ctx.channels),
        }


def _duration(path: Path) -> float:
    with av.open(str(path)) as container:
        return (container.duration or 0) / av.time_base


def make_dash_segment_base(
    videos: Sequence[Path], audio: Path, out_dir: Path, *, name: str = "manifest"
) -> Path:
    """A static MPD whose representations are single fMP4 files (``SegmentBase``)."""
    out_dir = Path(out_dir)
    manifest = out_dir / f"{name}.mpd"
    if manifest.exists():
        return manifest
    out_dir.mkdir(parents=True, exist_ok=True)
    options = {"movflags": FRAGMENTED, "frag_duration": "2000000"}
    reps: list[str] = []
    for n, video in enumerate(videos):
        dest = remux(
            [(video, "video")], out_dir / f"{name}-video{n}.mp4", container_options=options
        )
        info = _stream_info(video, "video")
        reps.append(
            _segment_base_rep(
                f"v{info['height']}",
                "video/mp4",
                dest,
                f'width="{info["width"]}" height="{info["height"]}" '
                f'frameRate="{info["frameRate"]}" codecs="{info["codecs"]}" '
                f'bandwidth="{8 * dest.stat().st_size // max(1, int(_duration(video)))}"',
            )
        )
    dest = remux([(audio, "audio")], out_dir / f"{name}-audio.mp4", container_options=options)
    info = _stream_info(audio, "audio")
    audio_rep = _segment_base_rep(
        "a",
        "audio/mp4",
        dest,
        f'audioSamplingRate="{info["audioSamplingRate"]}" codecs="{info["codecs"]}" '
        f'bandwidth="{8 * dest.stat().st_size // max(1, int(_duration(audio)))}"',
    )
    seconds = _duration(videos[0])
    manifest.write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" '
        'profiles="urn:mpeg:dash:profile:isoff-on-demand:2011" '
        f'mediaPresentationDuration="PT{seconds:.3f}S" minBufferTime="PT2S">\n'
        '  <Period id="0" start="PT0S">\n'
        '    <AdaptationSet id="0" contentType="video" mimeType="video/mp4" '
        'segmentAlignment="true" startWithSAP="1">\n' + "".join(reps) + "    </AdaptationSet>\n"
        '    <AdaptationSet id="1" contentType="audio" mimeType="audio/mp4" '
        'segmentAlignment="true" startWithSAP="1">\n' + audio_rep + "    </AdaptationSet>\n"
        "  </Period>\n"
        "</MPD>\n"
    )
    return manifest


def _segment_base_rep(rep_id: str, mime: str, path: Path, attributes: str) -> str:
    layout = {kind: (offset, size) for kind, offset, size in boxes(path)}
    moov_at, moov_size = layout["moov"]
    sidx_at, sidx_size = layout["sidx"]
    return (
        f'      <Representation id="{rep_id}" mimeType="{mime}" {attributes}>\n'
        f"        <BaseURL>{path.name}</BaseURL>\n"
        f'        <SegmentBase indexRange="{sidx_at}-{sidx_at + sidx_size - 1}">\n'
        f'          <Initialization range="0-{moov_at + moov_size - 1}"/>\n'
        "        </SegmentBase>\n"
        "      </Representation>\n"
    )


def make_dash_template(
    videos: Sequence[Path],
    audio: Path,
    out_dir: Path,
    *,
    name: str = "manifest",
    seg_duration_s: float = 2.0,
) -> Path:
    """FFmpeg's dash muxer: SegmentTemplate + SegmentTimeline, numbered .m4s fragments."""
    out_dir = Path(out_dir)
    manifest = out_dir / f"{name}.mpd"
    if manifest.exists():
        return manifest
    out_dir.mkdir(parents=True, exist_ok=True)
    video_ids = ",".join(str(n) for n in range(len(videos)))
    remux(
        [*((video, "video") for video in videos), (audio, "audio")],
        manifest,
        format="dash",
        container_options={
            "seg_duration": str(seg_duration_s),
            "use_template": "1",
            "use_timeline": "1",
            "adaptation_sets": f"id=0,streams={video_ids} id=1,streams={len(videos)}",
            "init_seg_name": f"{name}-init-$RepresentationID$.$ext$",
            "media_seg_name": f"{name}-chunk-$RepresentationID$-$Number%05d$.$ext$",
        },
    )
    return manifest


def make_hls(
    source: Path,
    out_dir: Path,
    *,
    name: str = "playlist",
    seg_duration_s: float = 2.0,
    single_file: bool = False,
) -> Path:
    """FFmpeg's hls muxer: a VOD playlist of MPEG-TS segments with audio and video.

    ``single_file``: one .ts file, segments given as ``EXT-X-BYTERANGE`` parts of it.
    """
    out_dir = Path(out_dir)
    playlist = out_dir / f"{name}.m3u8"
    if playlist.exists():
        return playlist
    out_dir.mkdir(parents=True, exist_ok=True)
    options = {"hls_time": str(seg_duration_s), "hls_playlist_type": "vod"}
    if single_file:
        options["hls_flags"] = "single_file"
    else:
        options["hls_segment_filename"] = str(out_dir / f"{name}-%03d.ts")
    remux([(source, "video"), (source, "audio")], playlist, format="hls", container_options=options)
    return playlist
