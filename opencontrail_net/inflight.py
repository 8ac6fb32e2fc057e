"""Which Docker networks and endpoints a libnetwork call is working on.

The audit repairs only what no call in flight touches: an endpoint being
created is in the backend a moment before Docker records it, and one
being removed leaves Docker a moment before the backend. While the audit
repairs an object, calls for it wait until the repair is done.
"""

import contextlib
import threading


class InFlight:
    """A registry of IDs in use by calls, and of IDs under repair."""

    def __init__(self):
        self._cond = threading.Condition()
        self._calls = {}       # ID -> number of calls in flight
        self._repairing = set()

    @contextlib.contextmanager
    def call(self, *ids):
        """Held by a handler for the IDs its request names."""
        ids = [i for i in ids if i]
        with self._cond:
            self._cond.wait_for(lambda: not self._repairing.intersection(
                ids))
            for i in ids:
                self._calls[i] = self._calls.get(i, 0) + 1
        try:
            yield
        finally:
            with self._cond:
                for i in ids:
                    left = self._calls.pop(i) - 1
                    if left:
                        self._calls[i] = left
                self._cond.notify_all()

    def ids(self):
        with self._cond:
            return sorted(self._calls)

    def busy(self, *ids):
        with self._cond:
            return any(i in self._calls for i in ids if i)

    @contextlib.contextmanager
    def repair(self, *ids):
        """Claim IDs for a repair; yields False (no claim) if a call has
        them."""
        ids = [i for i in ids if i]
        with self._cond:
            if any(i in self._calls or i in self._repairing for i in ids):
                claimed = False
            else:
                self._repairing.update(ids)
                claimed = True
        try:
            yield claimed
        finally:
            if claimed:
                with self._cond:
                    self._repairing.difference_update(ids)
                    self._cond.notify_all()
