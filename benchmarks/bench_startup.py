"""Measure the driver's start, against exec of ``python -c pass``.

Embedded default (mock backend, bridge port driver; etc/'s config with
its socket and state in a scratch directory), in a network namespace of
its own, the baseline run through the same ``ip netns exec``:

(a) Cold start: from exec of ``opencontrail-net-driver --config-file``
    to the socket answering ``Plugin.Activate``, and to "Serving" in the
    log: the start behind the socket is over, and no call waits for it
    any more (the port driver's netlink library, the sweep and the
    resync).
(b) Restart after ``kill -9`` while busy: a driver with one network and
    a few joined endpoints, clients sending endpoint lifecycles, is
    killed with SIGKILL; a new one is exec'ed at once (stale socket,
    state, resync of the joined endpoints): the same two times, from
    the new exec and from the kill.

Each row: median and p90 of ``--runs``, in ms of wall-clock time, and
the median CPU time (user + system) the process's main thread had used
by then, which a busy machine changes less (the main thread does all
that comes before the socket; the rest of the start, and what runs
once serving, are threads of their own). The
driver runs with its bytecode written (an untimed first start writes
it, as an installed package has it), also where
``PYTHONDONTWRITEBYTECODE`` is set. Run as root from the
repository: ``python benchmarks/bench_startup.py``.
"""

import argparse
import configparser
import http.client
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from tests import driverproc  # noqa: E402
from tests import netns as nsmod  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NID = 'c' * 64
POLL = 0.002
TICK = 1.0 / os.sysconf('SC_CLK_TCK')
# As an installed package: its bytecode written once, then read.
ENV = {k: v for k, v in os.environ.items()
       if k != 'PYTHONDONTWRITEBYTECODE'}


def driver_command(config_path):
    """The console script next to this Python, as an operator runs it."""
    script = os.path.join(os.path.dirname(sys.executable),
                          'opencontrail-net-driver')
    if os.path.exists(script):
        return [script, '--config-file', config_path]
    return [sys.executable, '-m', 'opencontrail_net.cmd.driver',
            '--config-file', config_path]


def write_config(workdir):
    """etc/opencontrail-net.conf, its socket and state under workdir."""
    conf = configparser.ConfigParser()
    conf.read(os.path.join(ROOT, 'etc', 'opencontrail-net.conf'))
    conf['DEFAULT']['socket_path'] = os.path.join(workdir, 'ocn.sock')
    conf['DEFAULT']['state_path'] = os.path.join(workdir, 'state')
    path = os.path.join(workdir, 'driver.conf')
    with open(path, 'w') as f:
        conf.write(f)
    return path, conf['DEFAULT']['socket_path']


