"""veth and bridge ports, made by the real driver in namespaces we make.

The driver runs inside a "host" namespace; "containers" are namespaces
whose paths stand as SandboxKey. The test does what Docker does after
Join: move SrcName into the sandbox, rename it, give it its address.
"""

import re
import time
import uuid

import pytest

from tests.functional import conftest
from tests import netns as nsmod

NID = '5e' * 32
V4 = '10.77.0.0/24'
V6 = 'fd00:77::/64'


def network(driver, mtu=None):
    generic = {'mtu': str(mtu)} if mtu else {}
    driver.ok('NetworkDriver.CreateNetwork', {
        'NetworkID': NID,
        'Options': {'com.docker.network.generic': generic,
                    'com.docker.network.enable_ipv6': True},
        'IPv4Data': [{'Pool': V4, 'Gateway': '10.77.0.1/24'}],
        'IPv6Data': [{'Pool': V6, 'Gateway': 'fd00:77::1/64'}]})


def attach(driver, namespaces, host, n):
    """Docker's CreateEndpoint + Join + sandbox setup for container n."""
    eid = ('%02d' % n) * 32
    sandbox = namespaces.add()
    mac = driver.ok('NetworkDriver.CreateEndpoint', {
        'NetworkID': NID, 'EndpointID': eid,
        'Interface': {'Address': '10.77.0.%d/24' % (n + 1),
                      'AddressIPv6': 'fd00:77::%d/64' % (n + 1)}})[
        'Interface']['MacAddress']
    join = driver.ok('NetworkDriver.Join', {
        'NetworkID': NID, 'EndpointID': eid,
        'SandboxKey': '/run/netns/' + sandbox, 'Options': {}})
    src = join['InterfaceName']['SrcName']
    assert len(src) <= 15
    nsmod.sh('ip', '-n', host, 'link', 'set', src, 'netns', sandbox)

    def run(*args):
        return namespaces.run(sandbox, *args)
    run('ip', 'link', 'set', src, 'name', 'eth0')
    run('ip', 'addr', 'add', '10.77.0.%d/24' % (n + 1), 'dev', 'eth0')
    run('ip', '-6', 'addr', 'add', 'fd00:77::%d/64' % (n + 1), 'dev',
        'eth0', 'nodad')
    run('ip', 'link', 'set', 'eth0', 'up')
    run('ip', 'route', 'add', 'default', 'via', join['Gateway'])
    return eid, sandbox, mac, join


def link_json(namespaces, ns, name):
    import json
    out = namespaces.run(ns, 'ip', '-j', 'link', 'show', name).stdout
    return json.loads(out)[0]


def ping(namespaces, ns, addr, tries=20):
    cmd = ['busybox', 'ping', '-c', '1', '-W', '1', addr]
    for _ in range(tries):
        if namespaces.run(ns, *cmd, check=False).returncode == 0:
            return True
        time.sleep(0.2)
    return False


@pytest.fixture
def host(namespaces):
    return namespaces.add()


