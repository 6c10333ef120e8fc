"""Keep server paths out of messages that clients read.

Errors from FFmpeg and the OS name the file they were handling (``<data dir>/uploads/<id>.part``,
a scratch folder, a results path). Those paths tell a stranger how the server is laid out and
help nobody fix their request, so messages shown to clients (API errors, a failed job's error)
name the file alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path


def redact_paths(message: str, roots: Iterable[str | Path]) -> str:
    """``message`` with every path under one of ``roots`` cut down to its last part."""
    for root in {str(Path(r)) for r in roots if str(r) and str(r) != "/"}:
        pattern = re.escape(root) + r"(?:/[^\s'\"():,]*)?"
        message = re.sub(pattern, lambda m: Path(m.group(0)).name or "file", message)
    return message


def client_message(message: str, settings: object) -> str:
    """``message`` without paths under the data dir or a local results directory."""
    roots: list[str | Path] = [getattr(settings, "data_dir", "")]
    storage = str(getattr(settings, "resolved_storage_url", ""))
    if storage and "://" not in storage:
        roots.append(storage)
    return redact_paths(message, roots)
