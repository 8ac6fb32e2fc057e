"""Spacing the answers of calls that come in a burst on one network.

Docker 20.10 decrements a network's endpoint count right after each
DeleteEndpoint answer, outside any lock: answers that go out together lose
decrements, and the network can no longer be removed. Answers spaced a few
tens of milliseconds apart keep those decrements apart. A call with no
other of its network in flight or just answered goes out at once.
"""

import contextlib
import threading
import time

from oslo_log import log as logging

LOG = logging.getLogger(__name__)


class _Network:
    """What the pacer knows of one network."""

    def __init__(self):
        self.in_flight = 0
        # When the latest answer went (or is due to go) out.
        self.last = None
        # The current run of answers, each within spacing of the one before.
        self.run = 0
        self.run_start = None
        self.held = False


class Pacer:
    """Answers of one call, network by network, ``spacing`` seconds apart.

    ``clock`` and ``sleep`` are replaceable for tests. A spacing of 0 turns
    it off.
    """

    def __init__(self, call, spacing, clock=time.monotonic,
                 sleep=time.sleep):
        self.call = call
        self.spacing = spacing
        self.clock = clock
        self.sleep = sleep
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
                self.sleep(delay)
            self._leave(network_id)

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
            if self.spacing <= 0:
                return self._unspaced(network_id, net)
            if net.last is None or now - net.last >= self.spacing:
                net.last, net.run, net.run_start = now, 1, now
                return 0
            net.last += self.spacing
            net.run += 1
            first_held, net.held = not net.held, True
            in_flight, wait = net.in_flight, net.last - now
        if first_held:
            LOG.warning('%(n)d %(call)s calls on network %(net)s at once: '
                        'answering them %(ms)d ms apart (Docker 20.10 '
                        'loses endpoint-count updates otherwise; option '
                        'delete_spacing_ms)',
                        {'n': in_flight + 1, 'call': self.call,
                         'net': network_id, 'ms': self.spacing * 1000})
        return wait

    def _unspaced(self, network_id, net):
        """With spacing off, only warn of a burst (lock held)."""
        if net.in_flight > 1 and not net.held:
            net.held = True
            LOG.warning('%(n)d %(call)s calls on network %(net)s at once, '
                        'not spaced (delete_spacing_ms = 0): before Docker '
                        '28.1, "docker network rm" may then fail with "has '
                        'active endpoints" until dockerd restarts',
                        {'n': net.in_flight, 'call': self.call,
                         'net': network_id})
        return 0

    def _leave(self, network_id):
        with self._lock:
            net = self._networks[network_id]
            net.in_flight -= 1
            if net.in_flight:
                return
            held, net.held = net.held, False
            if self.spacing <= 0:
                del self._networks[network_id]
                return
            if not held:
                return
            count, took = net.run, net.last - net.run_start
        LOG.info('Answered %(n)d %(call)s calls on network %(net)s in '
                 '%(s).2f s', {'n': count, 'call': self.call,
                               'net': network_id, 's': took})
