"""Waiting on a condition with a bound, instead of sleeping a fixed time.

A fixed ``sleep`` either fails on a slow machine or hides a bug on a fast one; waiting on the
condition itself, up to a generous bound, does neither.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout: float = 60.0, interval: float = 0.05) -> T:
    """Call ``condition`` until it returns something truthy, and return that; fail after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)
