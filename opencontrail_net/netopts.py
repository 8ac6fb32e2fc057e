"""Validation of Docker requests and network options (``-o KEY=VALUE``)."""

import difflib
import ipaddress
import re
import uuid

from opencontrail_net import exception
from opencontrail_net import ids
from opencontrail_net import model
from opencontrail_net import optnames

GENERIC = 'com.docker.network.generic'
# The address spaces of the driver's own IPAM (GetDefaultAddressSpaces).
OWN_SPACES = ('OpenContrailLocal', 'OpenContrailGlobal')

# Every key a user may give with -o: {key: optnames.Option}.
KEYS = optnames.accepted(optnames.OPT)
# Network fields whose -o values are route targets (see route_targets).
TARGET_FIELDS = ('route_targets', 'import_targets', 'export_targets')

_NAME_RE = re.compile(r'^[^:/\s][^:/]{0,254}$')
# Contrail keeps these route-target numbers of its own ASN to itself.
RESERVED_RT = (8000000, 16777216)


def require_id(body, key):
    """A full Docker ID from the request body: ``NetworkID`` may be swarm's."""
    value = body.get(key)
    if value is None or value == '':
        raise exception.InvalidRequest(reason='missing %s' % key)
    if not isinstance(value, str):
        raise exception.InvalidRequest(
            reason='%s must be a string, not %s' % (key,
                                                    type(value).__name__))
    if not ids.is_docker_id(value, network=key == 'NetworkID'):
        shown = value if len(value) <= 80 else value[:80] + '...'
        raise exception.InvalidRequest(
            reason='%s %r is not a Docker ID (64 lowercase hex characters%s)'
            % (key, shown, ', or 25 of [0-9a-z] for swarm'
               if key == 'NetworkID' else ''))
    return value


def route_targets(key, value, rules):
    """Parse a comma list of route targets into ``target:X:N`` strings.

    ``rules`` is ``(global ASN, 4-byte ASNs allowed)``, or a callable
    giving it: what the Contrail API server refuses is refused here first,
    with a message that names the value.
    """
    result = []
    for item in (v.strip() for v in value.split(',')):
        if not item:
            continue
        target = _route_target(key, item, rules)
        if target not in result:
            result.append(target)
    return result


def _route_target(key, item, rules):
    text = item[len('target:'):] if item.startswith('target:') else item
    parts = text.split(':')

    def bad(why):
        return exception.InvalidOption(key=key, value=item, reason=why)
    if len(parts) != 2 or not parts[1].isdigit():
        raise bad('a route target is ASN:N or A.B.C.D:N')
    number = int(parts[1])
    try:
        ipaddress.IPv4Address(parts[0])
    except ValueError:
        if not parts[0].isdigit():
            raise bad('a route target is ASN:N or A.B.C.D:N')
        _check_asn(int(parts[0]), number, rules() if callable(rules)
                   else rules, bad)
    else:
        if number > 0xFFFF:
            raise bad('N must be at most 65535 after an IPv4 address')
    return 'target:%s:%d' % (parts[0], number)


def _check_asn(asn, number, rules, bad):
    global_asn, four_byte = rules
    top = 0xFFFFFFFF if four_byte else 0xFFFF
    if not 0 < asn <= top:
        hint = '' if four_byte else (' (4-byte ASNs need enable_4byte_as '
                                     'in Contrail\'s global-system-config)')
        raise bad('ASN must be 1 to %d%s' % (top, hint))
    limit = 0xFFFF if asn > 0xFFFF else 0xFFFFFFFF
    if number > limit:
        raise bad('N must be at most %d with ASN %d' % (limit, asn))
    low, high = RESERVED_RT
    if asn == global_asn and (number < 1 or low <= number <= high):
        raise bad('%d to %d (and 0) are reserved by Contrail in its own '
                  'ASN %d' % (low, high, asn))


