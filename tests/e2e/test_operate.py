"""Operating the driver: status, audit and its repairs, under a real dockerd.

Each kind of leak Docker's swallowed errors leave is made on purpose;
``opencontrail-net-manage status`` must show it, ``audit --fix`` (or the
driver's own periodic audit) must repair it, and ``status`` must then be
clean. Both backends: the embedded default (mock, bridge ports) and
contrail with vrouter ports (the fake API and agent of this process).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest
from vnc_api import vnc_api

from opencontrail_net import ids
from opencontrail_net import vrouter_agent as agent_client
from tests.e2e import plugin as plugin_mod
from tests import contrail_target
from tests.fakes import vrouter_agent
from tests import netns as nsmod


@pytest.fixture(scope='module')
def fakes():
    api = contrail_target.start()
    contrail_target.virtual_router(contrail_target.vnc_client(api))
    ports_dir = tempfile.mkdtemp(prefix='ocn-ports-')
    agent = vrouter_agent.FakeAgent(ports_dir)
    agent.start()
    yield api, agent
    agent.stop()
    api.stop()
    shutil.rmtree(ports_dir, ignore_errors=True)


def make_plugin(dockerd, fakes, backend, **extra):
    api, agent = fakes
    name = 'ocno' + ids.short_hash('%s%s' % (time.time(), backend), 6)
    options = dict(docker_url=dockerd.url, audit_interval=0, **extra)
    if backend == 'contrail':
        options.update({'backend': 'contrail', 'port_driver': 'vrouter',
                        'host': contrail_target.HOST,
                        'contrail.api_server': api.host,
                        'contrail.api_port': api.port,
                        'contrail.project': contrail_target.PROJECT_NAME,
                        'contrail.retry_interval': 0,
                        'vrouter.agent_url': agent.url,
                        'vrouter.ports_dir': agent.ports_dir,
                        'vrouter.port_ready_timeout': 1})
    else:
        options['port_driver'] = 'bridge'
    return plugin_mod.DockerPlugin(name, **options)


@pytest.fixture(scope='module', params=['mock', 'contrail'])
def drv(request, dockerd, fakes):
    plugin = make_plugin(dockerd, fakes, request.param)
    plugin.backend = request.param
    try:
        plugin.start()
        yield plugin
    finally:
        plugin.close()


@pytest.fixture
def made(dockerd):
    made = {'containers': [], 'networks': []}
    yield made
    if made['containers']:
        dockerd.cli('rm', '-f', *made['containers'], check=False)
    for n in made['networks']:
        dockerd.cli('network', 'rm', n, check=False)


def manage(drv, *args):
    """Run opencontrail-net-manage on the driver's config file."""
    cmd = [sys.executable, '-m', 'opencontrail_net.cmd.manage',
           '--config-file', drv.config_path] + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def status(drv):
    res = manage(drv, 'status', '--format', 'json')
    assert res.returncode in (0, 1), res.stderr
    report = json.loads(res.stdout)
    assert report['clean'] == (res.returncode == 0)
    return report


def kinds(report):
    return sorted(((f['kind'], f['network'], f['endpoint'])
                   for f in report['findings']), key=str)


def setup_network(dockerd, drv, made, unique_name, subnet, count=2):
    name = unique_name('nop')
    dockerd.cli('network', 'create', '-d', drv.name, '--subnet', subnet,
                name)
    made['networks'].append(name)
    containers = []
    for _ in range(count):
        cname = unique_name('cop')
        made['containers'].append(cname)
        dockerd.cli('run', '-d', '--name', cname, '--net', name,
                    'bb:latest', 'sleep', '600')
        containers.append(json.loads(dockerd.cli('inspect', cname).stdout)[0])
    net_id = dockerd.cli('network', 'inspect', '-f', '{{.Id}}',
                         name).stdout.strip()
    return name, net_id, containers


def endpoint_of(container, net_name):
    return container['NetworkSettings']['Networks'][net_name]['EndpointID']


