"""Every libnetwork call in-process, through the CherryPy app."""

import json

import pytest
import webtest

from opencontrail_net.backends import mock
from opencontrail_net import exception
from opencontrail_net import model
from opencontrail_net import network
from opencontrail_net.port_drivers import base
from opencontrail_net import server
from tests.backend_helpers import counts

NID = '1' * 64
EID = 'e' * 64
SANDBOX = '/var/run/docker/netns/0123456789ab'


class RecordingPorts(base.PortDriver):
    """Records plug/unplug; can be told to fail."""

    def __init__(self, conf):
        super().__init__(conf)
        self.plugged = {}
        self.fail = False

    def plug(self, net, ep, sandbox_key):
        if self.fail:
            raise exception.PortError(reason='injected')
        self.plugged[ep.id] = sandbox_key
        return model.JoinInfo(src_name='vethtestc0', gateway=net.gateway(4),
                              gateway_ipv6=net.gateway(6),
                              disable_gateway_service=True)

    def unplug(self, network_id, endpoint_id, background=False):
        self.plugged.pop(endpoint_id, None)

    def plugged_endpoints(self):
        return list(self.plugged)


@pytest.fixture
def env(conf):
    backend = mock.MockBackend(conf)
    ports = RecordingPorts(conf)
    driver = network.NetworkDriver(conf, backend, ports)
    app = webtest.TestApp(server.make_app(driver.calls(), 4096))
    yield app, backend, ports
    backend.stop()


def call(app, name, body=None, raw=None, status=200):
    params = raw if raw is not None else (
        b'' if body is None else json.dumps(body).encode())
    # Docker sends no Content-Type.
    res = app.post('/' + name, params=params, status=status,
                   headers={'Accept': 'application/vnd.docker.plugins.'
                                      'v1.2+json'},
                   content_type='')
    assert res.headers['Content-Type'].startswith(server.CONTENT_TYPE)
    return res.json


def net_body(nid=NID, generic=None):
    return {'NetworkID': nid,
            'Options': {'com.docker.network.generic': generic or {}},
            'IPv4Data': [{'AddressSpace': 'LocalDefault',
                          'Pool': '192.168.4.0/24',
                          'Gateway': '192.168.4.1/24'}],
            'IPv6Data': []}


def ep_body(eid=EID, address='192.168.4.2/24', mac=''):
    return {'NetworkID': NID, 'EndpointID': eid, 'Options': {},
            'Interface': {'Address': address, 'AddressIPv6': '',
                          'MacAddress': mac}}


def test_handshake(env):
    app, _, _ = env
    assert call(app, 'Plugin.Activate') == {
        'Implements': ['NetworkDriver', 'IpamDriver']}
    assert call(app, 'NetworkDriver.GetCapabilities') == {
        'Scope': 'local', 'ConnectivityScope': 'local'}


def test_full_lifecycle(env):
    app, backend, ports = env
    assert call(app, 'NetworkDriver.CreateNetwork', net_body(
        generic={'rt': '64512:100,64512:200'})) == {}
    # Docker re-sends: the same answer, one network.
    assert call(app, 'NetworkDriver.CreateNetwork', net_body(
        generic={'rt': '64512:100,64512:200'})) == {}
    assert backend.get_network(NID).route_targets == [
        'target:64512:100', 'target:64512:200']
    reply = call(app, 'NetworkDriver.CreateEndpoint', ep_body())
    mac = reply['Interface']['MacAddress']
    assert mac.startswith('02:')
    assert call(app, 'NetworkDriver.CreateEndpoint', ep_body()) == reply
    join = call(app, 'NetworkDriver.Join',
                {'NetworkID': NID, 'EndpointID': EID,
                 'SandboxKey': SANDBOX, 'Options': {}})
    assert join == {'InterfaceName': {'SrcName': 'vethtestc0',
                                      'DstPrefix': 'eth'},
                    'Gateway': '192.168.4.1',
                    'DisableGatewayService': True}
    assert ports.plugged == {EID: SANDBOX}
    info = call(app, 'NetworkDriver.EndpointOperInfo',
                {'NetworkID': NID, 'EndpointID': EID})
    assert info['Value']['mac'] == mac
    assert counts(backend) == {'networks': 1, 'endpoints': 1, 'vms': 1}
    for name in ('ProgramExternalConnectivity',
                 'RevokeExternalConnectivity', 'Leave', 'Leave',
                 'DeleteEndpoint', 'DeleteEndpoint'):
        assert call(app, 'NetworkDriver.' + name,
                    {'NetworkID': NID, 'EndpointID': EID}) == {}
    assert ports.plugged == {}
    assert counts(backend) == {'networks': 1, 'endpoints': 0, 'vms': 0}
    for _ in range(2):
        assert call(app, 'NetworkDriver.DeleteNetwork',
                    {'NetworkID': NID}) == {}
    assert counts(backend) == {'networks': 0, 'endpoints': 0, 'vms': 0}


