"""The contrail backend (bridge ports) under a real dockerd.

The fake Contrail config API runs in this test process; the driver process
talks to it over loopback, and the tests read what it made with the real
``vnc_api`` client, as an operator would.
"""

import concurrent.futures
import json
import os
import re
import socket
import time

import pytest
from vnc_api import exceptions as vnc_exc
from vnc_api import vnc_api

from opencontrail_net import ids
from tests.e2e import plugin as plugin_mod
from tests import contrail_target
from tests.contrail_target import needs_fake
from tests import keystone_server
from tests import netns as nsmod

TYPES = ('virtual-network', 'virtual-machine-interface', 'instance-ip',
         'virtual-machine', 'security-group', 'floating-ip', 'network-policy')
DEFAULT_IPAM = ['default-domain', 'default-project', 'default-network-ipam']
KV_PREFIX = 'opencontrail-net:'


@pytest.fixture(scope='module')
def fake(contrail_auth):
    """The Contrail API, without auth and (a second run) with Keystone."""
    api = contrail_target.start(keystone=contrail_auth)
    yield api
    api.stop()


@pytest.fixture(scope='module')
def vnc(fake):
    """The real client, as an operator would use it."""
    return contrail_target.vnc_client(fake)


@pytest.fixture(scope='module')
def drv(dockerd, fake):
    name = 'ocnc' + ids.short_hash(str(time.time()), 6)
    plugin = plugin_mod.DockerPlugin(name, backend='contrail',
                                     docker_url=dockerd.url,
                                     port_driver='bridge',
                                     **contrail_target.driver_options(
                                         fake, **{
                                             'contrail.retry_interval': 1}))
    try:
        plugin.start()
        yield plugin
    finally:
        plugin.close()


@pytest.fixture
def cleanup(dockerd, vnc):
    made = {'containers': [], 'networks': [], 'vns': []}
    yield made
    if made['containers']:
        dockerd.cli('rm', '-f', *made['containers'], check=False)
    for n in made['networks']:
        dockerd.cli('network', 'rm', n, check=False)
    for uuid in made['vns']:
        try:
            vnc.virtual_network_delete(id=uuid)
        except vnc_exc.NoIdError:
            pass


def contrail_state(vnc):
    """uuids of every object of TYPES, and our keys in the kv store."""
    state = {t: {o['uuid'] for o in vnc.resource_list(t)[t + 's']}
             for t in TYPES}
    state['kv'] = {p['key'] for p in vnc.kv_retrieve()
                   if (p['key'] or '').startswith(KV_PREFIX)}
    return state


def network(dockerd, drv, cleanup, name, *args):
    dockerd.cli('network', 'create', '-d', drv.name, *args, name)
    cleanup['networks'].append(name)
    return json.loads(dockerd.cli('network', 'inspect', name).stdout)[0]


def run(dockerd, cleanup, name, *args):
    cleanup['containers'].append(name)
    dockerd.cli('run', '-d', '--name', name, *args, 'bb:latest',
                'sleep', '600')
    return json.loads(dockerd.cli('inspect', name).stdout)[0]


def sh(dockerd, container, *cmd):
    return dockerd.cli('exec', container, *cmd).stdout


def start_all(dockerd, net_name, names):
    """docker run each of names on net_name, a few at a time."""
    def start(cname):
        return dockerd.cli('run', '-d', '--name', cname, '--net', net_name,
                           'bb:latest', 'sleep', '600', check=False)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        return list(pool.map(start, names))


def docker_ids(net, *containers):
    """The full IDs of a network and of its containers' endpoints."""
    return {net['Id']} | {c['NetworkSettings']['Networks'][net['Name']][
        'EndpointID'] for c in containers}


def links_of(full_ids):
    """Host interfaces the driver made for these Docker objects.

    Found by the alias the driver gives them (the full Docker ID): the
    host's interfaces are shared with whatever else runs on it.
    """
    found = set()
    for line in nsmod.sh('ip', '-d', '-o', 'link', 'show').stdout.splitlines():
        name = re.match(r'\d+: ([^:@]+)', line)
        alias = re.search(r' alias (\S+)', line)
        if name and alias and alias.group(1) in full_ids:
            found.add(name.group(1))
    return found


def subnets_of(vn):
    """{cidr: IpamSubnetType} of every ipam subnet of a virtual-network."""
    found = {}
    for ref in vn.get_network_ipam_refs() or []:
        for s in ref['attr'].get_ipam_subnets() or []:
            found['%s/%s' % (s.subnet.ip_prefix, s.subnet.ip_prefix_len)] = s
    return found


def instance_ips(vnc, vmi_uuid):
    vmi = vnc.virtual_machine_interface_read(
        id=vmi_uuid, fields=['instance_ip_back_refs'])
    return [vnc.instance_ip_read(id=r['uuid'])
            for r in vmi.get_instance_ip_back_refs() or []]


