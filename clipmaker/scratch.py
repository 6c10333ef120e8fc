"""Scratch folders of attempts that are over.

A job attempt works in ``<scratch>/<job id>-<attempt>`` and removes it when it ends, however it
ends, unless its process is killed. Such a leftover is found later: its job is no longer running
that attempt (it finished, or a later attempt took it over). Folders younger than ``grace_s``
are left alone, so a folder is never removed between its attempt's claim and its first write.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

from clipmaker.jobs.models import JobStatus
from clipmaker.services import Services

_ATTEMPT_DIR = re.compile(r"^([0-9a-f]{32})-([0-9]+)$")


def sweep_scratch(services: Services, scratch_dir: Path, grace_s: float) -> int:
    """Remove scratch folders of attempts that are no longer running; returns how many."""
    if not scratch_dir.is_dir():
        return 0
    removed = 0
    now = time.time()
    for entry in scratch_dir.iterdir():
        match = _ATTEMPT_DIR.match(entry.name)
        if not match or not entry.is_dir():
            continue
        try:
            if now - entry.stat().st_mtime < grace_s:
                continue
        except FileNotFoundError:
            continue  # its attempt just removed it
        job_id, attempt = match.group(1), int(match.group(2))
        job = services.jobs.get(job_id)
        live = job is not None and job.status == JobStatus.running and job.attempts == attempt
        if not live:
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
    return removed
