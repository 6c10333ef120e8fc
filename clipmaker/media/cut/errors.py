"""Why a smart cut can't be done: before any work, or found while cutting."""

from __future__ import annotations

__all__ = ["SmartCutFailed", "SmartCutUnsupported"]


class SmartCutUnsupported(Exception):
    """This source can't be smart-cut; ``note`` says why (for the caller's result)."""

    def __init__(self, note: str) -> None:
        super().__init__(note)
        self.note = note


class SmartCutFailed(SmartCutUnsupported):
    """Found mid-cut: what was written so far must be discarded (the cut re-encodes)."""
