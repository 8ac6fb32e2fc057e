"""The ``vrouter`` port driver: veth pairs the vrouter agent attaches.

The host end of each pair is announced to the agent on this host through
its port API (``POST /port``); the agent then fetches the interface's
config from the control node and attaches the host end to the vrouter.
"""

import os
import uuid

from oslo_config import cfg
from oslo_log import log as logging

from opencontrail_net import config
from opencontrail_net import exception
from opencontrail_net import ids
from opencontrail_net import linux_net
from opencontrail_net import optnames
from opencontrail_net.port_drivers import veth
from opencontrail_net import vrouter_agent

LOG = logging.getLogger(__name__)

vrouter_opts = [
    cfg.URIOpt('agent_url', default=vrouter_agent.DEFAULT_URL,
               schemes=['http', 'https'],
               help='Port API of the vrouter agent on this host.'),
    cfg.StrOpt('ports_dir', default=vrouter_agent.DEFAULT_PORTS_DIR,
               help='The agent\'s ports directory. While the agent is '
                    'unreachable the driver writes a port file there in '
                    'the agent\'s format; the agent adds those ports when '
                    'it starts. Must be the directory the agent reads.'),
    cfg.FloatOpt('port_ready_timeout', default=5.0, min=0,
                 help='Seconds a Join waits for the agent to report the '
                      'port ready (config received from the control '
                      'node). Join succeeds either way; a port not ready '
                      'in time is logged as a warning. 0 skips the wait.'),
    cfg.IntOpt('mtu', min=68, max=65535,
               help='MTU of container interfaces, overriding the network\'s '
                    '"%s" option and [DEFAULT] default_mtu; set it to '
                    'what the vrouter\'s fabric encapsulation leaves.'
                    % optnames.by_field('mtu').name),
]


