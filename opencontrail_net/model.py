"""Plain records passed between the libnetwork layer, backends and ports."""

import dataclasses
import ipaddress
import typing

from opencontrail_net import optnames


#: An IPv4 or IPv6 network.
IPNetwork = typing.Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
#: A backend's ref to one of its objects: {'to': fq_name, 'uuid': ...},
#: and what else the backend keeps with it.
Ref = typing.Dict[str, typing.Any]


def address(version: int, value: int
            ) -> typing.Union[ipaddress.IPv4Address, ipaddress.IPv6Address]:
    """The IPv4 or IPv6 address whose integer is ``value``."""
    if version == 4:
        return ipaddress.IPv4Address(value)
    return ipaddress.IPv6Address(value)


def usable(net: IPNetwork, first: int, last: int) -> typing.Tuple[int, int]:
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
    def version(self) -> int:
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
    # opencontrail.policies: existing network-policies, in order.
    policies: typing.Optional[typing.List[str]] = None
    # opencontrail.router: an existing logical-router the network joins.
    router: typing.Optional[str] = None
    # opencontrail.allow: the Docker IDs of the networks it may talk to.
    allow: typing.Optional[typing.List[str]] = None
    # Filled by the backend.
    uuid: typing.Optional[str] = None
    project_uuid: typing.Optional[str] = None
    # Addresses come from the driver's own IPAM (--ipam-driver).
    own_ipam: bool = False
    # [{'to': fq_name, 'uuid': ...}] every interface of the network gets.
    security_group_refs: typing.List[Ref] = dataclasses.field(
        default_factory=list)
    # [{'to': fq_name, 'uuid': ...}] of the policies, in order.
    policy_refs: typing.List[Ref] = dataclasses.field(default_factory=list)
    # {'to': fq_name, 'uuid': ...} of the logical-router, or None.
    router_ref: typing.Optional[Ref] = None
    # Every network this one may talk to, as the backend knows: those of
    # its ``allow`` and those whose ``allow`` names it.
    allowed: typing.List[str] = dataclasses.field(default_factory=list)
    # {'id', 'to', 'uuid', 'sequence'} of each network in ``allow``: its
    # virtual-network and the sequence our policy has there.
    allow_peers: typing.List[Ref] = dataclasses.field(default_factory=list)
    # com.docker.network.bridge.enable_ip_masquerade (bridge ports).
    masquerade: bool = True
    # opencontrail.floating_ip_pool: where -p takes its floating IPs
    # (DOMAIN:PROJECT:NETWORK:POOL); None: [contrail] floating_ip_pool.
    floating_ip_pool: typing.Optional[str] = None

    def gateway(self, version: int) -> typing.Optional[str]:
        for subnet in self.subnets:
            if subnet.version == version and subnet.gateway:
                return subnet.gateway
        return None

    def to_dict(self) -> typing.Dict[str, typing.Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: typing.Mapping[str, typing.Any]) -> 'Network':
        data = dict(data)
        data['subnets'] = [Subnet(**s) for s in data.get('subnets', [])]
        return cls(**data)


