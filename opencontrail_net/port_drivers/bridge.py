"""The ``bridge`` port driver: a Linux bridge per network on this host.

The bridge carries the network's gateway addresses, so containers of one
network on one host reach each other and the gateway with no Contrail.
As Docker's own bridge does, the subnets leave the host masqueraded and
``-p`` publishes ports at the host's addresses, with rules in the
driver's own nftables table (see :mod:`opencontrail_net.firewall`).
"""

import collections
import dataclasses
import ipaddress
import threading

from oslo_config import cfg
from oslo_log import log as logging

from opencontrail_net import exception
from opencontrail_net import firewall
from opencontrail_net import ids
from opencontrail_net import linux_net
from opencontrail_net import sysctl
from opencontrail_net.port_drivers import veth

LOG = logging.getLogger(__name__)

# Where a -p without a host port takes one, as Docker's bridge does.
EPHEMERAL = (49153, 60999)


def _candidates(network_id):
    yield network_id[:11]
    for n in range(8):
        yield ids.short_hash('%s:%d' % (network_id, n), 11)


def bridge_mac(network_id):
    raw = ids.short_hash(network_id, 10)
    # Locally administered, unicast, and unlike Contrail's 02: MACs.
    return '0e:' + ':'.join(raw[i:i + 2] for i in range(0, 10, 2))


def _address(cidr):
    return str(ipaddress.ip_interface(cidr).ip) if cidr else None