def test_status_audit_and_repairs(dockerd, drv, fakes, made, unique_name):
    api, agent = fakes
    name, net_id, (a, b, c) = setup_network(dockerd, drv, made, unique_name,
                                            '192.168.61.0/24', 3)
    report = status(drv)
    assert report['findings'] == []
    [net] = [n for n in report['networks'] if n['id'] == net_id]
    assert net['name'] == name
    assert net['backend']['subnets'] == ['192.168.61.0/24']
    assert net['backend']['uuid'] == ids.network_uuid(net_id)
    rows = {e['container']: e for e in net['endpoints']}
    for cont in (a, b, c):
        row = rows[cont['Name'].strip('/')]
        ep = cont['NetworkSettings']['Networks'][name]
        assert row['id'] == ep['EndpointID']
        assert row['mac'] == ep['MacAddress']
        assert row['ipv4'].split('/')[0] == ep['IPAddress']
        assert row['uuid'] == ids.endpoint_uuid(ep['EndpointID'])
        assert row['host_interface'].startswith('veth')
        if drv.backend == 'contrail':
            assert row['agent_port'] == 'ready'
            # The server shows the agent the port through this host's
            # virtual-router, which refers to the container's VM.
            assert row['vrouter'] == 'linked'
        else:
            assert row['vrouter'] is None
    table = manage(drv, 'status')
    assert table.returncode == 0 and name in table.stdout

    expected = []
    # 1. An endpoint's host interface deleted by hand.
    ep_a = endpoint_of(a, name)
    nsmod.sh('ip', 'link', 'del', rows[a['Name'].strip('/')][
        'host_interface'])
    expected.append(('interface-missing', net_id, ep_a))
    # 2. The backend down during "docker rm": the endpoint's delete waits
    # in this host's queue, and is done once the API is back; nothing
    # leaks.
    ep_b = endpoint_of(b, name)
    if drv.backend == 'contrail':
        api.set_down(True)
        try:
            dockerd.cli('rm', '-f', b['Id'])
        finally:
            api.set_down(False)
        deadline = time.monotonic() + 30
        while api.get('virtual-machine-interface',
                      ids.endpoint_uuid(ep_b)) is not None:
            assert time.monotonic() < deadline, drv.log_text()[-3000:]
            time.sleep(0.1)
    # 3. The driver killed during "docker network rm": the network leaks.
    other, other_id, _ = setup_network(dockerd, drv, made, unique_name,
                                       '192.168.62.0/24', 0)
    plugin_mod.kill_during(drv, lambda: dockerd.cli(
        'network', 'rm', other, check=False))
    expected.append(('network-leaked', other_id, None))
    # 4. The agent loses a port (after the restart, which registers
    # every plugged port again).
    ep_c = endpoint_of(c, name)
    if drv.backend == 'contrail':
        agent_client.AgentClient(url=agent.url).delete_port(
            ids.endpoint_uuid(ep_c))
        expected.append(('port-missing', net_id, ep_c))

    res = manage(drv, 'status', '--format', 'json')
    assert res.returncode == 1
    report = json.loads(res.stdout)
    assert kinds(report) == sorted(expected, key=str)
    res = manage(drv, 'audit', '--fix', '--settle', '0.5')
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count('->') == len(expected)
    assert status(drv)['findings'] == []
    # The container that lost its interface has it back.
    addr = dockerd.cli('exec', a['Name'].strip('/'), 'ip', 'addr').stdout
    assert a['NetworkSettings']['Networks'][name]['IPAddress'] + '/24' in addr
    if drv.backend == 'mock':
        assert plugin_mod.pings(dockerd, a['Name'].strip('/'),
                                c['NetworkSettings']['Networks'][name][
                                    'IPAddress'])
    if drv.backend == 'contrail':
        assert api.get('virtual-machine-interface',
                       ids.endpoint_uuid(ep_b)) is None
        assert api.get('virtual-network', ids.network_uuid(other_id)) is None
        assert ids.endpoint_uuid(ep_c) in agent.ports
    else:
        assert other_id not in [n['id'] for n in drv.mock_rows('networks')]
    assert plugin_mod.leftovers([], [other_id]) == []


def test_foreign_object_shown_never_touched(dockerd, drv, fakes, made,
                                            unique_name):
    if drv.backend != 'contrail':
        pytest.skip('the mock backend holds no objects of others')
    api, _agent = fakes
    vnc = vnc_api.VncApi(api_server_host=api.host,
                         api_server_port=str(api.port), auth_type='noauth')
    name, net_id, _ = setup_network(dockerd, drv, made, unique_name,
                                    '192.168.63.0/24', 1)
    # Docker keeps a network of the driver throughout: with none, the
    # audit could not tell a leak from a wrong driver_name, and would
    # repair nothing (test_audit_with_a_misspelt_driver_name_...).
    setup_network(dockerd, drv, made, unique_name, '192.168.65.0/24', 0)
    vn = vnc.virtual_network_read(id=ids.network_uuid(net_id))
    project = vnc.project_read(fq_name=contrail_target.PROJECT)
    vmi = vnc_api.VirtualMachineInterface(unique_name('novaport'), project)
    vmi.set_virtual_network(vn)
    vnc.virtual_machine_interface_create(vmi)
    try:
        report = status(drv)
        assert report['findings'] == []
        [net] = [n for n in report['networks'] if n['id'] == net_id]
        assert [o for o in net['foreign_objects'] if vmi.uuid in o]
        assert manage(drv, 'audit', '--fix', '--settle', '0').returncode == 0
        # The network leaks once Docker drops it; the audit keeps it, and
        # the object of others, and says why.
        dockerd.cli('rm', '-f', *made['containers'])
        dockerd.cli('network', 'rm', name)
        made['networks'].remove(name)
        res = manage(drv, 'audit', '--fix', '--settle', '0')
        assert res.returncode == 1
        assert vmi.uuid in res.stdout
        assert vnc.virtual_machine_interface_read(id=vmi.uuid)
    finally:
        vnc.virtual_machine_interface_delete(id=vmi.uuid)
    assert manage(drv, 'audit', '--fix', '--settle', '0').returncode == 0
    assert api.get('virtual-network', ids.network_uuid(net_id)) is None


