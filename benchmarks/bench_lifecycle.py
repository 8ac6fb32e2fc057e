"""Measure the driver, as ratios against baselines taken in the same run.

(a) The endpoint lifecycle (CreateEndpoint, Join, Leave, DeleteEndpoint)
    over the real socket, mock backend and veth ports, against a minimal
    no-op server on a Unix socket answering ``{}``.
(b) ``docker run --rm`` on a driver network against Docker's built-in
    bridge driver and against ``--net none`` on the same private dockerd.

Run as root from the repository: ``python benchmarks/bench_lifecycle.py``.
"""

import argparse
import http.server
import os
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
    print('(a) endpoint lifecycle, median of %d: no-op server %.2f ms, '
          'driver %.2f ms, ratio %.1fx' % (n, base * 1e3, ours * 1e3,
                                          ours / base))


def timed_runs(daemon, net, n):
    times = []
    for _ in range(n):
        start = time.perf_counter()
        daemon.cli('run', '--rm', '--net', net, 'bb:latest', 'true')
        times.append(time.perf_counter() - start)
    return statistics.median(times)


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
        for net in ('none', 'benchbridge', 'benchocn'):
            timed_runs(daemon, net, 2)  # warm up
        none = timed_runs(daemon, 'none', n)
        bridge = timed_runs(daemon, 'benchbridge', n)
        ours = timed_runs(daemon, 'benchocn', n)
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('-n', type=int, default=200,
                        help='endpoint lifecycles for (a)')
    parser.add_argument('--runs', type=int, default=15,
                        help='docker runs per network for (b)')
    parser.add_argument('--skip-docker', action='store_true')
    args = parser.parse_args()
    bench_socket(args.n)
    if not args.skip_docker:
        bench_docker(args.runs)


if __name__ == '__main__':
    main()
