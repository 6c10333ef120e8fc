"""HTTP clients whose every connection goes only where the ``AddressPolicy`` allows.

The check sits at the lowest level httpx offers, httpcore's network backend: each new
connection (the first request to a host, every redirect hop to another host, every segment
host of a playlist) resolves its host once through ``AddressPolicy.resolve`` and connects to
exactly that address. Nothing is sent anywhere before the address is checked, and the socket
never re-resolves, so DNS rebinding (a public answer for the check, a private one for the
connect) has nothing to switch. The URL keeps its host name: the ``Host`` header, TLS SNI and
certificate checks use the name, not the pinned IP. Connections are pooled by host name, so a
kept-alive connection stays on the address it was checked on.

Proxies from the environment are ignored (``trust_env=False``): a proxy would make the
connection on our behalf, to an address we never checked.

With a ``TransferGuard`` (``clipmaker.net.bounds``), every socket read waits in short ticks and
asks the guard between them: a cancelled job, a deadline or a source below the minimum rate
stops the read within a tick, on a stalled connection too.
"""

from __future__ import annotations

import time
import typing
from typing import Any

import anyio.to_thread
import httpcore
import httpx

from clipmaker.net.addresses import AddressPolicy, SourceForbidden
from clipmaker.net.bounds import RateMeter, TransferGuard

__all__ = [
    "AsyncPinnedTransport",
    "AsyncPolicyBackend",
    "PinnedTransport",
    "PolicyBackend",
    "async_pinned_client",
    "pinned_client",
    "proxied_client",
]

_TRANSPORT_KWARGS = ("verify", "cert", "http1", "http2", "limits", "retries", "socket_options")