def test_bridge_data_plane(namespaces, host, driver_factory):
    drv = driver_factory(netns=host, port_driver='bridge').start()
    network(drv, mtu=1400)
    eid1, c1, mac1, join = attach(drv, namespaces, host, 1)
    eid2, c2, mac2, _ = attach(drv, namespaces, host, 2)
    assert join['Gateway'] == '10.77.0.1'
    assert join['GatewayIPv6'] == 'fd00:77::1'
    assert join['DisableGatewayService'] is True
    eth0 = link_json(namespaces, c1, 'eth0')
    assert eth0['address'] == mac1 and eth0['mtu'] == 1400
    assert ping(namespaces, c1, '10.77.0.3')
    assert ping(namespaces, c2, '10.77.0.1')
    assert ping(namespaces, c1, 'fd00:77::3')
    bridges = [x for x in nsmod.links(host) if x.startswith('ocbr')]
    assert len(bridges) == 1
    assert link_json(namespaces, host, bridges[0])['mtu'] == 1400

    oper = {'NetworkID': NID, 'EndpointID': eid1}
    info = drv.ok('NetworkDriver.EndpointOperInfo', oper)['Value']
    assert info['mac'] == mac1 and info['host_if'] in nsmod.links(host)
    # Killed and restarted: the containers keep working, and the endpoint
    # is described as before.
    drv.restart()
    assert ping(namespaces, c1, '10.77.0.3')
    assert drv.ok('NetworkDriver.EndpointOperInfo', oper) == {'Value': info}

    for eid, sandbox in ((eid1, c1), (eid2, c2)):
        # Docker moves the interface back to the host before Leave.
        nsmod.sh('ip', '-n', sandbox, 'link', 'set', 'eth0', 'netns', host)
        drv.ok('NetworkDriver.Leave', {'NetworkID': NID, 'EndpointID': eid})
        drv.ok('NetworkDriver.DeleteEndpoint',
               {'NetworkID': NID, 'EndpointID': eid})
    bridge = {'lo', bridges[0]}
    assert nsmod.wait_links(host, bridge) == bridge
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': NID})
    assert nsmod.links(host) == {'lo'}


def test_veth_join_is_idempotent(namespaces, host, driver_factory):
    drv = driver_factory(netns=host, port_driver='veth').start()
    network(drv)
    eid = '77' * 32
    mac = drv.ok('NetworkDriver.CreateEndpoint', {
        'NetworkID': NID, 'EndpointID': eid,
        'Interface': {'Address': '10.77.0.9/24'}})['Interface']['MacAddress']
    body = {'NetworkID': NID, 'EndpointID': eid,
            'SandboxKey': '/run/netns/whatever'}
    first = drv.ok('NetworkDriver.Join', body)
    again = drv.ok('NetworkDriver.Join', body)
    assert first == again
    names = nsmod.links(host)
    assert names == {'lo', 'veth77777777p0', 'veth77777777c0'}
    peer = link_json(namespaces, host, 'veth77777777c0')
    assert peer['address'] == mac and peer['mtu'] == 1500
    for _ in range(2):
        drv.ok('NetworkDriver.Leave', {'NetworkID': NID, 'EndpointID': eid})
    assert nsmod.wait_links(host, {'lo'}) == {'lo'}


def test_veth_name_collision_is_avoided(namespaces, host, driver_factory):
    drv = driver_factory(netns=host, port_driver='veth').start()
    network(drv)
    # Someone else's interface holds the name the endpoint would get.
    nsmod.sh('ip', '-n', host, 'link', 'add', 'veth12345678p0', 'type',
             'veth', 'peer', 'name', 'other0')
    eid = '12345678' + 'a' * 56
    drv.ok('NetworkDriver.CreateEndpoint', {
        'NetworkID': NID, 'EndpointID': eid,
        'Interface': {'Address': '10.77.0.9/24'}})
    src = drv.ok('NetworkDriver.Join', {
        'NetworkID': NID, 'EndpointID': eid,
        'SandboxKey': '/run/netns/x'})['InterfaceName']['SrcName']
    assert src != 'veth12345678c0' and len(src) <= 15
    drv.ok('NetworkDriver.DeleteEndpoint',
           {'NetworkID': NID, 'EndpointID': eid})
    want = {'lo', 'veth12345678p0', 'other0'}
    assert nsmod.wait_links(host, want) == want