def check_endpoint(dockerd, vnc, container, net_name, vn_uuid):
    """The container's endpoint as Contrail holds it; return its iips."""
    name = container['Name'].strip('/')
    ep = container['NetworkSettings']['Networks'][net_name]
    vmi = vnc.virtual_machine_interface_read(
        id=ids.endpoint_uuid(ep['EndpointID']))
    assert vmi.name == ep['EndpointID']
    assert [r['uuid'] for r in vmi.get_virtual_network_refs()] == [vn_uuid]
    # The container is a virtual-machine of its own, named from its sandbox.
    [vm_ref] = vmi.get_virtual_machine_refs()
    host = socket.gethostname()
    sandbox = os.path.basename(container['NetworkSettings']['SandboxKey'])
    assert vm_ref['uuid'] == ids.vm_uuid(host, sandbox)
    vm = vnc.virtual_machine_read(id=vm_ref['uuid'])
    assert vm.get_server_type() == 'container'
    # One MAC everywhere: Contrail, Docker, the container's eth0.
    macs = vmi.get_virtual_machine_interface_mac_addresses().mac_address
    eth0 = sh(dockerd, name, 'cat', '/sys/class/net/eth0/address').strip()
    assert macs == [eth0] == [ep['MacAddress']]
    bindings = {p.key: p.value for p in
                vmi.get_virtual_machine_interface_bindings().key_value_pair}
    assert bindings['host_id'] == host
    iips = instance_ips(vnc, vmi.uuid)
    for iip in iips:
        assert [r['uuid'] for r in iip.get_virtual_network_refs()] == [
            vn_uuid]
        assert [r['uuid'] for r in
                iip.get_virtual_machine_interface_refs()] == [vmi.uuid]
    return iips


def test_network_create_as_in_the_seed(dockerd, drv, vnc, cleanup):
    net = network(dockerd, drv, cleanup, 'net4', '--subnet',
                  '192.168.4.0/24', '-o', 'rt=64512:100,64512:200')
    assert net['Driver'] == drv.name
    assert [c['Subnet'] for c in net['IPAM']['Config']] == ['192.168.4.0/24']
    assert net['Options'] == {'rt': '64512:100,64512:200'}
    vn = vnc.virtual_network_read(id=ids.network_uuid(net['Id']))
    assert vn.get_fq_name() == contrail_target.PROJECT + [net['Id']]
    assert vn.get_route_target_list().get_route_target() == [
        'target:64512:100', 'target:64512:200']
    [ref] = vn.get_network_ipam_refs()
    assert ref['to'] == DEFAULT_IPAM
    subnets = subnets_of(vn)
    assert list(subnets) == ['192.168.4.0/24']
    # Docker's gateway, not Contrail's default (.254).
    assert subnets['192.168.4.0/24'].default_gateway == '192.168.4.1'


def test_seed_command_with_labels(dockerd, drv, vnc, cleanup):
    """The seed README's step 1 verbatim: route targets as --label."""
    net = network(dockerd, drv, cleanup, 'net4', '--label',
                  'rt=64512:100,64512:200', '--subnet', '192.168.4.0/24')
    vn_uuid = ids.network_uuid(net['Id'])
    for _ in range(50):
        targets = vnc.virtual_network_read(
            id=vn_uuid).get_route_target_list()
        if targets:
            break
        time.sleep(0.1)
    assert targets.get_route_target() == ['target:64512:100',
                                          'target:64512:200']


def test_containers_on_seed_network(dockerd, drv, vnc, cleanup):
    net = network(dockerd, drv, cleanup, 'net4', '--subnet',
                  '192.168.4.0/24', '-o', 'rt=64512:100,64512:200')
    vn = vnc.virtual_network_read(id=ids.network_uuid(net['Id']))
    a = run(dockerd, cleanup, 'ocnca' + net['Id'][:6], '--net', 'net4')
    b = run(dockerd, cleanup, 'ocncb' + net['Id'][:6], '--net', 'net4')
    for c in (a, b):
        [iip] = check_endpoint(dockerd, vnc, c, 'net4', vn.uuid)
        ep = c['NetworkSettings']['Networks']['net4']
        assert ep['IPAddress'].startswith('192.168.4.')
        assert iip.get_instance_ip_address() == ep['IPAddress']
        assert iip.get_instance_ip_family() == 'v4'
        addr = sh(dockerd, c['Name'].strip('/'), 'ip', '-4', 'addr', 'show',
                  'eth0')
        assert '%s/24' % ep['IPAddress'] in addr
    inspect = json.loads(dockerd.cli('network', 'inspect', 'net4').stdout)[0]
    assert set(inspect['Containers']) == {a['Id'], b['Id']}
    assert plugin_mod.pings(
        dockerd, a['Name'].strip('/'),
        b['NetworkSettings']['Networks']['net4']['IPAddress'])
    assert plugin_mod.pings(
        dockerd, b['Name'].strip('/'),
        a['NetworkSettings']['Networks']['net4']['IPAddress'])


