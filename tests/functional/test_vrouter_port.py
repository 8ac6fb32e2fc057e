"""vrouter ports: the real driver process and a fake agent in one netns.

The driver runs inside a "host" namespace, as in test_ports.py. The fake
agent listens on 127.0.0.1:9091 of that same namespace (its socket is
bound from a thread that entered it), so the driver reaches it exactly as
it reaches a real agent, while the test reads the fake's state directly.
"""

import json
import os
import threading
import time

from pyroute2 import netns as pyroute2_netns
import pytest

from opencontrail_net import ids
from tests import agent_helpers
from tests.fakes.vrouter_agent import AGENT_AUTHOR
from tests.fakes.vrouter_agent import FakeAgent
from tests.functional import conftest
from tests.functional import test_ports
from tests import netns as nsmod

NID = test_ports.NID
HOST = 'vrtesthost'
AGENT_PORT = 9091
PROJECT_UUID = ids.project_uuid(['default-domain', 'default-project'])


def in_netns(name, func):
    """Run ``func`` in a thread that entered netns ``name``; return its result.

    setns() moves only the calling thread, so the test's own threads stay
    where they are; sockets made in there belong to ``name`` for good.
    """
    outcome = {}

    def run():
        try:
            pyroute2_netns.setns(name, flags=0)
            outcome['result'] = func()
        except Exception as exc:
            outcome['error'] = exc

    thread = threading.Thread(target=run, name='in-netns-' + name)
    thread.start()
    thread.join()
    if 'error' in outcome:
        raise outcome['error']
    return outcome['result']


class NetnsFakeAgent(FakeAgent):
    """The fake agent, listening on 127.0.0.1 of a network namespace."""

    def __init__(self, netns, ports_dir, **kwargs):
        # The agent checks interfaces of its own host at start; the test
        # process's /sys shows another namespace.
        kwargs.setdefault('interface_exists',
                          lambda name: name in nsmod.links(netns))
        super().__init__(ports_dir, port=AGENT_PORT, **kwargs)
        self.netns = netns

    def _listen(self):
        in_netns(self.netns, super()._listen)

    def restart_empty(self):
        """An agent that comes back having lost its ports and their files."""
        self.set_down(True)
        for vmi in agent_helpers.list_port_files(self.ports_dir):
            os.unlink(self.port_file(vmi))
        assert self.load_ports_dir() == []
        self.set_down(False)


@pytest.fixture
def host(namespaces):
    return namespaces.add()


@pytest.fixture
def ports_dir(workdir):
    return os.path.join(workdir, 'ports')


@pytest.fixture
def agent_factory(host, ports_dir):
    agents = []

    def make(**kwargs):
        agent = NetnsFakeAgent(host, ports_dir, **kwargs).start()
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        agent.stop()


@pytest.fixture
def agent(agent_factory):
    return agent_factory()


@pytest.fixture
def make_driver(driver_factory, host, ports_dir):
    def make(agent, **options):
        options = {'vrouter.agent_url': agent.url,
                   'vrouter.ports_dir': ports_dir, 'host': HOST, **options}
        return driver_factory(netns=host, port_driver='vrouter',
                              **options).start()
    return make


def create_endpoint(drv, n, mac=None):
    eid = ('%02d' % n) * 32
    iface = {'Address': '10.77.0.%d/24' % (n + 1),
             'AddressIPv6': 'fd00:77::%d/64' % (n + 1)}
    if mac:
        iface['MacAddress'] = mac
    reply = drv.ok('NetworkDriver.CreateEndpoint', {
        'NetworkID': NID, 'EndpointID': eid, 'Interface': iface})
    return eid, mac or reply['Interface']['MacAddress']


def join(drv, eid, sandbox='sbx'):
    return drv.ok('NetworkDriver.Join', {
        'NetworkID': NID, 'EndpointID': eid,
        'SandboxKey': '/var/run/docker/netns/' + sandbox, 'Options': {}})


def leave_and_delete(drv, eid):
    body = {'NetworkID': NID, 'EndpointID': eid}
    for _ in range(2):
        drv.ok('NetworkDriver.Leave', body)
    for _ in range(2):
        drv.ok('NetworkDriver.DeleteEndpoint', body)


