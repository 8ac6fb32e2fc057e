"""What one idle host asks of the Contrail API in an hour.

A contrail driver with its defaults, one network and one joined endpoint
(tests/idle_host.py), against the in-process fake or, with
``OCN_CONTRAIL_API=HOST:PORT``, a real server. Counted at the test proxy:
the driver's start-up, one audit round of each kind (the full one of a
process's first audit and every ``periodic.FULL_EVERY``-th, the scoped
others), one held-delete retry round with nothing held, and what
``--others`` networks of another host in the same project add to each.
The hour: 3600 / ``audit_interval`` audits, one full for every
``FULL_EVERY``; 3600 / ``retry_interval`` retry rounds.
Keystone renewals go to Keystone, not the API (about one an hour).

Run as root from the repository:
``python benchmarks/bench_idle.py --others 10``.
"""

import argparse
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from opencontrail_net.audit import periodic  # noqa: E402
from tests import contrail_target  # noqa: E402
from tests import idle_host  # noqa: E402
from tests import netns as nsmod  # noqa: E402


def audit(host, full):
    if full:
        host.audit._rounds = 0
    elif host.audit._rounds % periodic.FULL_EVERY == 0:
        host.audit._rounds += 1
    _report, requests = host.audit_requests()
    return len(requests), sum(host.api.answered())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--others', type=int, default=10,
                        help='networks another host makes in the project')
    parser.add_argument('--audit-interval', type=float, default=300)
    parser.add_argument('--retry-interval', type=float, default=30)
    args = parser.parse_args()
    api = contrail_target.start()
    namespaces = nsmod.Namespaces()
    workdir = tempfile.mkdtemp(prefix='ocnb-')
    hosts = []
    try:
        host = idle_host.IdleHost(api, workdir, netns=namespaces.add())
        hosts.append(host)
        host.start()
        api.reset_requests()
        host.drv.restart()
        start_up = len(api.requests)
        host.start_audit()
        audit(host, True)
        rows = {}
        rows['alone'] = (audit(host, True), audit(host, False))
        other = idle_host.IdleHost(api, workdir, name='other')
        hosts.append(other)
        other.start(networks=args.others, first=100, endpoint=False)
        rows['+%d others' % args.others] = (audit(host, True),
                                            audit(host, False))
        api.reset_requests()
        host.backend.pending.retry(host.backend.networks.delete)
        retry = len(api.requests)
        audits = 3600 / args.audit_interval
        print('server: %s' % ('real ' + os.environ[contrail_target.ENV]
                              if contrail_target.REAL else 'fake'))
        print('start-up: %d requests' % start_up)
        print('held-delete retry round, nothing held: %d requests' % retry)
        print('%-14s %18s %18s %22s' % ('', 'full audit', 'scoped audit',
                                        'per hour (req, kB)'))
        for name, ((fr, fb), (sr, sb)) in rows.items():
            full_share = 1 / periodic.FULL_EVERY
            per_hour = audits * (full_share * fr + (1 - full_share) * sr) + \
                3600 / args.retry_interval * retry
            kb = audits * (full_share * fb + (1 - full_share) * sb) / 1000
            before = audits * fr + 3600 / args.retry_interval * retry
            print('%-14s %6d req %6.1f kB %6d req %6.1f kB %8.0f %8.1f'
                  '   (all full: %.0f req, %.1f kB)' % (
                      name, fr, fb / 1000, sr, sb / 1000, per_hour, kb,
                      before, audits * fb / 1000))
    finally:
        for h in reversed(hosts):
            h.close()
        namespaces.close()
        api.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == '__main__':
    main()
