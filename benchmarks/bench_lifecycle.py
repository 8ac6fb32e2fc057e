"""Measure the driver, as ratios against baselines taken in the same run.

(a) The endpoint lifecycle (CreateEndpoint, Join, Leave, DeleteEndpoint)
    over the real socket, mock backend and veth ports, against a minimal
    no-op server on a Unix socket answering ``{}``.
(b) ``docker run --rm`` on a driver network against Docker's built-in
    bridge driver and against ``--net none`` on the same private dockerd.
(c) Contrail config API requests per Docker call (deterministic), counted
    at the fake API server with 500 networks and 2,000 endpoints present.

Run as root from the repository: ``python benchmarks/bench_lifecycle.py``.
"""

import argparse
import http.server
import os
import shutil
import socketserver
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from tests import driverproc  # noqa: E402
from tests.e2e import dockerd as harness  # noqa: E402
from tests.e2e import plugin as plugin_mod  # noqa: E402
from tests.fakes import contrail_api  # noqa: E402

NID = 'b' * 64


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


def lifecycle(socket_path, n):
    """Seconds per endpoint lifecycle, median over ``n``."""
    times = []
    for i in range(n):
        eid = '%064x' % (i + 1)
        body = {'NetworkID': NID, 'EndpointID': eid}
        start = time.perf_counter()
        driverproc.call(socket_path, 'NetworkDriver.CreateEndpoint', dict(
            body, Interface={'Address': '10.99.%d.%d/16' % (i // 250,
                                                            i % 250 + 2)}))
        driverproc.call(socket_path, 'NetworkDriver.Join', dict(
            body, SandboxKey='/var/run/docker/netns/bench'))
        driverproc.call(socket_path, 'NetworkDriver.Leave', body)
        driverproc.call(socket_path, 'NetworkDriver.DeleteEndpoint', body)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_socket(n):
    tmp = tempfile.mkdtemp(prefix='ocnbench-')
    noop_path = os.path.join(tmp, 'noop.sock')
    server = _UnixServer(noop_path, _NoOp)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    drv = driverproc.DriverProcess(tmp, os.path.join(tmp, 'drv.sock'),
                                   port_driver='veth', debug='false')
    drv.start()
    try:
        drv.ok('NetworkDriver.CreateNetwork', {
            'NetworkID': NID, 'IPv4Data': [
                {'Pool': '10.99.0.0/16', 'Gateway': '10.99.0.1/16'}]})
        base = lifecycle(noop_path, n)
        ours = lifecycle(drv.socket_path, n)
    finally:
        drv.kill()
        server.shutdown()
        server.server_close()
        shutil.rmtree(tmp, ignore_errors=True)
    print('(a) endpoint lifecycle, median of %d: no-op server %.2f ms, '
          'driver %.2f ms, ratio %.1fx'
          % (n, base * 1e3, ours * 1e3, ours / base))


def timed_runs(daemon, nets, n):
    """Median seconds of ``docker run --rm`` per network, interleaved.

    Round-robin over the networks, so drift in the machine's load hits
    every network alike.
    """
    times = {net: [] for net in nets}
    for _ in range(n):
        for net in nets:
            start = time.perf_counter()
            daemon.cli('run', '--rm', '--net', net, 'bb:latest', 'true')
            times[net].append(time.perf_counter() - start)
    return [statistics.median(times[net]) for net in nets]


def bench_docker(n):
    daemon = harness.DockerDaemon(harness.make_base_dir())
    drv = plugin_mod.DockerPlugin('ocnbench', port_driver='bridge',
                                  debug='false')
    try:
        daemon.start()
        daemon.import_busybox()
        drv.start()
        daemon.cli('network', 'create', '-d', 'bridge', '--subnet',
                   '10.98.0.0/24', 'benchbridge')
        daemon.cli('network', 'create', '-d', 'ocnbench', '--subnet',
                   '10.97.0.0/24', 'benchocn')
        nets = ('none', 'benchbridge', 'benchocn')
        timed_runs(daemon, nets, 3)  # warm up
        none, bridge, ours = timed_runs(daemon, nets, n)
        daemon.cli('network', 'rm', 'benchbridge', 'benchocn')
    finally:
        drv.close()
        daemon.stop()
    print('(b) docker run --rm, median of %d: --net none %.3f s, built-in '
          'bridge %.3f s, opencontrail-net %.3f s' % (n, none, bridge, ours))
    print('    ratio to bridge %.2fx; cost above --net none: bridge %.3f s, '
          'opencontrail-net %.3f s (%.0f%% of bridge)' % (
              ours / bridge, bridge - none, ours - none,
              100 * (ours - none) / (bridge - none)))


def bench_requests(networks=500, endpoints=2000):
    fake = contrail_api.FakeContrailAPI().start()
    tmp = tempfile.mkdtemp(prefix='ocnbench-')
    drv = driverproc.DriverProcess(
        tmp, os.path.join(tmp, 'drv.sock'), backend='contrail',
        port_driver='veth', debug='false',
        **{'contrail.api_port': fake.port, 'contrail.project': 'admin'})
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
            counts.append('%s %d' % (name, fake.count()))
    finally:
        drv.kill()
        fake.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print('(c) Contrail API requests per call (%d networks, %d endpoints '
          'present, IPv4): %s' % (networks, endpoints, ', '.join(counts)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('-n', type=int, default=200,
                        help='endpoint lifecycles for (a)')
    parser.add_argument('--runs', type=int, default=15,
                        help='docker runs per network for (b)')
    parser.add_argument('--skip-docker', action='store_true')
    args = parser.parse_args()
    bench_socket(args.n)
    bench_requests()
    if not args.skip_docker:
        bench_docker(args.runs)


if __name__ == '__main__':
    main()