class BridgeDriver(veth.VethDriver):
    """veth pairs whose host ends join the network's bridge."""

    CONFIG_GROUP = 'bridge'
    CONFIG_OPTS = (
        cfg.BoolOpt('firewall', default=True,
                    help='Masquerade the networks\' subnets and publish '
                    'ports (-p) with rules in the nftables table inet '
                    'opencontrail_net, turning IP forwarding on where '
                    'needed (needs python3-nftables). Off: the host\'s '
                    'firewall and forwarding are left alone, and -p is '
                    'refused.'),
        cfg.FloatOpt('firewall_check_interval', default=2.0, min=0,
                     help='Seconds between checks that the table inet '
                          'opencontrail_net still stands (a "nft flush '
                          'ruleset", as Debian\'s nftables.conf does, '
                          'removes it, and with it the guard keeping '
                          'containers off the host\'s 127.0.0.0/8 '
                          'services): it is put back as the driver last '
                          'left it. 0: no checks.'),
    )

    def __init__(self, conf):
        super().__init__(conf)
        self._locks = collections.defaultdict(threading.Lock)
        self._bridges = {}
        self.firewall = (firewall.Firewall(
            [firewall.DockerUser(cmd) for cmd in ('iptables', 'ip6tables')])
            if conf.bridge.firewall else None)
        self._no_firewall = '[bridge] firewall = false'
        # Endpoints with published ports: Leave withdraws what a lost
        # Revoke left, and only for these.
        self._publishing = set()

    def start(self):
        super().start()
        if self.firewall is None:
            return
        try:
            self.firewall.ensure()
        except exception.PortError as exc:
            # No nftables module, or no nftables here (a managed plugin
            # without it): containers still connect, only -p and the
            # masquerade are off, and -p says why.
            self.firewall, self._no_firewall = None, exc.message
            LOG.warning('No published ports or masquerade: %s', exc)
            return
        self._clean_firewall()
        interval = self.conf.bridge.firewall_check_interval
        if interval > 0:
            self._guard_stop = threading.Event()
            threading.Thread(target=self._guard, args=(interval,),
                             name='firewall-guard', daemon=True).start()

    def _guard(self, interval):
        """Put the table back whenever someone flushed it."""
        while not self._guard_stop.wait(interval):
            try:
                if self.firewall.intact():
                    continue
                count = self.firewall.restore()
            except Exception as exc:
                LOG.warning('Checking table %s %s failed: %s',
                            firewall.FAMILY, firewall.TABLE, exc)
                continue
            if count is not None:
                LOG.warning('Table %s %s was flushed by someone else: put '
                            'back as this driver last left it (%d rules, '
                            'within %.1f s of the flush)', firewall.FAMILY,
                            firewall.TABLE, count, interval)

    def stop(self):
        if getattr(self, '_guard_stop', None) is not None:
            self._guard_stop.set()
        super().stop()

    def engine_known(self, engine):
        """Docker 29 may run its firewall on nftables (tables ``ip`` and
        ``ip6 docker-bridges``). Its rules there judge only the traffic
        of Docker's own bridges (verdict maps keyed by their names, base
        chains with policy accept), so this driver's bridges need no
        mark of ``--bridge-accept-fwmark``; there is no DOCKER-USER, and
        Docker leaves IP forwarding to others, which this driver sets.
        What still drops our traffic is an iptables FORWARD policy of
        DROP (left by Docker on iptables before, or the operator's):
        nothing jumps to DOCKER-USER then, and that is logged with what
        to set; the driver changes no chain of others."""
        if self.firewall is None or not engine.nftables:
            return
        LOG.info('Docker %s runs its firewall on nftables (tables ip and '
                 'ip6 docker-bridges, no DOCKER-USER): its rules judge only '
                 'its own bridges\' traffic, so this driver\'s bridges '
                 '(ocbr*) need no --bridge-accept-fwmark; their isolation '
                 'is in table %s %s, and IP forwarding is set by this '
                 'driver', engine.version_text, firewall.FAMILY,
                 firewall.TABLE)
        for chain in self.firewall.docker_user:
            if chain.forward_drops():
                LOG.warning(
                    '%(cmd)s: FORWARD\'s policy is DROP, and Docker on '
                    'nftables jumps to no DOCKER-USER: the traffic of this '
                    'driver\'s bridges is dropped there. Accept it before '
                    'that policy ("%(cmd)s -A FORWARD -i ocbr+ -j ACCEPT" '
                    'and "%(cmd)s -A FORWARD -o ocbr+ -m conntrack '
                    '--ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT"), or '
                    'set the policy to ACCEPT if nothing else needs it',
                    {'cmd': chain.name})

    def _clean_firewall(self):
        """Remove the rules of endpoints and networks gone while down."""
        plugged = set(self.plugged_endpoints())
        for endpoint_id in sorted(self.firewall.published()):
            if endpoint_id in plugged:
                self._publishing.add(endpoint_id)
            elif self.firewall.unpublish(endpoint_id):
                LOG.info('Removed the published ports of endpoint %s, '
                         'gone while the driver was down', endpoint_id)
        for network_id in sorted(self.firewall.networks()):
            if self.find_bridge(network_id) is None:
                self.firewall.remove_network(network_id)
                LOG.info('Removed the rules of network %s, gone while the '
                         'driver was down', network_id)
        # Two networks talk while both have a bridge here; the second
        # bridge made writes the rules again.
        tags = {alias[:firewall.ALLOW_TAG]
                for _name, alias, _addrs in linux_net.bridges('ocbr')}
        for pair, rules in sorted(self.firewall.allowed_pairs().items()):
            if not set(pair) <= tags:
                self.firewall.delete(rules)
                LOG.info('Removed the rules letting networks %s and %s '
                         'talk: a bridge is gone', *pair)

    def _program_network(self, network, bridge):
        if self.firewall is None:
            return
        subnets = [s.cidr for s in network.subnets]
        self.firewall.set_network(network.id, bridge, subnets,
                                  network.masquerade, network.internal)
        for peer in network.allowed:
            peer_bridge = self.find_bridge(peer)
            if peer_bridge is not None:
                self.firewall.set_allow(network.id, bridge, peer,
                                        peer_bridge)
                LOG.info('Networks %s and %s may talk (bridges %s and %s)',
                         network.id, peer, bridge, peer_bridge)
        if network.internal:
            return
        versions = {ipaddress.ip_network(c).version for c in subnets}
        if 4 in versions:
            sysctl.ensure('/proc/sys/net/ipv4/ip_forward', '1',
                          'network %s routes' % network.id)
            # localhost:HOSTPORT reaches the container: packets from
            # 127.0.0.1 may then leave through this bridge.
            sysctl.ensure(
                '/proc/sys/net/ipv4/conf/%s/route_localnet' % bridge, '1',
                'published ports of network %s answer on localhost'
                % network.id)
        if 6 in versions:
            sysctl.ensure('/proc/sys/net/ipv6/conf/all/forwarding', '1',
                          'network %s routes' % network.id)

    @staticmethod
    def find_bridge(network_id, free=False):
        """The bridge of ``network_id``, or, with ``free``, the first name
        free to make it under; None when there is none and no ``free``.

        Every candidate name is looked at: the interface that held an
        earlier one when the bridge was made may be gone since.
        """
        first_free = None
        for tag in _candidates(network_id):
            name = 'ocbr' + tag
            exists, alias = linux_net.link_alias(name)
            if exists and alias == network_id:
                return name
            if not exists and first_free is None:
                first_free = name
        if not free:
            return None
        if first_free is None:
            raise exception.PortError(
                reason='no free bridge name for network %s' % network_id)
        return first_free

    def _ensure_bridge(self, network):
        """The bridge's index; made (once per network) if missing."""
        addresses = ['%s/%s' % (s.gateway, s.cidr.split('/')[1])
                     for s in network.subnets if s.gateway]
        with self._locks[network.id]:
            name = self.find_bridge(network.id, free=True)
            index = linux_net.ensure_bridge(
                name, bridge_mac(network.id), self.mtu(network), network.id,
                addresses)
            self._program_network(network, name)
            self._bridges[network.id] = index
            return index

    def plug(self, network, endpoint, sandbox_key):
        # The bridge is made by the first Join of a network on this host
        # (CreateNetwork reaches only one host), then remembered.
        index = self._bridges.get(network.id)
        if index is None:
            index = self._ensure_bridge(network)
        try:
            host, peer = self.create_pair(network, endpoint, master=index)
        except exception.PortError:
            # Someone deleted the bridge under us: make it again.
            index = self._ensure_bridge(network)
            host, peer = self.create_pair(network, endpoint, master=index)
        return self.join_info(network, peer, host)

    def publish(self, network, endpoint, bindings):
        """Take host ports for ``bindings`` and forward them (DNAT).

        A port another endpoint of this host published is refused; from a
        range (or with no host port) the first free one is taken.
        """
        if not bindings:
            return []
        if self.firewall is None:
            raise exception.CannotPublish(
                reason='the firewall is off on this host (%s)'
                % self._no_firewall)
        if network.internal:
            # As Docker's bridge: an internal network publishes nothing.
            LOG.warning('Network %s is internal: the ports of endpoint %s '
                        'are not published', network.id, endpoint.id)
            return []
        addresses = {4: _address(endpoint.ipv4), 6: _address(endpoint.ipv6)}
        with self.firewall.lock:
            taken = [m for eid, found in self.firewall.published().items()
                     if eid != endpoint.id for m in found]
            chosen = []
            for binding in bindings:
                mapping = self._choose(binding, taken + chosen)
                self._check_family(mapping, addresses)
                chosen.append(mapping)
            self.firewall.publish(endpoint.id, network.id, chosen,
                                  addresses)
            self._publishing.add(endpoint.id)
        LOG.info('Published for endpoint %s: %s', endpoint.id,
                 ', '.join('%s -> %d' % (m, m.port) for m in chosen))
        return chosen

    @staticmethod
    def _choose(binding, taken):
        """``binding`` on the first port of its host port range (or of
        EPHEMERAL) that clashes with none of ``taken``."""
        if binding.host_port:
            low, high = binding.host_port, binding.host_port_end
        else:
            low, high = EPHEMERAL
        for port in range(low, high + 1):
            mapping = binding.at(port)
            if not any(mapping.clashes(t) for t in taken):
                return mapping
        if low == high:
            raise exception.HostPortInUse(port=binding.at(low))
        raise exception.Conflict(
            reason='no free host port in %s: all are already published on '
            'this host' % dataclasses.replace(binding, host_port=low,
                                              host_port_end=high))

    @staticmethod
    def _check_family(mapping, addresses):
        if not mapping.host_ip:
            return
        version = ipaddress.ip_address(mapping.host_ip).version
        if addresses.get(version) is None:
            raise exception.CannotPublish(
                reason='host address %s is IPv%d and the container has no '
                'IPv%d address on this network' % (mapping.host_ip,
                                                   version, version))

    def unpublish(self, network_id, endpoint_id):
        # Only endpoints known to publish cost a look at the table.
        if self.firewall is None or endpoint_id not in self._publishing:
            return
        self._publishing.discard(endpoint_id)
        removed = self.firewall.unpublish(endpoint_id)
        if removed:
            LOG.info('Withdrew the published ports of endpoint %s',
                     endpoint_id)

    def published(self):
        return self.firewall.published() if self.firewall else {}

    def unplug(self, network_id, endpoint_id, background=False):
        self.unpublish(network_id, endpoint_id)
        return super().unplug(network_id, endpoint_id, background)

    def subnet_holders(self, network):
        wanted = [ipaddress.ip_network(s.cidr) for s in network.subnets]
        if not wanted:
            return {}
        held = {}
        for name, alias, addresses in linux_net.bridges('ocbr'):
            if alias == network.id or not ids.is_docker_id(
                    alias, network=True):
                continue
            for address in addresses:
                for subnet in wanted:
                    if (address.version == subnet.version and
                            address.network.overlaps(subnet)):
                        where = 'bridge %s has %s' % (name, address)
                        held.setdefault(alias, []).append(
                            (str(subnet), where))
        return held

    def network_deleted(self, network_id):
        if self.firewall is not None and self.firewall.remove_network(
                network_id):
            LOG.info('Removed the rules of network %s', network_id)
        with self._locks[network_id]:
            name = self.find_bridge(network_id)
            if name and linux_net.delete_link(name):
                LOG.info('Deleted bridge %s of network %s', name, network_id)
        self._locks.pop(network_id, None)
        self._bridges.pop(network_id, None)
