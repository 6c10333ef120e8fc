"""The address rule: what may be fetched, in every spelling an attacker might try."""

from __future__ import annotations

import pytest

from clipmaker.errors import INVALID_SOURCE_URL, SOURCE_FORBIDDEN, ClipError
from clipmaker.net import FORBIDDEN_MESSAGE, AddressPolicy
from clipmaker.settings import Settings

PUBLIC = ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]
FORBIDDEN = [
    "127.0.0.1",
    "127.0.0.2",
    "0.0.0.0",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "100.64.0.1",  # CGNAT
    "169.254.169.254",  # cloud metadata
    "fd00:ec2::254",  # AWS metadata over IPv6
    "224.0.0.1",
    "239.255.255.250",
    "255.255.255.255",
    "240.0.0.1",
    "198.18.0.1",
    "192.0.2.1",
    "::",
    "::1",
    "fe80::1",
    "fc00::1",
    "ff02::1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:169.254.169.254",
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of the metadata address
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::1",  # 6to4 of the metadata address
]


@pytest.mark.parametrize("ip", PUBLIC)
def test_public_addresses_are_allowed(ip: str) -> None:
    assert AddressPolicy().is_allowed(ip)


@pytest.mark.parametrize("ip", FORBIDDEN)
def test_internal_addresses_are_refused_by_default(ip: str) -> None:
    assert not AddressPolicy().is_allowed(ip)


def test_allowed_networks_admit_exactly_what_they_name() -> None:
    policy = AddressPolicy(["127.0.0.1/32"])
    assert policy.is_allowed("127.0.0.1")
    assert policy.is_allowed("::ffff:127.0.0.1")  # the same address, mapped
    assert not policy.is_allowed("127.0.0.2")
    assert not policy.is_allowed("::1")
    assert not policy.is_allowed("169.254.169.254")
    assert policy.is_allowed("8.8.8.8")


def test_settings_read_comma_separated_cidrs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLIPMAKER_ALLOWED_SOURCE_NETWORKS", "127.0.0.1/32, 10.0.0.0/8,::1")
    policy = AddressPolicy.from_settings(Settings())
    assert policy.is_allowed("10.9.9.9") and policy.is_allowed("::1")
    assert not policy.is_allowed("192.168.0.1")
    monkeypatch.setenv("CLIPMAKER_ALLOWED_SOURCE_NETWORKS", "not-a-network")
    with pytest.raises(ValueError):
        Settings()


def test_default_settings_allow_public_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLIPMAKER_ALLOWED_SOURCE_NETWORKS", raising=False)
    policy = AddressPolicy.from_settings(Settings())
    assert not policy.is_allowed("127.0.0.1")


@pytest.mark.parametrize(
    "host", ["2130706434", "0x7f000002", "0177.0.0.2", "127.2", "127.0.0.2", "[::1]"]
)
def test_resolve_refuses_every_spelling_of_a_forbidden_host(host: str) -> None:
    with pytest.raises(ClipError) as info:
        AddressPolicy(["127.0.0.1/32"]).resolve(host, 80)
    assert info.value.code == SOURCE_FORBIDDEN
    assert info.value.message == FORBIDDEN_MESSAGE


def test_resolve_refuses_localhost_by_default() -> None:
    with pytest.raises(ClipError) as info:
        AddressPolicy().resolve("localhost", 80)
    assert info.value.code == SOURCE_FORBIDDEN


def test_resolve_returns_the_address_to_connect_to() -> None:
    policy = AddressPolicy(["127.0.0.0/8"])
    assert policy.resolve("2130706434", 80) == "127.0.0.2"
    assert policy.resolve("127.0.0.1", 80) == "127.0.0.1"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.2/x.mp4",
        "http://2130706434/",
        "http://0x7f.0.0.2/",
        "https://[::1]:8080/a",
        "http://[::ffff:7f00:2]/",
        "http://localhost:6379/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
    ],
)
def test_check_url_refuses_forbidden_literals_at_submit(url: str) -> None:
    with pytest.raises(ClipError) as info:
        AddressPolicy(["127.0.0.1/32"]).check_url(url)
    assert (info.value.code, info.value.message) == (SOURCE_FORBIDDEN, FORBIDDEN_MESSAGE)


def test_check_url_leaves_names_and_allowed_literals_to_fetch_time() -> None:
    policy = AddressPolicy(["127.0.0.1/32"])
    policy.check_url("http://127.0.0.1:9/x.mp4")
    policy.check_url("https://example.com/watch?v=1")
    with pytest.raises(ClipError) as info:
        policy.check_url("file:///etc/passwd")
    assert info.value.code == INVALID_SOURCE_URL
