"""Three swarm nodes, each with the managed plugin built from this checkout.

A global service on an attachable swarm network: every task is attached,
the network is one virtual-network with its route target, and removing
the service and the network leaves nothing in Contrail.
"""

import json
import os
import subprocess
import sys
import threading

from opencontrail_net import ids
from tests.multihost import testbed as testbed_mod
from tests.multihost.test_cluster_store import bindings, ours, TYPES

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, 'tools', 'build-plugin.sh')


def build_plugin(host, name, keep):
    """tools/build-plugin.sh, as an operator runs it, on host's dockerd.

    ``keep``: where the assembled plugin is kept for the next host.
    """
    env = dict(host.dockerd._cli_env, DOCKER_HOST=host.dockerd.url,
               DOCKER=host.dockerd.docker_cli, OCN_VENV=sys.prefix,
               OCN_PLUGIN_DIR=keep)
    res = subprocess.run(['bash', BUILD, name], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == name + ':latest'


def plugin_config(bed, host):
    """The directory holding the plugin's opencontrail-net.conf."""
    path = os.path.join(host.base, 'etc')
    os.makedirs(path)
    options = bed.driver_options(host=host.name, debug='true',
                                 docker_url='')
    groups = {}
    for key, value in options.items():
        group, _, opt = key.rpartition('.')
        groups.setdefault(group or 'DEFAULT', []).append((opt, value))
    with open(os.path.join(path, 'opencontrail-net.conf'), 'w') as f:
        for group, values in groups.items():
            f.write('[%s]\n' % group)
            f.writelines('%s = %s\n' % kv for kv in values)
    return path


def in_parallel(func, items):
    errors = []

    def run(item):
        try:
            func(item)
        except BaseException as exc:
            errors.append(exc)
    threads = [threading.Thread(target=run, args=(i,)) for i in items]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def task(host):
    """(address, endpoint ID) of the service's task on host, or None."""
    cid = host.cli('ps', '-q', '--filter',
                   'label=com.docker.swarm.service.name=svc').stdout.split()
    if not cid:
        return None
    info = json.loads(host.cli('inspect', cid[0]).stdout)[0]
    net = info['NetworkSettings']['Networks'].get('swnet')
    if not info['State']['Running'] or not net or not net['IPAddress']:
        return None
    return net['IPAddress'], net['EndpointID']


def test_swarm_three_nodes_managed_plugin(bed):
    bed.start()
    hosts = bed.add_hosts(3, env={'DOCKER_SERVICE_PREFER_OFFLINE_IMAGE': '1'})
    name = 'ocn' + bed.tag[3:]
    plugin = name + ':latest'
    h1 = hosts[0]

    keep = os.path.join(bed.base, 'plugin')

    def install(host):
        build_plugin(host, name, keep)
        host.cli('plugin', 'set', plugin,
                 'etc.source=' + plugin_config(bed, host))
        # Before joining the swarm: enabled after, tasks wait longer.
        host.cli('plugin', 'enable', plugin, timeout=60)
    # The first assembles the plugin, the others reuse it.
    install(h1)
    in_parallel(install, hosts[1:])
    try:
        run_swarm(bed, hosts, plugin)
    finally:
        for host in reversed(hosts):
            host.cli('swarm', 'leave', '--force', check=False, timeout=30)
        for host in hosts:
            host.cli('plugin', 'disable', '-f', plugin, check=False,
                     timeout=30)


def run_swarm(bed, hosts, plugin):
    h1 = hosts[0]
    h1.cli('swarm', 'init', '--advertise-addr', h1.addr, '--listen-addr',
           h1.addr + ':2377')
    token = h1.cli('swarm', 'join-token', '-q', 'worker').stdout.strip()
    for host in hosts[1:]:
        host.cli('swarm', 'join', '--token', token, '--advertise-addr',
                 host.addr, '--listen-addr', host.addr + ':2377',
                 h1.addr + ':2377')

    h1.cli('network', 'create', '-d', plugin, '--scope', 'swarm',
           '--attachable', '--subnet', '192.168.20.0/24', '-o',
           'rt=64512:300', 'swnet')
    net_id = json.loads(h1.cli('network', 'inspect', 'swnet').stdout)[0][
        'Id']
    assert ids.is_swarm_network_id(net_id)
    h1.cli('service', 'create', '--detach', '--name', 'svc', '--mode',
           'global', '--no-resolve-image', '--endpoint-mode', 'dnsrr',
           '--network', 'swnet', 'bb:latest', 'sleep', '600')
    tasks = {}
    for host in hosts:
        tasks[host.name] = testbed_mod.wait(
            'the task on %s' % host.name, lambda: task(host), 90, 0.5)
    assert len({a for a, _ in tasks.values()}) == 3

    vns = ours(bed.fake, 'virtual-network')
    assert [vn['uuid'] for vn in vns] == [ids.network_uuid(net_id)]
    assert vns[0]['route_target_list']['route_target'] == [
        'target:64512:300']
    vmis = {v['uuid']: v for v in ours(bed.fake,
                                       'virtual-machine-interface')}
    assert len(vmis) == 3
    for host in hosts:
        vmi = vmis[ids.endpoint_uuid(tasks[host.name][1])]
        assert bindings(vmi)['host_id'] == host.name
    assert {iip['instance_ip_address'] for iip in ours(
        bed.fake, 'instance-ip')} == {a for a, _ in tasks.values()}

    h1.cli('service', 'rm', 'svc')
    testbed_mod.wait('the tasks to leave', lambda: not ours(
        bed.fake, 'virtual-machine-interface'), 60, 0.5)
    h1.cli('network', 'rm', 'swnet')
    # The network, then its security group: wait for both.
    testbed_mod.wait('the network to go', lambda: not any(
        ours(bed.fake, t) for t in TYPES), 20, 0.2)
    for res_type in TYPES:
        assert ours(bed.fake, res_type) == [], res_type
