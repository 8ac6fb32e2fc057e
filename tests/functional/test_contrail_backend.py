"""The contrail backend in the real driver process, against the fake API.

Request counts are read at the fake server; every Docker call is made
over the driver's real socket.
"""

import re
import subprocess
import sys
import time

import pytest

from opencontrail_net import ids
from tests import contrail_target
from tests import fake_engine
from tests.functional import conftest

V4 = [{'Pool': '192.168.4.0/24', 'Gateway': '192.168.4.1/24'}]
V6 = [{'Pool': '2002:1::/64', 'Gateway': '2002:1::1/64'}]
RT = {'rt': '64512:100,64512:200'}
TYPES = ('virtual-network', 'virtual-machine-interface', 'instance-ip',
         'virtual-machine')


contrail_driver = conftest.contrail_driver


def net_body(n, v6=True, generic=None):
    body = {'NetworkID': contrail_target.docker_id(n),
            'Options': {'com.docker.network.generic': generic or dict(RT)},
            'IPv4Data': [{'Pool': '10.%d.%d.0/24' % (n // 250, n % 250),
                          'Gateway': '10.%d.%d.1/24' % (n // 250, n % 250)}]}
    if v6:
        body['IPv6Data'] = [{'Pool': '2002:%x::/64' % n,
                             'Gateway': '2002:%x::1/64' % n}]
    return body


def ep_body(net, m, v6=True):
    pool = net['IPv4Data'][0]['Pool'].rsplit('.', 1)[0]
    iface = {'Address': '%s.%d/24' % (pool, m + 2)}
    if v6 and net.get('IPv6Data'):
        iface['AddressIPv6'] = net['IPv6Data'][0]['Pool'].replace(
            '::/64', '::%x/64' % (m + 2))
    return {'NetworkID': net['NetworkID'],
            'EndpointID': 'e%s%08x' % (net['NetworkID'][-55:], m),
            'Interface': iface}


def ids_of(body):
    return {'NetworkID': body['NetworkID'], 'EndpointID': body['EndpointID']}


def join_body(body, sandbox='0123456789ab'):
    return dict(ids_of(body), SandboxKey=contrail_target.sandbox_key(sandbox))


def counted(fake, drv, name, body):
    fake.reset_requests()
    status, reply = drv.call('NetworkDriver.' + name, body)
    assert status == 200, (name, reply)
    return fake.count()


def counted_apart(fake, drv, name, body):
    return conftest.counted_apart(fake, drv, 'NetworkDriver.' + name, body)


def snapshot(fake):
    return {t: sorted(o['uuid'] for o in fake.objects(t)) for t in TYPES}


def test_objects_match_docker(fake, drv):
    net = net_body(1)
    drv.ok('NetworkDriver.CreateNetwork', net)
    ep = ep_body(net, 0)
    mac = drv.ok('NetworkDriver.CreateEndpoint', ep)['Interface'][
        'MacAddress']
    drv.ok('NetworkDriver.Join', join_body(ep))
    vn = fake.get('virtual-network', ids.network_uuid(net['NetworkID']))
    assert vn['fq_name'] == contrail_target.PROJECT + [net['NetworkID']]
    assert vn['route_target_list']['route_target'] == [
        'target:64512:100', 'target:64512:200']
    subnets = vn['network_ipam_refs'][0]['attr']['ipam_subnets']
    assert [(s['subnet']['ip_prefix'], s['default_gateway'])
            for s in subnets] == [('10.0.1.0', '10.0.1.1'),
                                  ('2002:1::', '2002:1::1')]
    vmi = fake.get('virtual-machine-interface',
                   ids.endpoint_uuid(ep['EndpointID']))
    assert vmi['virtual_machine_interface_mac_addresses'][
        'mac_address'] == [mac]
    assert vmi['virtual_network_refs'][0]['uuid'] == vn['uuid']
    vm_uuid = vmi['virtual_machine_refs'][0]['uuid']
    assert fake.get('virtual-machine', vm_uuid)['server_type'] == 'container'
    assert {'key': 'host_id', 'value': 'testhost'} in vmi[
        'virtual_machine_interface_bindings']['key_value_pair'] or vmi[
        'virtual_machine_interface_bindings']['key_value_pair']
    iips = {o['instance_ip_address']: o for o in fake.objects('instance-ip')}
    assert set(iips) == {'10.0.1.2', '2002:1::2'}
    for iip in iips.values():
        assert iip['virtual_machine_interface_refs'][0]['uuid'] == \
            vmi['uuid']
        assert iip['virtual_network_refs'][0]['uuid'] == vn['uuid']
    drv.ok('NetworkDriver.Leave', ids_of(ep))
    drv.ok('NetworkDriver.DeleteEndpoint', ids_of(ep))
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': net['NetworkID']})
    assert snapshot(fake) == {t: [] for t in TYPES}


@pytest.fixture
def crowded(fake, drv):
    """500 networks and 2,000 endpoints already in Contrail (a fifth of
    that on a real server, which makes them ten times slower)."""
    size = 100 if contrail_target.REAL else 500
    nets = [net_body(n, v6=False) for n in range(100, 100 + size)]
    for net in nets:
        drv.ok('NetworkDriver.CreateNetwork', net)
    for i in range(size * 4):
        drv.ok('NetworkDriver.CreateEndpoint', ep_body(nets[i % size],
                                                       i // size, v6=False))
    return nets


@pytest.mark.noauth_only
def test_request_budget(fake, drv, crowded):
    counts = {}
    net = net_body(7)
    counts['CreateNetwork'] = counted(fake, drv, 'CreateNetwork', net)
    ep = ep_body(net, 0)
    counts['CreateEndpoint'] = counted(fake, drv, 'CreateEndpoint', ep)
    counts['Join'] = counted(fake, drv, 'Join', join_body(ep))
    counts['EndpointOperInfo'] = counted(fake, drv, 'EndpointOperInfo',
                                         ids_of(ep))
    counts['Leave'] = counted(fake, drv, 'Leave', ids_of(ep))
    # DeleteEndpoint answers once the delete is recorded: (on the path,
    # after the answer).
    counts['DeleteEndpoint'] = counted_apart(fake, drv, 'DeleteEndpoint',
                                             ids_of(ep))
    counts['DeleteNetwork'] = counted_apart(fake, drv, 'DeleteNetwork',
                                            {'NetworkID': net['NetworkID']})
    # The network's security group is made and deleted with it; the
    # interface's ref to it rides in the interface's create body.
    assert counts == {'CreateNetwork': 2, 'CreateEndpoint': 3, 'Join': 2,
                      'EndpointOperInfo': 0, 'Leave': 0,
                      'DeleteEndpoint': (0, 4), 'DeleteNetwork': (2, 0)}
    # A driver restarted between the calls knows nothing yet: Join reads
    # the network and the interface first (4), DeleteEndpoint's worker
    # the interface (4 with one address).
    ep2 = ep_body(crowded[3], 9, v6=False)
    drv.ok('NetworkDriver.CreateEndpoint', ep2)
    drv.restart()
    assert counted(fake, drv, 'Join', join_body(ep2)) == 4
    drv.restart()
    assert counted_apart(fake, drv, 'DeleteEndpoint', ids_of(ep2)) == (0, 4)


def test_create_is_idempotent(fake, drv):
    net = net_body(2)
    ep = ep_body(net, 0)
    for _ in range(2):
        drv.ok('NetworkDriver.CreateNetwork', net)
        drv.ok('NetworkDriver.CreateEndpoint', ep)
        drv.ok('NetworkDriver.Join', join_body(ep))
    drv.restart()
    drv.ok('NetworkDriver.CreateNetwork', net)
    drv.ok('NetworkDriver.CreateEndpoint', ep)
    counts = {t: len(v) for t, v in snapshot(fake).items()}
    assert counts == {'virtual-network': 1, 'virtual-machine-interface': 1,
                      'instance-ip': 2, 'virtual-machine': 1}
    for _ in range(2):
        drv.ok('NetworkDriver.DeleteEndpoint', ids_of(ep))
        drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': net[
            'NetworkID']})
    assert snapshot(fake) == {t: [] for t in TYPES}


def test_changed_network_is_a_conflict(fake, drv):
    net = net_body(3)
    drv.ok('NetworkDriver.CreateNetwork', net)
    drv.restart()
    other = dict(net, IPv4Data=[{'Pool': '10.9.9.0/24',
                                 'Gateway': '10.9.9.1/24'}])
    status, reply = drv.call('NetworkDriver.CreateNetwork', other)
    assert status == 409 and net['NetworkID'] in reply['Err']


def someone_elses_address(fake, net, address):
    """An instance-ip of ``address`` in ``net``'s virtual-network that a
    non-Docker workload holds; its uuid (the caller deletes it)."""
    from vnc_api import vnc_api
    vnc = contrail_target.vnc_client(fake)
    vn = vnc.virtual_network_read(id=ids.network_uuid(net['NetworkID']))
    other = vnc_api.InstanceIp('someone-elses-ip-' + contrail_target.RUN,
                               instance_ip_address=address)
    other.set_virtual_network(vn)
    vnc.instance_ip_create(other)
    return other.uuid


def test_address_taken_in_contrail(fake, drv):
    """An address a non-Docker workload holds is refused, untouched."""
    net = net_body(4, v6=False)
    drv.ok('NetworkDriver.CreateNetwork', net)
    someone_elses_address(fake, net, '10.0.4.2')
    before = snapshot(fake)
    status, reply = drv.call('NetworkDriver.CreateEndpoint',
                             ep_body(net, 0, v6=False))
    assert status == 409 and '10.0.4.2' in reply['Err']
    assert snapshot(fake) == before


def test_stale_endpoint_address_is_reclaimed(fake, drv):
    """Docker re-gives the address of an endpoint whose delete was lost."""
    net = net_body(11, v6=False)
    drv.ok('NetworkDriver.CreateNetwork', net)
    old = ep_body(net, 0, v6=False)
    drv.ok('NetworkDriver.CreateEndpoint', old)
    drv.ok('NetworkDriver.Join', join_body(old, 'aaaaaaaaaaaa'))
    new = dict(old, EndpointID=contrail_target.docker_id(0xfff, 0xf))
    drv.ok('NetworkDriver.CreateEndpoint', new)
    vmis = [o['uuid'] for o in fake.objects('virtual-machine-interface')]
    assert vmis == [ids.endpoint_uuid(new['EndpointID'])]
    assert [o['instance_ip_address'] for o in fake.objects(
        'instance-ip')] == ['10.0.11.2']
    assert fake.objects('virtual-machine') == []
    drv.ok('NetworkDriver.Leave', ids_of(old))


def test_unknown_project_is_refused(fake, drv):
    status, reply = drv.call('NetworkDriver.CreateNetwork', net_body(
        5, generic={'tenant': 'nosuch'}))
    assert status == 400 and 'nosuch' in reply['Err']
    assert snapshot(fake) == {t: [] for t in TYPES}


def test_api_down_at_start_and_back(fake, driver_factory):
    fake.set_down(True)
    drv = contrail_driver(driver_factory, fake).start()
    start = time.monotonic()
    status, reply = drv.call('NetworkDriver.CreateNetwork', net_body(6))
    assert time.monotonic() - start < 10
    assert status == 503 and 'Contrail API' in reply['Err']
    fake.set_down(False)
    drv.ok('NetworkDriver.CreateNetwork', net_body(6))
    fake.set_down(True)
    start = time.monotonic()
    status, reply = drv.call('NetworkDriver.CreateEndpoint',
                             ep_body(net_body(6), 0))
    assert status == 503 and time.monotonic() - start < 10
    fake.set_down(False)
    drv.ok('NetworkDriver.CreateEndpoint', ep_body(net_body(6), 0))


def test_slow_api_is_bounded(fake, drv):
    fake.fail_request(1, 'timeout')
    start = time.monotonic()
    status, reply = drv.call('NetworkDriver.CreateNetwork', net_body(8))
    assert status == 503 and 'Contrail API' in reply['Err']
    assert time.monotonic() - start < 3 + 1
    drv.ok('NetworkDriver.CreateNetwork', net_body(8))


def _steps():
    """(name, setup, body) for each call, setup bringing its preconditions."""
    net = net_body(9)
    ep = ep_body(net, 0)

    def none(drv):
        pass

    def network(drv):
        drv.ok('NetworkDriver.CreateNetwork', net)

    def endpoint(drv):
        network(drv)
        drv.ok('NetworkDriver.CreateEndpoint', ep)

    def joined(drv):
        endpoint(drv)
        drv.ok('NetworkDriver.Join', join_body(ep))

    return [('CreateNetwork', none, net),
            ('CreateEndpoint', network, ep),
            ('Join', endpoint, join_body(ep)),
            ('DeleteEndpoint', joined, ids_of(ep)),
            ('DeleteNetwork', network, {'NetworkID': net['NetworkID']})]


# DeleteEndpoint sends no request while Docker waits: a fault in its
# deletes is the background worker's, retried until done (see
# test_contrail_deletes.test_failed_delete_is_tried_again).
STEPS = [s for s in _steps() if s[0] != 'DeleteEndpoint']


@pytest.mark.noauth_only
@pytest.mark.parametrize('kind', ['500', '503', 'timeout', 'drop'])
@pytest.mark.parametrize('name,setup,body', STEPS,
                         ids=[s[0] for s in STEPS])
def test_fault_at_every_request(fake, drv, name, setup, body, kind):
    try:
        _fault_at_every_request(fake, drv, name, setup, body, kind)
    finally:
        # The host end of a joined endpoint goes with Leave, whatever the
        # backend holds.
        drv.call('NetworkDriver.Leave', ids_of(ep_body(net_body(9), 0)))


def _fault_at_every_request(fake, drv, name, setup, body, kind):
    setup(drv)
    fake.reset_requests()
    drv.ok('NetworkDriver.' + name, body)
    clean_count = fake.count()
    after_success = snapshot(fake)
    assert clean_count > 0
    # Back to the state before the call, through the driver.
    drv.restart()
    fake.wipe()
    setup(drv)
    before = snapshot(fake)
    for k in range(1, clean_count + 1):
        fake.reset_requests()
        fake.fail_request(k, kind)
        start = time.monotonic()
        status, reply = drv.call('NetworkDriver.' + name, body)
        assert time.monotonic() - start < 3 + 1
        fake.clear_faults()
        state = snapshot(fake)
        if status == 200:
            # vnc_api re-sends a dropped request once by itself; the
            # driver a 503 (tests/functional/test_contrail_overload.py).
            assert kind in ('drop', '503'), (k, reply)
            assert state == after_success
        else:
            assert reply['Err'] and reply['Err'] == reply['Error']
            # Nothing the failed call made is left (a delete may have
            # removed part of what it was asked to remove).
            for t in TYPES:
                assert set(state[t]) <= set(before[t]) | set(
                    after_success[t]), (k, t)
                assert set(state[t]) - set(before[t]) == set(), (k, t)
        # Docker re-sends; the retry completes the job.
        drv.ok('NetworkDriver.' + name, body)
        assert snapshot(fake) == after_success, k
        # Reset for the next position.
        drv.restart()
        fake.wipe()
        setup(drv)


conftest  # noqa: B018  (fixtures)


def test_password_never_logged(fake, driver_factory):
    options = {}
    if fake.keystone_server is None:
        options['contrail.admin_password'] = 'Sup3rSecret99'
    drv = contrail_driver(driver_factory, fake, name='secret', **options)
    password = drv.options['contrail.admin_password']
    drv.start()
    drv.ok('NetworkDriver.CreateNetwork', net_body(10))
    drv.stop()
    log = drv.log_text()
    assert 'admin_password' in log  # the option values were logged
    assert password not in log


def drop_interface(fake, ep):
    """Delete an endpoint's addresses and interface behind the driver's
    back, leaving its VM unused (what a DeleteEndpoint of an earlier
    release left when it failed at its last step)."""
    vnc = contrail_target.vnc_client(fake)
    vmi = ids.endpoint_uuid(ep['EndpointID'])
    for iip in fake.objects('instance-ip'):
        if vmi in [r['uuid'] for r in
                   iip.get('virtual_machine_interface_refs') or []]:
            vnc.instance_ip_delete(id=iip['uuid'])
    vnc.virtual_machine_interface_delete(id=vmi)


def test_unused_vm_is_deleted_at_start(fake, drv):
    """A VM of this host that no interface uses is deleted at start."""
    net = net_body(12, v6=False)
    drv.ok('NetworkDriver.CreateNetwork', net)
    ep = ep_body(net, 0, v6=False)
    drv.ok('NetworkDriver.CreateEndpoint', ep)
    drv.ok('NetworkDriver.Join', join_body(ep))
    drv.ok('NetworkDriver.Leave', ids_of(ep))
    drop_interface(fake, ep)
    assert len(fake.objects('virtual-machine')) == 1
    drv.restart()
    assert fake.objects('virtual-machine') == []
    assert 'no interface uses it' in drv.log_text()


def test_ports(fake, drv):
    """No ports cost no request; -p without a floating-ip pool is refused,
    saying how to set one (see test_contrail_ports for the rest)."""
    net = net_body(11, v6=False)
    drv.ok('NetworkDriver.CreateNetwork', net)
    ep = ep_body(net, 0, v6=False)
    drv.ok('NetworkDriver.CreateEndpoint', ep)
    none = {'com.docker.network.endpoint.exposedports': [],
            'com.docker.network.portmap': []}
    assert counted(fake, drv, 'ProgramExternalConnectivity',
                   dict(ids_of(ep), Options=none)) == 0
    assert counted(fake, drv, 'RevokeExternalConnectivity',
                   ids_of(ep)) == 0
    published = {'com.docker.network.endpoint.exposedports': [
        {'Proto': 6, 'Port': 8080}], 'com.docker.network.portmap': [
        {'Proto': 6, 'IP': '', 'Port': 8080, 'HostIP': '',
         'HostPort': 18080, 'HostPortEnd': 18080}]}
    status, reply = drv.call('NetworkDriver.ProgramExternalConnectivity',
                             dict(ids_of(ep), Options=published))
    assert status == 400
    assert 'no floating-ip pool' in reply['Err']
    assert '[contrail] floating_ip_pool' in reply['Err']


def orphan_group(fake, drv, n, name):
    """A create whose virtual-network fails and whose undo fails too: the
    network's group is left, with no network."""
    body = net_body(n, v6=False, generic={'name': name})
    fake.fail_request(2, '500')     # the virtual-network's create
    fake.fail_request(3, '500')     # the undo's delete of the group
    status, _reply = drv.call('NetworkDriver.CreateNetwork', body)
    fake.clear_faults()
    assert status == 500
    group = fake.get('security-group', ids.security_group_uuid(
        body['NetworkID']))
    assert group is not None and fake.get(
        'virtual-network', ids.network_uuid(body['NetworkID'])) is None
    return body, group


def test_orphan_group_is_replaced_and_repaired(fake, driver_factory):
    """A security group the driver made and could not undo: a create of
    another network of that name replaces it (its creator is the driver),
    and the audit finds one and removes it."""
    warm = net_body(81, v6=False)
    with fake_engine.FakeEngine(networks={
            warm['NetworkID']: {'Name': 'warm', 'Driver': 'p'}}) as engine:
        drv = contrail_driver(driver_factory, fake,
                              docker_url=engine.url).start()
        drv.ok('NetworkDriver.CreateNetwork', warm)
        name = 'orphan-%s' % contrail_target.RUN
        first, group = orphan_group(fake, drv, 82, name)
        # Another Docker network of that name: the group is the driver's,
        # of a network that has none: replaced.
        second = net_body(83, v6=False, generic={'name': name})
        drv.ok('NetworkDriver.CreateNetwork', second)
        assert fake.get('security-group', group['uuid']) is None
        assert fake.get('security-group', ids.security_group_uuid(
            second['NetworkID'])) is not None
        assert 'Replaced security-group %s' % group['uuid'] in \
            drv.log_text()
        drv.ok('NetworkDriver.DeleteNetwork',
               {'NetworkID': second['NetworkID']})
        # Another orphan: the audit shows it and removes it.
        third, group = orphan_group(fake, drv, 84, name + 'b')
        res = subprocess.run(
            [sys.executable, '-m', 'opencontrail_net.cmd.manage',
             '--config-file', drv.config_path, 'audit', '--fix',
             '--settle', '0'], capture_output=True, text=True, timeout=120)
        assert 'group-orphan: network %s group %s' % (
            third['NetworkID'], group['uuid']) in res.stdout, res.stdout
        assert 'deleted security-group %s' % group['uuid'] in res.stdout
        assert fake.get('security-group', group['uuid']) is None
        drv.ok('NetworkDriver.DeleteNetwork',
               {'NetworkID': warm['NetworkID']})


def test_request_id_follows_a_call(fake, drv):
    """One ID per Docker call: on each log line of the call, in the
    X-Request-Id header of each request it sends the API, and at the end
    of the error Docker shows: one grep follows it through both logs."""
    body = net_body(85, v6=False)
    fake.reset_requests()
    drv.ok('NetworkDriver.CreateNetwork', body)
    sent = fake.request_ids()
    assert len(sent) >= 2 and len(set(sent)) == 1, sent
    request_id = sent[0]
    assert re.fullmatch(r'req-[0-9a-f-]{36}', request_id)
    lines = [line for line in drv.log_text().splitlines()
             if request_id in line]
    assert any('Created virtual-network' in line or 'Created security-group'
               in line for line in lines), lines

    fake.reset_requests()
    fake.fail_request(1, '500')
    status, reply = drv.call('NetworkDriver.CreateNetwork',
                             net_body(86, v6=False))
    fake.clear_faults()
    assert status == 500
    found = re.search(r' \(Request-ID: (req-[0-9a-f-]{36})\)$', reply['Err'])
    assert found, reply
    assert found.group(1) in fake.request_ids()
    assert any(found.group(1) in line and 'CreateNetwork failed' in line
               for line in drv.log_text().splitlines())
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': body['NetworkID']})


def test_ipv6_only_network(fake, drv):
    """Docker 28's --ipv4=false: enable_ipv4 false and no IPv4Data. The
    virtual-network has the IPv6 subnet alone, the endpoint one address,
    Join gives an IPv6 gateway only, and nothing is left after."""
    nid = contrail_target.docker_id(87)
    drv.ok('NetworkDriver.CreateNetwork', {
        'NetworkID': nid, 'IPv4Data': [],
        'IPv6Data': [{'Pool': '2002:57::/64', 'Gateway': '2002:57::1/64'}],
        'Options': {'com.docker.network.generic': {},
                    'com.docker.network.enable_ipv4': False,
                    'com.docker.network.enable_ipv6': True}})
    vn = fake.get('virtual-network', ids.network_uuid(nid))
    subnets = vn['network_ipam_refs'][0]['attr']['ipam_subnets']
    assert [(s['subnet']['ip_prefix'], s['default_gateway'])
            for s in subnets] == [('2002:57::', '2002:57::1')]
    ep = {'NetworkID': nid, 'EndpointID': 'e' + nid[1:],
          'Interface': {'AddressIPv6': '2002:57::2/64'}}
    drv.ok('NetworkDriver.CreateEndpoint', ep)
    join = drv.ok('NetworkDriver.Join', join_body(ep))
    assert 'Gateway' not in join and join['GatewayIPv6'] == '2002:57::1'
    assert [o['instance_ip_address'] for o in fake.objects('instance-ip')
            if o['virtual_network_refs'][0]['uuid'] == vn['uuid']] == [
        '2002:57::2']
    drv.ok('NetworkDriver.Leave', ids_of(ep))
    drv.ok('NetworkDriver.DeleteEndpoint', ids_of(ep))
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': nid})
    assert fake.get('virtual-network', ids.network_uuid(nid)) is None
