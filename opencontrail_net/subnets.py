"""Subnet arithmetic and pool rules the backends share, below them and
the IPAM layer."""

import time

from oslo_log import log as logging

from opencontrail_net import exception

LOG = logging.getLogger(__name__)

# How long a pool taken but not yet made a network stays its taker's:
# another RequestPool of that subnet meanwhile is refused (two creates of
# one subnet at once); later, it is a leftover and taken over.
TAKING_GRACE = 60.0


def check_taker(pool, owner, taken):
    """Refuse ``pool`` (a model.Pool asked by request ``pool.owner``)
    while another request, ``owner``, took it less than TAKING_GRACE
    seconds ago (``taken``: when, in time.time()); a leftover taken longer
    ago is taken over, logged."""
    if not owner or owner == pool.owner:
        return
    age = time.time() - (taken or 0)
    if age < TAKING_GRACE:
        raise exception.Conflict(
            reason='pool %s was taken %.0f s ago by another network '
            'create, not done yet: try again once it is, or use another '
            'subnet' % (pool.cidr, max(age, 0)))
    LOG.warning('Pool %s was taken %.0f s ago by a network create that '
                'never finished: taken over', pool.cidr, age)


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
