"""The ``veth`` port driver: a veth pair per endpoint, nothing more."""

import queue
import threading

from oslo_log import log as logging

from opencontrail_net import config
from opencontrail_net import exception
from opencontrail_net import ids
from opencontrail_net import linux_net
from opencontrail_net import model
from opencontrail_net.port_drivers import base

LOG = logging.getLogger(__name__)

# A few names per endpoint: the seed's "veth<8 chars>p0" first, then
# hashed ones for the rare endpoint whose prefix another one took.
_NAME_TRIES = 8


def _candidates(endpoint_id):
    yield endpoint_id[:8]
    for n in range(_NAME_TRIES):
        yield ids.short_hash('%s:%d' % (endpoint_id, n))


def host_name(tag):
    return 'veth%sp0' % tag


def find_host_end_index(endpoint_id):
    """(name, index) of the host end plugged for ``endpoint_id``, told
    ours by its alias; (None, None) if there is none.

    Every candidate name is looked at: the interface that held an
    earlier one when the pair was made may be gone since.
    """
    for tag in _candidates(endpoint_id):
        index, alias = linux_net.link_index(host_name(tag))
        if index is not None and alias == endpoint_id:
            return host_name(tag), index
    return None, None


def find_host_end(endpoint_id):
    """The name of the host end plugged for ``endpoint_id``, or None."""
    return find_host_end_index(endpoint_id)[0]


class Reaper:
    """Deletes interfaces, one after the other, in a thread of its own.

    The kernel takes its time to delete a veth pair (it waits for every
    CPU to let go of it: about 15 ms here, against under 1 ms to make
    one); Leave and DeleteEndpoint hand that wait to this thread and
    answer at once. Interfaces are deleted by index: a pair made since
    under the same name (the endpoint plugged again) is never the one
    deleted. A pair whose turn a crash takes away is idle, which the
    start-up sweep deletes.
    """

    def __init__(self):
        self._queue = queue.Queue()
        self._idle = threading.Condition()
        self._pending = 0
        self._thread = None

    def delete(self, index, name, endpoint_id):
        with self._idle:
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name='veth-reaper', daemon=True)
                self._thread.start()
        self._queue.put((index, name, endpoint_id))

    def _run(self):
        while True:
            index, name, endpoint_id = self._queue.get()
            try:
                if linux_net.delete_index(index):
                    LOG.debug('Deleted veth %s of endpoint %s', name,
                              endpoint_id)
            except Exception as exc:
                LOG.error('Deleting veth %s of endpoint %s failed (the '
                          'start-up sweep deletes it): %s', name,
                          endpoint_id, exc)
            finally:
                with self._idle:
                    self._pending -= 1
                    if not self._pending:
                        self._idle.notify_all()

    def wait(self, timeout=None):
        """Wait until every pair handed over is deleted; False on timeout.
        """
        with self._idle:
            return self._idle.wait_for(lambda: not self._pending, timeout)