def _fq_name(key, value, sizes, expected):
    """``value`` as a list of name parts, 1 to ``max(sizes)`` of them; the
    backend fills in the domain and project of a shorter one."""
    parts = value.split(':')
    if len(parts) not in sizes or not all(_NAME_RE.match(p) for p in parts):
        raise exception.InvalidOption(key=key, value=value,
                                      reason='expected %s' % expected)
    return parts


def _project(key, value):
    return _fq_name(key, value, (1, 2), 'PROJECT or DOMAIN:PROJECT')


def _ipam(key, value):
    _fq_name(key, value, (1, 2, 3), 'NAME, PROJECT:NAME or '
             'DOMAIN:PROJECT:NAME of a network-ipam')
    return value


def _names(key, value, plural, singular, unique=False):
    """A comma list of NAME, PROJECT:NAME or DOMAIN:PROJECT:NAME."""
    names = [v.strip() for v in value.split(',') if v.strip()]
    if not names:
        raise exception.InvalidOption(
            key=key, value=value, reason='expected a comma list of %s '
            '(NAME, PROJECT:NAME or DOMAIN:PROJECT:NAME)' % plural)
    for name in names:
        _fq_name(key, name, (1, 2, 3), 'NAME, PROJECT:NAME or '
                 'DOMAIN:PROJECT:NAME of a %s' % singular)
    if unique and len(set(names)) != len(names):
        raise exception.InvalidOption(
            key=key, value=value, reason='a %s is named twice' % singular)
    return names


def _security_groups(key, value):
    return _names(key, value, 'security groups', 'security group')


def endpoint_security_groups(body):
    """The groups a CreateEndpoint's ``--driver-opt`` (``docker network
    connect``, ``docker run --network name=NET,driver-opt=...``) names
    instead of the network's, or None."""
    key = optnames.by_field('security_groups').name
    options = body.get('Options')
    if not isinstance(options, dict) or options.get(key) is None:
        return None
    value = options[key]
    if not isinstance(value, str):
        raise exception.InvalidOption(key=key, value=value,
                                      reason='expected a string')
    return _security_groups(key, value)


def _policies(key, value):
    return _names(key, value, 'network-policies', 'network-policy',
                  unique=True)


def _router(key, value):
    _fq_name(key, value, (1, 2, 3), 'NAME, PROJECT:NAME or '
             'DOMAIN:PROJECT:NAME of a logical-router')
    return value


# A Docker network's name (daemon/names.RestrictedNamePattern) or ID.
_DOCKER_NAME_RE = re.compile(r'^[a-zA-Z0-9][a-zA-Z0-9_.-]*$')


def _allow(key, value):
    """A comma list of Docker networks: names, IDs or ID prefixes (the
    driver turns each into a full ID)."""
    names = [v.strip() for v in value.split(',') if v.strip()]
    if not names:
        raise exception.InvalidOption(
            key=key, value=value, reason='expected a comma list of Docker '
            'networks (names or IDs)')
    for name in names:
        if not _DOCKER_NAME_RE.match(name):
            raise exception.InvalidOption(
                key=key, value=value, reason='%r is not the name or ID of '
                'a Docker network' % name)
    if len(set(names)) != len(names):
        raise exception.InvalidOption(
            key=key, value=value, reason='a network is named twice')
    return names


def _floating_ip_pool(key, value):
    _fq_name(key, value, (3, 4), 'DOMAIN:PROJECT:NETWORK:POOL (or '
             'PROJECT:NETWORK:POOL) of a floating-ip-pool')
    return value


def _existing(key, value):
    try:
        return str(uuid.UUID(value))
    except ValueError:
        pass
    parts = value.split(':')
    if len(parts) != 3 or not all(_NAME_RE.match(p) for p in parts):
        raise exception.InvalidOption(
            key=key, value=value, reason='expected a uuid or '
            'DOMAIN:PROJECT:NAME of an existing Contrail network')
    return value


def _mtu(key, value):
    try:
        mtu = int(value)
    except (TypeError, ValueError):
        mtu = None
    if mtu is None or not 68 <= mtu <= 65535:
        raise exception.InvalidOption(key=key, value=value,
                                      reason='MTU must be 68 to 65535')
    return mtu