def test_dual_stack(dockerd, drv, vnc, cleanup, unique_name):
    name = unique_name('n46')
    net = network(dockerd, drv, cleanup, name, '--ipv6', '--subnet',
                  '192.168.41.0/24', '--subnet', '2002:41::/64')
    vn = vnc.virtual_network_read(id=ids.network_uuid(net['Id']))
    subnets = subnets_of(vn)
    assert sorted(subnets) == ['192.168.41.0/24', '2002:41::/64']
    assert subnets['192.168.41.0/24'].default_gateway == '192.168.41.1'
    assert subnets['2002:41::/64'].default_gateway == '2002:41::1'
    containers = [run(dockerd, cleanup, unique_name('c46'), '--net', name)
                  for _ in range(2)]
    for c in containers:
        ep = c['NetworkSettings']['Networks'][name]
        iips = check_endpoint(dockerd, vnc, c, name, vn.uuid)
        assert sorted((i.get_instance_ip_family(),
                       i.get_instance_ip_address()) for i in iips) == [
            ('v4', ep['IPAddress']), ('v6', ep['GlobalIPv6Address'])]
        assert ep['GlobalIPv6Address'].startswith('2002:41::')
    a, b = (c['Name'].strip('/') for c in containers)
    ep_a, ep_b = (c['NetworkSettings']['Networks'][name] for c in containers)
    assert plugin_mod.pings(dockerd, a, ep_b['GlobalIPv6Address'])
    assert plugin_mod.pings(dockerd, b, ep_a['GlobalIPv6Address'])
    assert plugin_mod.pings(dockerd, a, ep_b['IPAddress'])


def test_removal_leaves_nothing(dockerd, drv, vnc, cleanup, unique_name):
    before = contrail_state(vnc)
    name = unique_name('nrm')
    net = network(dockerd, drv, cleanup, name, '--subnet', '192.168.44.0/24',
                  '-o', 'rt=64512:44')
    c1 = run(dockerd, cleanup, unique_name('crm'), '--net', name)
    c2 = run(dockerd, cleanup, unique_name('crm'), '--net', name)
    during = contrail_state(vnc)
    assert during['virtual-network'] - before['virtual-network'] == {
        ids.network_uuid(net['Id'])}
    assert len(during['virtual-machine-interface'] -
               before['virtual-machine-interface']) == 2
    assert len(during['instance-ip'] - before['instance-ip']) == 2
    assert len(during['virtual-machine'] - before['virtual-machine']) == 2
    ours = docker_ids(net, c1, c2)
    assert len(links_of(ours)) == 3   # the bridge and two veths
    dockerd.cli('rm', '-f', c1['Id'], c2['Id'])
    dockerd.cli('network', 'rm', name)
    assert contrail_state(vnc) == before
    assert links_of(ours) == set()


def test_foreign_port_in_a_docker_network(dockerd, drv, vnc, cleanup,
                                          unique_name):
    """Someone else's port keeps the network until it goes, untouched."""
    before = contrail_state(vnc)
    name = unique_name('nfp')
    net = network(dockerd, drv, cleanup, name, '--subnet', '192.168.46.0/24')
    vn = vnc.virtual_network_read(id=ids.network_uuid(net['Id']))
    project = vnc.project_read(fq_name=contrail_target.PROJECT)
    vm = vnc_api.VirtualMachine(unique_name('novavm'))
    vnc.virtual_machine_create(vm)
    vmi = vnc_api.VirtualMachineInterface(unique_name('novaport'), project)
    vmi.set_virtual_network(vn)
    vmi.set_virtual_machine(vm)
    vnc.virtual_machine_interface_create(vmi)
    iip = vnc_api.InstanceIp(unique_name('novaip'),
                             instance_ip_address='192.168.46.200')
    iip.set_virtual_network(vn)
    iip.set_virtual_machine_interface(vmi)
    vnc.instance_ip_create(iip)
    c1 = run(dockerd, cleanup, unique_name('cfp'), '--net', name)
    dockerd.cli('rm', '-f', c1['Id'])
    # Docker reports no DeleteNetwork error: the driver's log names them.
    dockerd.cli('network', 'rm', name)
    assert vnc.virtual_machine_interface_read(id=vmi.uuid)
    assert vnc.instance_ip_read(id=iip.uuid)
    assert vnc.virtual_machine_read(id=vm.uuid)
    assert vnc.virtual_network_read(id=vn.uuid)
    assert vmi.uuid in drv.log_text()
    # Docker has forgotten the network: nothing of it stays on the host.
    assert links_of([net['Id']]) == set()
    vnc.instance_ip_delete(id=iip.uuid)
    vnc.virtual_machine_interface_delete(id=vmi.uuid)
    vnc.virtual_machine_delete(id=vm.uuid)
    deadline = time.monotonic() + 15
    while contrail_state(vnc) != before and time.monotonic() < deadline:
        time.sleep(0.3)
    assert contrail_state(vnc) == before


@pytest.fixture
def fip_pool(vnc, unique_name):
    """A router_external network and its floating-ip pool: someone
    else's, made straight at the API; they outlive the test."""
    vn, pool = contrail_target.external_pool(vnc, unique_name('public'))
    yield pool
    assert vnc.floating_ip_pool_read(id=pool.uuid).get_id_perms().creator \
        != 'opencontrail-net'
    vnc.floating_ip_pool_delete(id=pool.uuid)
    vnc.virtual_network_delete(id=vn.uuid)


