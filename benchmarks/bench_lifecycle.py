"""Measure the driver, as ratios against baselines taken in the same run.

Embedded default (mock backend, bridge port driver), in a network
namespace of its own so no other driver on the host touches its pairs:

(a) Per call over the real socket, median of ``-n``: CreateEndpoint,
    Join, EndpointOperInfo, Leave, DeleteEndpoint; and the endpoint
    lifecycle (the four calls but EndpointOperInfo) against a minimal
    no-op server on a Unix socket answering ``{}``. Back to back, and
    again (``--idle-n`` lifecycles) with ``--idle`` seconds of nothing
    before each, as on a host that starts a container now and then: the
    caches of the machine have then forgotten the driver.
(b) ``docker run --rm`` on a driver network against Docker's built-in
    bridge and against ``--net none``, interleaved on one private dockerd
    (``bench_run.py`` times it on the veth port driver and the contrail
    backend too).
(c) ``--parallel`` containers started at once with ``docker run -d``
    (through the API) on one network: ours against the built-in bridge,
    alternating rounds; failures counted.
(d) Contrail config API requests per Docker call (deterministic), counted
    at a proxy in front of the fake API server with 500 networks and 2,000
    endpoints present: those on the path Docker waits for (they carry the
    call's request ID), and, where the call leaves work for after its
    answer (DeleteEndpoint), ``+N`` sent after it.

Run as root from the repository: ``python benchmarks/bench_lifecycle.py``.
"""

import argparse
import collections
import concurrent.futures
import http.server
import os
import shutil
import socketserver
import statistics
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from tests import driverproc  # noqa: E402
from tests import netns as nsmod  # noqa: E402
from tests.e2e import dockerd as harness  # noqa: E402
from tests.e2e import plugin as plugin_mod  # noqa: E402
from opencontrail_net.backends.contrail import delete_queue  # noqa: E402
from tests.fakes import api_proxy  # noqa: E402
from tests.fakes import contrail_api  # noqa: E402

NID = 'b' * 64
CALLS = ('CreateEndpoint', 'Join', 'EndpointOperInfo', 'Leave',
         'DeleteEndpoint')
LIFECYCLE = ('CreateEndpoint', 'Join', 'Leave', 'DeleteEndpoint')