def _name(key, value):
    if not _NAME_RE.match(value):
        raise exception.InvalidOption(
            key=key, value=value,
            reason='1 to 255 characters without ":" or "/"')
    return value


def text(value):
    # ipaddress takes a number for an address: Docker sends only text.
    if not isinstance(value, str):
        raise TypeError('%r is not a string' % (value,))
    return value


def _optional(value):
    """A string field that Docker leaves empty (or out) when unset."""
    return None if value is None or value == '' else text(value)


def _ipam_data(entries, version, key):
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise exception.InvalidRequest(reason='%s must be a list' % key)
    subnets = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise exception.InvalidRequest(reason='%s entry is not an object'
                                           % key)
        try:
            pool = ipaddress.ip_network(text(entry.get('Pool')),
                                        strict=False)
            gateway = _optional(entry.get('Gateway'))
            if gateway is not None:
                gateway = ipaddress.ip_interface(gateway).ip
            aux = entry.get('AuxAddresses')
            if aux is not None and not isinstance(aux, dict):
                raise TypeError('AuxAddresses is not an object')
            aux = {str(k): str(ipaddress.ip_interface(text(v)).ip)
                   for k, v in (aux or {}).items()}
        except (TypeError, ValueError, AttributeError) as exc:
            raise exception.InvalidRequest(reason='bad %s: %s' % (key, exc))
        if pool.version != version:
            raise exception.InvalidRequest(
                reason='%s holds an IPv%d pool %s' % (key, pool.version,
                                                      pool))
        if gateway is not None and gateway not in pool:
            raise exception.InvalidRequest(
                reason='gateway %s is outside %s' % (gateway, pool))
        subnets.append(model.Subnet(
            cidr=str(pool), gateway=str(gateway) if gateway else None,
            aux_addresses=aux))
    return subnets


# Docker's own keys in a CreateNetwork's Options, beside the user's.
_DOCKER_KEYS = (GENERIC, 'com.docker.network.enable_ipv6',
                'com.docker.network.internal')


def _flat_options(options):
    """The user's ``-o`` options of an AllocateNetwork request.

    Swarm's manager sends them as one flat map of strings, not under
    com.docker.network.generic as CreateNetwork carries them.
    """
    flat = {}
    for key, value in options.items():
        if key in _DOCKER_KEYS:
            continue
        if isinstance(value, (dict, list)) or value is None:
            raise exception.InvalidRequest(
                reason='Options[%r] must be a string' % (key,))
        flat[key] = value
    return flat


def unknown_option(key):
    """Why ``key`` is refused: unknown, the closest known key, the rest."""
    close = difflib.get_close_matches(key, KEYS, n=1, cutoff=0.6)
    return 'unknown option%s; known: %s' % (
        '; did you mean %s?' % close[0] if close else '',
        ', '.join(sorted(KEYS)))


def parse_network(body, rt_rules=(64512, False), flat=False):
    """Turn a CreateNetwork request into a validated Network record.

    ``rt_rules``: see :func:`route_targets`. ``flat``: the request is an
    AllocateNetwork, whose options are a flat map (see _flat_options).
    """
    network_id = require_id(body, 'NetworkID')
    options = body.get('Options')
    options = {} if options is None else options
    if not isinstance(options, dict):
        raise exception.InvalidRequest(reason='Options must be an object')
    generic = options.get(GENERIC)
    generic = {} if generic is None else generic
    if not isinstance(generic, dict):
        raise exception.InvalidRequest(reason='%s must be an object'
                                       % GENERIC)
    items = list(generic.items())
    if flat:
        items = list(_flat_options(options).items()) + items
    net = model.Network(
        id=network_id,
        subnets=(_ipam_data(body.get('IPv4Data'), 4, 'IPv4Data') +
                 _ipam_data(body.get('IPv6Data'), 6, 'IPv6Data')),
        # (The entries are known to be objects in lists by now.)
        own_ipam=any(e.get('AddressSpace') in OWN_SPACES for e in
                     (body.get('IPv4Data') or []) +
                     (body.get('IPv6Data') or [])),
        enable_ipv6=bool(options.get('com.docker.network.enable_ipv6')),
        internal=bool(options.get('com.docker.network.internal')))
    _apply_options(net, items, rt_rules)
    return net