class GuardedStream(httpcore.NetworkStream):
    """A network stream whose reads wait in ticks, asking the guard between them."""

    def __init__(
        self, inner: httpcore.NetworkStream, guard: TransferGuard, meter: RateMeter | None = None
    ) -> None:
        self._inner = inner
        self._guard = guard
        self._meter = meter or guard.meter()

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        guard = self._guard
        waited = 0.0
        while True:
            guard.check()
            tick = guard.tick_s if timeout is None else min(guard.tick_s, timeout - waited)
            started = time.monotonic()
            try:
                data = self._inner.read(max_bytes, timeout=max(tick, 0.001))
            except httpcore.ReadTimeout:
                spent = time.monotonic() - started
                waited += spent
                self._meter.record(spent, 0)
                if timeout is not None and waited >= timeout:
                    raise
                continue
            self._meter.record(time.monotonic() - started, len(data))
            return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._guard.check()
        self._inner.write(buffer, timeout=timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(ssl_context, server_hostname=server_hostname, timeout=timeout)
        return GuardedStream(inner, self._guard, self._meter)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class PolicyBackend(httpcore.NetworkBackend):
    """httpcore's sync backend, connecting only to the address the policy resolved (and,
    with a guard, reading under its bounds)."""

    def __init__(
        self,
        policy: AddressPolicy,
        inner: httpcore.NetworkBackend | None = None,
        *,
        guard: TransferGuard | None = None,
    ):
        self.policy = policy
        self.guard = guard
        self._inner = inner or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        if self.guard is not None:
            self.guard.check()
        address = self.policy.resolve(host, port)  # raises before any packet is sent
        stream = self._inner.connect_tcp(
            address,
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )
        return stream if self.guard is None else GuardedStream(stream, self.guard)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        raise SourceForbidden()

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class AsyncPolicyBackend(httpcore.AsyncNetworkBackend):
    """The async twin of ``PolicyBackend`` (DNS resolved in a worker thread)."""

    def __init__(self, policy: AddressPolicy, inner: httpcore.AsyncNetworkBackend | None = None):
        self.policy = policy
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        address = await anyio.to_thread.run_sync(self.policy.resolve, host, port)
        return await self._inner.connect_tcp(
            address,
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise SourceForbidden()

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _pool_options(transport: Any) -> dict[str, Any]:
    pool = transport._pool
    return {
        "ssl_context": pool._ssl_context,
        "max_connections": pool._max_connections,
        "max_keepalive_connections": pool._max_keepalive_connections,
        "keepalive_expiry": pool._keepalive_expiry,
        "http1": pool._http1,
        "http2": pool._http2,
        "retries": pool._retries,
        "socket_options": pool._socket_options,
    }


class PinnedTransport(httpx.HTTPTransport):
    """``httpx.HTTPTransport`` (no proxy, no unix socket) over a ``PolicyBackend``."""

    def __init__(
        self, policy: AddressPolicy, *, guard: TransferGuard | None = None, **kwargs: Any
    ) -> None:
        super().__init__(trust_env=False, **kwargs)
        self.policy = policy
        self._pool = httpcore.ConnectionPool(
            **_pool_options(self), network_backend=PolicyBackend(policy, guard=guard)
        )


class AsyncPinnedTransport(httpx.AsyncHTTPTransport):
    """``httpx.AsyncHTTPTransport`` (no proxy, no unix socket) over an ``AsyncPolicyBackend``."""

    def __init__(self, policy: AddressPolicy, **kwargs: Any) -> None:
        super().__init__(trust_env=False, **kwargs)
        self.policy = policy
        self._pool = httpcore.AsyncConnectionPool(
            **_pool_options(self), network_backend=AsyncPolicyBackend(policy)
        )


def _split(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    if any(k in kwargs for k in ("transport", "mounts", "proxy", "proxies")):
        raise TypeError("a pinned client chooses its own transport and never uses a proxy")
    kwargs.pop("trust_env", None)
    transport = {k: kwargs.pop(k) for k in _TRANSPORT_KWARGS if k in kwargs}
    return transport, kwargs


def pinned_client(
    policy: AddressPolicy, *, guard: TransferGuard | None = None, **httpx_kwargs: Any
) -> httpx.Client:
    """An ``httpx.Client`` whose every connection is checked and pinned by ``policy``.

    Takes ``httpx.Client``'s arguments (``timeout``, ``headers``, ``follow_redirects``...) and
    the transport's (``verify``, ``http2``, ``limits``...). A forbidden address raises
    ``SourceForbidden`` (a ``ClipError``, code ``source_forbidden``) from the request. With a
    ``guard``, reads stop (raising the guard's error) once it says so.
    """
    transport, client = _split(dict(httpx_kwargs))
    return httpx.Client(
        transport=PinnedTransport(policy, guard=guard, **transport), trust_env=False, **client
    )


def proxied_client(policy: AddressPolicy, proxy: str, **httpx_kwargs: Any) -> httpx.Client:
    """An ``httpx.Client`` that sends every request through the deployment's own ``proxy``.

    The proxy is the deployment's (``CLIPMAKER_YTDLP_PROXY``): it is connected to whatever its
    address, and it makes the onward connection itself, so the address can't be pinned here.
    What can be done is done: before each request (every redirect hop included) the target
    host is resolved and refused as ``SourceForbidden`` unless ``policy`` allows every address
    it resolves to. A name that changes its answer between this check and the proxy's own
    lookup (DNS rebinding) is the proxy's to refuse: deploy it with egress rules that deny
    private ranges. Reads are bounded by the client's timeouts, not by a ``TransferGuard``.
    """

    def check(request: httpx.Request) -> None:
        url = request.url
        policy.resolve(url.host, url.port or (443 if url.scheme == "https" else 80))

    hooks = dict(httpx_kwargs.pop("event_hooks", None) or {})
    hooks["request"] = [check, *hooks.get("request", [])]
    httpx_kwargs.pop("trust_env", None)
    return httpx.Client(proxy=proxy, trust_env=False, event_hooks=hooks, **httpx_kwargs)


def async_pinned_client(policy: AddressPolicy, **httpx_kwargs: Any) -> httpx.AsyncClient:
    """The ``httpx.AsyncClient`` twin of ``pinned_client`` (for webhooks sent from async code)."""
    transport, client = _split(dict(httpx_kwargs))
    return httpx.AsyncClient(
        transport=AsyncPinnedTransport(policy, **transport), trust_env=False, **client
    )
