"""The driver process on a real socket: start, serve, stop."""

import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time

import pytest

from tests import driverproc
from tests.functional import conftest
from tests.functional.test_contrail_backend import net_body

NID = 'ab' * 32


def test_socket_mode_and_clean_exit(driver_factory):
    drv = driver_factory().start()
    mode = stat.S_IMODE(os.stat(drv.socket_path).st_mode)
    assert mode == 0o660
    assert drv.ok('Plugin.Activate') == {
        'Implements': ['NetworkDriver', 'IpamDriver']}
    assert drv.stop() == 0
    assert not os.path.exists(drv.socket_path)


def test_stale_socket_is_replaced(driver_factory):
    drv = driver_factory(socket_mode='0600')
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(drv.socket_path)
    stale.close()
    drv.start()
    assert stat.S_IMODE(os.stat(drv.socket_path).st_mode) == 0o600
    assert drv.ok('NetworkDriver.GetCapabilities')['Scope'] == 'local'
    assert drv.kill(signal.SIGINT) == 0
    assert not os.path.exists(drv.socket_path)


def test_unknown_plugin_stops_the_driver(driver_factory):
    drv = driver_factory(backend='nosuch')
    res = subprocess.run(drv.command(), capture_output=True, text=True,
                         timeout=30)
    assert res.returncode != 0
    lines = [x for x in res.stderr.splitlines() if 'nosuch' in x]
    assert len(lines) == 1
    assert 'installed: ' in lines[0] and 'mock' in lines[0]
    assert not os.path.exists(drv.socket_path)


