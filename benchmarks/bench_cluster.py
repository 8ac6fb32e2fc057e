"""Many hosts on one Contrail API server: container starts per second.

For each N of ``--hosts`` (default 1, 4, 16, 64): N hosts, each a driver
process of its own (its own ``[DEFAULT] host``, socket and state_path),
all with the contrail backend against one API server: the fake of
``tests/fakes/contrail_api.py`` served in a process of its own, or a real
server given by ``--api HOST:PORT`` (noauth; the run works in a project
of its own, deleted at the end). The hosts talk to the server straight,
as on a cluster, and each counts its requests in its own metrics
(``opencontrail_net_contrail_requests_total``, served on a Unix socket
of its own); ``--count-at proxy`` sends them through the counting proxy
(``tests/fakes/api_proxy.py``, a process of its own) and counts there
instead. The port driver is ``null`` (``benchmarks/null_port.py``): no
interfaces are made, so the figures are the driver's and the server's,
not the kernel's; it is loaded by name through a stevedore entry point
that only this benchmark's driver processes see (a ``.dist-info`` record
in the run's temporary directory, on their ``PYTHONPATH``).

Each host's client does what Docker does for ``docker run --rm``, one
container after the other, on all hosts at once for ``--duration``
seconds: CreateEndpoint, Join, Leave, DeleteEndpoint, with random full
64-hex endpoint and sandbox IDs and Docker-assigned addresses, on one
connection kept alive between calls as dockerd keeps its connection to
a plugin (``connections`` in the JSON: how many each host opened). Networks:
one per host (``--network per-host``, Docker's local scope) or one
multi-host network that every host creates (``--network shared``).

Where the server runs on this machine, it gets a CPU of its own and
the rest of the run (the hosts, their clients, the proxy, the ceiling's
client) the other CPUs (``--cpus split``, the default), as on a cluster,
where the hosts' work never takes the server's CPU: sharing them, the
kernel's scheduler (with autogroups, by session) gave the server about
three quarters of a CPU while 64 hosts ran, and all of one as its ceiling
was measured. ``--cpus shared`` runs all on all CPUs.

Reported per N: starts/s (whole start-and-stop cycles that all four
calls answered 200), p50/p99 of each call, API requests per start
(including what the drivers send after answering), errors, and the
efficiency: starts/s x requests per start / the server's ceiling. The
ceiling is measured for each N right after its run, the hosts up but
idle, from a minimal client that replays the requests of one start,
with fresh IDs, straight at the server
(``benchmarks/cluster_ceiling.py``). That start is recorded at the
counting proxy from one more host, the recorder, which talks to the
server through it and has a network of its own (the shared network
with ``--network shared``); it makes no start in the timed run. Also the
drivers' memory (PSS, summed) and their start-up time.

Run from the repository: ``python benchmarks/bench_cluster.py
[--api HOST:PORT] [--plot benchmarks/x.png] [--table x.md]``; the plot
needs matplotlib (``benchmarks/requirements.txt``).
"""

import argparse
import collections
import concurrent.futures
import functools
import json
import os
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from benchmarks import cluster_ceiling  # noqa: E402
from benchmarks import cluster_report  # noqa: E402
from benchmarks import cluster_servers  # noqa: E402
from benchmarks import null_port  # noqa: E402
from opencontrail_net.backends.contrail import delete_queue  # noqa: E402
from tests import driverproc  # noqa: E402
from tests import metrics_scrape  # noqa: E402

CALLS = cluster_report.CALLS
REQUESTS = 'opencontrail_net_contrail_requests_total'


class Host(driverproc.DriverProcess):
    """One host: a driver process with its own host name, socket, state."""

    def __init__(self, workdir, name, api, project, pythonpath, spacing,
                 pool_size=0):
        os.makedirs(workdir)
        super().__init__(
            workdir, os.path.join(workdir, 's.sock'), backend='contrail',
            port_driver=null_port.NAME, debug='false', host=name,
            delete_spacing_ms=spacing,
            metrics_address='unix:' + os.path.join(workdir, 'm.sock'), **{
                'contrail.api_server': api.host,
                'contrail.api_port': api.port,
                'contrail.auth_type': 'noauth',
                'contrail.project': project,
                'contrail.port_pool_size': pool_size})
        self.pythonpath = pythonpath

    def command(self):
        return ['env', 'PYTHONPATH=' + self.pythonpath] + super().command()

    def requests(self):
        """The API requests this host has sent, answered or not."""
        samples = metrics_scrape.scrape(self.options['metrics_address'])
        return sum(v for (name, _), v in samples.items() if name == REQUESTS)