def test_a_second_name_is_found_after_the_first_one_went(
        namespaces, host, driver_factory):
    """An endpoint whose pair took a second name (someone else's
    interface held the first) keeps it: once that interface is gone, a
    restarted driver still finds the pair, shows it, and Leave deletes
    it."""
    drv = driver_factory(netns=host, port_driver='veth').start()
    network(drv)
    nsmod.sh('ip', '-n', host, 'link', 'add', 'veth12345678p0', 'type',
             'veth', 'peer', 'name', 'other0')
    eid = '12345678' + 'b' * 56
    ids = {'NetworkID': NID, 'EndpointID': eid}
    drv.ok('NetworkDriver.CreateEndpoint', dict(
        ids, Interface={'Address': '10.77.0.9/24'}))
    src = drv.ok('NetworkDriver.Join', dict(
        ids, SandboxKey='/run/netns/x'))['InterfaceName']['SrcName']
    sandbox = namespaces.add()
    nsmod.sh('ip', '-n', host, 'link', 'set', src, 'netns', sandbox)
    shown = drv.ok('NetworkDriver.EndpointOperInfo', ids)['Value']
    assert shown['host_if'] not in (None, 'veth12345678p0')
    nsmod.sh('ip', '-n', host, 'link', 'del', 'veth12345678p0')
    drv.restart()
    assert drv.ok('NetworkDriver.EndpointOperInfo', ids)['Value'] == shown
    drv.ok('NetworkDriver.Leave', ids)
    drv.ok('NetworkDriver.DeleteEndpoint', ids)
    assert nsmod.wait_links(host, {'lo'}) == {'lo'}
    # Debug on: the driver's lines, not netlink's (pyroute2 is loaded
    # after the log is set up, and keeps the level it was given).
    assert 'DEBUG opencontrail_net' in drv.log_text()
    assert ' pyroute2.' not in drv.log_text()


def test_a_second_bridge_name_is_found_after_the_first_one_went(
        namespaces, host, driver_factory):
    """A network whose bridge took a second name (someone else's
    interface held the first) keeps that one bridge: once the other
    interface is gone, a restarted driver plugs the next container into
    it, and makes no second bridge."""
    drv = driver_factory(netns=host, port_driver='bridge').start()
    network(drv)
    theirs = 'ocbr' + NID[:11]
    nsmod.sh('ip', '-n', host, 'link', 'add', theirs, 'type', 'bridge')
    attach(drv, namespaces, host, 1)
    ours = {n for n in nsmod.links(host) if n.startswith('ocbr')} - {theirs}
    assert len(ours) == 1
    nsmod.sh('ip', '-n', host, 'link', 'del', theirs)
    drv.restart()
    _eid, sandbox, _mac, _join = attach(drv, namespaces, host, 2)
    assert {n for n in nsmod.links(host) if n.startswith('ocbr')} == ours
    assert ping(namespaces, sandbox, '10.77.0.2')


def test_join_failure_leaves_nothing(namespaces, host, driver_factory):
    drv = driver_factory(netns=host, port_driver='veth').start()
    network(drv)
    eid = '99' * 32
    # A MAC the kernel refuses (multicast) makes the veth creation fail.
    drv.ok('NetworkDriver.CreateEndpoint', {
        'NetworkID': NID, 'EndpointID': eid,
        'Interface': {'Address': '10.77.0.9/24',
                      'MacAddress': '01:00:5e:00:00:01'}})
    status, reply = drv.call('NetworkDriver.Join', {
        'NetworkID': NID, 'EndpointID': eid, 'SandboxKey': '/run/netns/x'})
    assert status == 500 and 'host interface error' in reply['Err']
    assert nsmod.links(host) == {'lo'}


