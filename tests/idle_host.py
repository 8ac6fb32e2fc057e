"""An idle host, for counting what it asks of the Contrail API.

A contrail driver process with its defaults (its own ``host``, socket and
state), networks and one joined endpoint made through its socket, and
the driver's periodic audit run in the test's process against the same
API: with a Docker view of what the test made, and a port driver that
says every endpoint's interface is in place. What a round of the audit
asks is then counted at the API's proxy, round by round, without
waiting for the audit's interval.
"""

import os

from oslo_config import cfg

from opencontrail_net.audit import periodic
from opencontrail_net.backends import base as backend_base
from opencontrail_net import config
from opencontrail_net import inflight
from opencontrail_net import plugin
from tests import contrail_target
from tests import driverproc
from tests.netns import sh


def net_body(n):
    """A Docker network (CreateNetwork's body), IPv4, subnet 10.<n>."""
    pool = '10.%d.%d' % (200 + n // 250, n % 250)
    return {'NetworkID': contrail_target.docker_id(n, kind=7),
            'Options': {'com.docker.network.generic': {}},
            'IPv4Data': [{'Pool': pool + '.0/24',
                          'Gateway': pool + '.1/24'}]}


def ep_body(net, m=0):
    pool = net['IPv4Data'][0]['Pool'].rsplit('.', 1)[0]
    return {'NetworkID': net['NetworkID'],
            'EndpointID': contrail_target.docker_id(m, kind=8)[:8] +
            net['NetworkID'][8:],
            'Interface': {'Address': '%s.%d/24' % (pool, m + 2)}}


class DockerView:
    """What Docker has of the driver: the networks and endpoints given."""

    driver_name = 'opencontrail'

    def __init__(self):
        self.nets = {}

    def add(self, net_id, endpoints=()):
        self.nets[net_id] = {'name': net_id[:12], 'endpoints': {
            ep: {'container': 'c-' + ep[:6], 'container_id': ep,
                 'mac': None, 'ipv4': None, 'ipv6': None}
            for ep in endpoints}}

    def networks(self):
        return {k: dict(v, endpoints=dict(v['endpoints']))
                for k, v in self.nets.items()}

    def sandbox_key(self, container_id):
        return None


class Ports:
    """A port driver whose every endpoint has its interface in place."""

    def __init__(self, view):
        self.view = view

    def _endpoints(self):
        return [ep for n in self.view.nets.values() for ep in n['endpoints']]

    def host_interfaces(self):
        return [('veth' + ep[:8], ep, True) for ep in self._endpoints()]

    def host_interface(self, endpoint_id):
        return 'veth' + endpoint_id[:8] if endpoint_id in \
            self._endpoints() else None

    def port_state(self, network, endpoint):
        return None


class IdleHost:
    """A driver process named ``name`` on ``api``, and its audit in this
    process. ``start`` makes ``networks`` networks with one endpoint
    joined in the first; ``close`` removes them all."""

    def __init__(self, api, workdir, name='idle', netns=None, **options):
        sub = os.path.join(workdir, name)
        os.makedirs(sub, exist_ok=True)
        self.api = api
        self.netns = netns
        self.drv = driverproc.DriverProcess(
            sub, os.path.join(sub, 'p.sock'), backend='contrail',
            port_driver='veth', host='%s-%s' % (name, contrail_target.RUN),
            **contrail_target.driver_options(api, **options))
        self.view = DockerView()
        self.nets, self.eps = [], []
        self.audit = None
        self.backend = None

    def start(self, networks=1, first=0, endpoint=True):
        self.drv.start()
        for n in range(first, first + networks):
            net = net_body(n)
            self.drv.ok('NetworkDriver.CreateNetwork', net)
            self.nets.append(net)
            self.view.add(net['NetworkID'])
        if endpoint and self.nets:
            ep = ep_body(self.nets[0])
            self.drv.ok('NetworkDriver.CreateEndpoint', ep)
            reply = self.drv.ok('NetworkDriver.Join', dict(
                ep_ids(ep), SandboxKey=contrail_target.sandbox_key()))
            if self.netns:
                sh('ip', 'link', 'set', reply['InterfaceName']['SrcName'],
                   'netns', self.netns)
            self.eps.append(ep)
            self.view.add(ep['NetworkID'], [ep['EndpointID']])
        return self

    def start_audit(self):
        """The driver's audit, as its process runs it, in this one."""
        conf = cfg.ConfigOpts()
        config.parse_args(['--config-file', self.drv.config_path], conf)
        backend_cls = plugin.load(plugin.BACKENDS, 'contrail',
                                  backend_base.Backend, conf, 'backend')
        config.apply_cli_overrides(conf)
        self.backend = backend_cls(conf)
        self.backend.start()
        self.audit = periodic.PeriodicAudit(conf, self.backend,
                                            Ports(self.view),
                                            inflight.InFlight())
        self.audit.view = self.view
        return self.audit

    def audit_requests(self):
        """One round of the audit: (its report, the requests it sent)."""
        self.api.reset_requests()
        report = self.audit.run_once()
        return report, self.api.requests

    def close(self):
        if self.backend is not None:
            self.backend.stop()
        for ep in self.eps:
            self.drv.call('NetworkDriver.Leave', ep_ids(ep))
            self.drv.call('NetworkDriver.DeleteEndpoint', ep_ids(ep))
        for net in self.nets:
            self.drv.call('NetworkDriver.DeleteNetwork',
                          {'NetworkID': net['NetworkID']})
        self.drv.stop()


def ep_ids(ep):
    return {'NetworkID': ep['NetworkID'], 'EndpointID': ep['EndpointID']}