class CpuSplit:
    """The server on a CPU of its own and everything else of the run (the
    hosts, their clients, the proxy, the ceiling's client) on the others,
    as on a cluster, where the API server has a machine of its own and the
    hosts' work never takes its CPU.

    Only where the server runs on this machine (its pid known) and this
    process may use two CPUs or more; otherwise ``why`` says why not and
    nothing is changed. ``undo()`` gives this thread and each of the
    server's threads back the CPUs they had.
    """

    def __init__(self, server_pid):
        self.mine = os.sched_getaffinity(0)
        self.server = self.hosts = None
        self.why = None
        self._before = {}
        if not server_pid:
            self.why = 'the server does not run on this machine'
            return
        if len(self.mine) < 2:
            self.why = 'one CPU only'
            return
        server = {min(self.mine)}
        try:
            for task in os.listdir('/proc/%d/task' % server_pid):
                tid = int(task)
                self._before[tid] = os.sched_getaffinity(tid)
                os.sched_setaffinity(tid, server)
        except OSError as exc:
            self.undo()
            self.why = 'the server could not be pinned: %s' % exc
            return
        self.server, self.hosts = server, self.mine - server
        os.sched_setaffinity(0, self.hosts)

    def summary(self):
        if self.why:
            return {'split': False, 'why': self.why}
        return {'split': True, 'server': sorted(self.server),
                'hosts': sorted(self.hosts)}

    def undo(self):
        os.sched_setaffinity(0, self.mine)
        for tid, cpus in self._before.items():
            try:
                os.sched_setaffinity(tid, cpus)
            except OSError:
                pass  # gone with the server
        self._before = {}


def pss_kib(pid):
    """The proportional set size of process ``pid``, in KiB."""
    with open('/proc/%d/smaps_rollup' % pid) as f:
        for line in f:
            if line.startswith('Pss:'):
                return int(line.split()[1])
    return 0


class Layout:
    """The networks of N hosts and of the recorder (the last), and the
    addresses each host's client, the recorder and the ceiling's replay
    take (never the same address twice at once)."""

    def __init__(self, token, hosts, shared):
        self.shared = shared
        if shared:
            nid = ('5%s' % token).ljust(64, '0')
            self.nets = [(nid, '10.200')] * (hosts + 1)
            per = 32000 // hosts
            self.addresses = [cluster_ceiling.Addresses(
                '10.200.%d.%d' % divmod(2 + i * per, 256), per)
                for i in range(hosts)]
        else:
            self.nets = [(('%02x%s' % (i, token)).ljust(64, '0'),
                          '10.%d' % (i + 1)) for i in range(hosts + 1)]
            self.addresses = [cluster_ceiling.Addresses(
                '10.%d.0.2' % (i + 1), 32000) for i in range(hosts)]
        # The recorder's and the replay's: the upper half of the
        # recorder's network.
        self.replay = cluster_ceiling.Addresses(
            self.nets[-1][1] + '.128.0', 32000)

    def create_body(self, i):
        nid, prefix = self.nets[i]
        return {'NetworkID': nid, 'Options': {}, 'IPv6Data': [],
                'IPv4Data': [{'AddressSpace': 'LocalDefault',
                              'Pool': prefix + '.0.0/16',
                              'Gateway': prefix + '.0.1/16'}]}


class Stats:
    def __init__(self):
        self.times = collections.defaultdict(list)
        self.errors = collections.Counter()
        self.starts = 0
        self.end = 0.0
        self.last_error = None
        self.connections = 0


