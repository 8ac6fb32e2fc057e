"""Spacing the answers of calls that come in a burst on one network.

Docker 20.10 decrements a network's endpoint count right after each
DeleteEndpoint answer, outside any lock: answers that go out together lose
decrements, and the network can no longer be removed. Answers spaced a few
tens of milliseconds apart keep those decrements apart. A call is answered
at once unless another of its network was (or is due to be) answered less
than the spacing ago: a lone call never waits.
"""

import contextlib
import threading
import time

from oslo_log import log as logging

from opencontrail_net import metrics

LOG = logging.getLogger(__name__)


# A burst is over once no call of its network was held for this long.
BURST_QUIET = 2.0


class _Network:
    """What the pacer knows of one network."""

    def __init__(self):
        self.in_flight = 0
        # When the latest answer went (or is due to go) out.
        self.last = None
        # When the latest call of a burst came, for logging once a burst.
        self.burst_seen = None


class Pacer:
    """Answers of one call, network by network, ``spacing`` seconds apart.

    ``log`` logs each burst once; ``clock`` and ``sleep`` are replaceable
    for tests. A spacing of 0 turns it off.
    """

    def __init__(self, call, spacing, log=True, clock=time.monotonic,
                 sleep=time.sleep):
        self.call = call
        self.spacing = spacing
        self.log = log
        self.clock = clock
        self.sleep = sleep
        # The server's threads, once serving (HeldThreads).
        self.threads = None
        # The engine has no race to space for (Docker 28.1 and later): an
        # unspaced burst is not worth a warning.
        self.race_fixed = False
        self._networks = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def pace(self, network_id):
        """Run the body, then hold the answer until its turn comes."""
        self._enter(network_id)
        try:
            yield
        finally:
            delay = self._slot(network_id)
            if delay > 0:
                metrics.PACED_ANSWERS.inc()
                if self.threads is None:
                    self.sleep(delay)
                else:
                    # The turn is a time: what adding a server thread
                    # took comes off the wait, or answers would bunch.
                    due = self.clock() + delay
                    with self.threads.held():
                        left = due - self.clock()
                        if left > 0:
                            self.sleep(left)

    def forget(self, network_id):
        """Drop what is known of a network that is gone."""
        with self._lock:
            net = self._networks.get(network_id)
            if net is not None and not net.in_flight:
                del self._networks[network_id]

    def _enter(self, network_id):
        with self._lock:
            net = self._networks.setdefault(network_id, _Network())
            net.in_flight += 1

    def _slot(self, network_id):
        """Reserve the network's next answer time; return seconds to wait.

        An answer goes out at once unless the network's latest one went (or
        is due to go) out less than ``spacing`` ago.
        """
        with self._lock:
            net = self._networks[network_id]
            now = self.clock()
            net.in_flight -= 1
            if self.spacing <= 0:
                if net.in_flight:
                    self._burst(network_id, net, now, net.in_flight + 1)
                return 0
            if net.last is None or now - net.last >= self.spacing:
                net.last = now
                return 0
            net.last += self.spacing
            # This call, those in flight, and the one just answered.
            self._burst(network_id, net, now, net.in_flight + 2)
            return net.last - now

    def _burst(self, network_id, net, now, count):
        """Log the first held call of a burst (lock held)."""
        new = net.burst_seen is None or now - net.burst_seen > BURST_QUIET
        net.burst_seen = now
        if new:
            metrics.PACED_BURSTS.inc()
        if not (new and self.log) or (self.spacing <= 0 and self.race_fixed):
            return
        args = {'call': self.call, 'net': network_id,
                'n': count, 'ms': self.spacing * 1000}
        if self.spacing > 0:
            LOG.warning('%(call)s calls on network %(net)s come at once '
                        '(%(n)d so far): answering them %(ms)d ms apart '
                        '(Docker 20.10 loses endpoint-count updates '
                        'otherwise; option delete_spacing_ms)', args)
        else:
            LOG.warning('%(call)s calls on network %(net)s come at once '
                        '(%(n)d so far), not spaced (delete_spacing_ms = '
                        '0): before Docker 28.1, "docker network rm" may '
                        'then fail with "has active endpoints" until '
                        'dockerd restarts', args)


class HeldThreads:
    """Keeps the server's threads for other calls while answers wait.

    A paced answer waits its turn in the server thread serving its call.
    At most ``few`` of the server's own threads wait so at once: for the
    waits beyond those, the pool (cheroot's ThreadPool: ``grow``,
    ``shrink``, ``qsize``) gets one thread more each, and one more for each
    call queued meanwhile, up to ``most`` threads added; the added ones go
    once the waits are over. Other calls are then never queued behind
    waiting answers.
    """

    def __init__(self, few=4, most=256):
        self.few = few
        self.most = most
        self.pool = None
        self.added = 0
        self.peak = 0
        self._held = 0
        self._lock = threading.Lock()
        # Growing and shrinking change the pool's list of threads: one at
        # a time.
        self._resize = threading.Lock()

    def attach(self, pool):
        self.pool = pool

    @contextlib.contextmanager
    def held(self):
        self._grow()
        try:
            yield
        finally:
            self._shrink()

    def _grow(self):
        with self._lock:
            self._held += 1
            self.peak = max(self.peak, self._held)
            if self.pool is None or self._held <= self.few:
                return
        with self._resize:
            with self._lock:
                need = self._held - self.few + self.pool.qsize - self.added
                need = min(need, self.most - self.added)
                if need <= 0:
                    return
                self.added += need
            # cheroot waits for the new threads to be ready.
            self.pool.grow(need)
            LOG.debug('%d answers wait their turn: %d server threads '
                      'added for the calls that come meanwhile',
                      self._held, self.added)

    def _shrink(self):
        with self._lock:
            self._held -= 1
            if self._held > self.few or not self.added:
                return
        with self._resize:
            with self._lock:
                if self._held > self.few:
                    return
                extra, self.added = self.added, 0
            self.pool.shrink(extra)