def host_end(join_reply):
    # The veth driver's naming: "veth<tag>c0" goes in, "veth<tag>p0" stays.
    return join_reply['InterfaceName']['SrcName'][:-2] + 'p0'


def vrouter_warnings(drv):
    return [line for line in drv.log_text().splitlines()
            if ' WARNING opencontrail_net.port_drivers.vrouter ' in line]


def port_files(ports_dir):
    return agent_helpers.list_port_files(ports_dir)


def read_port_file(ports_dir, vmi):
    with open(os.path.join(ports_dir, vmi)) as handle:
        return json.load(handle)


def test_join_registers_the_port_leave_removes_it(namespaces, host, agent,
                                                  make_driver, ports_dir):
    drv = make_driver(agent)
    test_ports.network(drv, mtu=1400)
    eid, sandbox, mac, reply = test_ports.attach(drv, namespaces, host, 1)
    vmi = ids.endpoint_uuid(eid)

    assert list(agent.ports) == [vmi]
    port = agent.ports[vmi]
    assert port['system-name'] in nsmod.links(host)
    assert port['system-name'] == host_end(reply)
    eth0 = test_ports.link_json(namespaces, sandbox, 'eth0')
    assert port['mac-address'] == mac == eth0['address']
    assert eth0['mtu'] == 1400
    assert test_ports.link_json(namespaces, host,
                                port['system-name'])['mtu'] == 1400
    assert port == {
        'id': vmi, 'instance-id': ids.vm_uuid(HOST, sandbox),
        'display-name': sandbox, 'vn-id': ids.network_uuid(NID),
        'vm-project-id': PROJECT_UUID, 'ip-address': '10.77.0.2',
        'ip6-address': 'fd00:77::2', 'mac-address': mac,
        'system-name': port['system-name'], 'type': 0,
        'rx-vlan-id': 65535, 'tx-vlan-id': 65535, 'vhostuser-mode': 0}
    assert (reply['Gateway'], reply['GatewayIPv6']) == ('10.77.0.1',
                                                        'fd00:77::1')
    assert reply['DisableGatewayService'] is True
    # Re-plug safety first, then the port, then the readiness poll.
    assert agent.requests == [('DELETE', '/port/' + vmi),
                              ('POST', '/port'), ('GET', '/port/' + vmi)]
    # The agent wrote its own file; the driver did not need to.
    assert read_port_file(ports_dir, vmi)['author'] == AGENT_AUTHOR
    info = drv.ok('NetworkDriver.EndpointOperInfo',
                  {'NetworkID': NID, 'EndpointID': eid})['Value']
    assert info['contrail_vmi'] == vmi

    # Docker moves the interface back to the host before Leave.
    nsmod.sh('ip', '-n', sandbox, 'link', 'set', 'eth0', 'netns', host)
    leave_and_delete(drv, eid)
    assert agent.ports == {}
    assert port_files(ports_dir) == []
    assert nsmod.wait_links(host, {'lo'}) == {'lo'}
    assert vrouter_warnings(drv) == []


def test_vrouter_mtu_overrides_the_network_mtu(namespaces, host, agent,
                                               make_driver):
    drv = make_driver(agent, **{'vrouter.mtu': 1450})
    test_ports.network(drv, mtu=1400)
    eid, mac = create_endpoint(drv, 1)
    reply = join(drv, eid)
    peer = test_ports.link_json(namespaces, host,
                                reply['InterfaceName']['SrcName'])
    assert (peer['mtu'], peer['address']) == (1450, mac)
    assert test_ports.link_json(namespaces, host,
                                host_end(reply))['mtu'] == 1450
    leave_and_delete(drv, eid)