def lifecycle(call, nid, address, stats, eid=None, sandbox=None):
    """One ``docker run --rm``'s calls, each through ``call(name, body)``;
    after a failed call only those Docker still sends (no Join without an
    endpoint, no Leave without a Join)."""
    body = {'NetworkID': nid, 'EndpointID': eid or secrets.token_hex(32)}
    sandbox = sandbox or secrets.token_hex(32)[:12]
    steps = [
        ('CreateEndpoint', dict(body, Options={}, Interface={
            'Address': address + '/16', 'AddressIPv6': '',
            'MacAddress': ''})),
        ('Join', dict(body, Options={},
                      SandboxKey='/var/run/docker/netns/' + sandbox)),
        ('Leave', body), ('DeleteEndpoint', body)]
    done = set()
    needs = {'Join': 'CreateEndpoint', 'Leave': 'Join',
             'DeleteEndpoint': 'CreateEndpoint'}
    for name, call_body in steps:
        if name in needs and needs[name] not in done:
            continue
        start = time.perf_counter()
        try:
            status, reply = call('NetworkDriver.' + name, call_body)
        except OSError as exc:
            status, reply = None, str(exc)
        stats.times[name].append(time.perf_counter() - start)
        if status == 200:
            done.add(name)
        else:
            stats.errors[name] += 1
            stats.last_error = '%s: %s %s' % (name, status, reply)
    if len(done) == len(CALLS):
        stats.starts += 1


def client(host, nid, addresses, deadline, stats):
    """One host's Docker: its calls on one kept-alive connection."""
    conn = driverproc.KeptAlive(host.socket_path)
    try:
        while time.monotonic() < deadline:
            lifecycle(conn.call, nid, addresses.take(), stats)
    finally:
        conn.close()
    stats.end = time.monotonic()
    stats.connections = conn.connections


def settle(count, quiet=1.0, limit=60.0, every=0.2):
    """Wait until ``count()`` has not changed for ``quiet`` seconds;
    returns its last value."""
    end = time.monotonic() + limit
    seen, since = count(), time.monotonic()
    while time.monotonic() < end:
        time.sleep(every)
        now = count()
        if now != seen:
            seen, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return seen


def deletes_done(hosts, limit=60.0):
    """Wait until no host has an endpoint delete queued (its record
    under state_path: read without asking the driver anything)."""
    queues = [delete_queue.DeleteQueue(h.options['state_path'])
              for h in hosts]
    end = time.monotonic() + limit
    while time.monotonic() < end and any(q.entries() for q in queues):
        time.sleep(0.05)


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def on_all(hosts, fn):
    with concurrent.futures.ThreadPoolExecutor(min(len(hosts), 16)) as ex:
        return list(ex.map(fn, range(len(hosts))))


