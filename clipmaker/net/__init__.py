"""Network rules for everything clipmaker fetches on a user's behalf (sources, webhooks)."""

from clipmaker.net.addresses import FORBIDDEN_MESSAGE, AddressPolicy, SourceForbidden
from clipmaker.net.bounds import TransferGuard
from clipmaker.net.client import (
    AsyncPinnedTransport,
    PinnedTransport,
    async_pinned_client,
    pinned_client,
    proxied_client,
)

__all__ = [
    "FORBIDDEN_MESSAGE",
    "AddressPolicy",
    "AsyncPinnedTransport",
    "PinnedTransport",
    "SourceForbidden",
    "TransferGuard",
    "async_pinned_client",
    "pinned_client",
    "proxied_client",
]