def test_endpoint_oper_info_survives_a_restart(env, conf):
    app, backend, ports = env
    call(app, 'NetworkDriver.CreateNetwork', net_body())
    call(app, 'NetworkDriver.CreateEndpoint', ep_body())
    call(app, 'NetworkDriver.Join',
         {'NetworkID': NID, 'EndpointID': EID, 'SandboxKey': SANDBOX})
    body = {'NetworkID': NID, 'EndpointID': EID}
    before = call(app, 'NetworkDriver.EndpointOperInfo', body)
    assert before['Value']['contrail_vm']
    restarted = network.NetworkDriver(conf, backend, ports)
    restarted.start()
    app = webtest.TestApp(server.make_app(restarted.calls(), 4096))

    class NoBackend:
        def __getattr__(self, name):
            raise AssertionError('backend called: %s' % name)
    restarted.backend = NoBackend()
    assert call(app, 'NetworkDriver.EndpointOperInfo', body) == before


def test_given_mac_is_kept_and_not_echoed(env):
    app, backend, _ = env
    call(app, 'NetworkDriver.CreateNetwork', net_body())
    reply = call(app, 'NetworkDriver.CreateEndpoint',
                 ep_body(mac='02:42:c0:a8:04:09'))
    assert reply == {'Interface': {}}
    assert backend.get_endpoint(backend.get_network(NID), EID).mac == \
        '02:42:c0:a8:04:09'


def test_join_failure_undoes_the_vm(env):
    app, backend, ports = env
    call(app, 'NetworkDriver.CreateNetwork', net_body())
    call(app, 'NetworkDriver.CreateEndpoint', ep_body())
    ports.fail = True
    res = call(app, 'NetworkDriver.Join',
               {'NetworkID': NID, 'EndpointID': EID, 'SandboxKey': SANDBOX},
               status=500)
    assert 'injected' in res['Err'] and res['Err'] == res['Error']
    assert counts(backend)['vms'] == 0
    ports.fail = False
    call(app, 'NetworkDriver.Join',
         {'NetworkID': NID, 'EndpointID': EID, 'SandboxKey': SANDBOX})
    assert counts(backend)['vms'] == 1


def test_join_reports_the_plug_failure_not_the_undo(env, monkeypatch,
                                                    caplog):
    app, backend, ports = env
    call(app, 'NetworkDriver.CreateNetwork', net_body())
    call(app, 'NetworkDriver.CreateEndpoint', ep_body())
    ports.fail = True

    def detach(*args):
        raise exception.BackendUnavailable(reason='api gone')
    monkeypatch.setattr(backend, 'detach_endpoint', detach)
    res = call(app, 'NetworkDriver.Join',
               {'NetworkID': NID, 'EndpointID': EID, 'SandboxKey': SANDBOX},
               status=500)
    assert 'injected' in res['Err'] and 'api gone' not in res['Err']
    undo = [r for r in caplog.records if 'api gone' in r.getMessage()]
    assert len(undo) == 1 and undo[0].levelname == 'ERROR'
    assert EID in undo[0].getMessage()


def test_swarm_network_stays_until_free_network(env):
    app, backend, _ = env
    swarm = 'x3k9q0w2e8r7t6y5u4i1o2p3a'
    call(app, 'NetworkDriver.CreateNetwork', net_body(nid=swarm))
    call(app, 'NetworkDriver.DeleteNetwork', {'NetworkID': swarm})
    assert counts(backend)['networks'] == 1
    call(app, 'NetworkDriver.FreeNetwork', {'NetworkID': swarm})
    assert counts(backend)['networks'] == 0


@pytest.mark.parametrize('body', [
    {'NetworkID': 'zz'}, {'NetworkID': 'z' * 40}, {'NetworkID': 'A' * 25},
    {'NetworkID': 'AB' * 32}, {'NetworkID': NID, 'EndpointID': 'Q'},
    {'NetworkID': NID, 'EndpointID': 'x3k9q0w2e8r7t6y5u4i1o2p3a'}])