def run_hosts(n, ctx):
    """Start N hosts, run their clients for the duration, stop them."""
    # Networks of their own for each N: the real server loses a subnet's
    # address allocator when a network of the same name is made again
    # right after its delete (every instance-ip in it then gets a 500).
    layout = Layout('%s%02x' % (ctx.token, n), n,
                    ctx.args.network == 'shared')
    at_proxy = ctx.args.count_at == 'proxy'

    def host(name, api):
        return Host(os.path.join(ctx.workdir, 'n%d-%s' % (n, name)),
                    'bench-%s-%s' % (ctx.token, name), api, ctx.project,
                    ctx.pythonpath, ctx.args.delete_spacing_ms,
                    ctx.args.port_pool_size)
    hosts = [host('h%d' % i, ctx.proxy if at_proxy else ctx.api)
             for i in range(n)]
    recorder = host('rec', ctx.proxy)
    everyone = hosts + [recorder]
    result = {'hosts': n, 'pids': [],
              'counted_at': 'proxy' if at_proxy else 'drivers'}
    created = []
    try:
        began = time.monotonic()
        for h in hosts:
            h.start(wait=False)
            result['pids'].append(h.proc.pid)
        for h in hosts:
            h.wait_ready(timeout=60 + 3 * n)
        result['startup_s'] = time.monotonic() - began
        recorder.start()
        result['pids'].append(recorder.proc.pid)
        for i, h in enumerate(everyone):
            h.ok('NetworkDriver.CreateNetwork', layout.create_body(i))
            created.append(i)
        warm = Stats()
        on_all(hosts, lambda i: lifecycle(
            hosts[i].call, layout.nets[i][0], layout.addresses[i].take(),
            warm))
        # Reported, not fatal: the timed run shows whether they last.
        result['warm_up_errors'] = sum(warm.errors.values())
        result['warm_up_last_error'] = warm.last_error
        template = record_start(recorder, layout, ctx.proxy)
        if at_proxy:
            count, every = ctx.proxy.count, 0.2
        else:
            # Scraping 64 hosts takes a while: not five times a second.
            count, every = (lambda: sum(on_all(
                hosts, lambda i: hosts[i].requests()))), 1.0
        before = settle(count, every=every)
        stats = [Stats() for _ in hosts]
        # The machine's load as the clients begin: other work on it shows.
        result['load1'] = os.getloadavg()[0]
        cpu = cpu_now(hosts, ctx)
        began = time.monotonic()
        deadline = began + ctx.args.duration
        threads = [threading.Thread(target=client, args=(
            h, layout.nets[i][0], layout.addresses[i], deadline, stats[i]))
            for i, h in enumerate(hosts)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = max(s.end for s in stats) - began
        # The CPU of the run with the deletes it left, not of the
        # counting that follows (scraping 64 hosts costs them some).
        deletes_done(hosts)
        used = {k: v - cpu[k] for k, v in cpu_now(hosts, ctx).items()}
        requests = settle(count, every=every) - before
        # The ceiling under the same conditions: the hosts up but idle.
        ceiling = None
        # With a pool, the recorded start binds a pooled interface gone
        # since: its replay measures nothing.
        if ctx.args.ceiling_seconds > 0 and not ctx.args.port_pool_size:
            # The server's CPU where it runs on this machine.
            server_cpu = None
            if ctx.api.pid:
                server_cpu = functools.partial(cluster_servers.cpu_seconds,
                                               ctx.api.pid)
            ceiling = cluster_ceiling.ceiling(
                ctx.api.host, ctx.api.port, template, layout.replay,
                ctx.args.ceiling_seconds, cpu_seconds=server_cpu)
        result.update(summarize(stats, elapsed, requests, ceiling))
        result['ceiling'] = ceiling
        result['requests_one_start'] = len(template.requests)
        if result['starts']:
            result['cpu_ms_per_start'] = {
                k: v * 1e3 / result['starts'] for k, v in used.items()}
        result['pss_mib'] = sum(pss_kib(h.proc.pid) for h in hosts) / 1024
        # The CPUs the server and a host could run on, read back.
        result['cpus'] = {'hosts': sorted(os.sched_getaffinity(
            hosts[0].proc.pid))}
        if ctx.api.pid:
            result['cpus']['server'] = sorted(os.sched_getaffinity(
                ctx.api.pid))
    finally:
        # As Docker removes a network: on every host that has it.
        for i in created:
            everyone[i].call('NetworkDriver.DeleteNetwork',
                             {'NetworkID': layout.nets[i][0]})
        on_all(everyone, lambda i: everyone[i].stop())
    return result


def cpu_now(hosts, ctx):
    """CPU seconds used so far: the drivers (summed), the server (where
    it runs here), the proxy (where the hosts' requests go through it),
    this process (the hosts' clients)."""
    out = {'drivers': sum(cluster_servers.cpu_seconds(h.proc.pid)
                          for h in hosts),
           'clients': cluster_servers.cpu_seconds(os.getpid())}
    if ctx.args.count_at == 'proxy':
        out['proxy'] = cluster_servers.cpu_seconds(ctx.proxy.pid)
    if ctx.api.pid:
        out['server'] = cluster_servers.cpu_seconds(ctx.api.pid)
    return out


def record_start(host, layout, proxy):
    """The requests of one start on ``host``, as a StartTemplate: the
    first of three tries that all calls answer."""
    for _ in range(3):
        settle(proxy.count)
        eid, sandbox = secrets.token_hex(32), secrets.token_hex(6)
        address = layout.replay.take()
        proxy.record()
        stats = Stats()
        lifecycle(host.call, layout.nets[-1][0], address, stats, eid,
                  sandbox)
        settle(proxy.count)
        recorded = proxy.take()
        if not stats.errors:
            return cluster_ceiling.StartTemplate(recorded, eid, sandbox,
                                                 address)
    raise RuntimeError('recording a start failed: %s' % stats.last_error)


def summarize(stats, elapsed, requests, ceiling):
    times = collections.defaultdict(list)
    errors = collections.Counter()
    for s in stats:
        for name, values in s.times.items():
            times[name].extend(values)
        errors.update(s.errors)
    starts = sum(s.starts for s in stats)
    rate = starts / elapsed if elapsed > 0 else 0.0
    per_start = requests / starts if starts else 0.0
    out = {'starts': starts, 'elapsed_s': elapsed, 'starts_per_s': rate,
           'requests': requests, 'requests_per_start': per_start,
           'errors': sum(errors.values()), 'errors_by_call': dict(errors),
           'connections': sum(s.connections for s in stats),
           'last_error': next((s.last_error for s in stats if s.last_error),
                              None),
           'ms': {name: {'p50': statistics.median(times[name]) * 1e3,
                         'p99': percentile(times[name], 0.99) * 1e3}
                  for name in CALLS if times[name]}}
    if ceiling:
        out['efficiency'] = rate * per_start / ceiling['rate']
    return out


class Context:
    def __init__(self, args, workdir, api, proxy, project, token):
        self.args, self.workdir, self.api = args, workdir, api
        self.proxy, self.project, self.token = proxy, project, token
        self.pythonpath = null_port.entry_point_dir(
            os.path.join(workdir, 'entry-points')) + os.pathsep + ROOT


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--hosts', default='1,4,16,64',
                   help='comma-separated host counts')
    p.add_argument('--duration', type=float, default=10.0,
                   help='seconds of starts per host count')
    p.add_argument('--api', help='HOST:PORT of a real API server (noauth); '
                   'default: the fake')
    p.add_argument('--network', choices=('per-host', 'shared'),
                   default='per-host')
    p.add_argument('--count-at', choices=('drivers', 'proxy'),
                   default='drivers',
                   help="where the API requests are counted: the drivers' "
                   'metrics (the hosts talk to the server straight) or the '
                   'counting proxy (their requests go through it)')
    p.add_argument('--ceiling-seconds', type=float, default=3.0,
                   help='seconds per concurrency of the ceiling (0: none)')
    p.add_argument('--delete-spacing-ms', type=int, default=0,
                   help="the drivers' delete_spacing_ms: one container "
                   'after the other is a burst to it, so 0, off')
    p.add_argument('--port-pool-size', type=int, default=0,
                   help="the drivers' [contrail] port_pool_size (0: none); "
                   'with a pool, no ceiling is measured')
    p.add_argument('--cpus', choices=('split', 'shared'), default='split',
                   help='split: where the server runs on this machine, it '
                   'gets a CPU of its own and the hosts the others, as on '
                   'a cluster; shared: all on all CPUs')
    p.add_argument('--plot', help='write a PNG plot here')
    p.add_argument('--table', help='write the markdown table here')
    p.add_argument('--json', help='write the results as JSON here')
    return p.parse_args(argv)


