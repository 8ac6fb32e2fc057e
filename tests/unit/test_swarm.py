"""Swarm and cluster-store calls: AllocateNetwork, FreeNetwork, discovery.

Bodies as Docker 20.10's swarm manager and workers send them.
"""

import errno
import io

import pytest

from opencontrail_net import linux_net
from tests.backend_helpers import counts
from tests.unit import test_api
from tests.unit.test_api import call, ep_body

SWARM = 'x3k9q0w2e8r7t6y5u4i1o2p3a'
EID = 'e' * 64
env = test_api.env


def allocate_body(options, nid=SWARM):
    """AllocateNetwork on the manager: a flat map, no address space."""
    return {'NetworkID': nid, 'Options': options,
            'IPv4Data': [{'AddressSpace': '', 'Pool': '192.168.20.0/24',
                          'Gateway': '192.168.20.1/24'}],
            'IPv6Data': None}


def worker_body(generic, nid=SWARM):
    """A worker's CreateNetwork: AllocateNetwork's answer as generic."""
    return {'NetworkID': nid,
            'Options': {'com.docker.network.enable_ipv6': False,
                        'com.docker.network.generic': generic},
            'IPv4Data': [{'AddressSpace': 'LocalDefault',
                          'Pool': '192.168.20.0/24',
                          'Gateway': '192.168.20.1/24'}],
            'IPv6Data': []}


OPTIONS = {'rt': '64512:300', 'opencontrail.rt.import': '64512:301',
           'name': 'swnet', 'tenant': 'demo', 'mtu': '1400'}


def test_allocate_honours_every_flat_option(env):
    app, backend, _ = env
    res = call(app, 'NetworkDriver.AllocateNetwork', allocate_body(OPTIONS))
    assert res == {'Options': OPTIONS}
    net = backend.get_network(SWARM)
    assert net.route_targets == ['target:64512:300']
    assert net.import_targets == ['target:64512:301']
    assert (net.name, net.project, net.mtu) == (
        'swnet', ['default-domain', 'demo'], 1400)
    assert [s.cidr for s in net.subnets] == ['192.168.20.0/24']


def test_workers_find_the_allocated_network(env):
    app, backend, ports = env
    answer = call(app, 'NetworkDriver.AllocateNetwork',
                  allocate_body(OPTIONS))
    # Re-sent by Docker after a lost answer: the same reply.
    assert call(app, 'NetworkDriver.AllocateNetwork',
                allocate_body(OPTIONS)) == answer
    for _worker in range(3):
        call(app, 'NetworkDriver.CreateNetwork',
             worker_body(answer['Options']))
    assert counts(backend)['networks'] == 1
    assert backend.get_network(SWARM).mtu == 1400
    call(app, 'NetworkDriver.CreateEndpoint',
         dict(ep_body(address='192.168.20.2/24'), NetworkID=SWARM))
    call(app, 'NetworkDriver.Join', {'NetworkID': SWARM, 'EndpointID': EID,
                                     'SandboxKey': '/run/netns/abc'})
    assert EID in ports.plugged


def test_worker_makes_a_swarm_network_the_manager_did_not(env):
    app, backend, _ = env
    call(app, 'NetworkDriver.CreateNetwork', worker_body({'rt': '64512:9'}))
    assert backend.get_network(SWARM).route_targets == ['target:64512:9']


@pytest.mark.parametrize('options,status,word', [
    ({'rt': 'banana'}, 400, 'banana'),
    ({'mtu': '20'}, 400, 'MTU'),
    ({'opencontrail.colour': 'red'}, 400, 'unknown option'),
    ({'rt': {'nested': 'x'}}, 400, "Options['rt']"),
    ({'rt': '64512:1', 'opencontrail.rt': '64512:2'}, 400, 'conflicts'),
])
def test_allocate_refuses_bad_options(env, options, status, word):
    app, backend, _ = env
    res = call(app, 'NetworkDriver.AllocateNetwork', allocate_body(options),
               status=status)
    assert word in res['Err']
    assert counts(backend)['networks'] == 0


