"""The ``bridge`` port driver: a Linux bridge per network on this host.

The bridge carries the network's gateway addresses, so containers of one
network on one host reach each other and the gateway with no Contrail.
"""

import collections
import threading

from oslo_log import log as logging

from opencontrail_net import exception
from opencontrail_net import ids
from opencontrail_net import linux_net
from opencontrail_net.port_drivers import veth

LOG = logging.getLogger(__name__)


def _candidates(network_id):
    yield network_id[:11]
    for n in range(8):
        yield ids.short_hash('%s:%d' % (network_id, n), 11)


def bridge_mac(network_id):
    raw = ids.short_hash(network_id, 10)
    # Locally administered, unicast, and unlike Contrail's 02: MACs.
    return '0e:' + ':'.join(raw[i:i + 2] for i in range(0, 10, 2))


class BridgeDriver(veth.VethDriver):
    """veth pairs whose host ends join the network's bridge."""

    def __init__(self, conf):
        super().__init__(conf)
        self._locks = collections.defaultdict(threading.Lock)
        self._bridges = {}

    @staticmethod
    def find_bridge(network_id, free=False):
        """The bridge of ``network_id``; with ``free``, a name to create."""
        for tag in _candidates(network_id):
            name = 'ocbr' + tag
            exists, alias = linux_net.link_alias(name)
            if exists and alias == network_id:
                return name
            if not exists:
                return name if free else None
        raise exception.PortError(
            reason='no free bridge name for network %s' % network_id)

    def _ensure_bridge(self, network):
        """The bridge's index; made (once per network) if missing."""
        addresses = ['%s/%s' % (s.gateway, s.cidr.split('/')[1])
                     for s in network.subnets if s.gateway]
        with self._locks[network.id]:
            name = self.find_bridge(network.id, free=True)
            index = linux_net.ensure_bridge(
                name, bridge_mac(network.id), self.mtu(network), network.id,
                addresses)
            self._bridges[network.id] = index
            return index

    def plug(self, network, endpoint, sandbox_key):
        # The bridge is made by the first Join of a network on this host
        # (CreateNetwork reaches only one host), then remembered.
        index = self._bridges.get(network.id)
        if index is None:
            index = self._ensure_bridge(network)
        try:
            _host, peer = self.create_pair(network, endpoint, master=index)
        except exception.PortError:
            # Someone deleted the bridge under us: make it again.
            index = self._ensure_bridge(network)
            _host, peer = self.create_pair(network, endpoint, master=index)
        return self.join_info(network, peer)

    def network_deleted(self, network_id):
        with self._locks[network_id]:
            name = self.find_bridge(network_id)
            if name and linux_net.delete_link(name):
                LOG.info('Deleted bridge %s of network %s', name, network_id)
        self._locks.pop(network_id, None)
        self._bridges.pop(network_id, None)
