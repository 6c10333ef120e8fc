"""Logging that carries the job id, so one job can be followed across processes."""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: int = logging.INFO) -> None:
    """Idempotent set-up for our loggers in any process (driver, replica, actor)."""
    logger = logging.getLogger("clipmaker")
    logger.setLevel(level)
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(FORMAT))
        logger.addHandler(handler)
        logger.propagate = False


class _JobAdapter(logging.LoggerAdapter):
    def process(self, msg, kwargs):
        extra = self.extra or {}
        kwargs.setdefault("extra", {}).update(extra)
        return f"job={extra['job_id']} attempt={extra['attempt']} {msg}", kwargs


def job_log(job_id: str, attempt: int) -> logging.LoggerAdapter:
    return _JobAdapter(logging.getLogger("clipmaker.job"), {"job_id": job_id, "attempt": attempt})
