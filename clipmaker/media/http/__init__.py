"""Reading media over HTTP ourselves, so every byte is bounded, cached and counted.

- ``session``: ``HttpSession``, one job's client (pinned addresses, guard, retries) and the
  ``BlockCache`` its readers share; ``counter``: ``ByteCounter``, what came over the network.
- ``readers``: ``RangeReader``/``StreamReader``, the file objects PyAV reads, and
  ``nested_open``, PyAV's ``io_open`` hook for the HLS demuxer's nested opens.
- ``download``: ``full_fetch``, the whole source, for servers without Range.
- ``errors``: failures as ``ClipError``s with fixed words; ``sizes``: request and cache sizes.

``clipmaker.media.source.SourceOpener`` puts these together for a job.
"""

from clipmaker.media.http.counter import ByteCounter
from clipmaker.media.http.download import full_fetch
from clipmaker.media.http.errors import RangeNotSupported
from clipmaker.media.http.readers import RangeReader, StreamReader, nested_open, open_reader
from clipmaker.media.http.session import HttpSession
from clipmaker.media.http.sizes import BLOCK_SIZE, MAX_REQUEST

__all__ = [
    "BLOCK_SIZE",
    "MAX_REQUEST",
    "ByteCounter",
    "HttpSession",
    "RangeNotSupported",
    "RangeReader",
    "StreamReader",
    "full_fetch",
    "nested_open",
    "open_reader",
]