def test_published_and_exposed_ports(dockerd, drv, vnc, cleanup,
                                     unique_name, fip_pool):
    """-p: a floating IP of the pool with the port mapped; --expose (and
    -p's container port): a rule of the container's own; nothing left
    after docker rm -f."""
    before = contrail_state(vnc)
    name = unique_name('npub')
    pool_fq = ':'.join(fip_pool.get_fq_name())
    net = network(dockerd, drv, cleanup, name, '--subnet', '192.168.49.0/24',
                  '-o', 'opencontrail.floating_ip_pool=' + pool_fq)
    pub = run(dockerd, cleanup, unique_name('cpub'), '--net', name,
              '-p', '18080:80', '--expose', '8080')
    plain = run(dockerd, cleanup, unique_name('cpln'), '--net', name)
    eid = pub['NetworkSettings']['Networks'][name]['EndpointID']
    vmi_uuid = ids.endpoint_uuid(eid)
    fip = vnc.floating_ip_read(id=ids.floating_ip_uuid(eid))
    assert fip.parent_uuid == fip_pool.uuid
    assert fip.get_fq_name() == fip_pool.get_fq_name() + [eid]
    assert fip.get_floating_ip_address().startswith('203.0.113.')
    assert [r['uuid'] for r in fip.get_virtual_machine_interface_refs()] \
        == [vmi_uuid]
    assert fip.get_floating_ip_port_mappings_enable() is True
    assert [(m.protocol, m.src_port, m.dst_port) for m in
            fip.get_floating_ip_port_mappings().get_port_mappings()] == [
        ('tcp', 18080, 80)]
    sg = vnc.security_group_read(id=ids.endpoint_security_group_uuid(eid))
    assert sorted(
        (r.protocol, r.src_addresses[0].subnet.ip_prefix,
         r.dst_addresses[0].security_group, r.dst_ports[0].start_port,
         r.dst_ports[0].end_port)
        for r in sg.get_security_group_entries().get_policy_rule()) == [
        ('tcp', '0.0.0.0', 'local', 80, 80),
        ('tcp', '0.0.0.0', 'local', 8080, 8080)]
    vmi = vnc.virtual_machine_interface_read(id=vmi_uuid)
    assert sg.uuid in [r['uuid'] for r in vmi.get_security_group_refs()]
    # The container without ports has neither.
    plain_eid = plain['NetworkSettings']['Networks'][name]['EndpointID']
    assert [f['uuid'] for f in vnc.floating_ips_list(
        parent_id=fip_pool.uuid)['floating-ips']] == [fip.uuid]
    with pytest.raises(vnc_exc.NoIdError):
        vnc.security_group_read(
            id=ids.endpoint_security_group_uuid(plain_eid))
    plain_vmi = vnc.virtual_machine_interface_read(
        id=ids.endpoint_uuid(plain_eid))
    assert [r['uuid'] for r in plain_vmi.get_security_group_refs()] == [
        ids.security_group_uuid(net['Id'])]
    dockerd.cli('rm', '-f', pub['Id'], plain['Id'])
    for kind, uuid in (('floating_ip', fip.uuid),
                       ('security_group', sg.uuid)):
        with pytest.raises(vnc_exc.NoIdError):
            getattr(vnc, kind + '_read')(id=uuid)
    dockerd.cli('network', 'rm', name)
    # (The pool's network stood before, and still does.)
    assert contrail_state(vnc) == before
    assert fip_pool.parent_uuid in before['virtual-network']


def existing_network(vnc, cleanup, name, prefix, length):
    """A virtual-network made by hand, as Contrail's own tools would."""
    project = vnc.project_read(fq_name=contrail_target.PROJECT)
    ipam = vnc.network_ipam_read(fq_name=DEFAULT_IPAM)
    vn = vnc_api.VirtualNetwork(name, parent_obj=project)
    vn.add_network_ipam(ipam, vnc_api.VnSubnetsType([vnc_api.IpamSubnetType(
        subnet=vnc_api.SubnetType(prefix, length))]))
    vn.set_route_target_list(vnc_api.RouteTargetList(['target:64512:42']))
    vn_uuid = vnc.virtual_network_create(vn)
    cleanup['vns'].append(vn_uuid)
    return vnc.virtual_network_read(id=vn_uuid)