def test_rejoin_replaces_the_agents_port(namespaces, host, agent,
                                         make_driver):
    drv = make_driver(agent)
    test_ports.network(drv)
    eid, mac = create_endpoint(drv, 1, mac='02:aa:bb:cc:dd:01')
    vmi = ids.endpoint_uuid(eid)
    first = join(drv, eid)
    # The agent holds this port with another system-name, as after a
    # driver that named interfaces differently; a POST alone would keep it.
    stale = dict(agent.ports[vmi], **{'system-name': 'tapold0'})
    agent.handle('DELETE', '/port/' + vmi, b'')
    assert agent.handle('POST', '/port', json.dumps(stale).encode())[0] == 200
    assert agent.ports[vmi]['system-name'] == 'tapold0'

    again = join(drv, eid)  # what Docker re-sends
    assert again == first
    assert list(agent.ports) == [vmi]
    assert agent.ports[vmi]['system-name'] == host_end(first)
    assert nsmod.links(host) == {'lo', host_end(first),
                                 first['InterfaceName']['SrcName']}
    leave_and_delete(drv, eid)
    assert agent.ports == {}
    assert nsmod.wait_links(host, {'lo'}) == {'lo'}


def test_agent_refusal_fails_join_and_leaves_nothing(host, agent, make_driver,
                                                     ports_dir):
    drv = make_driver(agent)
    test_ports.network(drv)
    eid, _mac = create_endpoint(drv, 1)
    agent.refusal = 'Port add failed: no room'
    status, reply = drv.call('NetworkDriver.Join', {
        'NetworkID': NID, 'EndpointID': eid, 'SandboxKey': '/x/sbx'})
    assert status == 500
    assert 'Port add failed: no room' in reply['Err']
    assert 'POST /port' in reply['Err']
    assert nsmod.links(host) == {'lo'}
    assert agent.ports == {} and port_files(ports_dir) == []

    # Once the agent takes ports again, the same Join succeeds.
    agent.refusal = None
    join(drv, eid)
    assert list(agent.ports) == [ids.endpoint_uuid(eid)]
    leave_and_delete(drv, eid)


def test_agent_down_join_writes_the_port_file(host, agent, make_driver,
                                              ports_dir):
    drv = make_driver(agent)
    test_ports.network(drv)
    eid, mac = create_endpoint(drv, 1)
    vmi = ids.endpoint_uuid(eid)
    agent.set_down(True)
    start = time.monotonic()
    reply = join(drv, eid)
    assert time.monotonic() - start < 2
    assert port_files(ports_dir) == [vmi]
    saved = read_port_file(ports_dir, vmi)
    assert saved['author'] == 'opencontrail-net'
    assert (saved['system-name'], saved['mac-address']) == (host_end(reply),
                                                            mac)
    [warning] = vrouter_warnings(drv)
    assert 'vrouter agent at %s is unreachable' % agent.url in warning
    assert vmi in warning and eid in warning and ports_dir in warning

    # The agent starts, loads its directory, and has the port.
    agent.set_down(False)
    assert agent.load_ports_dir() == [vmi]
    assert agent.ports[vmi]['system-name'] == host_end(reply)
    assert agent.ports[vmi]['instance-id'] == ids.vm_uuid(HOST, 'sbx')
    leave_and_delete(drv, eid)
    assert agent.ports == {} and port_files(ports_dir) == []


def test_agent_down_unplug_leaves_no_file(host, agent, make_driver,
                                          ports_dir):
    drv = make_driver(agent)
    test_ports.network(drv)
    eid, _mac = create_endpoint(drv, 1)
    join(drv, eid)
    assert port_files(ports_dir) == [ids.endpoint_uuid(eid)]
    agent.set_down(True)
    leave_and_delete(drv, eid)
    assert port_files(ports_dir) == []
    assert nsmod.wait_links(host, {'lo'}) == {'lo'}
    # One per call: Leave and DeleteEndpoint, each sent twice.
    assert len(vrouter_warnings(drv)) == 4
    assert 'is removed only from' in vrouter_warnings(drv)[0]
    # A restarted agent has nothing to bring back.
    agent.set_down(False)
    assert agent.load_ports_dir() == []