def test_allow_policy_outliving_a_network_is_repaired(
        dockerd, drv, fakes, made, unique_name):
    """A network removed on a host that did not make its allow policy (the
    host that did records the pair): status shows the policy stale,
    audit --fix deletes it and the other network's ref to it."""
    if drv.backend != 'contrail':
        pytest.skip('the mock backend holds no policies')
    api, _agent = fakes
    vnc = contrail_target.vnc_client(api)
    web, web_id, _ = setup_network(dockerd, drv, made, unique_name,
                                   '192.168.66.0/24', 0)
    db = unique_name('nop')
    dockerd.cli('network', 'create', '-d', drv.name, '--subnet',
                '192.168.67.0/24', '-o', 'opencontrail.allow=' + web, db)
    made['networks'].append(db)
    db_id = dockerd.cli('network', 'inspect', '-f', '{{.Id}}',
                        db).stdout.strip()
    policy = ids.allow_policy_uuid(web_id, db_id)
    assert status(drv)['findings'] == []
    # This host forgets the pair, as a host that did not make it knows
    # nothing of it.
    vnc.kv_delete('opencontrail-net:host:%s:allow:%s:%s' % (
        (contrail_target.HOST,) + tuple(sorted((web_id, db_id)))))
    drv.restart()
    dockerd.cli('network', 'rm', web)
    made['networks'].remove(web)
    assert api.get('virtual-network', ids.network_uuid(web_id)) is None
    report = status(drv)
    assert kinds(report) == [('policy-stale', web_id, None)]
    [row] = [p for p in report['allow_policies'] if p['uuid'] == policy]
    assert row['gone'] == [web_id]
    assert 'ALLOW POLICY' in manage(drv, 'status').stdout
    res = manage(drv, 'audit', '--fix', '--settle', '0')
    assert res.returncode == 0, res.stdout + res.stderr
    assert 'deleted network-policy %s' % policy in res.stdout
    assert api.get('network-policy', policy) is None
    vn = api.get('virtual-network', ids.network_uuid(db_id))
    assert not vn.get('network_policy_refs')
    assert status(drv)['findings'] == []


@pytest.mark.parametrize('backend', ['mock', 'contrail'])
def test_periodic_audit_repairs(dockerd, fakes, made, unique_name, backend):
    api, agent = fakes
    drv = make_plugin(dockerd, fakes, backend)
    drv.options['audit_interval'] = 1
    drv.write_config()
    drv.backend = backend
    try:
        drv.start()
        name, net_id, (a, b) = setup_network(dockerd, drv, made, unique_name,
                                             '192.168.64.0/24', 2)
        ep_a = endpoint_of(a, name)
        nsmod.sh('ip', 'link', 'del', plugin_mod.host_name_of(ep_a))
        if backend == 'contrail':
            api.set_down(True)
            try:
                dockerd.cli('rm', '-f', b['Id'])
            finally:
                api.set_down(False)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            report = status(drv)
            if report['clean']:
                break
            time.sleep(0.5)
        assert report['findings'] == []
        assert 'Audit repaired' in drv.log_text()
        addr = dockerd.cli('exec', a['Name'].strip('/'), 'ip',
                           'addr').stdout
        assert a['NetworkSettings']['Networks'][name]['IPAddress'] in addr
        if backend == 'mock':
            assert plugin_mod.pings(dockerd, a['Name'].strip('/'),
                                    '192.168.64.1')
    finally:
        try:
            if made['containers']:
                dockerd.cli('rm', '-f', *made['containers'], check=False)
            for n in made['networks']:
                dockerd.cli('network', 'rm', n, check=False)
            made['containers'], made['networks'] = [], []
        finally:
            drv.close()


def test_audit_with_a_misspelt_driver_name_repairs_nothing(
        dockerd, drv, fakes, made, unique_name):
    """Docker lists none of 'the driver's' networks (the name is wrong)
    while the backend holds this host's: --fix deletes nothing, says why
    and exits 2; the containers keep their network."""
    name, net_id, (a, b) = setup_network(dockerd, drv, made, unique_name,
                                         '192.168.64.0/24', 2)
    typo = os.path.join(drv.workdir, 'typo.conf')
    with open(typo, 'w') as f:
        f.write('[DEFAULT]\ndriver_name = %sx\n' % drv.name)
    res = manage(drv, '--config-file', typo, 'audit', '--fix', '--settle',
                 '0')
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert 'repairs nothing' in res.stderr
    assert 'driver_name' in res.stderr
    assert 'In step' not in res.stdout
    assert status(drv)['findings'] == []
    if drv.backend == 'mock':
        ip_b = b['NetworkSettings']['Networks'][name]['IPAddress']
        assert plugin_mod.pings(dockerd, a['Name'].strip('/'), ip_b)
    else:
        assert fakes[0].get('virtual-network', ids.network_uuid(net_id))