@pytest.mark.parametrize('by', ['uuid', 'fq_name'])
def test_existing_contrail_network(dockerd, drv, vnc, cleanup, unique_name,
                                   by):
    vn = existing_network(vnc, cleanup, unique_name('ext'), '192.168.42.0',
                          24)
    # Contrail chose the gateway and DNS service addresses (.254, .253):
    # the operator tells Docker's IPAM to keep off them.
    subnet = subnets_of(vn)['192.168.42.0/24']
    gateway, dns = subnet.default_gateway, subnet.dns_server_address
    before = contrail_state(vnc)
    ref = vn.uuid if by == 'uuid' else ':'.join(vn.get_fq_name())

    name = unique_name('nex')
    net = network(dockerd, drv, cleanup, name, '--subnet', '192.168.42.0/24',
                  '--gateway', gateway, '--aux-address', 'dns=%s' % dns,
                  '-o', 'opencontrail.network=%s' % ref)
    assert net['Options'] == {'opencontrail.network': ref}
    # No network of our own: Docker's network is the existing one.
    assert contrail_state(vnc)['virtual-network'] == before[
        'virtual-network']
    containers = [run(dockerd, cleanup, unique_name('cex'), '--net', name)
                  for _ in range(2)]
    for c in containers:
        [iip] = check_endpoint(dockerd, vnc, c, name, vn.uuid)
        ep = c['NetworkSettings']['Networks'][name]
        assert iip.get_instance_ip_address() == ep['IPAddress']
        assert ep['Gateway'] == gateway
        route = sh(dockerd, c['Name'].strip('/'), 'ip', 'route')
        assert 'default via %s' % gateway in route
    a, b = (c['Name'].strip('/') for c in containers)
    assert plugin_mod.pings(
        dockerd, a,
        containers[1]['NetworkSettings']['Networks'][name]['IPAddress'])
    ours = docker_ids(net, *containers)
    dockerd.cli('rm', '-f', a, b)
    dockerd.cli('network', 'rm', name)
    # The existing network stays as it was; ours are gone.
    after = vnc.virtual_network_read(id=vn.uuid)
    assert after.get_fq_name() == vn.get_fq_name()
    assert list(subnets_of(after)) == ['192.168.42.0/24']
    assert after.get_route_target_list().get_route_target() == [
        'target:64512:42']
    assert contrail_state(vnc) == before
    assert links_of(ours) == set()


def test_existing_network_reserved_addresses(dockerd, drv, vnc, cleanup,
                                             unique_name):
    """Docker's IPAM never hands out what Contrail reserved.

    The existing /28 has Contrail's gateway .14 and DNS address .13;
    Docker's gateway defaults to .1: the driver refuses the mismatch up
    front and says which flags make it right.
    """
    vn = existing_network(vnc, cleanup, unique_name('ext'), '192.168.48.0',
                          28)
    assert subnets_of(vn)['192.168.48.0/28'].default_gateway == \
        '192.168.48.14'
    name = unique_name('nx28')
    cleanup['networks'].append(name)
    res = dockerd.cli('network', 'create', '-d', drv.name, '--subnet',
                      '192.168.48.0/28', '-o',
                      'opencontrail.network=%s' % vn.uuid, name, check=False)
    assert res.returncode != 0
    assert '--gateway 192.168.48.14' in res.stderr
    assert '--aux-address contrail-dns=192.168.48.13' in res.stderr
    assert name not in dockerd.cli('network', 'ls', '--format',
                                   '{{.Name}}').stdout.split()


def test_small_subnet_filled_by_docker_ipam(dockerd, drv, vnc, cleanup,
                                            unique_name):
    """Docker's addresses never collide with what Contrail reserves."""
    before = contrail_state(vnc)
    name = unique_name('n28')
    net = network(dockerd, drv, cleanup, name, '--subnet', '192.168.43.0/28')
    vn_uuid = ids.network_uuid(net['Id'])
    vn = vnc.virtual_network_read(id=vn_uuid)
    assert subnets_of(vn)['192.168.43.0/28'].default_gateway == '192.168.43.1'
    names = [unique_name('c28') for _ in range(13)]
    cleanup['containers'].extend(names)
    failed = [(n, r.stderr) for n, r in zip(names, start_all(
        dockerd, name, names)) if r.returncode]
    assert failed == []
    inspected = json.loads(dockerd.cli('inspect', *names).stdout)
    addresses = sorted(c['NetworkSettings']['Networks'][name]['IPAddress']
                       for c in inspected)
    assert addresses == sorted('192.168.43.%d' % n for n in range(2, 15))
    iips = [vnc.instance_ip_read(id=u) for u in
            contrail_state(vnc)['instance-ip'] - before['instance-ip']]
    assert sorted(i.get_instance_ip_address() for i in iips) == addresses
    assert {i.get_virtual_network_refs()[0]['uuid'] for i in iips} == {
        vn_uuid}
    dockerd.cli('rm', '-f', *names)
    dockerd.cli('network', 'rm', name)
    assert contrail_state(vnc) == before


@pytest.mark.parametrize('option, value', [('rt', 'banana'),
                                           ('tenant', 'nosuch')])
def test_bad_network_options(dockerd, drv, vnc, cleanup, unique_name,
                             option, value):
    before = contrail_state(vnc)
    name = unique_name('nbad')
    cleanup['networks'].append(name)
    res = dockerd.cli('network', 'create', '-d', drv.name, '--subnet',
                      '192.168.45.0/24', '-o', '%s=%s' % (option, value),
                      name, check=False)
    assert res.returncode != 0
    assert value in res.stderr
    assert name not in dockerd.cli('network', 'ls', '--format',
                                   '{{.Name}}').stdout.split()
    assert contrail_state(vnc) == before


