"""The libnetwork IpamDriver semantics (``--ipam-driver opencontrail``).

Docker asks for a pool, then for the gateway and aux addresses, then
creates the network, then asks for one address per endpoint. The pool ID
it gets back is the only thing it repeats, so the ID carries the pool's
whole context; addresses live in the backend, which on a Contrail cluster
lets Contrail pick them, so they never collide with anyone's.
"""

import ipaddress
import uuid

from oslo_config import cfg
from oslo_log import log as logging

from opencontrail_net import exception
from opencontrail_net import model
from opencontrail_net import netopts
from opencontrail_net import optnames

LOG = logging.getLogger(__name__)

LOCAL_SPACE, GLOBAL_SPACE = netopts.OWN_SPACES
GATEWAY = 'com.docker.network.gateway'
_ID_PREFIX = 'ocn1'

OPTS = [
    cfg.ListOpt('default_pools',
                default=['10.128.0.0/9:24', 'fd00:ac10::/32:64'],
                help='Where pools come from when "docker network create" '
                     'gives no --subnet: RANGE:PREFIXLEN items, the first '
                     'free subnet of that length in the project is taken.'),
]

# --ipam-opt KEY=VALUE: {key: optnames.Option}.
POOL_OPTIONS = optnames.accepted(optnames.IPAM_OPT)
# How each --ipam-opt value is read, by the Pool field it sets.
POOL_PARSERS = {'project': netopts.parse_project,
                'ipam': netopts.parse_ipam,
                'network': netopts.parse_existing}


def register_opts(conf):
    conf.register_opts(OPTS, group='ipam')


def pool_id(pool):
    """The pool ID Docker keeps: every field of ``pool``, ';'-separated."""
    parts = [_ID_PREFIX, pool.cidr, pool.range or '',
             '6' if pool.v6 else '4', ':'.join(pool.project or ()),
             pool.ipam or '', pool.network or '', pool.gateway or '']
    if pool.owner:
        parts.append(pool.owner)
    return ';'.join(parts)


def parse_pool_id(body):
    value = body.get('PoolID')
    if not isinstance(value, str) or not value.startswith(_ID_PREFIX + ';'):
        raise exception.InvalidRequest(reason='PoolID %r is not one of this '
                                       'driver\'s pools' % (value,))
    parts = value.split(';')
    # 8 fields before pools had owners (networks made then keep them).
    if len(parts) == 8:
        parts.append('')
    if len(parts) != 9:
        raise exception.InvalidRequest(reason='PoolID %r is malformed'
                                       % value)
    _p, cidr, rng, version, project, ipam, network, gateway, owner = parts
    try:
        ipaddress.ip_network(cidr)
        if rng:
            ipaddress.ip_network(rng)
    except ValueError:
        raise exception.InvalidRequest(reason='PoolID %r is malformed'
                                       % value)
    return model.Pool(cidr=cidr, range=rng or None, v6=version == '6',
                      project=project.split(':') if project else None,
                      ipam=ipam or None, network=network or None,
                      gateway=gateway or None, owner=owner or None)


def _cidr(body, key, v6):
    value = body.get(key) or None
    if value is None:
        return None
    try:
        net = ipaddress.ip_network(value)
    except (TypeError, ValueError) as exc:
        raise exception.InvalidRequest(reason='bad %s %r: %s' % (key, value,
                                                                 exc))
    if (net.version == 6) != v6:
        raise exception.InvalidRequest(reason='%s %s is not IPv%d' % (
            key, net, 6 if v6 else 4))
    return net


def default_pools(conf, v6):
    """[(range, prefixlen)] of the configured default pools of a family."""
    pools = []
    for item in conf.ipam.default_pools:
        cidr, _sep, length = item.rpartition(':')
        net = ipaddress.ip_network(cidr)
        if (net.version == 6) == v6:
            pools.append((net, int(length)))
    return pools


