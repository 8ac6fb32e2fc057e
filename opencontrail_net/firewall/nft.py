"""The names of the driver's nftables table and its chains, and builders
of its rules in libnftables' JSON: a rule is a document, not a command
line."""

import ipaddress

FAMILY = 'inet'
TABLE = 'opencontrail_net'
PUBLISH = 'publish'
POSTROUTING = 'postrouting'
FORWARD = 'forward'
INPUT = 'input'
# Every bridge of the driver is named so; Docker's own bridges so.
OUR_BRIDGES = 'ocbr*'
DOCKER_BRIDGES = ('docker0', 'br-*')


def rule(chain, comment, expr):
    return {'add': {'rule': {'family': FAMILY, 'table': TABLE,
                             'chain': chain, 'comment': comment,
                             'expr': expr}}}


def match(left, right, op='=='):
    return {'match': {'op': op, 'left': left, 'right': right}}


def payload(protocol, field):
    return {'payload': {'protocol': protocol, 'field': field}}


def meta(key):
    return {'meta': {'key': key}}


def prefix(cidr):
    net = ipaddress.ip_network(cidr, strict=False)
    return {'prefix': {'addr': str(net.network_address),
                       'len': net.prefixlen}}


def ip(version):
    return 'ip' if version == 4 else 'ip6'
