"""Plain records passed between the libnetwork layer, backends and ports."""

import dataclasses
import ipaddress
import typing


@dataclasses.dataclass
class Subnet:
    """One subnet of a network: a CIDR and its gateway (plain address)."""

    cidr: str
    gateway: typing.Optional[str] = None
    aux_addresses: typing.Dict[str, str] = dataclasses.field(
        default_factory=dict)

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
    # [{'to': fq_name, 'uuid': ...}] every interface of the network gets.
    security_group_refs: typing.List[dict] = dataclasses.field(
        default_factory=list)

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
    # Filled by the backend.
    uuid: typing.Optional[str] = None
    sandbox: typing.Optional[str] = None
    vm_uuid: typing.Optional[str] = None
    vm_name: typing.Optional[str] = None

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data):
        return cls(**data)


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