@pytest.mark.noauth_only
def test_network_policies(dockerd, drv, vnc, cleanup, unique_name):
    """-o opencontrail.policies: the virtual-network refers to existing
    policies in the order given, containers run on it, and docker network
    rm leaves the policies; a missing one: refused naming it, nothing
    made."""
    parent = vnc_api.Project(contrail_target.PROJECT[1],
                             vnc_api.Domain(contrail_target.PROJECT[0]))
    policies = []
    try:
        for tag in ('a', 'b'):
            policy = vnc_api.NetworkPolicy(unique_name('pol' + tag), parent)
            vnc.network_policy_create(policy)
            policies.append(policy)
        first, second = policies[1], policies[0]
        name = unique_name('npol')
        net = network(dockerd, drv, cleanup, name, '--subnet',
                      '192.168.48.0/24', '-o', 'opencontrail.policies=%s,%s'
                      % (first.name, second.name))
        vn = vnc.virtual_network_read(id=ids.network_uuid(net['Id']))
        assert sorted((r['attr'].sequence.major, r['uuid'])
                      for r in vn.get_network_policy_refs()) == [
            (0, first.uuid), (1, second.uuid)]
        run(dockerd, cleanup, unique_name('cpol'), '--net', name)
        dockerd.cli('rm', '-f', *cleanup['containers'])
        dockerd.cli('network', 'rm', name)
        with pytest.raises(vnc_exc.NoIdError):
            vnc.virtual_network_read(id=vn.uuid)
        for policy in policies:
            assert vnc.network_policy_read(id=policy.uuid).get_fq_name() == \
                policy.get_fq_name()

        before = contrail_state(vnc)
        bad = unique_name('npolbad')
        cleanup['networks'].append(bad)
        res = dockerd.cli('network', 'create', '-d', drv.name, '--subnet',
                          '192.168.49.0/24', '-o',
                          'opencontrail.policies=%s,nosuch' % first.name,
                          bad, check=False)
        assert res.returncode != 0
        assert 'opencontrail.policies' in res.stderr
        assert 'no network-policy %s:nosuch in Contrail' % ':'.join(
            contrail_target.PROJECT) in res.stderr
        assert bad not in dockerd.cli('network', 'ls', '--format',
                                      '{{.Name}}').stdout.split()
        assert contrail_state(vnc) == before
    finally:
        for policy in policies:
            vnc.network_policy_delete(id=policy.uuid)


@pytest.mark.noauth_only
def test_allow_between_networks(dockerd, drv, vnc, cleanup, unique_name):
    """-o opencontrail.allow=NAME: a policy of the driver's own between
    the two virtual-networks, named as Docker knows the other network;
    docker network rm of either takes it away. A network Docker does not
    have, or another driver's: refused naming it, nothing made."""
    web, db = unique_name('nweb'), unique_name('ndb')
    web_net = network(dockerd, drv, cleanup, web, '--subnet',
                      '192.168.52.0/24')
    db_net = network(dockerd, drv, cleanup, db, '--subnet',
                     '192.168.53.0/24', '-o', 'opencontrail.allow=' + web)
    policy = ids.allow_policy_uuid(web_net['Id'], db_net['Id'])
    rules = vnc.network_policy_read(
        id=policy).get_network_policy_entries().get_policy_rule()
    assert {(r.direction, r.action_list.simple_action,
             r.src_addresses[0].virtual_network.split(':')[-1],
             r.dst_addresses[0].virtual_network.split(':')[-1])
            for r in rules} == {('<>', 'pass', db_net['Id'], web_net['Id'])}
    for net in (web_net, db_net):
        vn = vnc.virtual_network_read(id=ids.network_uuid(net['Id']))
        assert [r['uuid'] for r in vn.get_network_policy_refs()] == [policy]
    run(dockerd, cleanup, unique_name('cweb'), '--net', web)
    run(dockerd, cleanup, unique_name('cdb'), '--net', db)
    dockerd.cli('rm', '-f', *cleanup['containers'])
    dockerd.cli('network', 'rm', web)
    with pytest.raises(vnc_exc.NoIdError):
        vnc.network_policy_read(id=policy)
    vn = vnc.virtual_network_read(id=ids.network_uuid(db_net['Id']))
    assert not vn.get_network_policy_refs()

    before = contrail_state(vnc)
    bad = unique_name('nbad')
    cleanup['networks'].append(bad)
    for value, why in ((web, 'Docker has no network %r' % web),
                       ('host', "network 'host' is of driver host")):
        res = dockerd.cli('network', 'create', '-d', drv.name, '--subnet',
                          '192.168.54.0/24', '-o',
                          'opencontrail.allow=%s,%s' % (db, value), bad,
                          check=False)
        assert res.returncode != 0
        assert 'opencontrail.allow' in res.stderr and why in res.stderr, \
            res.stderr
        assert bad not in dockerd.cli('network', 'ls', '--format',
                                      '{{.Name}}').stdout.split()
        assert contrail_state(vnc) == before
    dockerd.cli('network', 'rm', db)
    with pytest.raises(vnc_exc.NoIdError):
        vnc.virtual_network_read(id=ids.network_uuid(db_net['Id']))


