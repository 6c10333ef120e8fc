"""The pinned client: forbidden addresses are never connected to, on any hop."""

from __future__ import annotations

import socket

import httpx
import pytest

from clipmaker.errors import SOURCE_FORBIDDEN, ClipError
from clipmaker.net import FORBIDDEN_MESSAGE, AddressPolicy, async_pinned_client, pinned_client
from tests.support.targets import Reply, serve_target

ALLOW_LOOPBACK_1 = AddressPolicy(["127.0.0.1/32"])


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def _assert_forbidden(info: pytest.ExceptionInfo[ClipError]) -> None:
    assert (info.value.code, info.value.message) == (SOURCE_FORBIDDEN, FORBIDDEN_MESSAGE)


def test_allowed_address_is_fetched() -> None:
    with (
        serve_target("127.0.0.1", {"/a": Reply(200, b"hello")}) as target,
        pinned_client(ALLOW_LOOPBACK_1) as client,
    ):
        assert client.get(target.url("/a")).content == b"hello"
    assert target.connections == 1


@pytest.mark.parametrize("spelling", ["127.0.0.2", "2130706434", "0x7f.0.0.2", "127.0.2"])
def test_forbidden_loopback_gets_no_connection(spelling: str) -> None:
    with (
        serve_target("127.0.0.2", {"/a": Reply(200, b"secret")}) as target,
        pinned_client(ALLOW_LOOPBACK_1) as client,
        pytest.raises(ClipError) as info,
    ):
        client.get(f"http://{spelling}:{target.port}/a")
    _assert_forbidden(info)
    assert target.connections == 0


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback here")
def test_ipv6_loopback_gets_no_connection() -> None:
    with (
        serve_target("::1", {"/a": Reply(200, b"secret")}) as target,
        pinned_client(ALLOW_LOOPBACK_1) as client,
        pytest.raises(ClipError) as info,
    ):
        client.get(target.url("/a"))
    _assert_forbidden(info)
    assert target.connections == 0


def test_redirect_to_a_forbidden_address_is_not_followed() -> None:
    with serve_target("127.0.0.2", {"/internal": Reply(200, b"secret")}) as inside:
        hop = Reply(302, headers={"Location": inside.url("/internal")})
        with (
            serve_target("127.0.0.1", {"/start": hop}) as outside,
            pinned_client(ALLOW_LOOPBACK_1, follow_redirects=True) as client,
            pytest.raises(ClipError) as info,
        ):
            client.get(outside.url("/start"))
    _assert_forbidden(info)
    assert outside.requests == ["/start"]
    assert inside.connections == 0


def test_the_message_is_the_same_whatever_the_target() -> None:
    """Open port, closed port, metadata address: one answer, so nothing can be mapped."""
    messages = set()
    with serve_target("127.0.0.2", {"/": Reply(401, b"dashboard")}) as open_port:
        urls = [
            open_port.url("/"),
            "http://127.0.0.2:1/",  # closed
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.1:5432/",
        ]
        with pinned_client(ALLOW_LOOPBACK_1, timeout=2) as client:
            for url in urls:
                with pytest.raises(ClipError) as info:
                    client.get(url)
                messages.add((info.value.code, str(info.value)))
    assert messages == {(SOURCE_FORBIDDEN, f"{SOURCE_FORBIDDEN}: {FORBIDDEN_MESSAGE}")}
    assert open_port.connections == 0


def test_environment_proxies_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy would connect on our behalf to an address we never checked."""
    with (
        serve_target("127.0.0.2", {}) as proxy,
        serve_target("127.0.0.1", {"/a": Reply(200, b"ok")}) as target,
    ):
        monkeypatch.setenv("HTTP_PROXY", proxy.base_url)
        monkeypatch.setenv("ALL_PROXY", proxy.base_url)
        with pinned_client(ALLOW_LOOPBACK_1) as client:
            assert client.get(target.url("/a")).content == b"ok"
        assert proxy.connections == 0
    with pytest.raises(TypeError):
        pinned_client(ALLOW_LOOPBACK_1, transport=httpx.HTTPTransport())


def test_host_header_keeps_the_name() -> None:
    seen = {}

    def reply() -> Reply:
        return Reply(200, b"ok")

    with (
        serve_target("127.0.0.1", {"/a": reply}) as target,
        pinned_client(AddressPolicy(["127.0.0.1/32", "::1/128"])) as client,
    ):
        response = client.get(f"http://localhost:{target.port}/a")
        seen["host"] = response.request.headers["host"]
    assert seen["host"] == f"localhost:{target.port}"


async def _async_get(url: str) -> None:
    async with async_pinned_client(ALLOW_LOOPBACK_1) as client:
        await client.get(url)


def test_async_client_refuses_too() -> None:
    import anyio

    with (
        serve_target("127.0.0.2", {"/a": Reply(200, b"secret")}) as target,
        pytest.raises(ClipError) as info,
    ):
        anyio.run(_async_get, target.url("/a"))
    _assert_forbidden(info)
    assert target.connections == 0


def test_dns_rebinding_cannot_switch_the_address(monkeypatch: pytest.MonkeyPatch) -> None:
    """A name that answers an allowed address for the check and a forbidden one afterwards:
    the connection goes to the address that was checked, and only there."""
    real = socket.getaddrinfo
    answers = iter(["127.0.0.1"] + ["127.0.0.2"] * 10)

    def rebinding(host: object, port: object, *args: object, **kwargs: object) -> list:
        if host == "rebind.test":
            return real(next(answers), port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    with serve_target("127.0.0.2", {"/a": Reply(200, b"secret")}) as inside:
        routes = {"/a": Reply(200, b"public")}
        with serve_target("127.0.0.1", routes) as outside:
            # re-resolving at connect time would go to 127.0.0.2 (and fail or leak)
            url = f"http://rebind.test:{outside.port}/a"
            with pinned_client(ALLOW_LOOPBACK_1) as client:
                assert client.get(url).content == b"public"
                assert client.get(url).content == b"public"  # kept-alive, still pinned
    assert outside.requests == ["/a", "/a"]
    assert inside.connections == 0


def test_a_name_with_any_forbidden_answer_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def split_horizon(host: object, port: object, *args: object, **kwargs: object) -> list:
        if host == "both.test":
            return real("127.0.0.1", port, *args, **kwargs) + real("127.0.0.2", port, *args)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", split_horizon)
    with (
        serve_target("127.0.0.1", {"/a": Reply(200, b"public")}) as outside,
        pinned_client(ALLOW_LOOPBACK_1) as client,
        pytest.raises(ClipError) as info,
    ):
        client.get(f"http://both.test:{outside.port}/a")
    _assert_forbidden(info)
    assert outside.connections == 0
