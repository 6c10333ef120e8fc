"""yt-dlp extractor for the loopback YouTube stand-in (``tests/support/youtube.py``).

Loaded only through ``CLIPMAKER_YTDLP_PLUGIN_DIRS=tests/support/ytdlp_plugins``. It follows
yt-dlp 2026.10.26's ``YoutubeIE`` where clipmaker depends on it:

- player clients come from the ``youtube`` extractor args (``player_client``), each asked in
  turn; a client whose request fails is a warning, and no response at all is "Failed to
  extract any player response" (the HTTP status is lost, as in the real extractor);
- adaptive formats without a URL (SABR) are dropped with a warning;
- no formats: the error screen's reason/subreason become the error exactly as ``_real_extract``
  builds it: ``raise_geo_restricted`` for "not made this video available in your country",
  the login hint appended to reasons with "sign in", ``raise_no_formats(expected=True)``;
- a live video gives its HLS format and ``live_status='is_live'``.
"""

from __future__ import annotations

import json

from yt_dlp.extractor.common import InfoExtractor
from yt_dlp.utils import ExtractorError, remove_end

_ITAG_EXT = {18: "mp4", 137: "mp4", 140: "m4a"}


class YoutubeStandInIE(InfoExtractor):
    IE_NAME = "youtube:standin"
    _VALID_URL = r"https?://127\.0\.0\.1:(?P<port>\d+)/watch\?v=(?P<id>[0-9A-Za-z_-]{11})"

    def _real_extract(self, url):
        video_id = self._match_id(url)
        port = self._match_valid_url(url).group("port")
        base = f"http://127.0.0.1:{port}"
        clients = self._configuration_arg("player_client", ["web"], ie_key="youtube")
        responses = []
        for client in clients:
            try:
                responses.append(
                    (
                        client,
                        self._download_json(
                            f"{base}/youtubei/v1/player",
                            video_id,
                            note=f"Downloading {client} player API JSON",
                            data=json.dumps({"videoId": video_id, "client": client}).encode(),
                            headers={"Content-Type": "application/json"},
                        ),
                    )
                )
            except ExtractorError as e:
                self.report_warning(e)
        if not responses:
            raise ExtractorError("Failed to extract any player response")

        details = responses[0][1].get("videoDetails") or {}
        formats, seen = [], set()
        is_live = bool(details.get("isLive"))
        for client, pr in responses:
            sd = pr.get("streamingData") or {}
            if is_live and sd.get("hlsManifestUrl"):
                formats.append(
                    {
                        "format_id": "95",
                        "url": sd["hlsManifestUrl"],
                        "ext": "mp4",
                        "protocol": "m3u8_native",
                        "height": 720,
                    }
                )
                continue
            skipped = False
            for fmt in (sd.get("formats") or []) + (sd.get("adaptiveFormats") or []):
                itag = fmt["itag"]
                if not fmt.get("url"):
                    skipped = True
                    continue
                if itag in seen:
                    continue
                seen.add(itag)
                mime = fmt.get("mimeType", "")
                video = mime.startswith("video/")
                both = itag == 18
                formats.append(
                    {
                        "format_id": str(itag),
                        "url": fmt["url"],
                        "ext": _ITAG_EXT.get(itag, "mp4"),
                        "width": fmt.get("width"),
                        "height": fmt.get("height"),
                        "fps": fmt.get("fps"),
                        "tbr": (fmt.get("bitrate") or 0) / 1000,
                        "filesize": int(fmt["contentLength"]) if fmt.get("contentLength") else None,
                        "vcodec": ("avc1.42001E" if both else "avc1.640028") if video else "none",
                        "acodec": "mp4a.40.2" if (both or not video) else "none",
                        "asr": int(fmt["audioSampleRate"]) if fmt.get("audioSampleRate") else None,
                    }
                )
            if skipped:
                self.report_warning(
                    f"Some {client} client https formats have been skipped as they are missing a "
                    "url. YouTube is forcing SABR streaming for this client."
                )

        if not formats:
            status = responses[0][1].get("playabilityStatus") or {}
            pemr = (status.get("errorScreen") or {}).get("playerErrorMessageRenderer") or {}
            reason = (pemr.get("reason") or {}).get("simpleText") or status.get("reason") or ""
            subreason = (pemr.get("subreason") or {}).get("simpleText")
            if subreason:
                if subreason.startswith(
                    "The uploader has not made this video available in your country"
                ):
                    self.raise_geo_restricted(subreason, None, metadata_available=True)
                if subreason != reason:
                    reason += f". {subreason}"
            if reason:
                if "sign in" in reason.lower():
                    reason = remove_end(reason, "This helps protect our community. Learn more")
                    reason = (
                        f"{remove_end(reason.strip(), '.')}. {self._login_hint(method='cookies')}"
                    )
                self.raise_no_formats(reason, expected=True)

        return {
            "id": video_id,
            "title": details.get("title"),
            "duration": int(details["lengthSeconds"]) if details.get("lengthSeconds") else None,
            "formats": formats,
            "is_live": is_live,
            "live_status": "is_live" if is_live else "not_live",
        }
