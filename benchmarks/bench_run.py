"""Time ``docker run --rm`` on the driver's networks against Docker's own.

On one private dockerd (in a network namespace of its own, as in
``bench_lifecycle.py``), ``docker run --rm bb:latest true`` is timed on
each network in turn, round after round, so drift in the machine's load
hits every network alike:

* ``none``: ``--net none``;
* ``bridge``: Docker's built-in bridge;
* ``macvlan``: Docker's built-in macvlan driver on a veth of the
  namespace: a network driver inside dockerd (no plugin calls) that makes
  the cheapest link there is, the floor of what a driver's network costs
  Docker;
* ``mock+bridge``: the driver's embedded default (mock backend, bridge
  port driver);
* ``mock+veth``: the mock backend with the veth port driver;
* ``contrail+veth`` (with ``--api HOST:PORT``, noauth): the contrail
  backend with the veth port driver against that API server (no proxy
  on the way; a TCP relay, ``tests/relay.py``, from the namespace's
  loopback), in a project of the run's own (``tests/contrail_target.py``),
  which is deleted at the end with all the run made in it;
* ``contrail+veth+pool``: the same with ``[contrail] port_pool_size``
  (:data:`POOL_SIZE`).

Every driver runs with ``debug = false``. The report gives the median of
each network, its ratio to Docker's bridge and that ratio's 95 %
bootstrap interval over the rounds (:func:`interval`), and says of each
goal whether the whole interval is on the side of the ratio.

Run as root from the repository::

    python benchmarks/bench_run.py --api 127.0.0.1:18082
    OCN_DOCKER_ENGINE=$(bash tests/engines.sh) python benchmarks/bench_run.py
"""

import argparse
import datetime
import os
import platform
import random
import statistics
import sys
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from benchmarks import bench_lifecycle  # noqa: E402
from benchmarks import cluster_report  # noqa: E402
from tests import contrail_target  # noqa: E402
from tests import netns as nsmod  # noqa: E402
from tests import relay as relay_mod  # noqa: E402
from tests.e2e import dockerd as harness  # noqa: E402
from tests.e2e import plugin as plugin_mod  # noqa: E402

GOALS = {'contrail+veth': 1.0, 'contrail+veth+pool': 1.0, 'mock+bridge': 0.85}
# The macvlan network's parent: one end of a veth pair of the namespace
# (gone with it).
MACVLAN_PARENT = 'benchmv0'
# [contrail] port_pool_size of the pooled network: rounds are seconds
# apart, so the pool is full again at each.
POOL_SIZE = 4


def contrail_api(where):
    """The API server at ``where``, with the run's project made on it."""
    os.environ[contrail_target.ENV] = where
    return contrail_target.start()


def sweep(api):
    """Delete what the run made on the server, then its project;
    whether the project is gone."""
    from vnc_api import exceptions as vnc_exc
    api.stop()
    vnc = api.server.vnc
    try:
        vnc.project_delete(fq_name=contrail_target.PROJECT)
    except vnc_exc.NoIdError:
        pass
    except vnc_exc.RefsExistError as exc:
        print('project %s left on the server: %s' % (
            contrail_target.PROJECT_NAME, exc), file=sys.stderr)
        return False
    return True


def left_in_project(api):
    """Objects of the run's project still on the server, by type."""
    vnc = api.server.vnc
    parent = vnc.fq_name_to_id('project', contrail_target.PROJECT)
    left = {}
    for res_type in ('virtual-machine-interface', 'virtual-network',
                     'security-group'):
        found = vnc.resource_list(res_type, parent_id=parent)[
            res_type + 's']
        if found:
            left[res_type] = len(found)
    return left


def drivers(api_port, daemon, ns):
    """{network label: driver plugin}, not yet started; the contrail one
    (with ``api_port``) reaches the API server at that port of the
    namespace's loopback."""
    def plugin(prefix, **options):
        return plugin_mod.DockerPlugin(
            prefix + uuid.uuid4().hex[:4], debug='false',
            docker_url=daemon.url, netns=ns, **options)
    found = {'mock+bridge': plugin('ocnbb', port_driver='bridge'),
             'mock+veth': plugin('ocnbv', port_driver='veth')}
    if api_port is not None:
        contrail = {'contrail.api_server': '127.0.0.1',
                    'contrail.api_port': api_port,
                    'contrail.auth_type': 'noauth',
                    'contrail.project': contrail_target.PROJECT_NAME}
        found['contrail+veth'] = plugin(
            'ocnbc', backend='contrail', port_driver='veth', **contrail)
        found['contrail+veth+pool'] = plugin(
            'ocnbp', backend='contrail', port_driver='veth', **dict(
                contrail, **{'contrail.port_pool_size': POOL_SIZE}))
    return found