def test_concurrent_calls(driver_factory):
    drv = driver_factory(port_driver='veth').start()
    drv.ok('NetworkDriver.CreateNetwork', {
        'NetworkID': NID, 'Options': {},
        'IPv4Data': [{'Pool': '10.50.0.0/16', 'Gateway': '10.50.0.1/16'}]})
    results = []

    def create(n):
        results.append(drv.call('NetworkDriver.CreateEndpoint', {
            'NetworkID': NID, 'EndpointID': '%064x' % n,
            'Interface': {'Address': '10.50.%d.%d/16'
                          % (n // 250, n % 250 + 2)}}))
    threads = [threading.Thread(target=create, args=(n,))
               for n in range(60)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [s for s, _ in results] == [200] * 60
    assert len({r['Interface']['MacAddress'] for _, r in results}) == 60


def test_killed_driver_keeps_its_state(driver_factory):
    drv = driver_factory(port_driver='veth').start()
    drv.ok('NetworkDriver.CreateNetwork', {
        'NetworkID': NID, 'Options': {'com.docker.network.generic': {
            'rt': '64512:100'}},
        'IPv4Data': [{'Pool': '10.51.0.0/24', 'Gateway': '10.51.0.1/24'}]})
    ep = {'NetworkID': NID, 'EndpointID': 'cd' * 32,
          'Interface': {'Address': '10.51.0.2/24'}}
    mac = drv.ok('NetworkDriver.CreateEndpoint', ep)['Interface']
    drv.restart()
    # The same request after a restart: the same endpoint, the same MAC.
    assert drv.ok('NetworkDriver.CreateEndpoint', ep)['Interface'] == mac
    status, reply = drv.call('NetworkDriver.CreateEndpoint', dict(
        ep, EndpointID='ef' * 32))
    assert status == 409 and '10.51.0.2' in reply['Err']
    drv.ok('NetworkDriver.DeleteEndpoint', ep)
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': NID})
    drv.restart()
    status, reply = drv.call('NetworkDriver.CreateEndpoint', ep)
    assert status == 404 and NID in reply['Err']


def test_help_runs_without_root():
    res = subprocess.run([sys.executable, '-m', 'opencontrail_net.cmd.driver',
                          '--help'], capture_output=True, text=True)
    assert res.returncode == 0 and '--config-file' in res.stdout


conftest  # noqa: B018  (fixtures)


def _wait_for(drv, text, timeout=10):
    deadline = time.monotonic() + timeout
    while text not in drv.log_text():
        assert time.monotonic() < deadline, drv.log_tail()
        time.sleep(0.05)


def test_sighup_reloads_and_never_stops(driver_factory):
    """SIGHUP, as to an OpenStack service: the mutable options take their
    new values from the files; the process and its socket stay."""
    drv = driver_factory(debug='false', delete_spacing_ms=50,
                         audit_interval=0).start()
    pid = drv.proc.pid
    os.kill(pid, signal.SIGHUP)
    _wait_for(drv, 'Reloaded the configuration (SIGHUP): debug False, '
                   'audit_interval 0, delete_spacing_ms 50')
    drv.ok('NetworkDriver.GetCapabilities')
    assert 'NetworkDriver.GetCapabilities' not in drv.log_text()
    drv.options.update(debug='true', delete_spacing_ms=0)
    drv.write_config()
    os.kill(pid, signal.SIGHUP)
    _wait_for(drv, 'Reloaded the configuration (SIGHUP): debug True, '
                   'audit_interval 0, delete_spacing_ms 0')
    assert drv.proc.poll() is None and drv.proc.pid == pid
    # Debug is on now: calls are logged.
    drv.ok('NetworkDriver.GetCapabilities')
    _wait_for(drv, 'NetworkDriver.GetCapabilities')
    # A broken file changes nothing and stops nothing.
    with open(drv.config_path, 'a') as f:
        f.write('[DEFAULT\n')
    os.kill(pid, signal.SIGHUP)
    _wait_for(drv, 'Reload (SIGHUP) failed, nothing changed')
    assert drv.ok('NetworkDriver.GetCapabilities')['Scope'] == 'local'
    assert drv.stop() == 0


def wakeups(pid):
    """Times the process's threads have slept and woken so far."""
    total = 0
    for tid in os.listdir('/proc/%d/task' % pid):
        with open('/proc/%d/task/%s/status' % (pid, tid)) as f:
            for line in f:
                if line.startswith('voluntary_ctxt_switches:'):
                    total += int(line.split()[1])
    return total


def test_an_idle_driver_sleeps(driver_factory):
    """Nothing to do, nothing done: a host's idle drivers cost its CPU
    no more than the HTTP server's connection expiry (twice a second)."""
    drv = driver_factory(debug='false').start()
    time.sleep(1)
    before, began = wakeups(drv.proc.pid), time.monotonic()
    time.sleep(4)
    rate = (wakeups(drv.proc.pid) - before) / (time.monotonic() - began)
    assert rate < 4, '%.1f wakeups a second' % rate
    # The main thread, asleep until the end, still stops at once.
    stopped = time.monotonic()
    assert drv.stop() == 0
    assert time.monotonic() - stopped < 3
    assert not os.path.exists(drv.socket_path)


def threads_of(proc):
    return len(os.listdir('/proc/%d/task' % proc.pid))


def test_waiting_answers_keep_threads_for_other_calls(driver_factory):
    """A burst of DeleteEndpoint answers waiting their turn holds a few of
    the server's threads at most: a call meanwhile is answered at once,
    the burst's answers stay spaced, and the added threads go after."""
    drv = driver_factory(port_driver='veth', server_threads='4',
                         delete_spacing_ms='100').start()
    before = threads_of(drv.proc)
    answered = {}

    def delete(n):
        drv.ok('NetworkDriver.DeleteEndpoint', {
            'NetworkID': NID, 'EndpointID': '%064x' % n})
        answered[n] = time.monotonic()

    burst = [threading.Thread(target=delete, args=(n,)) for n in range(24)]
    for thread in burst:
        thread.start()
    time.sleep(0.4)
    asked = time.monotonic()
    drv.ok('NetworkDriver.GetCapabilities')
    waited = time.monotonic() - asked
    for thread in burst:
        thread.join(30)
    times = sorted(answered.values())
    assert len(times) == 24
    # 24 answers 100 ms apart: 2.3 s from the first to the last, as the
    # client threads note them (a busy machine delays a thread's note by
    # up to a tenth of a second or so; answers not spaced would all come
    # within a few ms).
    assert times[-1] - times[0] >= 2.0
    assert waited < 0.8, 'a call waited %.2f s behind the burst' % waited
    assert settle(lambda: threads_of(drv.proc) <= before + 1)
    assert 'answering them 100 ms apart' in drv.log_text()


def settle(check, seconds=5):
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_socket_in_use_is_never_taken_over(driver_factory, workdir):
    """A second driver on the socket of a running one exits non-zero,
    naming the socket and the pid serving it, and changes nothing: the
    first still serves."""
    first = driver_factory(name='first').start()
    other = os.path.join(workdir, 'second')
    os.makedirs(other)
    second = driverproc.DriverProcess(other, first.socket_path)
    res = subprocess.run(second.command(), capture_output=True, text=True,
                         timeout=30)
    assert res.returncode == 2, res.stderr
    assert ('socket %s is served by pid %d' % (first.socket_path,
                                               first.proc.pid)
            ) in res.stderr
    assert 'Starting: backend' not in res.stdout + res.stderr
    assert first.ok('NetworkDriver.GetCapabilities')['Scope'] == 'local'
    assert first.stop() == 0


def test_vrouter_in_a_managed_plugin_is_refused(driver_factory):
    """A managed plugin has a filesystem of its own: port files would go
    where the vrouter agent never reads them. The driver refuses to start
    so, saying why and what to do."""
    drv = driver_factory(port_driver='vrouter')
    res = subprocess.run(drv.command(), capture_output=True, text=True,
                         timeout=30, env=dict(
                             os.environ, OPENCONTRAIL_NET_MANAGED_PLUGIN='1'))
    assert res.returncode == 2, res.stderr
    assert ("invalid [DEFAULT] port_driver 'vrouter': a managed plugin does "
            "not see the vrouter agent's ports directory") in res.stderr
    assert not os.path.exists(drv.socket_path)


def _activated(drv, timeout=20):
    """Poll Plugin.Activate until the socket answers it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if drv.call('Plugin.Activate', timeout=5)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.005)
    raise AssertionError('no answer:\n' + drv.log_tail())


@pytest.mark.noauth_only
def test_calls_during_the_start_wait_for_it(fake, driver_factory):
    """The socket is served before the start behind it is over: the
    handshake is answered at once, and a call that needs the backend
    waits for the start (held up by a slow API server) and is then
    served."""
    drv = conftest.contrail_driver(driver_factory, fake)
    fake.delay = 0.5
    drv.start(wait=False)
    _activated(drv)
    assert drv.ok('NetworkDriver.GetCapabilities')['Scope'] == 'local'
    assert not driverproc.started(drv.log_since_start())
    net = net_body(60, v6=False)
    status, reply = drv.call('NetworkDriver.CreateNetwork', net, timeout=60)
    assert status == 200, reply
    log = drv.log_since_start()
    assert driverproc.started(log)
    assert 'NetworkDriver.CreateNetwork waited' in log
    fake.delay = 0
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': net['NetworkID']})


def test_a_start_that_fails_behind_the_socket_ends_the_driver(
        driver_factory):
    """A start that fails once the socket is served (here, another
    program listens on the metrics address) ends the driver non-zero,
    saying why, and its socket goes."""
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen()
        address = '127.0.0.1:%d' % taken.getsockname()[1]
        drv = driver_factory(metrics_address=address)
        res = subprocess.run(drv.command(), capture_output=True, text=True,
                             timeout=60)
    assert res.returncode == 2, res.stderr
    assert ("invalid [DEFAULT] metrics_address %r: cannot listen there"
            % address) in res.stderr
    log = res.stdout
    assert 'Listening on %s' % drv.socket_path in log
    assert 'Start failed: invalid [DEFAULT] metrics_address' in log
    assert not os.path.exists(drv.socket_path)