def main(argv=None):
    args = parse(argv)
    token = secrets.token_hex(4)
    project = 'ocn-bench-%s' % token
    workdir = tempfile.mkdtemp(prefix='ocnbc-')
    servers = []
    real = None
    split = None
    on_term = None
    if threading.current_thread() is threading.main_thread():
        # Stopped: the hosts and servers go with it (the finally below).
        on_term = signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    try:
        if args.api:
            real = cluster_servers.RealProject(args.api, project)
            api = real
        else:
            api = cluster_servers.Served('fake', project)
            servers.append(api)
        if args.cpus == 'split':
            # Before anything else starts: all that follows inherits the
            # hosts' CPUs.
            split = CpuSplit(api.pid)
        proxy = cluster_servers.Served('proxy', api.host, api.port)
        servers.append(proxy)
        ctx = Context(args, workdir, api, proxy, project, token)
        report = {'server': ('Tungsten Fabric API server at %s' % args.api
                             if args.api else 'the fake API server'),
                  'network': args.network, 'duration': args.duration,
                  'count_at': args.count_at,
                  'port_pool_size': args.port_pool_size,
                  'cpus': (split.summary() if split else
                           {'split': False, 'why': '--cpus shared'}),
                  'machine': cluster_report.machine(), 'results': [],
                  'workdir': workdir}
        for n in [int(x) for x in args.hosts.split(',')]:
            report['results'].append(run_hosts(n, ctx))
            print(json.dumps(report['results'][-1]), file=sys.stderr,
                  flush=True)
        report['servers_pss_mib'] = {
            'fake' if s is not proxy else 'proxy': pss_kib(s.pid) / 1024
            for s in servers}
    finally:
        if split is not None:
            split.undo()
        for s in servers:
            s.stop()
        if real is not None:
            real.delete()
        shutil.rmtree(workdir, ignore_errors=True)
        if on_term is not None:
            signal.signal(signal.SIGTERM, on_term)
    text = cluster_report.table(report)
    print(text)
    for path, write in ((args.table, lambda f: f.write(text)),
                        (args.json, lambda f: json.dump(report, f, indent=1))):
        if path:
            with open(path, 'w') as f:
                write(f)
    if args.plot:
        cluster_report.plot(report, args.plot)
    return report


if __name__ == '__main__':
    main()