class VrouterDriver(veth.VethDriver):
    """veth pairs whose host ends are ports of the local vrouter agent."""

    CONFIG_GROUP = 'vrouter'
    CONFIG_OPTS = vrouter_opts

    def __init__(self, conf):
        super().__init__(conf)
        self.opts = conf.vrouter
        if os.environ.get(config.MANAGED_ENV) == '1':
            # Its port files would go to the plugin's own filesystem, where
            # the agent never reads them: the agent's ports directory is
            # not mounted (a mount's source must exist on every host the
            # plugin is enabled on, vrouter or not).
            raise exception.InvalidConfig(
                option='[DEFAULT] port_driver', value='vrouter',
                reason='a managed plugin does not see the vrouter agent\'s '
                'ports directory (%s); on vrouter hosts run the driver as '
                'a service (etc/systemd/opencontrail-net.service)'
                % self.opts.ports_dir)
        self.client = vrouter_agent.AgentClient(
            url=self.opts.agent_url, ports_dir=self.opts.ports_dir)
        # Endpoint ID → its interface's uuid, where it is not the one
        # named after the endpoint (a pooled interface): noted at Join
        # and at the resync after a restart, for Leave.
        self._vmis = {}

    def mtu(self, network):
        return self.opts.mtu or super().mtu(network)

    # -- plug ---------------------------------------------------------------

    def plug(self, network, endpoint, sandbox_key):
        """Create the veth pair and register its host end with the agent.

        An agent that refuses the port fails the Join with the agent's
        text, and the pair is removed. An unreachable agent does not: the
        port goes to a file the agent loads when it starts.
        """
        _check_vmi_uuid(endpoint)
        self._note_vmi(endpoint)
        host, peer = self.create_pair(network, endpoint)
        try:
            port = self._port(network, endpoint, host)
            registered = self._register(port, endpoint.id)
        except Exception:
            _discard(host, endpoint.id)
            raise
        if registered:
            self._wait_ready(endpoint, port)
        return self.join_info(network, peer, host)

    @staticmethod
    def _port(network, endpoint, host):
        try:
            return vrouter_agent.AgentClient.build_port(
                endpoint.uuid, endpoint.vm_uuid, network.uuid,
                network.project_uuid, endpoint.vm_name, endpoint.ipv4,
                endpoint.ipv6, host, endpoint.mac)
        except ValueError as exc:
            raise exception.PortError(
                reason='endpoint %s cannot be a vrouter port: %s'
                % (endpoint.id, exc)) from exc

    def _register(self, port, endpoint_id):
        """POST the port; return False if it went to a file instead."""
        try:
            # This Join may repeat one the agent already holds a port for,
            # and the agent keeps an existing port's first fields: remove it
            # (an unknown uuid is a 200) so the port gets this Join's.
            self.client.delete_port(port['id'])
            self.client.add_port(port)
            LOG.debug('vrouter agent %s: added port %s (%s)',
                      self.client.url, port['id'], port['system-name'])
            return True
        except vrouter_agent.AgentUnreachable as exc:
            down = exc
        # Logged outside the except block, where oslo.log would repeat the
        # exception after the message.
        self._write_file(port, endpoint_id, down)
        return False

    def _write_file(self, port, endpoint_id, cause):
        try:
            path = self.client.write_port_file(port)
        except OSError as exc:
            raise exception.PortError(
                reason='vrouter agent at %s is unreachable (%s) and the '
                       'port file of %s cannot be written: %s'
                       % (self.client.url, cause.detail, port['id'], exc))
        LOG.warning('vrouter agent at %(url)s is unreachable (%(cause)s): '
                    'port %(port)s (%(name)s) of endpoint %(ep)s written to '
                    '%(path)s; the agent adds it when it starts', {
                        'url': self.client.url, 'cause': cause.detail,
                        'port': port['id'], 'name': port['system-name'],
                        'ep': endpoint_id, 'path': path})

    def _wait_ready(self, endpoint, port):
        timeout = self.opts.port_ready_timeout
        if not timeout:
            return
        if not self.client.wait_ready(port['id'], timeout):
            LOG.warning('Port %(port)s of endpoint %(ep)s is not ready at the '
                        'vrouter agent %(url)s after %(t).1f s: the container '
                        'has no connectivity until the agent gets the '
                        'port\'s config from the control node', {
                            'port': port['id'], 'ep': endpoint.id,
                            'url': self.client.url, 't': timeout})

    def _note_vmi(self, endpoint):
        if str(endpoint.uuid) != ids.endpoint_uuid(endpoint.id):
            self._vmis[endpoint.id] = str(endpoint.uuid)

    # -- unplug -------------------------------------------------------------

    def unplug(self, network_id, endpoint_id, background=False):
        """Remove the agent's port, its file and the veth pair.

        Docker swallows errors of Leave and DeleteEndpoint, and a failure
        here would keep DeleteEndpoint from the backend, so agent trouble
        is logged and the local parts are removed regardless.
        """
        vmi = self._vmis.pop(endpoint_id, None) or ids.endpoint_uuid(
            endpoint_id)
        self._delete_port(vmi, endpoint_id)
        self._remove_file(vmi, endpoint_id)
        return super().unplug(network_id, endpoint_id, background)

    def _delete_port(self, vmi, endpoint_id):
        try:
            self.client.delete_port(vmi)
            return
        except vrouter_agent.AgentError as exc:
            failure = exc
        if isinstance(failure, vrouter_agent.AgentUnreachable):
            LOG.warning('vrouter agent at %s is unreachable (%s): port %s of '
                        'endpoint %s is removed only from %s',
                        self.client.url, failure.detail, vmi, endpoint_id,
                        self.opts.ports_dir)
        else:
            LOG.error('Port %s of endpoint %s not removed: %s', vmi,
                      endpoint_id, failure)

    def _remove_file(self, vmi, endpoint_id):
        # The agent removes the file on DELETE; this covers an agent that
        # is down, which would otherwise bring the port back at its start.
        try:
            self.client.remove_port_file(vmi)
            return
        except OSError as exc:
            failure = exc
        LOG.error('Port file of endpoint %s not removed: %s', endpoint_id,
                  failure)

    # -- audit --------------------------------------------------------------

    def port_state(self, network, endpoint):
        try:
            found = self.client.get_port(endpoint.uuid, timeout=2)
        except vrouter_agent.AgentUnreachable:
            return 'unreachable'
        return 'missing' if found is None else 'ready'

    def reregister(self, network, endpoint):
        down = self._resync_endpoint(network, endpoint, None)
        if down is not None:
            raise exception.PortError(
                reason='vrouter agent at %s is unreachable: %s'
                % (self.client.url, down.detail))

    # -- resync -------------------------------------------------------------

    def resync(self, plugged):
        """Re-register ports the agent may have lost while we were away.

        POST of a port the agent holds only refreshes it, so no GET is
        needed first, and no DELETE: that would cut a running container.
        Once the agent proves unreachable, the rest go to files directly.
        """
        down = None
        for network, endpoint in plugged:
            try:
                down = self._resync_endpoint(network, endpoint, down)
                continue
            except exception.OpenContrailNetError as exc:
                failure = exc
            LOG.error('Resync of endpoint %s failed: %s', endpoint.id,
                      failure)

    def _resync_endpoint(self, network, endpoint, down):
        """POST the port or, the agent being down, file it.

        Returns the AgentUnreachable that shows the agent down, or None.
        """
        host = veth.find_host_end(endpoint.id)
        if host is None:
            LOG.info('Not resyncing endpoint %s: its host interface is gone',
                     endpoint.id)
            return down
        self._note_vmi(endpoint)
        port = self._port(network, endpoint, host)
        if down is None:
            try:
                self.client.add_port(port)
                LOG.info('Resynced port %s (%s) of endpoint %s with the '
                         'vrouter agent', port['id'], host, endpoint.id)
                return None
            except vrouter_agent.AgentUnreachable as exc:
                down = exc
        self._write_file(port, endpoint.id, down)
        return down


def _check_vmi_uuid(endpoint):
    # The agent's port is the interface's uuid.
    try:
        uuid.UUID(str(endpoint.uuid))
    except ValueError:
        raise exception.PortError(
            reason='endpoint %s has no interface uuid (%r)'
            % (endpoint.id, endpoint.uuid))


def _discard(host, endpoint_id):
    """Remove a half-made pair without hiding the error that stopped us."""
    try:
        linux_net.delete_link(host)
    except exception.PortError as exc:
        LOG.error('Cleaning up after endpoint %s: %s', endpoint_id, exc)
