"""The ``veth`` port driver: a veth pair per endpoint, nothing more."""

import threading

from oslo_log import log as logging

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


def find_host_end(endpoint_id):
    """The name of the host end plugged for ``endpoint_id``, or None."""
    for tag in _candidates(endpoint_id):
        exists, alias = linux_net.link_alias(host_name(tag))
        if not exists:
            return None
        if alias == endpoint_id:
            return host_name(tag)
    return None


class VethDriver(base.PortDriver):
    """A veth pair; the container end carries the MAC and the MTU."""

    def mtu(self, network):
        return network.mtu or self.conf.default_mtu

    def create_pair(self, network, endpoint, master=None):
        """Create the pair for ``endpoint``; return (host end, peer end).

        The host end takes the first candidate name not held by another
        endpoint's interface (so find_host_end finds it again); a taken
        peer name only moves the peer to another one.
        """
        for tag in _candidates(endpoint.id):
            host = host_name(tag)
            exists, alias = linux_net.link_alias(host)
            if exists and alias != endpoint.id:
                continue
            if exists:
                # Left by an earlier attempt of this same Join.
                linux_net.delete_link(host)
            for n in range(_NAME_TRIES):
                peer = 'veth%sc%d' % (tag, n)
                if linux_net.create_veth(host, peer, endpoint.mac,
                                         self.mtu(network), endpoint.id,
                                         master):
                    LOG.debug('Created veth %s for endpoint %s', host,
                              endpoint.id)
                    return host, peer
            break
        raise exception.PortError(
            reason='no free interface name for endpoint %s' % endpoint.id)

    def join_info(self, network, peer):
        return model.JoinInfo(
            src_name=peer,
            gateway=None if network.internal else network.gateway(4),
            gateway_ipv6=None if network.internal else network.gateway(6),
            disable_gateway_service=True)

    def plug(self, network, endpoint, sandbox_key):
        _host, peer = self.create_pair(network, endpoint)
        return self.join_info(network, peer)

    def host_interface(self, endpoint_id):
        return find_host_end(endpoint_id)

    def unplug(self, network_id, endpoint_id):
        name = find_host_end(endpoint_id)
        if name and linux_net.delete_link(name):
            LOG.debug('Deleted veth %s of endpoint %s', name, endpoint_id)
        return name

    # A pair is idle for a moment in every Join, until Docker takes the
    # container end: only one idle this long is a leftover.
    SWEEP_DELAY = 2.0

    def start(self):
        """Delete pairs left plugged into no container.

        Docker ignores a failed Leave; a pair whose both ends are on this
        host is in no container and only waits to be deleted. Deleted once
        seen idle twice, SWEEP_DELAY apart: another driver of this host may
        be in the middle of a Join.
        """
        idle = self._idle_pairs()
        if idle:
            timer = threading.Timer(self.SWEEP_DELAY, self._sweep, [idle])
            timer.daemon = True
            timer.start()

    @staticmethod
    def _idle_pairs():
        return {(name, alias) for name, alias, idle in
                linux_net.veth_host_ends('veth')
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
