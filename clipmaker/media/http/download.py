"""``full_fetch``: the whole source into scratch, for servers without Range and live streams.

Streamed, counted, bounded (``max_bytes``: a live stream never ends), written to a ``.part``
file renamed into place only when complete.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import httpx

from clipmaker.errors import SOURCE_UNREACHABLE, ClipError
from clipmaker.media.http.counter import ByteCounter
from clipmaker.media.http.errors import int_or_none, unreachable
from clipmaker.media.http.session import HttpSession
from clipmaker.media.http.sizes import DEFAULT_MAX_FULL_FETCH
from clipmaker.net import AddressPolicy
from clipmaker.net.bounds import TransferGuard

__all__ = ["full_fetch"]


def full_fetch(
    url: str,
    dest: Path,
    *,
    headers: Mapping[str, str] | None = None,
    counter: ByteCounter,
    progress: Callable[[int, int | None], None] | None = None,
    max_bytes: int = DEFAULT_MAX_FULL_FETCH,
    timeout_s: float = 30.0,
    session: HttpSession | None = None,
    policy: AddressPolicy | None = None,
    guard: TransferGuard | None = None,
) -> Path:
    """Download all of ``url`` into ``dest`` (streamed, counted); returns ``dest``.

    Written to a ``.part`` file renamed into place when complete. ``progress(done, total)``
    is called as bytes arrive (``total`` None when the server does not say); if it raises,
    the download stops and nothing is left at ``dest``. More than ``max_bytes`` (a live
    stream never ends) is a ``ClipError``. Without a ``session``, one is made with ``policy``
    and ``guard`` (see ``HttpSession``).
    """
    own = session is None
    sess = session or HttpSession(
        headers=headers, counter=counter, timeout_s=timeout_s, policy=policy, guard=guard
    )
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f".{dest.name}.part")
    try:
        response = sess.open_stream(url)
        try:
            total = int_or_none(response.headers.get("Content-Length"))
            if total is not None and total > max_bytes:
                raise ClipError(
                    SOURCE_UNREACHABLE,
                    f"the source is {total} bytes, more than the {max_bytes} we download whole",
                )
            done = 0
            with part.open("wb") as fh:
                for chunk in response.iter_raw():
                    sess.counter.add(len(chunk))
                    fh.write(chunk)
                    done += len(chunk)
                    if done > max_bytes:
                        raise ClipError(
                            SOURCE_UNREACHABLE,
                            f"the source goes on past {max_bytes} bytes (a live stream?); "
                            "not downloading it whole",
                        )
                    if progress is not None:
                        progress(done, total)
            if total is not None and done < total:
                raise ClipError(
                    SOURCE_UNREACHABLE,
                    f"the download of the source stopped at {done} of {total} bytes",
                )
        except (httpx.TransportError, httpx.StreamError) as exc:
            raise unreachable(exc, url, sess.timeout_s) from exc
        finally:
            response.close()
        part.replace(dest)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    finally:
        if own:
            sess.close()
    return dest


# ---------------------------------------------------------------------------------------------
# Opening sources