def test_bad_ids_create_nothing(env, body):
    app, backend, _ = env
    name = 'CreateEndpoint' if 'EndpointID' in body else 'CreateNetwork'
    if 'EndpointID' in body:
        call(app, 'NetworkDriver.CreateNetwork', net_body())
        body = dict(ep_body(), **body)
    else:
        body = dict(net_body(), **body)
    before = counts(backend)
    res = call(app, 'NetworkDriver.' + name, body, status=400)
    field = 'EndpointID' if 'EndpointID' in body else 'NetworkID'
    assert field in res['Err'] and 'not a Docker ID' in res['Err']
    assert counts(backend) == before


def test_address_in_use_is_refused(env):
    app, backend, _ = env
    call(app, 'NetworkDriver.CreateNetwork', net_body())
    call(app, 'NetworkDriver.CreateEndpoint', ep_body())
    res = call(app, 'NetworkDriver.CreateEndpoint', ep_body(eid='f' * 64),
               status=409)
    assert '192.168.4.2' in res['Err']
    assert counts(backend)['endpoints'] == 1


BAD = [
    ('NetworkDriver.CreateNetwork', b'{bad', 400, 'not JSON'),
    ('NetworkDriver.CreateNetwork', b'[1]', 400, 'not an object'),
    ('NetworkDriver.CreateNetwork', b'{}', 400, 'NetworkID'),
    ('NetworkDriver.CreateNetwork',
     json.dumps(net_body(generic={'rt': 'banana'})).encode(), 400, 'banana'),
    ('NetworkDriver.CreateNetwork',
     json.dumps(net_body(generic={'mtu': 'x'})).encode(), 400, "'x'"),
    ('NetworkDriver.CreateNetwork',
     json.dumps(net_body(generic={'opencontrail.network': 'a:b:c'}))
     .encode(), 400, 'pre-existing'),
    ('NetworkDriver.CreateEndpoint', b'{"NetworkID": "' + b'1' * 64 + b'"}',
     400, 'EndpointID'),
    ('NetworkDriver.CreateEndpoint',
     json.dumps(dict(ep_body(), NetworkID='2' * 64)).encode(), 404,
     'network'),
    ('NetworkDriver.CreateEndpoint',
     json.dumps(ep_body(address='garbage')).encode(), 400, 'garbage'),
    ('NetworkDriver.Join', json.dumps(
        {'NetworkID': NID, 'EndpointID': EID}).encode(), 400, 'SandboxKey'),
    ('NetworkDriver.Join', json.dumps(
        {'NetworkID': NID, 'EndpointID': 'd' * 64,
         'SandboxKey': SANDBOX}).encode(), 404, 'endpoint'),
    ('NetworkDriver.Join', json.dumps(
        {'NetworkID': NID, 'EndpointID': EID, 'SandboxKey': '/'}).encode(),
     400, 'SandboxKey'),
    ('NetworkDriver.CreateNetwork', b'[' * 4000, 400, 'not JSON'),
    ('NetworkDriver.Leave', b'', 400, 'empty body'),
    ('NetworkDriver.Join', b'  ', 400, 'run the command again'),
    ('NetworkDriver.Leave', b'{}', 400, 'missing NetworkID'),
    ('NetworkDriver.DeleteEndpoint', b'{"NetworkID": 7}', 400, 'NetworkID'),
    ('NetworkDriver.DeleteNetwork', b'{}', 400, 'NetworkID'),
    ('NetworkDriver.Bogus', b'{}', 404, 'unknown call'),
    ('IpamDriver.RequestPool', b'{}', 404, 'unknown call'),
]


@pytest.mark.parametrize('name,raw,status,word', BAD)
def test_bad_input(env, name, raw, status, word):
    app, backend, ports = env
    call(app, 'NetworkDriver.CreateNetwork', net_body())
    before = counts(backend)
    res = call(app, name, raw=raw, status=status)
    assert word in res['Err']
    assert res['Err'] == res['Error']
    assert counts(backend) == before
    assert ports.plugged == {}


def test_body_size_limit(env):
    app, backend, _ = env
    res = call(app, 'NetworkDriver.CreateNetwork',
               raw=b'{"x": "' + b'a' * 5000 + b'"}', status=413)
    assert 'exceeds' in res['Err']


@pytest.mark.parametrize('name', sorted(
    n for n in server.BODILESS if not n.startswith('IpamDriver.')))
def test_calls_sent_without_a_body(env, name):
    app, _, _ = env
    assert 'Err' not in call(app, name, raw=b'')


