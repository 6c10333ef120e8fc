"""yt-dlp, made to obey the address rule on every request it makes.

yt-dlp fetches pages, APIs, manifests and embeds itself (its generic extractor reads whatever
page a user names and follows what it finds there), through its request-handler framework
(``yt_dlp.networking``). ``PolicedYoutubeDL`` replaces the whole set of handlers (urllib,
requests, curl_cffi, websockets) with one, ``ClipmakerRH``, that sends every request through a
pinned httpx client (``clipmaker.net.client``): each connection, redirects included, is resolved
once, checked against the ``AddressPolicy`` and pinned. There is no other handler to fall back
to, so nothing yt-dlp does reaches the network another way (websocket URLs and browser
impersonation are simply unsupported).

A refusal (or a stop by the ``TransferGuard``) travels through yt-dlp as a ``RequestError``
carrying the original error (``clip_error``), and the handler remembers it, so the caller can
report ``source_forbidden`` even when an extractor swallowed the failed request.

Plugins: yt-dlp loads extractor and post-processor plugins from user and system folders and
from ``sys.path`` by default. ``configure_plugins`` limits that to the folders a deployment
names (none by default), before the first ``YoutubeDL`` loads them.
"""

from __future__ import annotations

import functools
import io
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import httpx
import yt_dlp
from yt_dlp import globals as ytdlp_globals
from yt_dlp.networking.common import Request, RequestHandler, Response
from yt_dlp.networking.exceptions import HTTPError, TransportError

from clipmaker.net.addresses import AddressPolicy
from clipmaker.net.bounds import TransferGuard
from clipmaker.net.client import pinned_client, proxied_client

__all__ = ["ClipmakerRH", "PolicedYoutubeDL", "Stopped", "configure_plugins", "stop_cause"]

MAX_REDIRECTS = 10


class Stopped(TransportError):
    """A request the policy refused or the guard stopped; ``clip_error`` is the reason."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(msg="request stopped by clipmaker", cause=error)
        self.clip_error = error


def stop_cause(exc: BaseException | None) -> BaseException | None:
    """The refusal or stop behind a yt-dlp error, if any (yt-dlp nests errors deeply)."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or any(current is s for s in seen) or len(seen) > 30:
            continue
        seen.append(current)
        if isinstance(current, Stopped):
            return current.clip_error
        exc_info = getattr(current, "exc_info", None)
        if isinstance(exc_info, tuple) and len(exc_info) > 1:
            todo.append(exc_info[1])
        todo.extend([getattr(current, "cause", None), current.__cause__, current.__context__])
    return None


class _Headers:
    """httpx's headers as yt-dlp's ``Response`` reads them (repeated headers kept apart)."""

    def __init__(self, headers: httpx.Headers) -> None:
        self._items = headers.multi_items()

    def items(self) -> Iterable[tuple[str, str]]:
        return self._items