def test_teardown_after_the_answer(namespaces, host, driver_factory):
    """Leave hands the pair's deletion to a worker: an endpoint joined
    again at once keeps its new pair, and the network goes right after
    its last endpoint."""
    drv = driver_factory(netns=host, port_driver='bridge').start()
    network(drv)
    eids = [uuid.uuid4().hex * 2 for _ in range(8)]
    pairs = {}
    for n, eid in enumerate(eids):
        drv.ok('NetworkDriver.CreateEndpoint', {
            'NetworkID': NID, 'EndpointID': eid,
            'Interface': {'Address': '10.77.0.%d/24' % (n + 10)}})
        join = drv.ok('NetworkDriver.Join', {
            'NetworkID': NID, 'EndpointID': eid,
            'SandboxKey': '/run/netns/x'})
        pairs[eid] = (join['InterfaceName']['SrcName'],
                      drv.ok('NetworkDriver.EndpointOperInfo', {
                          'NetworkID': NID, 'EndpointID': eid})[
                          'Value']['host_if'])
    bridge = {x for x in nsmod.links(host) if x.startswith('ocbr')}
    # The first endpoint leaves and comes back at once, as a re-sent
    # Join would: the pair made again is not the one being deleted.
    first = {'NetworkID': NID, 'EndpointID': eids[0]}
    drv.ok('NetworkDriver.Leave', first)
    again = drv.ok('NetworkDriver.Join', dict(first,
                                              SandboxKey='/run/netns/x'))
    assert again['InterfaceName']['SrcName'] == pairs[eids[0]][0]
    for eid in eids[1:]:
        body = {'NetworkID': NID, 'EndpointID': eid}
        drv.ok('NetworkDriver.Leave', body)
        drv.ok('NetworkDriver.DeleteEndpoint', body)
    want = {'lo'} | bridge | set(pairs[eids[0]])
    assert nsmod.wait_links(host, want) == want
    time.sleep(0.5)
    assert nsmod.links(host) == want
    # The last endpoint goes, and the network right after it.
    drv.ok('NetworkDriver.Leave', first)
    drv.ok('NetworkDriver.DeleteEndpoint', first)
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': NID})
    assert nsmod.wait_links(host, {'lo'}) == {'lo'}
    assert 'Traceback' not in drv.log_text()


conftest  # noqa: B018  (fixtures)


PUBLISH = 'com.docker.network.portmap'


def published(host_port, port):
    return {'Options': {PUBLISH: [{'Proto': 6, 'IP': '', 'Port': port,
                                   'HostIP': '', 'HostPort': host_port,
                                   'HostPortEnd': host_port}]}}


def nft_table(namespaces, host):
    return namespaces.run(host, 'nft', 'list', 'table', 'inet',
                          'opencontrail_net').stdout


