"""Three hosts with an etcd cluster store, one legacy driver per host.

A network created on one host is used on all three; its containers ping
each other across hosts through the shared segment; `docker network rm`
on another host removes it from Contrail.
"""

import functools
import json
import re
import subprocess

import pytest

from opencontrail_net import ids
from tests.e2e import plugin as plugin_mod
from tests.multihost import testbed as testbed_mod

TYPES = ('virtual-network', 'virtual-machine-interface', 'instance-ip',
         'virtual-machine', 'security-group')


def ours(fake, res_type):
    return [o for o in fake.objects(res_type)
            if (o.get('id_perms') or {}).get('creator') == 'opencontrail-net']


def bindings(vmi):
    pairs = (vmi.get('virtual_machine_interface_bindings') or {}).get(
        'key_value_pair') or []
    return {p['key']: p['value'] for p in pairs}


@functools.lru_cache()
def no_cluster_store():
    """Why this dockerd cannot take a cluster store, or None: Docker 23
    removed --cluster-store (multi-host is swarm only from there)."""
    version = subprocess.run(['dockerd', '--version'], capture_output=True,
                             text=True, timeout=30).stdout.strip()
    found = re.search(r'version (\d+)\.', version)
    if found and int(found.group(1)) < 23:
        return None
    return '%s has no --cluster-store (removed in Docker 23.0): ' \
        'multi-host is swarm only there' % (version or 'this dockerd')


def test_cluster_store_three_hosts(bed):
    reason = no_cluster_store()
    if reason:
        pytest.skip(reason)
    bed.start(3, etcd=True)
    h1, h2, h3 = bed.hosts
    driver = 'ocn' + bed.tag[3:]
    for host in bed.hosts:
        host.start_driver(driver, **bed.driver_options())

    h1.cli('network', 'create', '-d', driver, '--subnet', '192.168.10.0/24',
           '--subnet', '2002:1::/64', '--ipv6', '-o', 'rt=64512:100', 'net2')
    net_id = json.loads(h1.cli('network', 'inspect', 'net2').stdout)[0]['Id']
    for host in (h2, h3):
        seen = testbed_mod.wait('net2 on %s' % host.name, lambda: host.cli(
            'network', 'ls', '--filter', 'name=net2', '--format',
            '{{.ID}} {{.Scope}}').stdout.split(), 10)
        assert seen == [net_id[:12], 'global']

    addresses = {}
    for host in bed.hosts:
        host.cli('run', '-d', '--name', 'c' + host.name, '--net', 'net2',
                 'bb:latest', 'sleep', '600')
        info = json.loads(host.cli('inspect', 'c' + host.name).stdout)[0]
        settings = info['NetworkSettings']['Networks']['net2']
        addresses[host.name] = (settings['IPAddress'],
                                settings['GlobalIPv6Address'],
                                settings['EndpointID'])
    assert len({a[0] for a in addresses.values()}) == 3
    assert len({a[1] for a in addresses.values()}) == 3

    vns = ours(bed.fake, 'virtual-network')
    assert [vn['uuid'] for vn in vns] == [ids.network_uuid(net_id)]
    assert vns[0]['route_target_list']['route_target'] == [
        'target:64512:100']
    vmis = {vmi['uuid']: vmi for vmi in ours(
        bed.fake, 'virtual-machine-interface')}
    assert len(vmis) == 3
    for host in bed.hosts:
        vmi = vmis[ids.endpoint_uuid(addresses[host.name][2])]
        assert bindings(vmi)['host_id'] == host.name
    iips = {iip['instance_ip_address'] for iip in ours(bed.fake,
                                                       'instance-ip')}
    assert iips == {a for v4, v6, _ in addresses.values() for a in (v4, v6)}

    for host in bed.hosts:
        bed.link_to_segment(host, host.bridge_of(net_id))
    for host in bed.hosts:
        for other in bed.hosts:
            if other is not host:
                assert plugin_mod.pings(host.dockerd, 'c' + host.name,
                                        addresses[other.name][0]), (
                    host.name, other.name)

    for host in bed.hosts:
        host.cli('rm', '-f', 'c' + host.name)
    h2.cli('network', 'rm', 'net2')
    for res_type in TYPES:
        assert ours(bed.fake, res_type) == [], res_type

    # The driver's IPAM: each host asks Contrail for its container's
    # address; no two hosts get the same one.
    h1.cli('network', 'create', '-d', driver, '--ipam-driver', driver,
           '--subnet', '192.168.11.0/24', '--ip-range', '192.168.11.64/26',
           'net3')
    given = set()
    for host in bed.hosts:
        host.cli('run', '-d', '--name', 'd' + host.name, '--net', 'net3',
                 'bb:latest', 'sleep', '600')
        info = json.loads(host.cli('inspect', 'd' + host.name).stdout)[0]
        given.add(info['NetworkSettings']['Networks']['net3']['IPAddress'])
    assert len(given) == 3
    assert all(a.startswith('192.168.11.') and 64 <= int(a.split('.')[3])
               < 128 for a in given)
    assert {iip['instance_ip_address'] for iip in ours(
        bed.fake, 'instance-ip')} == given
    for host in bed.hosts:
        host.cli('rm', '-f', 'd' + host.name)
    h3.cli('network', 'rm', 'net3')
    for res_type in TYPES:
        assert ours(bed.fake, res_type) == [], res_type
    assert [k for k in bed.fake.kv() if k.startswith('opencontrail-net:')
            ] == []
