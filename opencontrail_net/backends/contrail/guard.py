"""What the operator allows Docker users to reach on a shared cluster.

Anyone who may use the Docker socket creates networks with the driver's
(admin) credentials: by default in any project, with any route target,
attached to any virtual-network, referring to any policy, router,
security group or floating-ip pool. Each list in ``[contrail]`` narrows
one of those; unset, nothing is narrowed. A network that asks for more
is refused before anything is made, naming the option that refuses it.

Entries are fq_names (``DOMAIN:PROJECT:NAME``; the domain may be left
out) with shell-style wildcards (``default-domain:team-a:*``); route
targets are ``ASN:N`` or ``ASN:N-M`` ranges (also ``A.B.C.D:N-M``).
"""

import fnmatch
import ipaddress

from oslo_config import cfg

from opencontrail_net import exception

CONFIG_OPTS = [
    cfg.ListOpt('allowed_projects', default=[],
                help='Projects (DOMAIN:PROJECT, wildcards allowed) Docker '
                     'networks may be made in (-o tenant=, the "project" '
                     'option, IPAM pools). Empty: any.'),
    cfg.ListOpt('allowed_route_targets', default=[],
                help='Route targets Docker networks may carry (rt, '
                     'opencontrail.rt.import and .export, labels): ASN:N '
                     'or ASN:N-M ranges (also A.B.C.D:N-M). Empty: any.'),
    cfg.ListOpt('allowed_networks', default=[],
                help='Existing virtual-networks (DOMAIN:PROJECT:NAME, '
                     'wildcards allowed) that -o opencontrail.network may '
                     'attach. Empty: any.'),
    cfg.ListOpt('allowed_policies', default=[],
                help='network-policies (DOMAIN:PROJECT:NAME, wildcards '
                     'allowed) that -o opencontrail.policies may name. '
                     'Empty: any.'),
    cfg.ListOpt('allowed_routers', default=[],
                help='logical-routers (DOMAIN:PROJECT:NAME, wildcards '
                     'allowed) that -o opencontrail.router may join. '
                     'Empty: any.'),
    cfg.ListOpt('allowed_security_groups', default=[],
                help='security-groups (DOMAIN:PROJECT:NAME, wildcards '
                     'allowed) that opencontrail.security_groups may '
                     'name. Empty: any.'),
    cfg.ListOpt('allowed_floating_ip_pools', default=[],
                help='floating-ip-pools (DOMAIN:PROJECT:NETWORK:POOL, '
                     'wildcards allowed) that -o '
                     'opencontrail.floating_ip_pool may name. Empty: '
                     'any.'),
]

# The option each kind of reference is narrowed by.
OPTION = {'project': 'allowed_projects',
          'virtual-network': 'allowed_networks',
          'network-policy': 'allowed_policies',
          'logical-router': 'allowed_routers',
          'security-group': 'allowed_security_groups',
          'floating-ip-pool': 'allowed_floating_ip_pools'}
SIZE = {'project': 2, 'virtual-network': 3, 'network-policy': 3,
        'logical-router': 3, 'security-group': 3, 'floating-ip-pool': 4}


class Guard:
    """Checks what a Docker network asks for against the lists."""

    def __init__(self, opts):
        self.opts = opts
        self.rt_ranges = [_rt_range(e) for e in opts.allowed_route_targets]

    def _patterns(self, kind):
        option = OPTION[kind]
        size = SIZE[kind]
        return option, [
            ':'.join([self.opts.domain] + entry.split(':'))
            if entry.count(':') == size - 2 else entry
            for entry in getattr(self.opts, option)]

    def check(self, kind, fq_name, key, value):
        """Refuse ``fq_name`` (a list) of ``kind``, asked by option
        ``key`` = ``value``, unless its list allows it."""
        option, patterns = self._patterns(kind)
        if not patterns:
            return
        name = ':'.join(fq_name)
        if any(fnmatch.fnmatchcase(name, p) for p in patterns):
            return
        raise exception.InvalidOption(
            key=key, value=value,
            reason='%s %s is not allowed here ([contrail] %s)' % (
                kind, name, option))

    def check_route_targets(self, targets, key='rt'):
        """Refuse a route target outside allowed_route_targets."""
        if not self.rt_ranges:
            return
        for target in targets or ():
            admin, number = _rt(target)
            if not any(admin == a and lo <= number <= hi
                       for a, lo, hi in self.rt_ranges):
                raise exception.InvalidOption(
                    key=key, value=target,
                    reason='route target %s is not allowed here ([contrail]'
                    ' allowed_route_targets)' % target)


def _rt(text):
    """(administrator, number) of ``[target:]ADMIN:N``."""
    if text.startswith('target:'):
        text = text[len('target:'):]
    admin, _, number = text.rpartition(':')
    try:
        ipaddress.ip_address(admin)
    except ValueError:
        admin = str(int(admin))
    return admin, int(number)


def _rt_range(entry):
    """(administrator, low, high) of ``ADMIN:N`` or ``ADMIN:N-M``."""
    text = entry.strip()
    if text.startswith('target:'):
        text = text[len('target:'):]
    admin, _, numbers = text.rpartition(':')
    low, _, high = numbers.partition('-')
    try:
        parsed = _rt('%s:%s' % (admin, low))
        top = int(high) if high else parsed[1]
    except ValueError:
        raise exception.InvalidConfig(
            option='[contrail] allowed_route_targets', value=entry,
            reason='not ASN:N or ASN:N-M')
    return parsed[0], parsed[1], top