class IpamDriver:
    """Serves the IpamDriver calls of the libnetwork remote protocol."""

    def __init__(self, conf, backend):
        self.conf = conf
        self.backend = backend

    def calls(self):
        return {
            'IpamDriver.GetCapabilities': self.get_capabilities,
            'IpamDriver.GetDefaultAddressSpaces': self.address_spaces,
            'IpamDriver.RequestPool': self.request_pool,
            'IpamDriver.ReleasePool': self.release_pool,
            'IpamDriver.RequestAddress': self.request_address,
            'IpamDriver.ReleaseAddress': self.release_address,
        }

    def get_capabilities(self, body):
        """IpamDriver.GetCapabilities.

        No MAC: an address never depends on it. No replay: pools and
        addresses live in the backend, which outlives dockerd and us.
        """
        return {'RequiresMACAddress': False, 'RequiresRequestReplay': False}

    def address_spaces(self, body):
        """IpamDriver.GetDefaultAddressSpaces."""
        return {'LocalDefaultAddressSpace': LOCAL_SPACE,
                'GlobalDefaultAddressSpace': GLOBAL_SPACE}

    def request_pool(self, body):
        """IpamDriver.RequestPool: --subnet, --ip-range, --ipam-opt."""
        v6 = body.get('V6')
        if not isinstance(v6, bool) and v6 is not None:
            raise exception.InvalidRequest(reason='V6 must be a boolean')
        v6 = bool(v6)
        net = _cidr(body, 'Pool', v6)
        sub = _cidr(body, 'SubPool', v6)
        if sub is not None and net is None:
            raise exception.InvalidRequest(
                reason='--ip-range %s needs a --subnet' % sub)
        if sub is not None and not sub.subnet_of(net):
            raise exception.InvalidRequest(
                reason='--ip-range %s is outside --subnet %s' % (sub, net))
        # Each RequestPool owns what it takes: a ReleasePool of another
        # request's pool ID (a create that lost a race) gives up nothing.
        pool = model.Pool(cidr=str(net) if net else None,
                          range=str(sub) if sub else None, v6=v6,
                          owner=uuid.uuid4().hex[:16])
        self._options(pool, body.get('Options'))
        pool = self.backend.request_pool(pool, default_pools(self.conf, v6))
        data = {}
        if pool.gateway:
            data[GATEWAY] = '%s/%s' % (pool.gateway, pool.cidr.split('/')[1])
        LOG.info('Pool %s (range %s) for project %s', pool.cidr, pool.range,
                 pool.project)
        return {'PoolID': pool_id(pool), 'Pool': pool.cidr, 'Data': data}

    @staticmethod
    def _options(pool, options):
        if options is None:
            return
        if not isinstance(options, dict):
            raise exception.InvalidRequest(reason='Options must be an object')
        for key, value in options.items():
            option = POOL_OPTIONS.get(key)
            if option is None:
                if key.startswith('opencontrail.'):
                    raise exception.InvalidOption(
                        key=key, value=value, reason='unknown --ipam-opt; '
                        'known: %s' % ', '.join(sorted(POOL_OPTIONS)))
                continue
            value = str(value)
            field = option.pool_field
            setattr(pool, field, POOL_PARSERS[field](key, value))
            if ';' in value:
                raise exception.InvalidOption(key=key, value=value,
                                              reason='";" is not allowed')

    def release_pool(self, body):
        """IpamDriver.ReleasePool."""
        self.backend.release_pool(parse_pool_id(body))
        return {}

    def _address(self, body, pool):
        value = body.get('Address') or None
        if value is None:
            return None
        try:
            addr = ipaddress.ip_interface(value).ip
        except (TypeError, ValueError):
            raise exception.InvalidRequest(reason='Address %r is not an IP '
                                           'address' % (value,))
        if addr not in ipaddress.ip_network(pool.cidr):
            raise exception.InvalidRequest(
                reason='address %s is outside pool %s' % (addr, pool.cidr))
        return str(addr)

    def request_address(self, body):
        """IpamDriver.RequestAddress: the gateway, aux and endpoint ones."""
        pool = parse_pool_id(body)
        address = self._address(body, pool)
        options = body.get('Options') or {}
        if not isinstance(options, dict):
            raise exception.InvalidRequest(reason='Options must be an object')
        gateway = options.get('RequestAddressType') == GATEWAY
        address = self.backend.request_address(pool, address, gateway)
        return {'Address': '%s/%s' % (address, pool.cidr.split('/')[1]),
                'Data': {}}

    def release_address(self, body):
        """IpamDriver.ReleaseAddress."""
        pool = parse_pool_id(body)
        address = self._address(body, pool)
        if address is None:
            raise exception.InvalidRequest(reason='missing Address')
        self.backend.release_address(pool, address)
        return {}