def test_allocate_takes_generic_options_too(env):
    app, backend, _ = env
    body = allocate_body({'com.docker.network.generic': {'rt': '64512:7'}})
    assert call(app, 'NetworkDriver.AllocateNetwork', body) == {
        'Options': {'rt': '64512:7'}}
    assert backend.get_network(SWARM).route_targets == ['target:64512:7']


def test_free_network_before_the_tasks_leave(env):
    app, backend, ports = env
    call(app, 'NetworkDriver.AllocateNetwork', allocate_body({}))
    call(app, 'NetworkDriver.CreateNetwork', worker_body({}))
    call(app, 'NetworkDriver.CreateEndpoint',
         dict(ep_body(address='192.168.20.2/24'), NetworkID=SWARM))
    call(app, 'NetworkDriver.FreeNetwork', {'NetworkID': SWARM})
    assert counts(backend) == {'networks': 0, 'endpoints': 0, 'vms': 0}
    ep = {'NetworkID': SWARM, 'EndpointID': EID}
    call(app, 'NetworkDriver.Leave', ep)
    call(app, 'NetworkDriver.DeleteEndpoint', ep)
    call(app, 'NetworkDriver.DeleteNetwork', {'NetworkID': SWARM})
    call(app, 'NetworkDriver.FreeNetwork', {'NetworkID': SWARM})


def test_worker_delete_keeps_only_swarm_networks(env):
    app, backend, _ = env
    local = '2' * 64
    call(app, 'NetworkDriver.CreateNetwork', worker_body({}, nid=local))
    call(app, 'NetworkDriver.AllocateNetwork', allocate_body({}))
    for nid in (local, SWARM):
        call(app, 'NetworkDriver.DeleteNetwork', {'NetworkID': nid})
    assert [backend.get_network(SWARM).id] == [SWARM]
    assert counts(backend)['networks'] == 1


@pytest.mark.parametrize('name', ['DiscoverNew', 'DiscoverDelete'])
@pytest.mark.parametrize('body', [
    {'DiscoveryType': 1, 'DiscoveryData': {
        'Address': '10.213.0.2', 'BindAddress': '10.213.0.2',
        'Self': False}},
    {'DiscoveryType': 2, 'DiscoveryData': {
        'Scope': 'global', 'Provider': 'etcd',
        'Address': '10.213.0.254:2379'}},
])
def test_discovery_events_are_answered(env, name, body):
    app, backend, _ = env
    assert call(app, 'NetworkDriver.' + name, body) == {}
    assert counts(backend)['networks'] == 0


@pytest.mark.parametrize('body', [
    {}, {'DiscoveryType': 'node'}, {'DiscoveryType': 1, 'DiscoveryData': 3}])
def test_bad_discovery_events_are_refused(env, body):
    app, _, _ = env
    res = call(app, 'NetworkDriver.DiscoverNew', body, status=400)
    assert 'DiscoveryType' in res['Err']


class ReadOnlySysctl:
    """/proc/sys as a managed plugin sees it: readable, not writable."""

    def __init__(self, values):
        self.values = values
        self.writes = []

    def __call__(self, path, mode='r'):
        key = path.rsplit('/', 1)[1]
        if 'w' in mode:
            self.writes.append(key)
            raise OSError(errno.EROFS, 'Read-only file system', path)
        return io.StringIO(self.values[key] + '\n')


@pytest.mark.parametrize('values,needed,writes', [
    ({'disable_ipv6': '0', 'accept_dad': '0'}, True, []),
    ({'disable_ipv6': '0', 'accept_dad': '1'}, True, ['accept_dad']),
    ({'disable_ipv6': '1', 'accept_dad': '1'}, False,
     ['disable_ipv6', 'accept_dad']),
])
def test_read_only_proc_sys(monkeypatch, values, needed, writes):
    fake = ReadOnlySysctl(values)
    monkeypatch.setattr('builtins.open', fake)
    linux_net._enable_ipv6('ocbrtest', needed)
    assert fake.writes == writes


def test_read_only_proc_sys_with_ipv6_off_is_clear(monkeypatch):
    fake = ReadOnlySysctl({'disable_ipv6': '1', 'accept_dad': '1'})
    monkeypatch.setattr('builtins.open', fake)
    with pytest.raises(Exception) as info:
        linux_net._enable_ipv6('ocbrtest', True)
    assert 'disable_ipv6' in str(info.value)
