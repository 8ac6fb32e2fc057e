"""The worker that does this host's queued endpoint deletes.

DeleteEndpoint records the delete (:mod:`delete_queue`) and answers; a
few threads here (``WORKERS``, never more) send the Contrail requests
after. A delete that fails (the API down or slow, a 503, an object of
someone else's in the way) stays queued and is tried again, after a
backoff that doubles from ``BACKOFF_FIRST`` up to ``BACKOFF_MAX``
seconds, with jitter; it is never given up while it is queued, so no
object is left behind. At start the queue left by an earlier process is
taken up at once.

A call that needs a queued delete done first (DeleteNetwork of its
network, CreateEndpoint of the same endpoint ID) does it in its own
thread, or waits for the worker already doing it (:meth:`run_now`).
"""

import random
import threading
import time

from oslo_log import log as logging

from opencontrail_net import exception

LOG = logging.getLogger(__name__)

WORKERS = 2
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 60.0
# A delete that keeps failing is logged at warning level on its first
# failure and every so many after it (at debug level in between).
WARN_EVERY = 10


def backoff(attempts):
    """Seconds before the next try of a delete that failed ``attempts``
    times: doubling, capped, each drawn from the upper half."""
    delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (attempts - 1))
    return random.uniform(delay / 2, delay)


class DeleteWorker:
    """Queued endpoint deletes, done by ``delete(item)`` (raising on
    failure; it may fill in ``item['parts']``).

    Owned here, under ``_cond``: ``_items`` (endpoint ID → queued item),
    ``_due`` (when each is next tried), ``_busy`` (being tried now). A
    failed try is recorded with its item: ``attempts`` (failures so
    far), ``error`` (the latest's text) and the parts it found.
    """

    def __init__(self, queue, delete, host, clock=time.monotonic):
        self.queue = queue
        self.delete = delete
        self.host = host
        self.clock = clock
        self._items = {}
        self._due = {}
        self._busy = set()
        self._cond = threading.Condition()
        self._stopping = False
        self._threads = []

    @property
    def running(self):
        return bool(self._threads)

    def start(self):
        """Take up what an earlier process left, then serve."""
        left = [i for i in self.queue.entries()
                if i.get('host') in (None, self.host)]
        with self._cond:
            for item in left:
                self._items[item['endpoint']] = item
                self._due[item['endpoint']] = 0.0
        if left:
            LOG.info('%d endpoint deletes queued before this start: doing '
                     'them now', len(left))
        for n in range(WORKERS):
            thread = threading.Thread(target=self._loop,
                                      name='contrail-delete-%d' % n,
                                      daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self):
        """Stop taking deletes; what is queued stays recorded for the next
        start."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    def submit(self, item):
        """Record ``item`` and have it done soon; False if its endpoint's
        delete is queued already."""
        endpoint_id = item['endpoint']
        with self._cond:
            if endpoint_id in self._items:
                return False
            self.queue.write(item)
            self._items[endpoint_id] = item
            self._due[endpoint_id] = self.clock()
            self._cond.notify()
        return True

    def queued(self, network_id=None):
        """Endpoint IDs queued (of ``network_id`` only, if given)."""
        with self._cond:
            return sorted(e for e, i in self._items.items()
                          if network_id in (None, i['network']))

    def state(self):
        """The queued deletes, for ``status``."""
        with self._cond:
            return [dict(i) for _e, i in sorted(self._items.items())]

    def run_now(self, endpoint_ids):
        """Do the queued deletes of ``endpoint_ids`` in this thread, or
        wait for the worker doing one; the first failure is raised (the
        delete stays queued)."""
        for endpoint_id in endpoint_ids:
            with self._cond:
                while endpoint_id in self._busy:
                    self._cond.wait()
                item = self._items.get(endpoint_id)
                if item is None:
                    continue    # Done meanwhile.
                self._busy.add(endpoint_id)
            error = self._attempt(item)
            with self._cond:
                self._finish(item, error)
            if error is not None:
                raise error

    # The threads -------------------------------------------------------

    def _loop(self):
        while True:
            item = self._take()
            if item is None:
                return
            error = self._attempt(item)
            with self._cond:
                self._finish(item, error)

    def _take(self):
        """The next item due (marked busy), or None once stopping."""
        with self._cond:
            while not self._stopping:
                ready = [(due, e) for e, due in self._due.items()
                         if e not in self._busy]
                if not ready:
                    self._cond.wait()
                    continue
                due, endpoint_id = min(ready)
                wait = due - self.clock()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                self._busy.add(endpoint_id)
                return self._items[endpoint_id]
            return None

    def _attempt(self, item):
        """One try of ``item``: None when done, else the exception."""
        try:
            self.delete(item)
        except exception.OpenContrailNetError as exc:
            error = exc
        except Exception as exc:
            LOG.exception('Delete of endpoint %s failed', item['endpoint'])
            error = exc
        else:
            return None
        return error

    def _finish(self, item, error):
        """Called under ``_cond``."""
        endpoint_id = item['endpoint']
        self._busy.discard(endpoint_id)
        self._cond.notify_all()
        if error is None:
            self._items.pop(endpoint_id, None)
            self._due.pop(endpoint_id, None)
            self._recorded(self.queue.remove, endpoint_id)
            return
        attempts = item.get('attempts', 0) + 1
        item.update(attempts=attempts, error=str(error))
        # With the parts this try may have read off the interface.
        self._recorded(self.queue.write, item)
        delay = backoff(attempts)
        self._due[endpoint_id] = self.clock() + delay
        log = LOG.warning if attempts % WARN_EVERY == 1 else LOG.debug
        log('Delete of endpoint %s of network %s failed (attempt %d), '
            'tried again in %.1f s: %s', endpoint_id, item['network'],
            attempts, delay, error)

    @staticmethod
    def _recorded(change, arg):
        """Change the record; a failure is logged (the worker goes on)."""
        try:
            change(arg)
        except OSError as exc:
            LOG.error('Record of the queued endpoint deletes under '
                      '[DEFAULT] state_path not updated: %s', exc)