def test_ipv6_only_network_and_docker29_calls(namespaces, host,
                                              driver_factory):
    """An IPv6-only network (Docker 28's --ipv4=false: enable_ipv4 false,
    no IPv4Data) works on the bridge data plane; Docker 29's call order
    (Program twice with no Revoke between, Revoke after Leave, Revoke of
    an endpoint never seen) leaves the published ports right and nothing
    behind."""
    drv = driver_factory(netns=host, port_driver='bridge').start()
    drv.ok('NetworkDriver.CreateNetwork', {
        'NetworkID': NID,
        'Options': {'com.docker.network.generic': {},
                    'com.docker.network.enable_ipv4': False,
                    'com.docker.network.enable_ipv6': True},
        'IPv4Data': [],
        'IPv6Data': [{'Pool': V6, 'Gateway': 'fd00:77::1/64'}]})
    sandboxes = []
    for n in (1, 2):
        eid = ('%02d' % n) * 32
        sandbox = namespaces.add()
        drv.ok('NetworkDriver.CreateEndpoint', {
            'NetworkID': NID, 'EndpointID': eid,
            'Interface': {'AddressIPv6': 'fd00:77::%d/64' % (n + 1)}})
        join = drv.ok('NetworkDriver.Join', {
            'NetworkID': NID, 'EndpointID': eid,
            'SandboxKey': '/run/netns/' + sandbox, 'Options': {}})
        assert 'Gateway' not in join
        assert join['GatewayIPv6'] == 'fd00:77::1'
        src = join['InterfaceName']['SrcName']
        nsmod.sh('ip', '-n', host, 'link', 'set', src, 'netns', sandbox)
        namespaces.run(sandbox, 'ip', 'link', 'set', src, 'name', 'eth0')
        namespaces.run(sandbox, 'ip', '-6', 'addr', 'add',
                       'fd00:77::%d/64' % (n + 1), 'dev', 'eth0', 'nodad')
        namespaces.run(sandbox, 'ip', 'link', 'set', 'eth0', 'up')
        namespaces.run(sandbox, 'ip', '-6', 'route', 'add', 'default',
                       'via', 'fd00:77::1')
        sandboxes.append((eid, sandbox))
    assert ping(namespaces, sandboxes[0][1], 'fd00:77::3')
    assert ping(namespaces, sandboxes[1][1], 'fd00:77::1')

    eid = sandboxes[0][0]
    ids_ = {'NetworkID': NID, 'EndpointID': eid}
    drv.ok('NetworkDriver.ProgramExternalConnectivity',
           dict(ids_, **published(18080, 80)))
    drv.ok('NetworkDriver.ProgramExternalConnectivity',
           dict(ids_, **published(18081, 81)))
    table = nft_table(namespaces, host)
    assert 'dport 18081 dnat ip6 to [fd00:77::2]:81' in table, table
    assert '18080' not in table
    nsmod.sh('ip', '-n', sandboxes[0][1], 'link', 'set', 'eth0', 'netns',
             host)
    drv.ok('NetworkDriver.Leave', ids_)
    assert drv.ok('NetworkDriver.RevokeExternalConnectivity', ids_) == {}
    assert '18081' not in nft_table(namespaces, host)
    assert drv.ok('NetworkDriver.RevokeExternalConnectivity', {
        'NetworkID': 'ab' * 32, 'EndpointID': 'cd' * 32}) == {}
    drv.ok('NetworkDriver.DeleteEndpoint', ids_)
    nsmod.sh('ip', '-n', sandboxes[1][1], 'link', 'set', 'eth0', 'netns',
             host)
    drv.ok('NetworkDriver.Leave', {'NetworkID': NID,
                                   'EndpointID': sandboxes[1][0]})
    drv.ok('NetworkDriver.DeleteEndpoint', {'NetworkID': NID,
                                            'EndpointID': sandboxes[1][0]})
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': NID})
    assert nsmod.wait_links(host, {'lo'}) == {'lo'}
    assert 'fd00:77' not in nft_table(namespaces, host)


def test_table_is_put_back_after_a_flush(namespaces, host, driver_factory):
    """``nft flush ruleset`` (Debian's nftables.conf begins with it)
    removes the driver's table, and with it the guard that keeps
    containers off the host's 127.0.0.0/8 services: the driver puts it
    back, published ports included, within seconds."""
    drv = driver_factory(netns=host, port_driver='bridge', **{
        'bridge.firewall_check_interval': 0.5}).start()
    network(drv)
    eid, _sandbox, _mac, _join = attach(drv, namespaces, host, 1)
    drv.ok('NetworkDriver.ProgramExternalConnectivity', dict(
        {'NetworkID': NID, 'EndpointID': eid}, **published(18085, 80)))
    before = nft_table(namespaces, host)
    assert 'comment "localhost"' in before and 'dport 18085' in before
    namespaces.run(host, 'nft', 'flush', 'ruleset')
    flushed = time.monotonic()
    res = namespaces.run(host, 'nft', 'list', 'table', 'inet',
                         'opencontrail_net', check=False)
    assert res.returncode != 0     # the premise: gone
    deadline = flushed + 5
    while True:
        res = namespaces.run(host, 'nft', 'list', 'table', 'inet',
                             'opencontrail_net', check=False)
        if res.returncode == 0 and 'comment "localhost"' in res.stdout:
            break
        assert time.monotonic() < deadline, drv.log_tail()
        time.sleep(0.05)
    exposed = time.monotonic() - flushed
    assert exposed < 2.0
    after = nft_table(namespaces, host)
    assert sorted(_rules(after)) == sorted(_rules(before))
    assert 'was flushed by someone else: put back' in drv.log_text()


def _rules(table):
    """The table's rules without their handles."""
    return [re.sub(r' # handle \d+', '', line.strip())
            for line in table.splitlines() if 'comment' in line]
