"""Bulk removal: stuck networks and removal time.

On one private dockerd, for Docker's built-in bridge and for the driver
(embedded default) at each DeleteEndpoint spacing given:

(a) ``--trials`` times: a network, ``-n`` containers on it, one
    ``docker rm -f`` of them all, then ``docker network rm``. Counts the
    networks Docker refused to remove ("has active endpoints"; a dockerd
    restart clears them) and the median time of the ``docker rm -f``.
(b) ``docker run --rm`` on each network, interleaved: the median time.

Spacing -1 leaves ``delete_spacing_ms`` unset: the driver then spaces by
the engine's version (none from Docker 28.1). The engine is Debian 12's,
or the one ``OCN_DOCKER_ENGINE`` names (``bash tests/engines.sh`` fetches
Debian's newest).

Run as root from the repository:
``python benchmarks/bench_bulk_remove.py --spacing 0 --spacing 50``, or
``OCN_DOCKER_ENGINE=$(bash tests/engines.sh) python
benchmarks/bench_bulk_remove.py --spacing -1 --trials 10``.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from tests.e2e import bulk  # noqa: E402
from tests.e2e import dockerd as harness  # noqa: E402
from tests.e2e import plugin as plugin_mod  # noqa: E402
from tests import netns as nsmod  # noqa: E402


def bulk_trials(daemon, driver, trials, n, tag):
    """Stuck count and median ``docker rm -f`` seconds over ``trials``."""
    times, stuck = [], 0
    for i in range(trials):
        took, was_stuck = bulk.bulk_trial(
            daemon, driver, '10.96.%d.0/24' % (i % 250), n,
            '%s%d' % (tag, i))
        times.append(took)
        stuck += was_stuck
        print('    %s trial %d: rm -f %.2f s%s' % (
            tag, i + 1, took, ', STUCK' if was_stuck else ''), flush=True)
    return stuck, statistics.median(times)


def single_runs(daemon, nets, runs):
    """Median seconds of ``docker run --rm`` per network, round-robin."""
    times = {net: [] for net in nets}
    for _ in range(runs):
        for net in nets:
            start = time.perf_counter()
            daemon.cli('run', '--rm', '--net', net, 'bb:latest', 'true')
            times[net].append(time.perf_counter() - start)
    return {net: statistics.median(t) for net, t in times.items()}


def start_plugins(daemon, spacings, ns):
    """One driver per spacing, each under a Docker driver name of its own."""
    prefix = 'ocnbulk' + uuid.uuid4().hex[:4]
    plugins = {}
    for ms in spacings:
        options = {} if ms < 0 else {'delete_spacing_ms': ms}
        plugins[ms] = plugin_mod.DockerPlugin(
            '%ss%d' % (prefix, max(ms, 0)) + ('u' if ms < 0 else ''),
            port_driver='bridge', debug='false', docker_url=daemon.url,
            netns=ns, **options)
        plugins[ms].start()
    return plugins


def measure(daemon, plugins, args):
    drivers = [('bridge', 'bridge')] + [
        ('spacing %s' % ('unset' if ms < 0 else '%d ms' % ms), p.name)
        for ms, p in sorted(plugins.items())]
    results = {}
    for label, driver in drivers:
        print('(a) %s' % label, flush=True)
        results[label] = bulk_trials(daemon, driver, args.trials, args.n,
                                     'bk%s' % uuid.uuid4().hex[:3])
    nets = []
    for i, (label, driver) in enumerate(drivers):
        name = 'bksingle%d' % i
        daemon.cli('network', 'create', '-d', driver, '--subnet',
                   '10.95.%d.0/24' % i, name)
        nets.append(name)
    single_runs(daemon, nets, 2)  # warm up
    singles = single_runs(daemon, nets, args.runs)
    for name in nets:
        daemon.cli('network', 'rm', name)
    return drivers, results, [singles[name] for name in nets]


def report(drivers, results, singles, args):
    bridge_rm = results['bridge'][1]
    print('\n(a) %d containers on one network, one docker rm -f, then '
          'docker network rm; %d trials each (Docker %s)' % (
              args.n, args.trials, docker_version()))
    for (label, _driver), single in zip(drivers, singles):
        stuck, rm = results[label]
        print('    %-16s stuck %d of %d, rm -f median %.2f s (%.2fx '
              'bridge); docker run --rm median %.3f s' % (
                  label, stuck, args.trials, rm, rm / bridge_rm, single))


def docker_version():
    out = subprocess.run([harness.DOCKER_CLI, '--version'],
                         capture_output=True, text=True).stdout
    return out.split(',')[0].replace('Docker version ', '').strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('-n', type=int, default=48,
                        help='containers removed at once')
    parser.add_argument('--trials', type=int, default=5,
                        help='bulk removals per driver')
    parser.add_argument('--runs', type=int, default=10,
                        help='docker run --rm per network')
    parser.add_argument('--spacing', type=int, action='append',
                        help='delete_spacing_ms values, -1 for unset '
                        '(default: 0 and 50)')
    args = parser.parse_args()
    spacings = sorted(set(args.spacing or [0, 50]))
    # A netns of its own: other drivers starting on this host delete idle
    # veth pairs, which a pair is between Join and Docker moving it.
    namespaces = nsmod.Namespaces()
    ns = namespaces.add(nsmod.unique('ocnbk'))
    daemon = harness.DockerDaemon(harness.make_base_dir(), netns=ns)
    plugins = {}
    try:
        daemon.start()
        daemon.import_busybox()
        plugins = start_plugins(daemon, spacings, ns)
        drivers, results, singles = measure(daemon, plugins, args)
    finally:
        daemon.stop()
        for p in plugins.values():
            p.close()
        namespaces.close()
    report(drivers, results, singles, args)


if __name__ == '__main__':
    main()
