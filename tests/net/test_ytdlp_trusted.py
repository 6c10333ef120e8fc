"""The deployment's PO-token provider may live on a private address: yt-dlp plugins reach it
(and only it) past the address policy."""

from __future__ import annotations

import pytest

from clipmaker.errors import SOURCE_FORBIDDEN
from clipmaker.net import AddressPolicy
from clipmaker.net.ytdlp import PolicedYoutubeDL, stop_cause
from tests.support.targets import Reply, serve_target


def test_only_the_trusted_provider_is_exempt_from_the_policy() -> None:
    routes = {"/get_pot": Reply(200, b'{"poToken": "t"}'), "/secret": Reply(200, b"s")}
    with (
        serve_target("127.0.0.1", routes) as provider,
        serve_target("127.0.0.2", {"/secret": Reply(200, b"s")}) as inside,
        PolicedYoutubeDL(
            {"quiet": True}, policy=AddressPolicy(), trusted_urls=[provider.base_url]
        ) as ydl,
    ):
        assert ydl.urlopen(provider.url("/get_pot")).read() == b'{"poToken": "t"}'
        with pytest.raises(Exception) as caught:
            ydl.urlopen(inside.url("/secret"))
        assert stop_cause(caught.value).code == SOURCE_FORBIDDEN
        # same host, another port: not the provider
        other = f"http://127.0.0.1:{inside.port}/secret"
        with pytest.raises(Exception) as caught:
            ydl.urlopen(other)
        assert stop_cause(caught.value).code == SOURCE_FORBIDDEN
    assert provider.requests == ["/get_pot"]
    assert inside.connections == 0
