"""`--ipam-driver`: the driver's IPAM under a real dockerd, both backends.

On the contrail backend the addresses are instance-ips Contrail picked,
read back with the real vnc_api client.
"""

import json
import os
import sqlite3
import time

import pytest
from vnc_api import vnc_api

from opencontrail_net import ids
from tests import contrail_target
from tests.e2e import plugin as plugin_mod

TYPES = ('virtual-network', 'virtual-machine-interface', 'instance-ip',
         'virtual-machine', 'security-group')


@pytest.fixture(scope='module')
def api():
    api = contrail_target.start()
    yield api
    api.stop()


@pytest.fixture(scope='module', params=['mock', 'contrail'])
def drv(request, dockerd, api):
    options = {'port_driver': 'bridge', 'docker_url': dockerd.url}
    if request.param == 'contrail':
        options.update({'backend': 'contrail',
                        'contrail.api_server': api.host,
                        'contrail.api_port': api.port,
                        'contrail.project': contrail_target.PROJECT_NAME})
    name = 'ocni' + ids.short_hash(str(time.time()), 6)
    plugin = plugin_mod.DockerPlugin(name, **options)
    plugin.backend = request.param
    try:
        plugin.start()
        yield plugin
    finally:
        plugin.close()


@pytest.fixture
def vnc(api):
    return vnc_api.VncApi(api_server_host=api.host,
                          api_server_port=str(api.port), auth_type='noauth')


@pytest.fixture
def made(dockerd):
    made = {'containers': [], 'networks': []}
    yield made
    if made['containers']:
        dockerd.cli('rm', '-f', *made['containers'], check=False)
    for n in made['networks']:
        dockerd.cli('network', 'rm', n, check=False)


def network(dockerd, drv, made, name, *args):
    dockerd.cli('network', 'create', '-d', drv.name, '--ipam-driver',
                drv.name, *args, name)
    made['networks'].append(name)
    return json.loads(dockerd.cli('network', 'inspect', name).stdout)[0]


def run(dockerd, made, name, *args, check=True):
    made['containers'].append(name)
    res = dockerd.cli('run', '-d', '--name', name, *args, 'bb:latest',
                      'sleep', '600', check=check)
    if not check:
        return res
    return json.loads(dockerd.cli('inspect', name).stdout)[0]


def address(container, net_name, key='IPAddress'):
    return container['NetworkSettings']['Networks'][net_name][key]


def state(drv, api):
    """What the backend holds: Contrail objects, or the mock's rows."""
    if drv.backend == 'contrail':
        found = {t: sorted(o['uuid'] for o in api.objects(t)) for t in TYPES}
        found['kv'] = sorted(api.kv())
        return found
    return {t: _mock_count(drv, t) for t in (
        'networks', 'endpoints', 'endpoint_addresses', 'pools',
        'pool_addresses')}


def _mock_count(drv, table):
    path = os.path.join(drv.options['state_path'], 'mock-backend.sqlite')
    db = sqlite3.connect('file:%s?mode=ro' % path, uri=True)
    try:
        return db.execute('SELECT COUNT(*) FROM %s' % table).fetchone()[0]
    finally:
        db.close()


def test_range_gateway_aux_and_ip(dockerd, drv, api, vnc, made,
                                  unique_name):
    before = state(drv, api)
    name = unique_name('ipa')
    net = network(dockerd, drv, made, name, '--subnet', '10.20.0.0/24',
                  '--ip-range', '10.20.0.128/25', '--gateway', '10.20.0.1',
                  '--aux-address', 'r=10.20.0.5')
    assert net['IPAM']['Driver'] == drv.name
    first = 128
    if drv.backend == 'contrail':
        # Another workload (a VM, a pod) holds the range's first address
        # in Contrail: no container ever gets it.
        theirs = vnc_api.InstanceIp('theirs-' + unique_name('ip'),
                                    instance_ip_address='10.20.0.128')
        theirs.set_virtual_network(vnc.virtual_network_read(
            id=ids.network_uuid(net['Id'])))
        vnc.instance_ip_create(theirs)
        first = 129
    c1 = run(dockerd, made, unique_name('cia'), '--net', name)
    c2 = run(dockerd, made, unique_name('cia'), '--net', name)
    c3 = run(dockerd, made, unique_name('cia'), '--net', name,
             '--ip', '10.20.0.200')
    # Held by c1, or in Contrail by the other workload: refused.
    res = run(dockerd, made, unique_name('cia'), '--net', name,
              '--ip', '10.20.0.128', check=False)
    assert res.returncode != 0 and '10.20.0.128' in res.stderr
    got = [address(c, name) for c in (c1, c2, c3)]
    assert got == ['10.20.0.%d' % first, '10.20.0.%d' % (first + 1),
                   '10.20.0.200']
    assert address(c1, name, 'Gateway') == '10.20.0.1'
    out = dockerd.cli('exec', c1['Id'], 'ping', '-c', '1', '-W', '2',
                      '10.20.0.129').stdout
    assert '1 packets received' in out
    if drv.backend == 'contrail':
        iips = {o['instance_ip_address']: o
                for o in api.objects('instance-ip')}
        for c in (c1, c2, c3):
            ep = c['NetworkSettings']['Networks'][name]['EndpointID']
            iip = iips[address(c, name)]
            assert iip['virtual_machine_interface_refs'][0]['uuid'] == \
                ids.endpoint_uuid(ep)
    dockerd.cli('rm', '-f', c1['Id'], c2['Id'], c3['Id'])
    if drv.backend == 'contrail':
        vnc.instance_ip_delete(id=theirs.uuid)
    dockerd.cli('network', 'rm', name)
    assert state(drv, api) == before


def test_default_pool_and_dual_stack(dockerd, drv, api, made, unique_name):
    before = state(drv, api)
    name = unique_name('ipd')
    net = network(dockerd, drv, made, name, '--ipv6')
    pools = [c['Subnet'] for c in net['IPAM']['Config']]
    assert pools[0].startswith('10.128.') and pools[0].endswith('/24')
    assert pools[1].startswith('fd00:ac10:') and pools[1].endswith('/64')
    c1 = run(dockerd, made, unique_name('cid'), '--net', name)
    assert address(c1, name).startswith(pools[0][:-len('0/24')])
    assert address(c1, name, 'GlobalIPv6Address').startswith('fd00:ac10:')
    dockerd.cli('rm', '-f', c1['Id'])
    dockerd.cli('network', 'rm', name)
    assert state(drv, api) == before


def test_exhausted_pool(dockerd, drv, api, made, unique_name):
    before = state(drv, api)
    name = unique_name('ipx')
    network(dockerd, drv, made, name, '--subnet', '10.21.0.0/29')
    for _ in range(5):
        run(dockerd, made, unique_name('cix'), '--net', name)
    res = run(dockerd, made, unique_name('cix'), '--net', name, check=False)
    assert res.returncode != 0 and '10.21.0.0/29' in res.stderr
    dockerd.cli('rm', '-f', *made['containers'], check=False)
    made['containers'] = []
    dockerd.cli('network', 'rm', name)
    assert state(drv, api) == before