@pytest.mark.noauth_only
def test_logical_router(dockerd, drv, vnc, cleanup, unique_name):
    """-o opencontrail.router: the network joins an existing router
    through an interface of its own holding the gateway, containers run
    on it, and docker network rm leaves the router as it was."""
    parent = vnc_api.Project(contrail_target.PROJECT[1],
                             vnc_api.Domain(contrail_target.PROJECT[0]))
    router = vnc_api.LogicalRouter(unique_name('lr'), parent)
    vnc.logical_router_create(router)
    try:
        name = unique_name('nlr')
        net = network(dockerd, drv, cleanup, name, '--subnet',
                      '192.168.50.0/24', '--gateway', '192.168.50.254',
                      '-o', 'opencontrail.router=' + router.name)
        [ref] = vnc.logical_router_read(
            id=router.uuid).get_virtual_machine_interface_refs()
        assert ref['uuid'] == ids.router_interface_uuid(net['Id'])
        iip = vnc.instance_ip_read(id=ids.router_ip_uuid(net['Id'], 'v4'))
        assert iip.get_instance_ip_address() == '192.168.50.254'
        run(dockerd, cleanup, unique_name('clr'), '--net', name)
        dockerd.cli('rm', '-f', *cleanup['containers'])
        dockerd.cli('network', 'rm', name)
        left = vnc.logical_router_read(id=router.uuid)
        assert not left.get_virtual_machine_interface_refs()
        with pytest.raises(vnc_exc.NoIdError):
            vnc.virtual_machine_interface_read(id=ref['uuid'])
        with pytest.raises(vnc_exc.NoIdError):
            vnc.virtual_network_read(id=ids.network_uuid(net['Id']))
    finally:
        vnc.logical_router_delete(id=router.uuid)


@pytest.mark.noauth_only
def test_security_groups_of_one_container(dockerd, drv, vnc, cleanup,
                                          unique_name):
    """docker run --network name=NET,driver-opt=opencontrail.security_groups
    =...: that container's interface gets those groups (a list quoted as
    the CLI's CSV wants it), its neighbour the network's own."""
    parent = vnc_api.Project(contrail_target.PROJECT[1],
                             vnc_api.Domain(contrail_target.PROJECT[0]))
    groups = []
    try:
        for tag in ('a', 'b'):
            group = vnc_api.SecurityGroup(unique_name('sg' + tag), parent)
            vnc.security_group_create(group)
            groups.append(group)
        name = unique_name('nsg')
        net = network(dockerd, drv, cleanup, name, '--subnet',
                      '192.168.51.0/24')
        locked = run(dockerd, cleanup, unique_name('csg'), '--network',
                     'name=%s,"driver-opt=opencontrail.security_groups=%s,%s"'
                     % (name, groups[1].name, groups[0].name))
        plain = run(dockerd, cleanup, unique_name('cpl'), '--net', name)

        def groups_of(container):
            ep = container['NetworkSettings']['Networks'][name]['EndpointID']
            vmi = vnc.virtual_machine_interface_read(
                id=ids.endpoint_uuid(ep))
            # In no order: a real server keeps none among them.
            return ep, {r['uuid'] for r in vmi.get_security_group_refs()}
        ep, refs = groups_of(locked)
        assert refs == {groups[1].uuid, groups[0].uuid}
        assert groups_of(plain)[1] == {ids.security_group_uuid(net['Id'])}
        status, info = drv.call('NetworkDriver.EndpointOperInfo', {
            'NetworkID': net['Id'], 'EndpointID': ep})
        assert status == 200 and info['Value']['security_groups'] == [
            groups[1].name, groups[0].name]
        ip = plain['NetworkSettings']['Networks'][name]['IPAddress']
        assert plugin_mod.pings(dockerd, locked['Name'].strip('/'), ip)
        dockerd.cli('rm', '-f', *cleanup['containers'])
        dockerd.cli('network', 'rm', name)
        for group in groups:
            vnc.security_group_read(id=group.uuid)
    finally:
        dockerd.cli('rm', '-f', *cleanup['containers'], check=False)
        dockerd.cli('network', 'rm', *cleanup['networks'], check=False)
        for group in groups:
            vnc.security_group_delete(id=group.uuid)


def test_driver_restart_keeps_containers(dockerd, drv, vnc, cleanup,
                                         unique_name):
    before = contrail_state(vnc)
    name = unique_name('nrs')
    net = network(dockerd, drv, cleanup, name, '--subnet', '192.168.47.0/24')
    a = run(dockerd, cleanup, unique_name('crs'), '--net', name)
    b = run(dockerd, cleanup, unique_name('crs'), '--net', name)
    drv.restart()
    ip_b = b['NetworkSettings']['Networks'][name]['IPAddress']
    assert plugin_mod.pings(dockerd, a['Name'].strip('/'), ip_b)
    c = run(dockerd, cleanup, unique_name('crs'), '--net', name)
    check_endpoint(dockerd, vnc, c, name, ids.network_uuid(net['Id']))
    assert plugin_mod.pings(dockerd, c['Name'].strip('/'), ip_b)
    ours = docker_ids(net, a, b, c)
    dockerd.cli('rm', '-f', a['Id'], b['Id'], c['Id'])
    dockerd.cli('network', 'rm', name)
    assert contrail_state(vnc) == before
    assert links_of(ours) == set()


