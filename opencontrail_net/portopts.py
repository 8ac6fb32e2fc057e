"""Docker's exposed and published ports: in ProgramExternalConnectivity
requests, and as EndpointOperInfo reports them (Docker's portmap)."""

import ipaddress

from opencontrail_net import exception
from opencontrail_net import model
from opencontrail_net import netopts


def _port(value, what, low=1):
    if (not isinstance(value, int) or isinstance(value, bool) or
            not low <= value <= 65535):
        raise exception.InvalidRequest(
            reason='%s must be a port number, not %r' % (what, value))
    return value


def _proto(entry, what):
    proto = model.PROTOCOLS.get(entry.get('Proto'))
    if proto is None:
        raise exception.InvalidRequest(
            reason='%s.Proto %r is none of %s' % (
                what, entry.get('Proto'), sorted(model.PROTOCOLS)))
    return proto


def _entries(options, key):
    entries = options.get(key)
    if entries is None:
        return []
    if not isinstance(entries, list) or not all(
            isinstance(e, dict) for e in entries):
        raise exception.InvalidRequest(
            reason='%s must be a list of objects' % key)
    return entries


EXPOSED = 'com.docker.network.endpoint.exposedports'
PORTMAP = 'com.docker.network.portmap'


def portmap(container_ip, mappings, host_ip=None):
    """Published ports as Docker's bridge reports them (PortBinding).

    ``mappings``: [model.PortBinding]; ``host_ip`` replaces their own
    (a floating IP is where a Contrail container's ports are published).
    """
    protocols = {v: k for k, v in model.PROTOCOLS.items()}
    return [{'Proto': protocols[m.proto], 'IP': container_ip or '',
             'Port': m.port, 'HostIP': host_ip or m.host_ip or '0.0.0.0',
             'HostPort': m.host_port, 'HostPortEnd': m.host_port}
            for m in mappings]


def has_ports(body):
    """Whether a CreateEndpoint names exposed or published ports (the
    same Options as ProgramExternalConnectivity's; checked there)."""
    options = body.get('Options')
    return isinstance(options, dict) and bool(
        options.get(EXPOSED) or options.get(PORTMAP))


def parse_ports(body):
    """The exposed and published ports of a ProgramExternalConnectivity.

    Returns ([ExposedPort], [PortBinding]).
    """
    options = body.get('Options')
    options = {} if options is None else options
    if not isinstance(options, dict):
        raise exception.InvalidRequest(reason='Options must be an object')
    exposed = []
    for entry in _entries(options, EXPOSED):
        port = model.ExposedPort(_proto(entry, EXPOSED),
                                 _port(entry.get('Port'), EXPOSED + '.Port'))
        if port not in exposed:
            exposed.append(port)
    bindings = []
    for entry in _entries(options, PORTMAP):
        proto = _proto(entry, PORTMAP)
        port = _port(entry.get('Port'), PORTMAP + '.Port')
        host_port = _port(entry.get('HostPort', 0), PORTMAP + '.HostPort',
                          low=0)
        end = _port(entry.get('HostPortEnd', 0) or host_port,
                    PORTMAP + '.HostPortEnd', low=0)
        if end < host_port:
            raise exception.InvalidRequest(
                reason='host port range %d-%d is empty' % (host_port, end))
        host_ip = entry.get('HostIP') or ''
        if host_ip:
            try:
                host_ip = str(ipaddress.ip_address(netopts.text(host_ip)))
            except (TypeError, ValueError):
                raise exception.InvalidRequest(
                    reason='%s.HostIP %r is not an address' % (PORTMAP,
                                                               host_ip))
            if ipaddress.ip_address(host_ip).is_unspecified:
                host_ip = ''
        binding = model.PortBinding(proto, port, host_ip, host_port, end)
        if binding not in bindings:
            bindings.append(binding)
    return exposed, bindings
