"""Plain records passed between the libnetwork layer, backends and ports."""

import dataclasses
import ipaddress
import typing


def address(version, value):
    """The IPv4 or IPv6 address whose integer is ``value``."""
    if version == 4:
        return ipaddress.IPv4Address(value)
    return ipaddress.IPv6Address(value)


def usable(net, first, last):
    """``first``..``last`` (integers) without the addresses of ``net`` no
    host may hold: its network address, and the broadcast one in IPv4."""
    if net.num_addresses > 2:
        first = max(first, int(net.network_address) + 1)
        if net.version == 4:
            last = min(last, int(net.broadcast_address) - 1)
    return first, last


@dataclasses.dataclass
class Subnet:
    """One subnet of a network: a CIDR and its gateway (plain address)."""

    cidr: str
    gateway: typing.Optional[str] = None
    aux_addresses: typing.Dict[str, str] = dataclasses.field(
        default_factory=dict)
    # Where the driver's IPAM takes addresses from (--ip-range).
    ip_range: typing.Optional[str] = None

    @property
    def version(self):
        return ipaddress.ip_network(self.cidr).version


@dataclasses.dataclass
class Network:
    """A Docker network and what the backend made of it."""

    id: str
    subnets: typing.List[Subnet] = dataclasses.field(default_factory=list)
    name: typing.Optional[str] = None
    project: typing.Optional[typing.List[str]] = None
    route_targets: typing.List[str] = dataclasses.field(default_factory=list)
    import_targets: typing.List[str] = dataclasses.field(
        default_factory=list)
    export_targets: typing.List[str] = dataclasses.field(
        default_factory=list)
    existing: typing.Optional[str] = None
    ipam: typing.Optional[str] = None
    mtu: typing.Optional[int] = None
    enable_ipv6: bool = False
    internal: bool = False
    # Existing groups asked for; None: the network's own group.
    security_groups: typing.Optional[typing.List[str]] = None
    # Filled by the backend.
    uuid: typing.Optional[str] = None
    project_uuid: typing.Optional[str] = None
    # Addresses come from the driver's own IPAM (--ipam-driver).
    own_ipam: bool = False
    # [{'to': fq_name, 'uuid': ...}] every interface of the network gets.
    security_group_refs: typing.List[dict] = dataclasses.field(
        default_factory=list)
    # com.docker.network.bridge.enable_ip_masquerade (bridge ports).
    masquerade: bool = True
    # opencontrail.floating_ip_pool: where -p takes its floating IPs
    # (DOMAIN:PROJECT:NETWORK:POOL); None: [contrail] floating_ip_pool.
    floating_ip_pool: typing.Optional[str] = None

    def gateway(self, version):
        for subnet in self.subnets:
            if subnet.version == version and subnet.gateway:
                return subnet.gateway
        return None

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data):
        data = dict(data)
        data['subnets'] = [Subnet(**s) for s in data.get('subnets', [])]
        return cls(**data)


# Settings of a network users give, by the option they give it with.
OPTION_NAMES = {
    'mtu': 'mtu', 'enable_ipv6': '--ipv6', 'internal': '--internal',
    'subnets': '--subnet/--gateway', 'name': 'name', 'project': 'tenant',
    'ipam': 'opencontrail.ipam', 'route_targets': 'rt',
    'import_targets': 'opencontrail.rt.import',
    'export_targets': 'opencontrail.rt.export',
    'security_groups': 'opencontrail.security_groups',
    'masquerade': 'com.docker.network.bridge.enable_ip_masquerade',
    'floating_ip_pool': 'opencontrail.floating_ip_pool',
}


def option_differences(old, new):
    """How two networks (as dicts) differ, one text per option."""
    found = []
    for key, option in OPTION_NAMES.items():
        if old.get(key) != new.get(key):
            found.append('%s is %s, asked %s' % (option, old.get(key),
                                                 new.get(key)))
    return found


@dataclasses.dataclass
class Endpoint:
    """A Docker endpoint: one interface of one container on one network."""

    id: str
    network_id: str
    mac: typing.Optional[str] = None
    ipv4: typing.Optional[str] = None  # CIDR form, as Docker gives it
    ipv6: typing.Optional[str] = None
    host: typing.Optional[str] = None
    # Docker's CreateEndpoint named exposed or published ports.
    ports: bool = False
    # Filled by the backend.
    uuid: typing.Optional[str] = None
    sandbox: typing.Optional[str] = None
    vm_uuid: typing.Optional[str] = None
    vm_name: typing.Optional[str] = None
    # Addresses of the driver's IPAM the endpoint took over (backend ids).
    instance_ips: typing.List[str] = dataclasses.field(default_factory=list)

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data):
        return cls(**data)


# libnetwork's protocol numbers, as ProgramExternalConnectivity gives them.
PROTOCOLS = {6: 'tcp', 17: 'udp', 132: 'sctp'}


@dataclasses.dataclass(frozen=True)
class PortBinding:
    """One ``-p``: a host port (or range) for a container's port.

    ``host_port`` 0: any free port; ``host_ip`` '': every host address.
    """

    proto: str
    port: int
    host_ip: str = ''
    host_port: int = 0
    host_port_end: int = 0


@dataclasses.dataclass(frozen=True)
class ExposedPort:
    """One ``--expose`` (published ports are exposed too)."""

    proto: str
    port: int


@dataclasses.dataclass
class Pool:
    """An IPAM pool: what RequestPool asked, and what it got.

    Docker repeats nothing of RequestPool on address requests but the pool
    ID, so the ID carries all of it (:func:`opencontrail_net.ipam.pool_id`).
    """

    cidr: typing.Optional[str] = None
    range: typing.Optional[str] = None     # --ip-range: addresses come from it
    v6: bool = False
    project: typing.Optional[typing.List[str]] = None
    ipam: typing.Optional[str] = None
    network: typing.Optional[str] = None   # an existing Contrail network
    gateway: typing.Optional[str] = None   # the existing network's own

    @property
    def key(self):
        """Names the pool in the backend: one pool per subnet and project."""
        return '%s/%s' % (':'.join(self.project or ()), self.cidr)


@dataclasses.dataclass
class JoinInfo:
    """What Docker must be told to bring an endpoint into a sandbox."""

    src_name: str
    dst_prefix: str = 'eth'
    gateway: typing.Optional[str] = None
    gateway_ipv6: typing.Optional[str] = None
    static_routes: typing.List[dict] = dataclasses.field(
        default_factory=list)
    disable_gateway_service: bool = False
    # The host end, for EndpointOperInfo.
    host_if: typing.Optional[str] = None
