"""What an audit can find, and what it saw.

The kinds of finding with the reason each gives (``WHY``) and which of
them a repair may fix (``REPAIRABLE``); :class:`Finding`, one thing out of
step; :class:`Report`, an audit's rows and findings.
"""

import dataclasses
import typing

NETWORK_MISSING = 'network-missing'
NETWORK_LEAKED = 'network-leaked'
ENDPOINT_MISSING = 'endpoint-missing'
ENDPOINT_LEAKED = 'endpoint-leaked'
INTERFACE_MISSING = 'interface-missing'
INTERFACE_STRAY = 'interface-stray'
PORT_MISSING = 'port-missing'
AGENT_UNREACHABLE = 'agent-unreachable'
VROUTER_UNLINKED = 'vrouter-unlinked'
POLICY_STALE = 'policy-stale'
NETWORK_ELSEWHERE = 'network-elsewhere'
GROUP_ORPHAN = 'group-orphan'
POOL_STALE = 'pool-stale'

WHY = {
    NETWORK_MISSING: 'Docker has the network, the backend does not',
    NETWORK_LEAKED: 'the backend has a network of this host that Docker '
                    'no longer has',
    ENDPOINT_MISSING: 'Docker has the endpoint, the backend does not',
    ENDPOINT_LEAKED: 'the backend has an endpoint of this host that '
                     'Docker no longer has',
    INTERFACE_MISSING: 'the endpoint\'s host interface is gone',
    INTERFACE_STRAY: 'a host interface of an endpoint of this host that '
                     'Docker does not have, plugged into no container',
    PORT_MISSING: 'the vrouter agent has no (ready) port for the endpoint',
    AGENT_UNREACHABLE: 'the vrouter agent does not answer',
    VROUTER_UNLINKED: 'this host\'s virtual-router does not refer to the '
                      'container\'s VM: the vrouter agent never gets the '
                      'port ([DEFAULT] host must be the virtual-router\'s '
                      'name)',
    NETWORK_ELSEWHERE: 'the backend has a network this host made that '
                       'Docker here no longer has, and endpoints on other '
                       'hosts use it: left to them',
    GROUP_ORPHAN: 'a security group the driver made for a network whose '
                  'create failed and could not be undone: no network has '
                  'it',
    POOL_STALE: 'this host keeps interfaces made ahead (its port pool) in '
                'a network Docker here no longer has',
    POLICY_STALE: 'a network-policy the driver made between two networks '
                  '(opencontrail.allow) outlives one of them: its rule would '
                  'let through a network made later under the same name',
}

REPAIRABLE = {NETWORK_LEAKED, ENDPOINT_LEAKED, INTERFACE_MISSING,
              INTERFACE_STRAY, PORT_MISSING, POLICY_STALE, GROUP_ORPHAN,
              POOL_STALE}


@dataclasses.dataclass
class Finding:
    kind: str
    network: typing.Optional[str] = None
    endpoint: typing.Optional[str] = None
    interface: typing.Optional[str] = None
    detail: str = ''
    policy: typing.Optional[str] = None
    group: typing.Optional[str] = None

    @property
    def key(self):
        # A finding is about an interface, a policy or a group, never
        # two of them.
        return (self.kind, self.network, self.endpoint,
                self.interface or self.policy or self.group)

    @property
    def repairable(self):
        return self.kind in REPAIRABLE

    def to_dict(self):
        return dict(dataclasses.asdict(self), why=WHY[self.kind],
                    repairable=self.repairable)

    def __str__(self):
        what = ' '.join('%s %s' % (k, v) for k, v in (
            ('network', self.network), ('endpoint', self.endpoint),
            ('interface', self.interface), ('policy', self.policy),
            ('group', self.group)) if v)
        return '%s: %s (%s)%s' % (self.kind, what, WHY[self.kind],
                                  ': ' + self.detail if self.detail else '')


@dataclasses.dataclass
class Report:
    """What an audit saw: a row per network and endpoint, and findings."""

    host: str
    driver: str
    networks: typing.List[dict] = dataclasses.field(default_factory=list)
    findings: typing.List[Finding] = dataclasses.field(default_factory=list)
    interfaces: typing.List[dict] = dataclasses.field(default_factory=list)
    # The driver's own allow policies (Backend.allow_policies).
    policies: typing.List[dict] = dataclasses.field(default_factory=list)
    # Endpoint deletes the backend has recorded and not done yet
    # (Backend.queued_deletes).
    queued_deletes: typing.List[dict] = dataclasses.field(
        default_factory=list)
    # This host's port pools (Backend.port_pools): network ID → (free,
    # taken).
    port_pools: dict = dataclasses.field(default_factory=dict)
    # For repairs: the records behind the rows.
    records: dict = dataclasses.field(default_factory=dict, repr=False)
    # How many of the driver's networks Docker listed, and how many of
    # this host's the backend holds: an audit that sees none in Docker
    # while the backend holds some is unsure of its view.
    docker_networks: int = 0
    backend_networks: int = 0

    def unsure(self):
        """Why repairs would be a guess (a reason), or None."""
        if self.docker_networks == 0 and self.backend_networks:
            return ('Docker lists no network of driver %r while the '
                    'backend holds %d of this host\'s: is driver_name '
                    'right, and is it the Docker this host\'s driver '
                    'serves?' % (self.driver, self.backend_networks))
        return None

    @property
    def clean(self):
        return not self.findings

    def to_dict(self):
        return {'host': self.host, 'driver': self.driver,
                'networks': self.networks,
                'stray_interfaces': self.interfaces,
                'allow_policies': [
                    {'uuid': p['uuid'], 'fq_name': ':'.join(p['fq_name']),
                     'networks': p['networks'], 'gone': p['gone'],
                     'others': p['others']} for p in self.policies],
                'queued_deletes': self.queued_deletes,
                'port_pools': {n: {'free': f, 'taken': t} for n, (f, t) in
                               sorted(self.port_pools.items())},
                'findings': [f.to_dict() for f in self.findings],
                'clean': self.clean}
