"""At start the veth driver deletes pairs plugged into no container."""

import time

from tests.functional import conftest
from tests.functional import test_ports
from tests import netns as nsmod


def test_idle_pairs_are_deleted_at_start(namespaces, driver_factory):
    host = namespaces.add()
    sandbox = namespaces.add()
    drv = driver_factory(netns=host, port_driver='veth').start()
    test_ports.network(drv)
    joined = {}
    for n in (1, 2):
        eid = ('%02d' % n) * 32
        drv.ok('NetworkDriver.CreateEndpoint', {
            'NetworkID': test_ports.NID, 'EndpointID': eid,
            'Interface': {'Address': '10.77.0.%d/24' % (n + 1)}})
        joined[n] = drv.ok('NetworkDriver.Join', {
            'NetworkID': test_ports.NID, 'EndpointID': eid,
            'SandboxKey': '/run/netns/' + sandbox})['InterfaceName'][
            'SrcName']
    # Another instance of the driver on the same host (another name) has
    # a pair of its own that is idle: not this instance's to delete.
    other = driver_factory(netns=host, name='other', port_driver='veth',
                           driver_name='other').start()
    test_ports.network(other)
    eid = '03' * 32
    other.ok('NetworkDriver.CreateEndpoint', {
        'NetworkID': test_ports.NID, 'EndpointID': eid,
        'Interface': {'Address': '10.77.0.4/24'}})
    theirs = other.ok('NetworkDriver.Join', {
        'NetworkID': test_ports.NID, 'EndpointID': eid,
        'SandboxKey': '/run/netns/' + sandbox})['InterfaceName']['SrcName']
    other.kill()
    # Endpoint 1 is in its container; endpoint 2's Leave was lost after
    # Docker took its interface back. Someone else's veth stays alone.
    nsmod.sh('ip', '-n', host, 'link', 'set', joined[1], 'netns', sandbox)
    nsmod.sh('ip', '-n', host, 'link', 'add', 'vethforeignp0', 'type',
             'veth', 'peer', 'name', 'vethforeignc0')
    drv.restart()
    # Not at once: a pair is idle for a moment in every Join.
    assert 'veth02020202p0' in nsmod.links(host)
    want = {'lo', 'veth01010101p0', 'vethforeignp0', 'vethforeignc0',
            'veth03030303p0', theirs}
    deadline = time.monotonic() + 10
    while nsmod.links(host) != want and time.monotonic() < deadline:
        time.sleep(0.1)
    assert nsmod.links(host) == want
    assert 'Deleting idle veth veth02020202p0' in drv.log_text()


conftest  # noqa: B018  (fixtures)