class VethDriver(base.PortDriver):
    """A veth pair; the container end carries the MAC and the MTU."""

    # How long a clean stop waits for the pairs still being deleted.
    STOP_WAIT = 10.0

    def __init__(self, conf):
        super().__init__(conf)
        self.reaper = Reaper()
        # endpoint ID -> (host end, its index), for the pairs this
        # process made: Leave finds them without a lookup.
        self._names = {}
        # Endpoints whose pair Leave handed to the reaper, until their
        # DeleteEndpoint.
        self._left = set()
        # The link group of this instance's host ends, for its sweep.
        self.group = ids.link_group(config.driver_name(conf))

    def stop(self):
        if not self.reaper.wait(self.STOP_WAIT):
            LOG.warning('Stopping with veth pairs still being deleted: the '
                        'next start deletes them')
        super().stop()

    def mtu(self, network):
        return network.mtu or self.conf.default_mtu

    def create_pair(self, network, endpoint, master=None):
        """Create the pair for ``endpoint``; return (host end, peer end).

        The host end takes the first candidate name not held by another
        endpoint's interface (so find_host_end finds it again); a taken
        peer name only moves the peer to another one.
        """
        self._left.discard(endpoint.id)
        for tag in _candidates(endpoint.id):
            host = host_name(tag)
            peer = 'veth%sc0' % tag
            # Made first, looked at only if the name is taken: a Join
            # costs no lookup.
            if self._create(network, endpoint, host, peer, master):
                return host, peer
            exists, alias = linux_net.link_alias(host)
            if exists and alias != endpoint.id:
                continue
            if exists:
                # Left by an earlier attempt of this same Join.
                linux_net.delete_link(host)
            for n in range(_NAME_TRIES):
                peer = 'veth%sc%d' % (tag, n)
                if self._create(network, endpoint, host, peer, master):
                    return host, peer
            break
        raise exception.PortError(
            reason='no free interface name for endpoint %s' % endpoint.id)

    def _create(self, network, endpoint, host, peer, master):
        if not linux_net.create_veth(host, peer, endpoint.mac,
                                     self.mtu(network), endpoint.id, master,
                                     self.group):
            return False
        LOG.debug('Created veth %s for endpoint %s', host, endpoint.id)
        self._names[endpoint.id] = (host, linux_net.if_index(host))
        return True

    def join_info(self, network, peer, host=None):
        return model.JoinInfo(
            src_name=peer, host_if=host,
            gateway=None if network.internal else network.gateway(4),
            gateway_ipv6=None if network.internal else network.gateway(6),
            disable_gateway_service=True)

    def plug(self, network, endpoint, sandbox_key):
        host, peer = self.create_pair(network, endpoint)
        return self.join_info(network, peer, host)

    def host_interface(self, endpoint_id):
        return find_host_end(endpoint_id)

    def _host_end(self, endpoint_id):
        """(name, index) of the endpoint's host end, or (None, None).

        A pair this process made is known without a lookup; any other
        is found by name and told ours by its alias.
        """
        known = self._names.pop(endpoint_id, None)
        if known is not None:
            return known
        return find_host_end_index(endpoint_id)

    def unplug(self, network_id, endpoint_id, background=False):
        """Delete the endpoint's pair; with ``background``, the reaper
        deletes it and this returns at once.

        Docker sends DeleteEndpoint after Leave: an endpoint whose pair
        Leave took is not looked for again.
        """
        if background and endpoint_id in self._left:
            self._left.discard(endpoint_id)
            return None
        name, index = self._host_end(endpoint_id)
        if index is None:
            return None
        if background:
            self._left.add(endpoint_id)
            self.reaper.delete(index, name, endpoint_id)
        elif linux_net.delete_index(index):
            LOG.debug('Deleted veth %s of endpoint %s', name, endpoint_id)
        return name

    # A pair is idle for a moment in every Join, until Docker takes the
    # container end: only one idle this long is a leftover.
    SWEEP_DELAY = 2.0

    def start(self):
        """Delete pairs left plugged into no container.

        Docker ignores a failed Leave; a pair whose both ends are on this
        host is in no container and only waits to be deleted. Only this
        instance's pairs (its link group), each deleted once seen idle
        twice, SWEEP_DELAY apart.
        """
        # Here, in the service's start, before any call may use netlink.
        LOG.debug('Netlink through %s', linux_net.load())
        idle = self._idle_pairs()
        if idle:
            timer = threading.Timer(self.SWEEP_DELAY, self._sweep, [idle])
            timer.daemon = True
            timer.start()

    def _idle_pairs(self):
        """Idle pairs this instance made (its link group): another
        driver's on the same host are not its to delete."""
        return {(name, alias) for name, alias, idle in
                linux_net.veth_host_ends('veth', self.group)
                if idle and ids.is_docker_id(alias)}

    def _sweep(self, seen):
        try:
            for name, alias in sorted(seen & self._idle_pairs()):
                LOG.info('Deleting idle veth %s of endpoint %s', name, alias)
                linux_net.delete_link(name)
        except exception.OpenContrailNetError as exc:
            LOG.error('Sweeping idle veth pairs: %s', exc)

    def host_interfaces(self):
        return [(name, alias, not idle) for name, alias, idle in
                linux_net.veth_host_ends('veth') if ids.is_docker_id(alias)]

    def replug(self, network, endpoint, sandbox_key):
        """Plug as Join does, then move the container end in, as Docker
        does after Join; returns the name inside the container."""
        info = self.plug(network, endpoint, sandbox_key)
        gateways = [g for g in (info.gateway, info.gateway_ipv6) if g]
        try:
            return linux_net.move_into_sandbox(
                info.src_name, sandbox_key,
                [a for a in (endpoint.ipv4, endpoint.ipv6) if a], gateways)
        except Exception:
            self.unplug(network.id, endpoint.id)
            raise

    def plugged_endpoints(self):
        return [alias for _name, alias, idle in linux_net.veth_host_ends(
            'veth') if not idle and ids.is_docker_id(alias)]
