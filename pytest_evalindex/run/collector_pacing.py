"""Fewer garbage collections while the items run.

Once collection is over, nearly everything alive (modules, items, records, the spec) lives
until the run ends, yet with Python's default thresholds the collector walks the young
objects every 700 allocations and the old ones again and again. On a 2,000-record index
those pauses cost about half a second of a six-second run, and they hold the GIL that the
request loop needs to keep requests in flight. So between collection and the session's
finish the first threshold is raised; what is collected, and when an object is freed by
reference counting, does not change. (Freezing the heap with ``gc.freeze`` gains as much
but hides the frozen objects from ``gc.get_referrers``, which Hypothesis relies on.)
"""

from __future__ import annotations

import gc

# young allocations between collections while items run (Python's default is 700)
RUN_THRESHOLD = 50_000


class CollectorPacing:
    """Raise the collector's thresholds for the run; put the user's back afterwards."""

    def __init__(self) -> None:
        self._saved: tuple[int, int, int] | None = None
        self._ours: tuple[int, int, int] | None = None

    def start(self) -> None:
        if self._saved is None:
            self._saved = gc.get_threshold()
            first, second, third = self._saved
            self._ours = (max(first, RUN_THRESHOLD), max(second, 20), max(third, 20))
            gc.set_threshold(*self._ours)

    def stop(self) -> None:
        if self._saved is not None:
            if gc.get_threshold() == self._ours:  # unless the run's code set its own
                gc.set_threshold(*self._saved)
            self._saved = self._ours = None