def test_get_is_refused(env):
    app, _, _ = env
    res = app.get('/Plugin.Activate', status=400)
    assert 'POST' in res.json['Err']


def test_unexpected_exception_is_a_clean_500(env, monkeypatch):
    app, backend, _ = env

    def boom(*args):
        raise RuntimeError('disk on fire')
    monkeypatch.setattr(backend, 'create_network', boom)
    res = call(app, 'NetworkDriver.CreateNetwork', net_body(), status=500)
    assert 'disk on fire' in res['Err'] and 'Traceback' not in res['Err']


class FakeDockerView:
    """Docker's answer to "do you have this network?"; None: unreachable."""

    def __init__(self, has):
        self.has = has

    def has_network(self, network_id):
        if self.has is None:
            raise exception.DockerUnavailable(url='unix:///x', reason='down')
        return self.has


OLD = '2' * 64


@pytest.mark.parametrize('in_docker,in_backend,outcome', [
    (False, True, 'removed'),
    (True, True, 'held on this host by Docker network %s' % OLD),
    (None, True, 'Docker cannot say whether'),
    (False, False, 'neither Docker nor this driver\'s backend has'),
])
def test_subnet_held_by_another_network(conf, in_docker, in_backend,
                                        outcome):
    """A subnet another network of the driver holds on the host: the
    holder goes only when Docker surely no longer has it and the backend
    does; otherwise the new network is refused naming it."""
    backend = mock.MockBackend(conf)
    ports = RecordingPorts(conf)
    driver = network.NetworkDriver(conf, backend, ports)
    driver.docker = FakeDockerView(in_docker)
    app = webtest.TestApp(server.make_app(driver.calls(), 4096))
    try:
        if in_backend:
            call(app, 'NetworkDriver.CreateNetwork', net_body(OLD))
        ports.subnet_holders = lambda net: {
            OLD: [('192.168.4.0/24', 'bridge ocbrx has 192.168.4.1/24')]}
        deleted = []
        ports.network_deleted = deleted.append
        if outcome == 'removed':
            assert call(app, 'NetworkDriver.CreateNetwork', net_body()) == {}
            assert deleted == [OLD]
            with pytest.raises(exception.NetworkNotFound):
                backend.get_network(OLD)
            backend.get_network(NID)
            return
        res = call(app, 'NetworkDriver.CreateNetwork', net_body(),
                   status=409)
        assert outcome in res['Err'] and '192.168.4.0/24' in res['Err']
        assert deleted == []
        with pytest.raises(exception.NetworkNotFound):
            backend.get_network(NID)
        if in_backend:
            backend.get_network(OLD)
    finally:
        backend.stop()


def test_allow_on_the_mock_backend(env):
    """-o opencontrail.allow: full IDs need no Docker; each network learns
    of the other, in memory and from the backend; a network the backend
    does not have, the network itself or a name without Docker: 400,
    nothing made."""
    app, backend, _ports = env
    web, db, cache = '2' * 64, '3' * 64, '4' * 64
    call(app, 'NetworkDriver.CreateNetwork', net_body(web))
    call(app, 'NetworkDriver.CreateNetwork', net_body(
        db, {'opencontrail.allow': web}))
    assert backend.get_network(web).allowed == [db]
    assert backend.get_network(db).allowed == [web]
    before = counts(backend)
    gone = '6' * 64
    for value, word in (('%s,%s' % (web, gone), 'network %s is not a '
                         'network of this driver' % gone),
                        ('web', 'Docker cannot be asked')):
        reply = call(app, 'NetworkDriver.CreateNetwork', net_body(
            cache, {'opencontrail.allow': value}), status=400)
        assert 'opencontrail.allow' in reply['Err'] and word in reply['Err']
    reply = call(app, 'NetworkDriver.CreateNetwork', net_body(
        cache, {'opencontrail.allow': cache}), status=400)
    assert 'talks to itself' in reply['Err']
    assert counts(backend) == before


def test_a_network_learns_of_one_that_allows_it(conf):
    """The driver's copy of a network (what its bridge is made from) learns
    of a network made later that allows it, with no backend read."""
    backend = mock.MockBackend(conf)
    driver = network.NetworkDriver(conf, backend, RecordingPorts(conf))
    web, db = '2' * 64, '3' * 64
    try:
        driver.create_network(net_body(web))
        known = driver._networks.get(web)
        driver.create_network(net_body(db, {'opencontrail.allow': web}))
        assert driver._networks.get(web) is known and known.allowed == [db]
    finally:
        backend.stop()