class _Body(io.RawIOBase):
    """The decoded body of a streamed httpx response, as the file yt-dlp reads."""

    def __init__(self, response: httpx.Response, on_stop: Any) -> None:
        super().__init__()
        self._response = response
        self._chunks: Iterator[bytes] = response.iter_bytes()
        self._buffer = b""
        self._on_stop = on_stop

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        return super().read(size) or b""

    def readinto(self, buffer: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
            except httpx.HTTPError as exc:
                raise TransportError(cause=exc) from exc
            except Exception as exc:  # refused redirect target, guard stop
                raise self._on_stop(exc) from exc
        n = min(len(buffer), len(self._buffer))
        memoryview(buffer).cast("B")[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            self._response.close()
        super().close()


class ClipmakerRH(RequestHandler):
    """yt-dlp request handler over a pinned httpx client (see the module doc)."""

    _SUPPORTED_URL_SCHEMES = ("http", "https")
    # yt-dlp's own proxy options are ignored; the deployment's proxy is given as ``proxy``
    _SUPPORTED_PROXY_SCHEMES = None
    _SUPPORTED_FEATURES = None

    def __init__(
        self,
        *,
        policy: AddressPolicy,
        guard: TransferGuard | None = None,
        proxy: str | None = None,
        trusted_urls: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.policy = policy
        self.guard = guard
        self.proxy = proxy
        # The deployment's own services that yt-dlp plugins call (a PO-token provider on a
        # private address): requests under these URLs skip the address policy, go direct
        # (never through the proxy) and follow no redirect.
        self.trusted_urls = tuple(u.rstrip("/") + "/" for u in trusted_urls if u)
        self.stopped: BaseException | None = None  # the first refusal or stop seen
        # Every HTTP status answered: extractors turn some failed requests into warnings
        # (YouTube's player requests), and a 429 among them means "rate limited".
        self.statuses: list[int] = []
        self._clients: dict[tuple[int, bool, bool], tuple[Any, httpx.Client]] = {}
        self._lock = threading.Lock()

    def _check_extensions(self, extensions: dict[str, Any]) -> None:
        super()._check_extensions(extensions)
        for name in ("cookiejar", "timeout", "legacy_ssl", "keep_header_casing"):
            extensions.pop(name, None)

    def _trusted(self, url: str) -> bool:
        return any((url.rstrip("/") + "/").startswith(prefix) for prefix in self.trusted_urls)

    def _client(self, cookiejar: Any, legacy_ssl: bool, trusted: bool = False) -> httpx.Client:
        key = (id(cookiejar), legacy_ssl, trusted)
        with self._lock:
            held = self._clients.get(key)
            if held is None and trusted:
                client = pinned_client(
                    AddressPolicy.unrestricted(),
                    verify=self._make_sslcontext(legacy_ssl_support=legacy_ssl),
                    follow_redirects=False,
                )
                held = self._clients[key] = (cookiejar, client)
            if held is None:
                options = {
                    "verify": self._make_sslcontext(legacy_ssl_support=legacy_ssl),
                    "cookies": cookiejar,
                    "follow_redirects": True,
                    "max_redirects": MAX_REDIRECTS,
                }
                if self.proxy:  # the deployment's own (see clipmaker.net.proxied_client)
                    client = proxied_client(self.policy, self.proxy, **options)
                else:
                    client = pinned_client(self.policy, guard=self.guard, **options)
                held = self._clients[key] = (cookiejar, client)  # keep the jar alive with it
            return held[1]

    def _stop(self, exc: BaseException) -> Stopped:
        with self._lock:
            if self.stopped is None:
                self.stopped = exc
        return Stopped(exc)

    def _send(self, request: Request) -> Response:
        headers = self._get_headers(request)
        client = self._client(
            self._get_cookiejar(request),
            bool(request.extensions.get("legacy_ssl")),
            self._trusted(request.url),
        )
        data = request.data
        if data is not None and hasattr(data, "read"):
            data = data.read()
        try:
            outgoing = client.build_request(
                request.method,
                request.url,
                headers=headers,
                content=data,
                timeout=httpx.Timeout(self._calculate_timeout(request)),
            )
            response = client.send(outgoing, stream=True)
        except httpx.TooManyRedirects as exc:
            raise TransportError(msg="too many redirects", cause=exc) from exc
        except httpx.HTTPError as exc:
            raise TransportError(cause=exc) from exc
        except Exception as exc:  # SourceForbidden, or the guard's stop
            raise self._stop(exc) from exc
        adapted = Response(
            fp=_Body(response, self._stop),
            url=str(response.url),
            headers=_Headers(response.headers),  # type: ignore[arg-type]
            status=response.status_code,
            reason=response.reason_phrase,
        )
        with self._lock:
            self.statuses.append(response.status_code)
        if not 200 <= response.status_code < 300:
            raise HTTPError(adapted)
        return adapted

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for _, client in clients:
            client.close()


class PolicedYoutubeDL(yt_dlp.YoutubeDL):
    """``yt_dlp.YoutubeDL`` whose only request handler is ``ClipmakerRH``."""

    def __init__(
        self,
        params: dict[str, Any] | None = None,
        *,
        policy: AddressPolicy,
        guard: TransferGuard | None = None,
        proxy: str | None = None,
        trusted_urls: Sequence[str] = (),
    ) -> None:
        self._clipmaker_policy = policy
        self._clipmaker_guard = guard
        self._clipmaker_proxy = proxy
        self._clipmaker_trusted = tuple(trusted_urls)
        super().__init__(params)

    def build_request_director(self, handlers: Any, preferences: Any = None) -> Any:
        handler = functools.partial(
            ClipmakerRH,
            policy=self._clipmaker_policy,
            guard=self._clipmaker_guard,
            proxy=self._clipmaker_proxy,
            trusted_urls=self._clipmaker_trusted,
        )
        return super().build_request_director([handler], None)

    @property
    def stopped(self) -> BaseException | None:
        """The first request the policy refused or the guard stopped, if any."""
        if "_request_director" not in self.__dict__:
            return None
        handler = self._request_director.handlers.get(ClipmakerRH.RH_KEY)
        return handler.stopped if isinstance(handler, ClipmakerRH) else None

    @property
    def http_statuses(self) -> list[int]:
        """The HTTP status of every response yt-dlp's requests got, in order."""
        if "_request_director" not in self.__dict__:
            return []
        handler = self._request_director.handlers.get(ClipmakerRH.RH_KEY)
        return list(handler.statuses) if isinstance(handler, ClipmakerRH) else []


_plugins_lock = threading.Lock()

# No plugins unless ``configure_plugins`` names folders: set on import, so even a YoutubeDL
# made elsewhere in the process (which loads plugins at its first __init__) loads none.
with _plugins_lock:
    if not ytdlp_globals.all_plugins_loaded.value:
        ytdlp_globals.plugin_dirs.value = []


def configure_plugins(directories: Sequence[str]) -> None:
    """Load yt-dlp plugins only from ``directories`` (none: no plugins at all).

    Plugins load once per process, at the first ``YoutubeDL``; this must run before that. A
    later call with other folders can't unload what was loaded and raises instead.
    """
    wanted = [str(d) for d in directories]
    with _plugins_lock:
        if ytdlp_globals.all_plugins_loaded.value:
            if ytdlp_globals.plugin_dirs.value != wanted:
                raise RuntimeError("yt-dlp plugins were already loaded from other folders")
            return
        ytdlp_globals.plugin_dirs.value = wanted
