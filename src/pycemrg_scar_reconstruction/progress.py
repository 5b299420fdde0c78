"""Progress lines for logs that have no progress bar (cluster jobs, files).

A :class:`Ticker` writes to the ``pycemrg_scar_reconstruction.progress`` logger at most once per
``every_s`` seconds, and not before ``every_s`` seconds have passed, so short work writes none
(the CLI shows these lines when stderr is not a terminal, or with -v).
"""

from __future__ import annotations

import logging
import time

#: Seconds between two progress lines.
PROGRESS_EVERY_S = 10.0

log = logging.getLogger("pycemrg_scar_reconstruction.progress")


class Ticker:
    """Rate-limited progress lines; ``every_s`` defaults to :data:`PROGRESS_EVERY_S` (read at creation)."""

    def __init__(self, every_s: float | None = None) -> None:
        self.every_s = PROGRESS_EVERY_S if every_s is None else every_s
        self.start = self.last = time.perf_counter()

    @property
    def elapsed(self) -> float:
        """Seconds since the ticker was made."""
        return time.perf_counter() - self.start

    def tick(self, message: str, *args: object) -> None:
        """Log ``message % args`` when ``every_s`` seconds have passed since the last line (or the start)."""
        now = time.perf_counter()
        if now - self.last >= self.every_s:
            self.last = now
            log.info(message, *args)