def _apply_options(net, items, rt_rules):
    """Set ``net``'s fields from the user's ``-o`` (key, value) items.

    Two keys of one setting (an option's aliases) must agree; Docker's
    own keys (com.docker.*) that set nothing here are let through.
    """
    seen = {}
    for key, value in items:
        option = KEYS.get(key)
        if option is None:
            if key.startswith('com.docker.'):
                continue    # Docker's own, for every driver.
            raise exception.InvalidOption(
                key=key, value=value, reason=unknown_option(key))
        if not isinstance(value, str):
            value = str(value)
        if seen.get(option.field, value) != value:
            raise exception.InvalidOption(
                key=key, value=value, reason='conflicts with another key '
                'for the same setting')
        seen[option.field] = value
        setattr(net, option.field,
                _option_value(option.field, key, value, rt_rules))


def _option_value(field, key, value, rt_rules):
    """The value of the ``-o`` option ``key`` for Network ``field``."""
    if field in TARGET_FIELDS:
        return route_targets(key, value, rt_rules)
    return PARSERS[field](key, value)


def _bool(key, value):
    lowered = value.strip().lower()
    if lowered in ('true', '1', 'yes', 'on'):
        return True
    if lowered in ('false', '0', 'no', 'off'):
        return False
    raise exception.InvalidOption(key=key, value=value,
                                  reason='not a boolean (true or false)')


# How the value of each -o option but route targets is read, by the
# Network field it sets: parser(key, value).
PARSERS = {
    'name': _name, 'project': _project, 'existing': _existing,
    'ipam': _ipam, 'security_groups': _security_groups,
    'policies': _policies, 'router': _router, 'allow': _allow,
    'floating_ip_pool': _floating_ip_pool, 'mtu': _mtu,
    'masquerade': _bool,
}


def allocated_options(body):
    """The options an AllocateNetwork hands to every worker's CreateNetwork.

    The user's options as given (``body`` is already validated by
    parse_network): a worker that must make the network itself makes it
    the same.
    """
    options = body.get('Options') or {}
    result = {str(k): str(v) for k, v in _flat_options(options).items()}
    for key, value in (options.get(GENERIC) or {}).items():
        result[str(key)] = str(value)
    return result


def parse_interface(body):
    """The Interface of a CreateEndpoint request: (ipv4, ipv6, mac)."""
    iface = body.get('Interface')
    iface = {} if iface is None else iface
    if not isinstance(iface, dict):
        raise exception.InvalidRequest(reason='Interface must be an object')
    result = []
    for key, version in (('Address', 4), ('AddressIPv6', 6)):
        value = iface.get(key)
        if value is not None and value != '':
            try:
                addr = ipaddress.ip_interface(text(value))
            except (TypeError, ValueError):
                raise exception.InvalidRequest(
                    reason='Interface.%s %r is not an address/prefix'
                    % (key, value))
            if addr.version != version:
                raise exception.InvalidRequest(
                    reason='Interface.%s %r is not IPv%d' % (key, value,
                                                             version))
            value = str(addr)
        result.append(value or None)
    mac = iface.get('MacAddress')
    mac = None if mac == '' else mac
    if mac is not None:
        if not isinstance(mac, str) or not re.fullmatch(
                r'([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}', mac):
            raise exception.InvalidRequest(
                reason='Interface.MacAddress %r is not a MAC' % (mac,))
        mac = mac.lower()
    result.append(mac)
    return tuple(result)


# Shared with the IPAM driver's --ipam-opt.
parse_project = _project
parse_ipam = _ipam
parse_existing = _existing