def bench(runs, warmup, api, ns):
    """{network label: median seconds} of ``docker run --rm``."""
    daemon = harness.DockerDaemon(harness.make_base_dir(), netns=ns)
    # The drivers share dockerd's namespace (Docker moves the interfaces
    # they make from there); its loopback is not the machine's.
    relay = None
    if api is not None:
        relay = relay_mod.Relay(ns, api.server.host, api.server.port)
    plugins = drivers(relay and relay.port, daemon, ns)
    networks = {'none': 'none', 'bridge': 'benchbridge'}
    started = []
    try:
        daemon.start()
        daemon.import_busybox()
        daemon.cli('network', 'create', '-d', 'bridge', '--subnet',
                   '10.96.0.0/24', 'benchbridge')
        nsmod.sh('ip', '-n', ns, 'link', 'add', MACVLAN_PARENT, 'type',
                 'veth', 'peer', 'name', MACVLAN_PARENT + 'p')
        daemon.cli('network', 'create', '-d', 'macvlan', '--subnet',
                   '10.96.200.0/24', '-o', 'parent=' + MACVLAN_PARENT,
                   'benchmacvlan')
        networks['macvlan'] = 'benchmacvlan'
        for i, (label, drv) in enumerate(sorted(plugins.items())):
            drv.start()
            started.append(drv)
            name = 'bench' + drv.name
            daemon.cli('network', 'create', '-d', drv.name, '--subnet',
                       '10.96.%d.0/24' % (i + 1), name)
            networks[label] = name
        labels = list(networks)
        bench_lifecycle.timed_runs(daemon, [networks[n] for n in labels],
                                   warmup)
        rounds = bench_lifecycle.timed_rounds(
            daemon, [networks[n] for n in labels], runs)
        for name in networks.values():
            if name != 'none':
                daemon.cli('network', 'rm', name, check=False)
    finally:
        for drv in started:
            drv.close()
        for drv in plugins.values():
            if drv not in started:
                drv.close()
        daemon.stop()
        if relay is not None:
            relay.close()
    return dict(zip(labels, rounds))


def interval(times, bridge, resamples=2000):
    """The 95 % bootstrap interval of median(times) / median(bridge):
    whole rounds drawn again (a round's runs stay together, as the load
    of their moment hit them alike); seeded, so the same rounds give the
    same interval."""
    draw = random.Random(0)
    n = len(bridge)
    ratios = []
    for _ in range(resamples):
        picked = [draw.randrange(n) for _ in range(n)]
        ratios.append(statistics.median(times[i] for i in picked) /
                      statistics.median(bridge[i] for i in picked))
    ratios.sort()
    return (ratios[int(0.025 * resamples)],
            ratios[int(0.975 * resamples) - 1])


def report(rounds, runs, api_where, swept):
    medians = {label: statistics.median(times)
               for label, times in rounds.items()}
    bridge = medians['bridge']
    print('docker run --rm bb:latest true, median of %d alternating rounds'
          % runs)
    print('  date     %s' % datetime.date.today().isoformat())
    print('  engine   %s' % harness.engine_name())
    if api_where:
        print('  server   Tungsten Fabric API server at %s, project %s (%s)'
              % (api_where, contrail_target.PROJECT_NAME,
                 'deleted' if swept else 'NOT deleted'))
    else:
        print('  server   none (no --api)')
    print('  machine  %s, Python %s' % (cluster_report.machine(),
                                        platform.python_version()))
    print('  load     %.1f (1 min) at the end' % os.getloadavg()[0])
    print('  %-18s %8s %10s %14s' % ('network', 'median', 'to bridge',
                                     '95% interval'))
    order = ('contrail+veth', 'contrail+veth+pool', 'mock+veth',
             'mock+bridge', 'bridge', 'macvlan', 'none')
    spans = {label: interval(rounds[label], rounds['bridge'])
             for label in medians if label != 'bridge'}
    for label in order:
        if label in medians:
            span = ('%.2f-%.2fx' % spans[label]) if label in spans else ''
            print('  %-18s %7.3fs %9.2fx %14s' % (
                label, medians[label], medians[label] / bridge, span))
    for label, goal in GOALS.items():
        if label in medians:
            ratio = medians[label] / bridge
            low, high = spans[label]
            if low > goal or high <= goal:
                settled = 'so is all of its 95% interval'
            else:
                settled = 'its 95% interval spans the goal'
            print('  goal %s <= %.2fx bridge: %s (%.2fx; %s)' % (
                label, goal, 'met' if ratio <= goal else 'not met', ratio,
                settled))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--api', metavar='HOST:PORT',
                        help='also a contrail + veth network against this '
                        'API server (noauth)')
    parser.add_argument('--runs', type=int, default=15,
                        help='rounds, one docker run --rm per network each')
    parser.add_argument('--warmup', type=int, default=3,
                        help='rounds before the timed ones')
    args = parser.parse_args()
    if args.runs < 10:
        parser.error('--runs: at least 10 rounds')
    api = contrail_api(args.api) if args.api else None
    namespaces = nsmod.Namespaces()
    swept = False
    started = time.monotonic()
    try:
        ns = namespaces.add(nsmod.unique('ocnbench'))
        rounds = bench(args.runs, args.warmup, api, ns)
        if api is not None:
            left = left_in_project(api)
            if left:
                print('left in the project after the run: %s' % left,
                      file=sys.stderr)
    finally:
        namespaces.close()
        if api is not None:
            swept = sweep(api)
    report(rounds, args.runs, args.api, swept)
    print('  took     %.0f s' % (time.monotonic() - started))


if __name__ == '__main__':
    main()
