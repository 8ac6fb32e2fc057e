"""The libnetwork NetworkDriver semantics, between Docker and the plugins.

Each handler takes the decoded request body and returns the reply body;
errors are exceptions from :mod:`opencontrail_net.exception`.
"""

import functools
import os

from oslo_log import log as logging

from opencontrail_net import allow_names
from opencontrail_net import config
from opencontrail_net import docker_api
from opencontrail_net import engine
from opencontrail_net import exception
from opencontrail_net import ids
from opencontrail_net import inflight
from opencontrail_net import known_networks
from opencontrail_net import labels
from opencontrail_net import leaked_subnets
from opencontrail_net import model
from opencontrail_net import netopts
from opencontrail_net import oper_info
from opencontrail_net import pacing
from opencontrail_net import portopts

LOG = logging.getLogger(__name__)

# What Plugin.Activate answers: the IPAM calls are served by ipam.py.
IMPLEMENTS = ('NetworkDriver', 'IpamDriver')


class NetworkDriver:
    """Serves the NetworkDriver calls of the libnetwork remote protocol."""

    def __init__(self, conf, backend, port_driver):
        self.conf = conf
        self.backend = backend
        self.ports = port_driver
        self._networks = known_networks.KnownNetworks(backend)
        self._oper_info = oper_info.OperInfo()
        self.labels = labels.LabelReader(conf, backend)
        # Docker decrements its endpoint count right after DeleteEndpoint:
        # those answers are the ones spaced (Leave's answers need not be).
        self.delete_pacer = pacing.Pacer(
            'DeleteEndpoint',
            engine.delete_spacing_ms(conf.delete_spacing_ms, None) / 1000.0)
        # What the audit must leave alone for now.
        self.inflight = inflight.InFlight()
        self.docker = docker_api.DockerView(conf.docker_url,
                                            config.driver_name(conf))

    def _tracked(self, handler):
        @functools.wraps(handler)
        def call(body):
            names = [body.get(k) for k in ('NetworkID', 'EndpointID')]
            with self.inflight.call(*[n for n in names
                                      if isinstance(n, str)]):
                return handler(body)
        return call

    def calls(self):
        """The dispatch table: libnetwork call name → handler."""
        return {name: self._tracked(handler)
                for name, handler in self._handlers().items()}

    def _handlers(self):
        return {
            'Plugin.Activate': self.activate,
            'NetworkDriver.GetCapabilities': self.get_capabilities,
            'NetworkDriver.CreateNetwork': self.create_network,
            'NetworkDriver.DeleteNetwork': self.delete_network,
            'NetworkDriver.AllocateNetwork': self.allocate_network,
            'NetworkDriver.FreeNetwork': self.free_network,
            'NetworkDriver.CreateEndpoint': self.create_endpoint,
            'NetworkDriver.EndpointOperInfo': self.endpoint_oper_info,
            'NetworkDriver.DeleteEndpoint': self.delete_endpoint,
            'NetworkDriver.Join': self.join,
            'NetworkDriver.Leave': self.leave,
            'NetworkDriver.DiscoverNew': self.discover,
            'NetworkDriver.DiscoverDelete': self.discover,
            'NetworkDriver.ProgramExternalConnectivity':
                self.program_external_connectivity,
            'NetworkDriver.RevokeExternalConnectivity':
                self.revoke_external_connectivity,
            'OpenContrailNet.InFlight': self.in_flight,
        }

    def start(self):
        """Re-register this host's plugged endpoints with the data plane.

        The host's own interfaces say which endpoints are plugged here: the
        backend is asked for those alone.
        """
        here = self.ports.plugged_endpoints()
        plugged = self.backend.find_endpoints(self.conf.host, here) \
            if here else []
        self._remember_plugged(plugged)
        if plugged:
            LOG.info('Resyncing %d endpoints of host %s', len(plugged),
                     self.conf.host)
            self.ports.resync(plugged)

    def _remember_plugged(self, plugged):
        # EndpointOperInfo must answer after a restart as it did before,
        # still without a backend request of its own.
        published = self.ports.published() if plugged else {}
        in_backend = self.backend.published(
            [ep for _net, ep in plugged]) if plugged else {}
        for _net, ep in plugged:
            self._oper_info.restored(ep, self.ports.host_interface(ep.id),
                                     published.get(ep.id),
                                     in_backend.get(ep.id))

    def networks_held(self):
        """Networks this process knows in use (for the metrics)."""
        return len(self._networks)

    def endpoints_held(self):
        """Endpoints joined on this host, as EndpointOperInfo knows them
        (for the metrics)."""
        return len(self._oper_info)

    def activate(self, body):
        """Plugin.Activate: the handshake, naming what this plugin serves."""
        return {'Implements': list(IMPLEMENTS)}

    def get_capabilities(self, body):
        """NetworkDriver.GetCapabilities: scope from [DEFAULT] scope."""
        return {'Scope': self.conf.scope,
                'ConnectivityScope': self.conf.scope}

    def create_network(self, body):
        """NetworkDriver.CreateNetwork: the network in the backend.

        A swarm network was made by the manager's AllocateNetwork: each
        worker's CreateNetwork finds it. Docker presents it a little
        differently there (address space, options as strings), so what
        the manager made stands rather than being compared.
        """
        net = netopts.parse_network(body, self.backend.route_target_rules)
        if net.allow:
            net.allow = allow_names.full_ids(self.docker, net.allow)
        if ids.is_swarm_network_id(net.id):
            try:
                found = self.backend.get_network(net.id)
            except exception.NetworkNotFound:
                pass
            else:
                self._remember(found, False)
                return {}
        leaked_subnets.free(net, self.ports, self.docker, self.backend,
                            self._forget)
        net, created = self.backend.create_network(net)
        self._remember(net, created)
        if created and not net.existing:
            self.labels.watch(net)
        return {}

    def _remember(self, net, created):
        self._networks.add(net)
        LOG.info('%s network %s: subnets %s, route targets %s',
                 'Created' if created else 'Found', net.id,
                 [s.cidr for s in net.subnets], net.route_targets)

    def delete_network(self, body):
        """NetworkDriver.DeleteNetwork: the network leaves this host.

        A swarm network stays in the backend until the manager's
        FreeNetwork: workers get DeleteNetwork when their last task leaves.
        """
        network_id = netopts.require_id(body, 'NetworkID')
        try:
            if not ids.is_swarm_network_id(network_id):
                self.backend.delete_network(network_id)
        finally:
            # Docker forgets the network whatever the backend answered (it
            # swallows the error): nothing of it stays on this host.
            self._forget(network_id)
        return {}

    def _forget(self, network_id):
        self.ports.network_deleted(network_id)
        self.delete_pacer.forget(network_id)
        self._networks.forget(network_id)

    def allocate_network(self, body):
        """NetworkDriver.AllocateNetwork (swarm manager): make the network.

        Swarm sends the user's ``-o`` options as a flat map; every one of
        them is honoured here. The options returned reach every worker's
        CreateNetwork under com.docker.network.generic. Labels cannot be
        read here: a managed plugin has no Docker API (see README).
        """
        net = netopts.parse_network(body, self.backend.route_target_rules,
                                    flat=True)
        if net.allow:
            net.allow = allow_names.full_ids(self.docker, net.allow)
        net, created = self.backend.create_network(net)
        self._remember(net, created)
        return {'Options': netopts.allocated_options(body)}

    def free_network(self, body):
        """NetworkDriver.FreeNetwork (swarm manager): drop the network.

        It may come before the tasks' Leave: their endpoints go with it,
        and their own DeleteEndpoint later finds nothing to do.
        """
        network_id = netopts.require_id(body, 'NetworkID')
        self.backend.delete_network(network_id)
        self._networks.forget(network_id)
        return {}

    def create_endpoint(self, body):
        """NetworkDriver.CreateEndpoint: the endpoint and its MAC.

        The reply fills only what Docker left empty: the MAC.
        """
        network_id = netopts.require_id(body, 'NetworkID')
        endpoint_id = netopts.require_id(body, 'EndpointID')
        ipv4, ipv6, mac = netopts.parse_interface(body)
        net = self._networks.get(network_id)
        ep = model.Endpoint(
            id=endpoint_id, network_id=network_id, mac=mac, ipv4=ipv4,
            ipv6=ipv6, host=self.conf.host, ports=portopts.has_ports(body),
            security_groups=netopts.endpoint_security_groups(body))
        ep, _created = self.backend.create_endpoint(net, ep)
        return {'Interface': {} if mac else {'MacAddress': ep.mac}}

    def endpoint_oper_info(self, body):
        """NetworkDriver.EndpointOperInfo: from memory, no backend I/O."""
        netopts.require_id(body, 'NetworkID')
        endpoint_id = netopts.require_id(body, 'EndpointID')
        return {'Value': self._oper_info.get(endpoint_id)}

    def delete_endpoint(self, body):
        """NetworkDriver.DeleteEndpoint: port (if Leave was lost), backend.

        Docker 20.10 decrements the network's endpoint count right after
        this answer: answers of a burst go out spaced (see pacing).
        """
        network_id = netopts.require_id(body, 'NetworkID')
        endpoint_id = netopts.require_id(body, 'EndpointID')
        with self.delete_pacer.pace(network_id):
            self.ports.unplug(network_id, endpoint_id, background=True)
            # Deleting needs no more of the network than its ID: spare the
            # backend a lookup when the network is not at hand.
            net = self._networks.at_hand(network_id)
            self.backend.delete_endpoint(net, endpoint_id)
            self._oper_info.forget(endpoint_id)
        return {}

    def join(self, body):
        """NetworkDriver.Join: bind to the container's VM, plug the port."""
        network_id = netopts.require_id(body, 'NetworkID')
        endpoint_id = netopts.require_id(body, 'EndpointID')
        sandbox_key = body.get('SandboxKey')
        if not isinstance(sandbox_key, str) or not sandbox_key:
            raise exception.InvalidRequest(reason='missing SandboxKey')
        sandbox = os.path.basename(sandbox_key.rstrip('/'))
        if not sandbox_key.startswith('/') or not sandbox:
            raise exception.InvalidRequest(
                reason='SandboxKey %r is not the path of a sandbox'
                % (sandbox_key[:200],))
        net = self._networks.get(network_id)
        ep = self.backend.get_endpoint(net, endpoint_id)
        ep, attached = self.backend.attach_endpoint(net, ep, sandbox)
        try:
            info = self.ports.plug(net, ep, sandbox_key)
        except Exception:
            if attached:
                self._undo_attach(net, ep)
            raise
        self._oper_info.joined(
            ep, info.host_if or self.ports.host_interface(ep.id))
        reply = {'InterfaceName': {'SrcName': info.src_name,
                                   'DstPrefix': info.dst_prefix},
                 'DisableGatewayService': info.disable_gateway_service}
        if info.gateway:
            reply['Gateway'] = info.gateway
        if info.gateway_ipv6:
            reply['GatewayIPv6'] = info.gateway_ipv6
        if info.static_routes:
            reply['StaticRoutes'] = info.static_routes
        return reply

    def _undo_attach(self, net, ep):
        # Docker must see why the plug failed, not why its undo did.
        try:
            self.backend.detach_endpoint(net, ep)
        except Exception as exc:
            LOG.error('Join of endpoint %s: undoing its VM binding after '
                      'the failed plug failed too: %s', ep.id, exc)

    def leave(self, body):
        """NetworkDriver.Leave: unplug the port; the backend is untouched.

        The kernel's slow part, deleting the veth pair, goes on after the
        answer.
        """
        network_id = netopts.require_id(body, 'NetworkID')
        endpoint_id = netopts.require_id(body, 'EndpointID')
        self.ports.unplug(network_id, endpoint_id, background=True)
        return {}

    def discover(self, body):
        """NetworkDriver.DiscoverNew/DiscoverDelete: nodes come and go.

        State lives in the backend and every host finds a network there on
        first use, so nothing needs to follow them; the event is checked
        and logged.
        """
        kind = body.get('DiscoveryType')
        data = body.get('DiscoveryData')
        if not isinstance(kind, int) or isinstance(kind, bool) or (
                data is not None and not isinstance(data, dict)):
            raise exception.InvalidRequest(
                reason='a discovery event has an integer DiscoveryType and '
                'an object DiscoveryData')
        LOG.info('Discovery event %d: %s', kind, data)
        return {}

    def in_flight(self, body):
        """Not a libnetwork call: the network and endpoint IDs of calls in
        flight, which opencontrail-net-manage's repairs leave alone."""
        return {'InFlight': self.inflight.ids()}

    def program_external_connectivity(self, body):
        """NetworkDriver.ProgramExternalConnectivity: --expose and -p.

        The backend serves them if it can (Contrail: security-group rules
        and a floating IP), else the port driver (bridge: nftables). A
        container with no ports costs no request at all. What was
        published is kept for EndpointOperInfo.
        """
        network_id = netopts.require_id(body, 'NetworkID')
        endpoint_id = netopts.require_id(body, 'EndpointID')
        exposed, bindings = portopts.parse_ports(body)
        if not exposed and not bindings:
            return {}
        net = self._networks.get(network_id)
        info = self.backend.publish_ports(net, endpoint_id, exposed,
                                          bindings)
        if info is not None:
            info = oper_info.backend_port_info(info)
        else:
            ep = self.backend.get_endpoint(net, endpoint_id)
            mappings = self.ports.publish(net, ep, bindings)
            if mappings is None and bindings:
                raise exception.CannotPublish(
                    reason='neither backend %s nor port driver %s publishes '
                    'ports' % (self.conf.backend, self.conf.port_driver))
            info = {portopts.PORTMAP: oper_info.portmap(ep, mappings or [])}
        self._oper_info.published(endpoint_id, info)
        return {}

    def revoke_external_connectivity(self, body):
        """NetworkDriver.RevokeExternalConnectivity: undo Program.

        Docker sends only the IDs; both plugins find their own.
        """
        network_id = netopts.require_id(body, 'NetworkID')
        endpoint_id = netopts.require_id(body, 'EndpointID')
        self.ports.unpublish(network_id, endpoint_id)
        net = self._networks.at_hand(network_id)
        self.backend.unpublish_ports(net, endpoint_id)
        self._oper_info.revoked(endpoint_id)
        return {}
