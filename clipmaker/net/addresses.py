"""Which network addresses clipmaker may fetch from (SSRF defence).

A URL a stranger gives us must not make the service talk to itself, to its database, to the
cloud's metadata service or to anything else on the private side of the network. Checking the
URL's text is not enough (names resolve to private addresses; ``2130706433``, ``0x7f.1`` and
``[::ffff:127.0.0.1]`` all mean 127.0.0.1; DNS can answer differently the second time), so the
rule is applied to the *address actually connected to*: ``AddressPolicy.resolve`` resolves a
host once, refuses it if any of its addresses is forbidden, and returns the one address the
caller must then connect to (``clipmaker.net.client`` does this for every connection).

Only globally routable unicast addresses are allowed, plus whatever the deployment admits with
``CLIPMAKER_ALLOWED_SOURCE_NETWORKS`` (tests admit loopback that way). Every refusal carries the
same code and message whatever the target, so an error never tells a caller which internal
port is open, closed or speaking which protocol.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterable, Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit

from clipmaker.errors import INVALID_SOURCE_URL, SOURCE_FORBIDDEN, SOURCE_UNREACHABLE, ClipError

__all__ = [
    "FORBIDDEN_MESSAGE",
    "AddressPolicy",
    "IPAddress",
    "IPNetwork",
    "SourceForbidden",
    "parse_networks",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

FORBIDDEN_MESSAGE = "the source address is not allowed"
UNRESOLVABLE_MESSAGE = "the source host could not be found"

# Refused even where Python's ``is_global`` would say otherwise (its tables changed between
# patch releases): special-purpose ranges from the IANA registries, CGNAT, multicast, the
# documentation ranges and the cloud metadata addresses.
_ALWAYS_FORBIDDEN: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",  # CGNAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, 169.254.169.254 metadata
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/128",
        "::1/128",
        "::/96",  # IPv4-compatible (deprecated)
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard
        "2001::/23",  # IETF protocol assignments (Teredo, ORCHID, ...)
        "2001:db8::/32",
        "fc00::/7",  # unique local, fd00:ec2::254 metadata
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class NetworkSettings(Protocol):
    """What the policy reads of ``clipmaker.settings.Settings`` (named structurally, so the
    settings module, which validates CIDRs with ``parse_networks``, is not imported here)."""

    allowed_source_networks: Sequence[str]


class SourceForbidden(ClipError):
    """A source (or webhook) address outside what the deployment allows. One message for
    every target: the caller learns nothing about what is there."""

    def __init__(self) -> None:
        super().__init__(SOURCE_FORBIDDEN, FORBIDDEN_MESSAGE)

    def __reduce__(self):  # picklable across Ray processes, like ClipError
        return (SourceForbidden, ())


def parse_networks(value: str | Iterable[Any] | None) -> tuple[IPNetwork, ...]:
    """CIDRs from a comma-separated string or a list (``127.0.0.1`` alone means ``/32``)."""
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    networks = []
    for item in items:
        if isinstance(item, ipaddress.IPv4Network | ipaddress.IPv6Network):
            networks.append(item)
            continue
        text = str(item).strip()
        if text:
            networks.append(ipaddress.ip_network(text, strict=False))
    return tuple(networks)


def _embedded(ip: IPAddress) -> list[IPAddress]:
    """The address and the IPv4 addresses it carries (mapped, NAT64, 6to4, compatible)."""
    forms: list[IPAddress] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            forms.append(ip.ipv4_mapped)
        if ip.sixtofour is not None:
            forms.append(ip.sixtofour)
        if ip.teredo is not None:
            forms.extend(ip.teredo)
        if ip in _NAT64:
            forms.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return forms


def _is_public(ip: IPAddress) -> bool:
    return (
        ip.is_global
        and not ip.is_multicast
        and not ip.is_reserved
        and not ip.is_loopback
        and not ip.is_link_local
        and not ip.is_unspecified
        and not ip.is_private
        and not any(ip in net for net in _ALWAYS_FORBIDDEN if net.version == ip.version)
    )


class AddressPolicy:
    """Public addresses, plus ``allowed_networks``. Immutable; cheap to build per job."""

    def __init__(self, allowed_networks: Sequence[IPNetwork | str] = ()) -> None:
        self.allowed_networks: tuple[IPNetwork, ...] = parse_networks(allowed_networks)

    @classmethod
    def from_settings(cls, settings: NetworkSettings) -> AddressPolicy:
        return cls(settings.allowed_source_networks or ())

    @classmethod
    def from_env(cls) -> AddressPolicy:
        """What ``CLIPMAKER_ALLOWED_SOURCE_NETWORKS`` says now: the default of the media layer
        when a caller (a notebook, ``cut(url)``) passes no policy. Unset: public only."""
        return cls(parse_networks(os.environ.get("CLIPMAKER_ALLOWED_SOURCE_NETWORKS", "")))

    @classmethod
    def unrestricted(cls) -> AddressPolicy:
        """Every address: only for the deployment's own endpoints (its S3), never user URLs."""
        return cls(["0.0.0.0/0", "::/0"])

    def __repr__(self) -> str:
        return f"AddressPolicy({[str(n) for n in self.allowed_networks]!r})"

    def _admitted(self, ip: IPAddress) -> bool:
        return any(ip.version == net.version and ip in net for net in self.allowed_networks)

    def is_allowed(self, ip: IPAddress | str) -> bool:
        """True when ``ip`` is inside an allowed network, or it is public and so is every IPv4
        address it embeds (``::ffff:10.0.0.1`` is as private as ``10.0.0.1``)."""
        try:
            address = ipaddress.ip_address(str(ip).strip("[]").split("%", 1)[0])
        except ValueError:
            return False
        forms = _embedded(address)
        if any(self._admitted(form) for form in forms):
            return True  # admitted, or a spelling of an admitted address (::ffff:127.0.0.1)
        if isinstance(address, ipaddress.IPv6Address) and (
            address.ipv4_mapped is not None or address in _NAT64
        ):
            # a translation of an IPv4 address (DNS64 on IPv6-only hosts): judge what it carries
            return _is_public(forms[-1])
        return all(_is_public(form) for form in forms)

    def resolve(self, host: str, port: int) -> str:
        """Resolve ``host`` once; the address to connect to. Raises ``SourceForbidden`` if any
        address the name resolves to is forbidden (a name that also points inside is not
        trusted with the outside answer), ``ClipError(source_unreachable)`` if it resolves to
        nothing. Integer, octal and hex spellings of IPv4 are normalised by getaddrinfo."""
        name = host.strip().strip("[]")
        if not name or "%" in name:  # no scoped (zone-id) addresses
            raise SourceForbidden()
        try:
            infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError, ValueError):
            raise ClipError(SOURCE_UNREACHABLE, UNRESOLVABLE_MESSAGE) from None
        addresses = [info[4][0] for info in infos if info[0] in (socket.AF_INET, socket.AF_INET6)]
        if not addresses:
            raise ClipError(SOURCE_UNREACHABLE, UNRESOLVABLE_MESSAGE)
        if not all(self.is_allowed(address) for address in addresses):
            raise SourceForbidden()
        return addresses[0]

    def check_url(self, url: str) -> None:
        """Cheap submit-time check, no DNS: http(s) only, and a host that is an IP literal (in
        any spelling) or ``localhost`` must be allowed. Names are checked when fetched."""
        try:
            parts = urlsplit(url.strip())
            host = parts.hostname
            parts.port  # noqa: B018 - raises ValueError for a malformed port
        except ValueError:
            raise ClipError(INVALID_SOURCE_URL, "the source URL is not a valid URL") from None
        if parts.scheme.lower() not in ("http", "https"):
            raise ClipError(INVALID_SOURCE_URL, "only http:// and https:// URLs can be fetched")
        if not host:
            raise ClipError(INVALID_SOURCE_URL, "the source URL has no host")
        for address in _literal_addresses(host):
            if not self.is_allowed(address):
                raise SourceForbidden()


def _literal_addresses(host: str) -> list[str]:
    """The addresses ``host`` stands for without asking DNS: an IP literal in any spelling
    getaddrinfo accepts (``2130706433``, ``0x7f.1``, ``::ffff:7f00:1``), or ``localhost``."""
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return ["127.0.0.1", "::1"]
    if "%" in name:
        return ["::"]  # a scoped address: never allowed
    try:
        infos = socket.getaddrinfo(name, None, flags=socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError, ValueError):
        return []  # a name: resolved (and checked) when fetched
    return [info[4][0] for info in infos]
