"""A progress bar on stderr for a long audit pass (`audit verify`): the pass reports how many events it
has read (a callback it calls a few times a second), the bar redraws one line in place and clears it
at the end, so that what the command prints afterwards starts on a clean line."""

from __future__ import annotations

import time
from typing import TextIO

_WIDTH = 30  # characters of the bar itself


def render(what: str, done: int, total: int | None, elapsed_s: float, width: int = _WIDTH) -> str:
    """The bar's line: `what`, a bar filled by `done` of `total` (capped: the total is an estimate taken
    before the pass), the counts, the rate and the elapsed time. No total: the counts alone."""
    rate = f"{done / elapsed_s:,.0f} events/s" if elapsed_s > 0 else "- events/s"
    clock = f"{int(elapsed_s) // 60}:{int(elapsed_s) % 60:02d}"
    if not total:
        return f"{what}: {done:,} events  {rate}  {clock}"
    share = min(done / total, 1.0)
    filled = int(share * width)
    bar = "#" * filled + "." * (width - filled)
    return f"{what} [{bar}] {share:4.0%} {min(done, total):,}/{total:,} events  {rate}  {clock}"


class ProgressBar:
    """One line on `stream`, redrawn in place by `update(done)` and cleared by `close()`."""

    def __init__(self, what: str, total: int | None, stream: TextIO) -> None:
        self.what, self.total, self.stream = what, total, stream
        self.started = time.monotonic()
        self._length = 0  # of the line drawn last: the next one overwrites it all

    def update(self, done: int) -> None:
        line = render(self.what, done, self.total, time.monotonic() - self.started)
        self.stream.write("\r" + line.ljust(self._length))
        self.stream.flush()
        self._length = len(line)

    def close(self) -> None:
        if self._length:
            self.stream.write("\r" + " " * self._length + "\r")
            self.stream.flush()