def option_differences(old: typing.Mapping[str, typing.Any],
                       new: typing.Mapping[str, typing.Any]
                       ) -> typing.List[str]:
    """How two networks (as dicts) differ, one text per option.

    Each names the option users give the setting with (see
    :mod:`~opencontrail_net.optnames`), in the table's order.
    """
    found = []
    for option in optnames.OPTIONS:
        key = option.field
        if option.compared and old.get(key) != new.get(key):
            found.append('%s is %s, asked %s' % (option.name, old.get(key),
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
    # --driver-opt opencontrail.security_groups: existing groups instead
    # of the network's; None: the network's.
    security_groups: typing.Optional[typing.List[str]] = None
    # Filled by the backend.
    uuid: typing.Optional[str] = None
    sandbox: typing.Optional[str] = None
    vm_uuid: typing.Optional[str] = None
    vm_name: typing.Optional[str] = None
    # Addresses of the driver's IPAM the endpoint took over (backend ids).
    instance_ips: typing.List[str] = dataclasses.field(default_factory=list)
    # [{'to': fq_name, 'uuid': ...}] of security_groups.
    security_group_refs: typing.List[Ref] = dataclasses.field(
        default_factory=list)

    def to_dict(self) -> typing.Dict[str, typing.Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: typing.Mapping[str, typing.Any]
                  ) -> 'Endpoint':
        return cls(**data)


# libnetwork's protocol numbers, as ProgramExternalConnectivity gives them.
PROTOCOLS = {6: 'tcp', 17: 'udp', 132: 'sctp'}


@dataclasses.dataclass(frozen=True)
class PortBinding:
    """One ``-p``: a host port (or range) for a container's port.

    As asked, ``host_port`` 0 is any free port and ``host_port_end`` the
    end of a range; as published, one host port (:meth:`at`), the form a
    port driver reports and a clash is checked on. ``host_ip`` '': every
    address of the host.
    """

    proto: str
    port: int
    host_ip: str = ''
    host_port: int = 0
    host_port_end: int = 0

    def at(self, host_port: int) -> 'PortBinding':
        """The binding published on ``host_port`` alone."""
        return dataclasses.replace(self, host_port=host_port,
                                   host_port_end=host_port)

    def clashes(self, other: 'PortBinding') -> bool:
        """Whether both cannot be published at once on one host (both
        published, on one host port each)."""
        return (self.proto == other.proto and
                self.host_port == other.host_port and
                (not self.host_ip or not other.host_ip or
                 ipaddress.ip_address(self.host_ip) ==
                 ipaddress.ip_address(other.host_ip)))

    def __str__(self) -> str:
        """The host side as -p writes it: ``[IP:]PORT[-END]/PROTO``."""
        ports = '%d' % self.host_port
        if self.host_port_end > self.host_port:
            ports += '-%d' % self.host_port_end
        return '%s%s/%s' % (self.host_ip + ':' if self.host_ip else '',
                            ports, self.proto)


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
    # The RequestPool that took it: only a ReleasePool of that pool ID
    # gives it up (None: a pool ID from before owners).
    owner: typing.Optional[str] = None

    @property
    def key(self) -> str:
        """Names the pool in the backend: one pool per subnet and project."""
        return '%s/%s' % (':'.join(self.project or ()), self.cidr)


@dataclasses.dataclass
class JoinInfo:
    """What Docker must be told to bring an endpoint into a sandbox."""

    src_name: str
    dst_prefix: str = 'eth'
    gateway: typing.Optional[str] = None
    gateway_ipv6: typing.Optional[str] = None
    # Docker's StaticRoutes: {'Destination', 'RouteType', 'NextHop'}.
    static_routes: typing.List[typing.Dict[str, typing.Any]] = \
        dataclasses.field(default_factory=list)
    disable_gateway_service: bool = False
    # The host end, for EndpointOperInfo.
    host_if: typing.Optional[str] = None


class PublishedPorts(typing.TypedDict, total=False):
    """What a backend published for an endpoint (Backend.publish_ports).

    ``ports`` (host side on the published address) and ``container_ip``
    make Docker's portmap in EndpointOperInfo; the other keys show there
    as they are. Empty when nothing was published.
    """

    ports: typing.List[PortBinding]
    container_ip: str
    floating_ip: str
    floating_ip_pool: str


class OrphanGroup(typing.TypedDict):
    """A security group the driver made for a network that does not exist
    (Backend.orphan_groups)."""

    uuid: str
    fq_name: typing.List[str]
    # The Docker network ID it was made for.
    network: str


class AllowPolicy(typing.TypedDict):
    """The driver's own policy between two networks (``-o
    opencontrail.allow``) and the state of both (Backend.allow_policies).
    """

    uuid: str
    fq_name: typing.List[str]
    # The two Docker network IDs.
    networks: typing.List[str]
    # Those of the two whose network is gone.
    gone: typing.List[str]
    # (network ID, backend uuid) of the two that still refer to it.
    ours: typing.List[typing.Tuple[str, str]]
    # Descriptions of anything else that refers to it.
    others: typing.List[str]
