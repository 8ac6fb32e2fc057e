"""dockerd restarted (``systemctl restart docker``) with containers running.

With ``live-restore`` the containers keep running through the restart;
without it dockerd stops them and starts again those with
``--restart=always``, on new endpoints. Either way they reach each other
afterwards, ``opencontrail-net-manage status`` is clean, and removing
everything leaves nothing behind. Both backends: the embedded default
(mock) and contrail (the fake API of this process), bridge ports.
"""

import json
import subprocess
import sys
import time

import pytest

from opencontrail_net import ids
from tests import contrail_target
from tests.e2e import dockerd as harness
from tests.e2e import plugin as plugin_mod

TYPES = ('virtual-network', 'virtual-machine-interface', 'instance-ip',
         'virtual-machine')
SUBNETS = {('mock', False): '192.168.71.0/24',
           ('mock', True): '192.168.72.0/24',
           ('contrail', False): '192.168.73.0/24',
           ('contrail', True): '192.168.74.0/24'}


@pytest.fixture(scope='module')
def api():
    api = contrail_target.start()
    yield api
    api.stop()


def contrail_state(api):
    return {t: sorted(o['uuid'] for o in api.objects(t)) for t in TYPES}


def make_plugin(daemon, api, backend):
    name = 'ocnr' + ids.short_hash('%s%s' % (time.time(), backend), 6)
    options = dict(docker_url=daemon.url, audit_interval=0,
                   port_driver='bridge')
    if backend == 'contrail':
        options.update(contrail_target.driver_options(api, **{
            'contrail.retry_interval': 0}))
        options['backend'] = 'contrail'
    return plugin_mod.DockerPlugin(name, **options)


def status(drv):
    cmd = [sys.executable, '-m', 'opencontrail_net.cmd.manage',
           '--config-file', drv.config_path, 'status', '--format', 'json']
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode in (0, 1), res.stderr
    return res.returncode, json.loads(res.stdout)


def inspect(daemon, names):
    return json.loads(daemon.cli('inspect', *names).stdout)


@pytest.mark.parametrize('live_restore', [False, True],
                         ids=['stop', 'live-restore'])
@pytest.mark.parametrize('backend', ['mock', 'contrail'])
def test_containers_keep_network(dockerd_host, api, unique_name, backend,
                                 live_restore):
    subnet = SUBNETS[backend, live_restore]
    before = contrail_state(api) if backend == 'contrail' else None
    daemon = harness.DockerDaemon(
        harness.make_base_dir(),
        extra_args=['--live-restore'] if live_restore else [])
    drv = make_plugin(daemon, api, backend)
    net = unique_name('nrd')
    names = [unique_name('crd'), unique_name('crd')]
    try:
        daemon.start()
        daemon.import_busybox()
        drv.start()
        daemon.cli('network', 'create', '-d', drv.name, '--subnet', subnet,
                   net)
        # sleep as pid 1 ignores SIGTERM: do not wait 10 s to stop it.
        restart = [] if live_restore else ['--restart=always']
        for cname in names:
            daemon.cli('run', '-d', '--name', cname, '--net', net,
                       '--stop-timeout', '1', *restart,
                       'bb:latest', 'sleep', '600')
        old = inspect(daemon, names)
        net_id = old[0]['NetworkSettings']['Networks'][net]['NetworkID']
        old_pids = [c['State']['Pid'] for c in old]

        daemon.restart()

        new = inspect(daemon, names)
        assert [c['State']['Running'] for c in new] == [True, True]
        # With live-restore the very same processes run on.
        assert ([c['State']['Pid'] for c in new] == old_pids) == live_restore
        eps = [c['NetworkSettings']['Networks'][net] for c in new]
        # Without it Docker left the network and joins it again.
        assert ([ep['EndpointID'] for ep in eps] == [
            c['NetworkSettings']['Networks'][net]['EndpointID']
            for c in old]) == live_restore
        assert plugin_mod.pings(daemon, names[0], eps[1]['IPAddress'])
        assert plugin_mod.pings(daemon, names[1], eps[0]['IPAddress'])
        code, report = status(drv)
        assert (code, report['findings']) == (0, []), report
        [row] = [n for n in report['networks'] if n['id'] == net_id]
        assert (sorted(e['id'] for e in row['endpoints']) ==
                sorted(ep['EndpointID'] for ep in eps))

        endpoint_ids = {ep['EndpointID'] for ep in eps} | {
            c['NetworkSettings']['Networks'][net]['EndpointID'] for c in old}
        daemon.cli('rm', '-f', *names)
        daemon.cli('network', 'rm', net)
        assert plugin_mod.leftovers(endpoint_ids, [net_id]) == []
        if backend == 'contrail':
            assert contrail_state(api) == before
        else:
            assert drv.mock_rows('networks') == []
            assert drv.mock_rows('endpoints') == []
            assert drv.mock_rows('vms') == []
    except Exception:
        print(daemon.log_tail(80))
        raise
    finally:
        try:
            # While the driver runs, so that it sees everything go.
            if daemon.pid is not None:
                daemon.cli('rm', '-f', *names, check=False)
                daemon.cli('network', 'rm', net, check=False)
            daemon.stop()
        finally:
            drv.close()