def test_api_outage_during_container_removal(dockerd, drv, fake, vnc,
                                             cleanup, unique_name):
    before = contrail_state(vnc)
    name = unique_name('nout')
    network(dockerd, drv, cleanup, name, '--subnet', '192.168.49.0/24')
    a = run(dockerd, cleanup, unique_name('cout'), '--net', name)
    fake.set_down(True)
    try:
        # Docker logs and swallows DeleteEndpoint's error: rm succeeds.
        dockerd.cli('rm', '-f', a['Id'])
    finally:
        fake.set_down(False)
    b = run(dockerd, cleanup, unique_name('cout'), '--net', name)
    address = a['NetworkSettings']['Networks'][name]['IPAddress']
    assert b['NetworkSettings']['Networks'][name]['IPAddress'] == address
    dockerd.cli('rm', '-f', b['Id'])
    dockerd.cli('network', 'rm', name)
    assert contrail_state(vnc) == before


@pytest.mark.parametrize('outage', ['down', 'hangs'])
def test_contrail_api_outage(dockerd, drv, fake, vnc, cleanup, unique_name,
                             outage):
    """Docker hears of a dead or hung API long before it gives up."""
    name = unique_name('ndn')
    cleanup['networks'].append(name)
    cmd = ('network', 'create', '-d', drv.name, '--subnet',
           '192.168.46.0/24', name)
    if outage == 'down':
        fake.set_down(True)     # connection refused
    else:
        for k in range(1, 11):  # requests held without an answer
            fake.fail_request(k, 'timeout')
    try:
        started = time.monotonic()
        res = dockerd.cli(*cmd, check=False)
        elapsed = time.monotonic() - started
    finally:
        fake.set_down(False)
        fake.clear_faults()
    assert res.returncode != 0
    assert 'Contrail API' in res.stderr
    assert elapsed < 15, elapsed
    assert name not in dockerd.cli('network', 'ls', '--format',
                                   '{{.Name}}').stdout.split()
    # Back up: the same command works, with the same driver process.
    pid = drv.proc.pid
    dockerd.cli(*cmd)
    assert drv.proc.pid == pid and drv.proc.poll() is None
    net_id = dockerd.cli('network', 'inspect', '-f', '{{.Id}}',
                         name).stdout.strip()
    vn = vnc.virtual_network_read(id=ids.network_uuid(net_id))
    assert list(subnets_of(vn)) == ['192.168.46.0/24']
    c = run(dockerd, cleanup, unique_name('cdn'), '--net', name)
    [iip] = check_endpoint(dockerd, vnc, c, name, vn.uuid)
    assert iip.get_instance_ip_address() == c['NetworkSettings'][
        'Networks'][name]['IPAddress']


@pytest.mark.keystone_only
@needs_fake
def test_revoked_token_unseen_by_docker(dockerd, drv, fake, vnc, cleanup,
                                        unique_name):
    """Keystone revokes the driver's token between two docker commands."""
    ks = fake.keystone_server
    name = unique_name('nrv')
    network(dockerd, drv, cleanup, name, '--subnet', '192.168.51.0/24')
    mine = [t for t, user, _project in fake.tokens
            if user == keystone_server.DRIVER_USER]
    assert mine
    for token in mine:
        ks.revoke(token)
    refused = fake.refused
    c = run(dockerd, cleanup, unique_name('crv'), '--net', name)
    assert c['NetworkSettings']['Networks'][name]['IPAddress']
    assert fake.refused > refused
    assert ks.driver_password not in drv.log_text()


@pytest.mark.keystone_only
@needs_fake
def test_wrong_password_as_docker_shows_it(dockerd, fake, cleanup,
                                           unique_name):
    ks = fake.keystone_server
    wrong = 'Wrong-Pass-' + unique_name('')
    plugin = plugin_mod.DockerPlugin(
        'ocnw' + ids.short_hash(str(time.time()), 6), backend='contrail',
        docker_url=dockerd.url, port_driver='bridge',
        **contrail_target.driver_options(fake, **{
            'contrail.admin_password': wrong, 'contrail.timeout': 9}))
    try:
        plugin.start()
        name = unique_name('nwp')
        cleanup['networks'].append(name)
        res = dockerd.cli('network', 'create', '-d', plugin.name,
                          '--subnet', '192.168.52.0/24', name, check=False)
        log = plugin.log_text()
    finally:
        plugin.close()
    assert res.returncode != 0
    assert 'Keystone at %s refused the credentials of user %s' % (
        ks.url, keystone_server.DRIVER_USER) in res.stderr
    assert wrong not in res.stderr and wrong not in log
    assert 'Traceback' not in log