def test_resync_after_restarts(namespaces, host, agent, make_driver,
                               ports_dir):
    drv = make_driver(agent)
    test_ports.network(drv)
    eid1, _mac = create_endpoint(drv, 1)
    eid2, _mac = create_endpoint(drv, 2)
    vmi1 = ids.endpoint_uuid(eid1)
    reply = join(drv, eid1, 'sbx1')
    name1 = host_end(reply)
    # As Docker does: the container end goes into the container.
    sandbox = namespaces.add()
    nsmod.sh('ip', '-n', host, 'link', 'set',
             reply['InterfaceName']['SrcName'], 'netns', sandbox)
    gone = host_end(join(drv, eid2, 'sbx2'))
    port1 = agent.ports[vmi1]

    # Only the driver restarts: re-adding a port the agent holds is
    # harmless, and nothing is deleted under a running container.
    drv.kill()
    nsmod.sh('ip', '-n', host, 'link', 'del', gone)
    seen = len(agent.requests)
    drv.start()
    assert agent.ports[vmi1] == port1
    assert agent.requests[seen:] == [('POST', '/port')]
    # Only what this host still has plugged is resynced.
    assert 'Resyncing 1 endpoints' in drv.log_text()

    # The agent lost its ports while the driver was down.
    drv.kill()
    agent.restart_empty()
    drv.start()
    assert list(agent.ports) == [vmi1]
    assert agent.ports[vmi1]['system-name'] == name1
    assert 'Resynced port %s' % vmi1 in drv.log_text()

    # Both went down; the driver comes back first and leaves a file.
    drv.kill()
    agent.restart_empty()
    agent.set_down(True)
    drv.start()
    assert port_files(ports_dir) == [vmi1]
    agent.set_down(False)
    assert agent.load_ports_dir() == [vmi1]
    assert agent.ports[vmi1] == port1
    for eid in (eid1, eid2):
        leave_and_delete(drv, eid)
    assert agent.ports == {}
    assert nsmod.wait_links(host, {'lo'}) == {'lo'}


@pytest.mark.parametrize('ready_delay, timeout, ready', [
    (0.4, 5, True),
    (30, 0.5, False),
])
def test_join_waits_for_readiness(agent_factory, make_driver, ready_delay,
                                  timeout, ready):
    agent = agent_factory(ready_delay=ready_delay)
    drv = make_driver(agent, **{'vrouter.port_ready_timeout': timeout})
    test_ports.network(drv)
    eid, _mac = create_endpoint(drv, 1)
    start = time.monotonic()
    join(drv, eid)
    took = time.monotonic() - start
    assert min(ready_delay, timeout) <= took < min(ready_delay, timeout) + 2
    warnings = vrouter_warnings(drv)
    if ready:
        assert warnings == []
    else:
        [warning] = warnings
        assert 'is not ready at the vrouter agent %s' % agent.url in warning
        assert eid in warning
    leave_and_delete(drv, eid)


conftest  # noqa: B018  (fixtures)


def test_ipv6_only_network(namespaces, host, agent, make_driver):
    """Docker 28's --ipv4=false: the agent's port has the IPv6 address and
    no IPv4 one, Join gives an IPv6 gateway only, and Leave removes it."""
    drv = make_driver(agent)
    drv.ok('NetworkDriver.CreateNetwork', {
        'NetworkID': NID, 'IPv4Data': [],
        'IPv6Data': [{'Pool': 'fd00:77::/64', 'Gateway': 'fd00:77::1/64'}],
        'Options': {'com.docker.network.generic': {},
                    'com.docker.network.enable_ipv4': False,
                    'com.docker.network.enable_ipv6': True}})
    eid = '06' * 32
    drv.ok('NetworkDriver.CreateEndpoint', {
        'NetworkID': NID, 'EndpointID': eid,
        'Interface': {'AddressIPv6': 'fd00:77::2/64'}})
    reply = join(drv, eid)
    assert 'Gateway' not in reply and reply['GatewayIPv6'] == 'fd00:77::1'
    port = agent.ports[ids.endpoint_uuid(eid)]
    assert port['ip6-address'] == 'fd00:77::2'
    assert port['ip-address'] == '0.0.0.0'
    leave_and_delete(drv, eid)
    assert agent.ports == {}
    assert nsmod.wait_links(host, {'lo'}) == {'lo'}