class _NoOp(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def do_POST(self):
        self.rfile.read(int(self.headers.get('Content-Length') or 0))
        body = b'{}'
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class _UnixServer(socketserver.ThreadingMixIn,
                  socketserver.UnixStreamServer):
    daemon_threads = True


def per_call(socket_path, n, idle=0.0):
    """{call: [seconds]} over ``n`` endpoint lifecycles, each after
    ``idle`` seconds of nothing.

    Endpoint IDs are random, as Docker's are.
    """
    times = collections.defaultdict(list)
    # One connection kept alive between calls, as dockerd keeps it.
    conn = driverproc.KeptAlive(socket_path)
    for i in range(n):
        time.sleep(idle)
        body = {'NetworkID': NID, 'EndpointID': uuid.uuid4().hex * 2}
        bodies = {
            'CreateEndpoint': dict(body, Interface={
                'Address': '10.99.%d.%d/16' % (i // 250, i % 250 + 2)}),
            'Join': dict(body, SandboxKey='/var/run/docker/netns/bench'),
        }
        for name in CALLS:
            start = time.perf_counter()
            conn.call('NetworkDriver.' + name, bodies.get(name, body))
            times[name].append(time.perf_counter() - start)
    conn.close()
    return times


def lifecycle_median(times):
    """Median of the per-lifecycle sums of the LIFECYCLE calls."""
    return statistics.median(
        sum(values) for values in zip(*(times[c] for c in LIFECYCLE)))


def _print_calls(noop, ours):
    print('    %-18s %8s %8s' % ('call', 'no-op', 'driver'))
    for name in CALLS:
        print('    %-18s %8.2f %8.2f' % (
            name, statistics.median(noop[name]) * 1e3,
            statistics.median(ours[name]) * 1e3))
    base, mine = lifecycle_median(noop), lifecycle_median(ours)
    print('    lifecycle (%s): no-op %.2f ms, driver %.2f ms, ratio %.1fx'
          % (' + '.join(LIFECYCLE), base * 1e3, mine * 1e3, mine / base))
    return mine


def bench_socket(n, ns, spacing, idle, idle_n):
    tmp = tempfile.mkdtemp(prefix='ocnbench-')
    noop_path = os.path.join(tmp, 'noop.sock')
    server = _UnixServer(noop_path, _NoOp)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    drv = driverproc.DriverProcess(tmp, os.path.join(tmp, 'drv.sock'),
                                   port_driver='bridge', debug='false',
                                   delete_spacing_ms=spacing, netns=ns)
    drv.start()
    try:
        drv.ok('NetworkDriver.CreateNetwork', {
            'NetworkID': NID, 'IPv4Data': [
                {'Pool': '10.99.0.0/16', 'Gateway': '10.99.0.1/16'}]})
        per_call(drv.socket_path, 5)  # warm up: the bridge, the caches
        noop = per_call(noop_path, n)
        ours = per_call(drv.socket_path, n)
        if idle_n:
            idle_noop = per_call(noop_path, idle_n, idle)
            idle_ours = per_call(drv.socket_path, idle_n, idle)
        drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': NID})
    finally:
        drv.kill()
        server.shutdown()
        server.server_close()
        shutil.rmtree(tmp, ignore_errors=True)
    print('(a) per call over the socket, median of %d (ms), '
          'delete_spacing_ms %d:' % (n, spacing))
    hot = _print_calls(noop, ours)
    if idle_n:
        print('    after %.1f s idle before each lifecycle, median of %d '
              '(ms):' % (idle, idle_n))
        cold = _print_calls(idle_noop, idle_ours)
        print('    the driver idle against back to back: %.1fx' % (
            cold / hot))


def timed_rounds(daemon, nets, n):
    """Seconds of each ``docker run --rm`` per network, interleaved.

    Round-robin over the networks, so drift in the machine's load hits
    every network alike; item i of every list is round i.
    """
    times = {net: [] for net in nets}
    for _ in range(n):
        for net in nets:
            start = time.perf_counter()
            daemon.cli('run', '--rm', '--net', net, 'bb:latest', 'true')
            times[net].append(time.perf_counter() - start)
    return [times[net] for net in nets]


def timed_runs(daemon, nets, n):
    """Median seconds of ``docker run --rm`` per network, interleaved
    (:func:`timed_rounds`)."""
    return [statistics.median(times)
            for times in timed_rounds(daemon, nets, n)]


def parallel_start(daemon, network, count):
    """Seconds to start ``count`` sleeping containers at once, failures.

    The containers are removed afterwards (not timed).
    """
    names = ['%s-%d' % (network, i) for i in range(count)]

    def run(name):
        daemon.client.containers.run('bb:latest', ['sleep', '600'],
                                     name=name, network=network,
                                     detach=True)
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(run, name) for name in names]
        failed = sum(1 for f in futures if f.exception() is not None)
    took = time.perf_counter() - start
    daemon.cli('rm', '-f', *names, check=False)
    return took, failed


def bench_docker(runs, parallel, rounds, ns):
    daemon = harness.DockerDaemon(harness.make_base_dir(), netns=ns)
    drv = plugin_mod.DockerPlugin('ocnbench' + uuid.uuid4().hex[:4],
                                  port_driver='bridge', debug='false',
                                  docker_url=daemon.url, netns=ns)
    try:
        daemon.start()
        daemon.import_busybox()
        drv.start()
        daemon.cli('network', 'create', '-d', 'bridge', '--subnet',
                   '10.98.0.0/24', 'benchbridge')
        daemon.cli('network', 'create', '-d', drv.name, '--subnet',
                   '10.97.0.0/24', 'benchocn')
        nets = ('none', 'benchbridge', 'benchocn')
        timed_runs(daemon, nets, 3)  # warm up
        none, bridge, ours = timed_runs(daemon, nets, runs)
        starts = {'benchbridge': [], 'benchocn': []}
        failures = dict.fromkeys(starts, 0)
        for _ in range(rounds):
            for net in starts:
                took, failed = parallel_start(daemon, net, parallel)
                starts[net].append(took)
                failures[net] += failed
        daemon.cli('network', 'rm', 'benchbridge', 'benchocn')
    finally:
        drv.close()
        daemon.stop()
    print('(b) docker run --rm, median of %d: --net none %.3f s, built-in '
          'bridge %.3f s, opencontrail-net %.3f s' % (runs, none, bridge,
                                                      ours))
    print('    ratio to bridge %.2fx, to --net none %.2fx' % (
        ours / bridge, ours / none))
    sb = statistics.median(starts['benchbridge'])
    so = statistics.median(starts['benchocn'])
    print('(c) %d docker run -d at once, median of %d rounds: built-in '
          'bridge %.2f s (%d failed), opencontrail-net %.2f s (%d failed), '
          'ratio %.2fx' % (parallel, rounds, sb, failures['benchbridge'], so,
                           failures['benchocn'], so / sb))
    for net in starts:
        print('    %s rounds: %s' % (net, ', '.join(
            '%.2f' % t for t in starts[net])))


def bench_requests(networks=500, endpoints=2000):
    server = contrail_api.FakeContrailAPI().start()
    # A fresh server has no admin project until someone makes it.
    server.add_project(['default-domain', 'admin'])
    fake = api_proxy.ApiProxy(server.host, server.port).start()
    tmp = tempfile.mkdtemp(prefix='ocnbench-')
    drv = driverproc.DriverProcess(
        tmp, os.path.join(tmp, 'drv.sock'), backend='contrail',
        port_driver='veth', debug='false',
        **{'contrail.api_port': fake.port, 'contrail.project': 'admin'})
    queue = delete_queue.DeleteQueue(drv.options['state_path'])
    drv.start()
    try:
        def net(n):
            return {'NetworkID': '%064x' % n, 'IPv4Data': [
                {'Pool': '10.%d.%d.0/24' % (n // 250, n % 250),
                 'Gateway': '10.%d.%d.1/24' % (n // 250, n % 250)}]}
        for n in range(1, networks + 1):
            drv.ok('NetworkDriver.CreateNetwork', net(n))
        for i in range(endpoints):
            n = i % networks + 1
            drv.ok('NetworkDriver.CreateEndpoint', {
                'NetworkID': '%064x' % n, 'EndpointID': 'e%063x' % i,
                'Interface': {'Address': '10.%d.%d.%d/24' % (
                    n // 250, n % 250, i // networks + 2)}})
        body = net(networks + 1)
        ep = {'NetworkID': body['NetworkID'], 'EndpointID': 'f' * 64}
        calls = [('CreateNetwork', body),
                 ('CreateEndpoint', dict(ep, Interface={
                     'Address': body['IPv4Data'][0]['Pool'].replace(
                         '.0/24', '.2/24')})),
                 ('Join', dict(ep, SandboxKey='/var/run/docker/netns/b')),
                 ('EndpointOperInfo', ep), ('Leave', ep),
                 ('DeleteEndpoint', ep),
                 ('DeleteNetwork', {'NetworkID': body['NetworkID']})]
        counts = []
        for name, call_body in calls:
            fake.reset_requests()
            drv.ok('NetworkDriver.' + name, call_body)
            while queue.entries():
                time.sleep(0.01)
            sent = fake.request_ids()
            on_path = len([r for r in sent if r is not None])
            after = len(sent) - on_path
            counts.append('%s %d%s' % (name, on_path,
                                       ' +%d' % after if after else ''))
    finally:
        drv.kill()
        fake.stop()
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print('(d) Contrail API requests per call (%d networks, %d endpoints '
          'present, IPv4): %s' % (networks, endpoints, ', '.join(counts)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('-n', type=int, default=200,
                        help='endpoint lifecycles for (a)')
    parser.add_argument('--runs', type=int, default=15,
                        help='docker run --rm per network for (b)')
    parser.add_argument('--parallel', type=int, default=48,
                        help='containers started at once for (c)')
    parser.add_argument('--rounds', type=int, default=5,
                        help='rounds of (c) per driver')
    parser.add_argument('--spacing', type=int, default=0,
                        help='delete_spacing_ms of the driver in (a): '
                        'lifecycles back to back are a burst to it, so '
                        'the default is 0, off')
    parser.add_argument('--idle', type=float, default=0.5,
                        help='seconds of nothing before each lifecycle of '
                        "(a)'s second part")
    parser.add_argument('--idle-n', type=int, default=40,
                        help="lifecycles of (a)'s second part (0: none)")
    parser.add_argument('--skip-docker', action='store_true')
    args = parser.parse_args()
    namespaces = nsmod.Namespaces()
    try:
        ns = namespaces.add(nsmod.unique('ocnbench'))
        bench_socket(args.n, ns, args.spacing, args.idle, args.idle_n)
        if not args.skip_docker:
            bench_docker(args.runs, args.parallel, args.rounds, ns)
    finally:
        namespaces.close()
    bench_requests()


if __name__ == '__main__':
    main()
