"""Helpers for tests, the demo and the bench: not used by the service itself.

``sample``: synthetic videos whose every frame carries its index (and audio with beeps), so a
clip's first frame, frame count and audio sync can be checked by reading pixels.
"""
