"""Subnet arithmetic the backends share, below them and the IPAM layer."""

from opencontrail_net import exception


def free_subnet(defaults, taken):
    """The first subnet of the default pools that overlaps none taken."""
    for rng, length in defaults:
        if length < rng.prefixlen:
            continue
        for candidate in rng.subnets(new_prefix=length):
            if not any(candidate.overlaps(t) for t in taken):
                return str(candidate)
    raise exception.PoolExhausted(pool='the default pools %s' % ', '.join(
        '%s:%d' % (r, n) for r, n in defaults))