class Started:
    """One driver process, exec'ed at ``t0``."""

    def __init__(self, ns, workdir, config_path, socket_path):
        self.socket_path = socket_path
        self.log_path = os.path.join(workdir, 'driver.log')
        self.log_start = (os.path.getsize(self.log_path)
                          if os.path.exists(self.log_path) else 0)
        self.log = open(self.log_path, 'a')
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            ['ip', 'netns', 'exec', ns] + driver_command(config_path),
            stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True, env=ENV)
        self.cpu = None

    def _serving(self):
        with open(self.log_path) as f:
            f.seek(self.log_start)
            return driverproc.started(f.read())

    def wait(self, timeout=30):
        """(seconds to Plugin.Activate, seconds to "Serving"), from t0."""
        activate = serving = None
        deadline = self.t0 + timeout
        while activate is None or serving is None:
            now = time.perf_counter()
            if now > deadline or self.proc.poll() is not None:
                raise RuntimeError('driver did not start; see %s'
                                   % self.log_path)
            if activate is None:
                try:
                    if driverproc.call(self.socket_path, 'Plugin.Activate',
                                       timeout=5)[0] == 200:
                        activate = time.perf_counter() - self.t0
                        self.cpu = self._cpu()
                except OSError:
                    pass
            if serving is None and self._serving():
                serving = time.perf_counter() - self.t0
            time.sleep(POLL)
        return activate, serving

    def _cpu(self):
        """CPU seconds (user + system) the main thread has used so far:
        ``ip netns exec`` execs the driver in its own place."""
        pid = self.proc.pid
        with open('/proc/%d/task/%d/stat' % (pid, pid)) as f:
            fields = f.read().rsplit(')', 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * TICK

    def kill(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.log.close()


def _children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def baseline(ns, runs):
    times, cpu = [], []
    for _ in range(runs):
        used = _children_cpu()
        start = time.perf_counter()
        subprocess.run(['ip', 'netns', 'exec', ns, sys.executable, '-c',
                        'pass'], check=True, env=ENV)
        times.append(time.perf_counter() - start)
        cpu.append(_children_cpu() - used)
    return times, cpu


def cold(namespaces, runs):
    activate, serving, cpu = [], [], []
    for i in range(runs + 1):
        ns = namespaces.add(nsmod.unique('ocnsu'))
        workdir = tempfile.mkdtemp(prefix='ocnbench-')
        try:
            drv = Started(ns, workdir, *write_config(workdir))
            try:
                a, s = drv.wait()
            finally:
                drv.kill()
            if i:   # The first writes the bytecode.
                activate.append(a)
                serving.append(s)
                cpu.append(drv.cpu)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
            nsmod.sh('ip', 'netns', 'del', ns, check=False)
            namespaces.names.remove(ns)
    return activate, serving, cpu


def _lifecycles(socket_path, stop, index, joined, ns, sandbox):
    """Endpoint lifecycles until ``stop``; the first ``joined`` are left
    joined, their container ends moved into ``sandbox`` as Docker does,
    as containers that were running."""
    n = 0
    while not stop.is_set():
        ep = uuid.uuid4().hex * 2
        body = {'NetworkID': NID, 'EndpointID': ep}
        try:
            driverproc.call(socket_path, 'NetworkDriver.CreateEndpoint',
                            dict(body, Interface={'Address': '10.96.%d.%d/16'
                                                  % (index, n % 250 + 2)}),
                            timeout=5)
            status, reply = driverproc.call(
                socket_path, 'NetworkDriver.Join',
                dict(body, SandboxKey='/var/run/netns/' + sandbox),
                timeout=5)
            if n < joined:
                if status == 200:
                    nsmod.sh('ip', '-n', ns, 'link', 'set', reply[
                        'InterfaceName']['SrcName'], 'netns', sandbox,
                        check=False)
            else:
                for name in ('Leave', 'DeleteEndpoint'):
                    driverproc.call(socket_path, 'NetworkDriver.' + name,
                                    body, timeout=5)
        except (OSError, ValueError, http.client.HTTPException):
            return      # Killed under us.
        n += 1


def killed_busy(namespaces, runs, clients, joined):
    from_exec_a, from_exec_s, from_kill_a, cpu = [], [], [], []
    for _ in range(runs):
        ns = namespaces.add(nsmod.unique('ocnsu'))
        sandbox = namespaces.add(nsmod.unique('ocnsb'))
        workdir = tempfile.mkdtemp(prefix='ocnbench-')
        try:
            config_path, socket_path = write_config(workdir)
            first = Started(ns, workdir, config_path, socket_path)
            first.wait()
            driverproc.call(socket_path, 'NetworkDriver.CreateNetwork', {
                'NetworkID': NID, 'IPv4Data': [
                    {'Pool': '10.96.0.0/16', 'Gateway': '10.96.0.1/16'}]})
            stop = threading.Event()
            threads = [threading.Thread(
                target=_lifecycles, daemon=True,
                args=(socket_path, stop, i, joined, ns, sandbox))
                for i in range(1, clients + 1)]
            for t in threads:
                t.start()
            time.sleep(0.5)
            killed = time.perf_counter()
            first.kill(signal.SIGKILL)
            second = Started(ns, workdir, config_path, socket_path)
            try:
                a, s = second.wait()
            finally:
                stop.set()
                for t in threads:
                    t.join(10)
                second.kill()
            from_exec_a.append(a)
            from_exec_s.append(s)
            from_kill_a.append(second.t0 + a - killed)
            cpu.append(second.cpu)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
            for name in (sandbox, ns):
                nsmod.sh('ip', 'netns', 'del', name, check=False)
                namespaces.names.remove(name)
    return from_exec_a, from_exec_s, from_kill_a, cpu


def p90(values):
    ordered = sorted(values)
    return ordered[int(round(0.9 * (len(ordered) - 1)))]


def row(label, values, base, cpu=None):
    med = statistics.median(values)
    print('  %-46s %7.0f %7.0f %7.0f %7s' % (
        label, med * 1e3, p90(values) * 1e3, (med - base) * 1e3,
        '%.0f' % (statistics.median(cpu) * 1e3) if cpu else ''))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, default=10)
    parser.add_argument('--clients', type=int, default=4,
                        help='clients sending calls when (b) kills')
    parser.add_argument('--joined', type=int, default=2,
                        help='endpoints each client leaves joined in (b)')
    args = parser.parse_args()
    namespaces = nsmod.Namespaces()
    try:
        ns = namespaces.add(nsmod.unique('ocnsu'))
        base, base_cpu = baseline(ns, args.runs)
        activate, serving, cpu = cold(namespaces, args.runs)
        ea, es, ka, kcpu = killed_busy(namespaces, args.runs, args.clients,
                                       args.joined)
    finally:
        namespaces.close()
    b = statistics.median(base)
    print('Start-up, embedded default, %d runs (ms; "over": median minus '
          'the baseline\'s; "cpu": median CPU time of the main thread by '
          'then):' % args.runs)
    print('  %-46s %7s %7s %7s %7s' % ('', 'median', 'p90', 'over', 'cpu'))
    row('python -c pass (baseline)', base, b, base_cpu)
    row('(a) exec -> Plugin.Activate answered', activate, b, cpu)
    row('(a) exec -> "Serving" logged', serving, b)
    row('(b) kill -9 busy; new exec -> Plugin.Activate', ea, b, kcpu)
    row('(b) kill -9 busy; new exec -> "Serving"', es, b)
    row('(b) kill -9 busy; the kill -> Plugin.Activate', ka, b)


if __name__ == '__main__':
    main()
