"""The one exception the development stack raises."""

from __future__ import annotations


class DevstackError(RuntimeError):
    """A part of the development stack could not be installed, started, stopped or reached."""
