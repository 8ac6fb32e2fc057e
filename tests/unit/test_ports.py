"""Published and exposed ports: parsing, the libnetwork calls, host ports."""

import sys

import pytest
import webtest

from opencontrail_net.backends import mock
from opencontrail_net import exception
from opencontrail_net.firewall import binding
from opencontrail_net.firewall import comments
from opencontrail_net import model
from opencontrail_net import netopts
from opencontrail_net import network
from opencontrail_net import portopts
from opencontrail_net.port_drivers import bridge
from opencontrail_net import server
from tests.unit import test_api

NID, EID = test_api.NID, test_api.EID
# protocol.md, verbatim.
OPTIONS = {
    'com.docker.network.endpoint.exposedports': [
        {'Proto': 6, 'Port': 9000}, {'Proto': 17, 'Port': 8081},
        {'Proto': 6, 'Port': 8080}],
    'com.docker.network.portmap': [
        {'Proto': 17, 'IP': '', 'Port': 8081, 'HostIP': '127.0.0.1',
         'HostPort': 18081, 'HostPortEnd': 18081},
        {'Proto': 6, 'IP': '', 'Port': 8080, 'HostIP': '',
         'HostPort': 18080, 'HostPortEnd': 18080}]}


def test_parse_ports():
    exposed, bindings = portopts.parse_ports({'Options': OPTIONS})
    assert exposed == [model.ExposedPort('tcp', 9000),
                       model.ExposedPort('udp', 8081),
                       model.ExposedPort('tcp', 8080)]
    assert bindings == [
        model.PortBinding('udp', 8081, '127.0.0.1', 18081, 18081),
        model.PortBinding('tcp', 8080, '', 18080, 18080)]
    assert portopts.parse_ports({'Options': {
        'com.docker.network.endpoint.exposedports': [],
        'com.docker.network.portmap': []}}) == ([], [])


@pytest.mark.parametrize('entry, message', [
    ({'Proto': 1, 'Port': 80}, 'Proto 1'),
    ({'Proto': 6, 'Port': 0}, 'port number'),
    ({'Proto': 6, 'Port': 80, 'HostPort': 70000}, 'port number'),
    ({'Proto': 6, 'Port': 80, 'HostPort': 90, 'HostPortEnd': 89},
     'range 90-89 is empty'),
    ({'Proto': 6, 'Port': 80, 'HostIP': 'nowhere'}, 'not an address'),
])
def test_parse_bad_portmap(entry, message):
    with pytest.raises(exception.InvalidRequest) as err:
        portopts.parse_ports({'Options': {
            'com.docker.network.portmap': [entry]}})
    assert message in str(err.value)


@pytest.mark.parametrize('value, expected', [
    ('false', False), ('true', True), ('0', False)])
def test_masquerade_option(value, expected):
    net = netopts.parse_network(test_api.net_body(generic={
        'com.docker.network.bridge.enable_ip_masquerade': value}))
    assert net.masquerade is expected


def M(proto, host_port, port, host_ip=''):
    """A published port, host side first (as a firewall rule reads)."""
    return model.PortBinding(proto, port, host_ip).at(host_port)


@pytest.mark.parametrize('a, b, clash', [
    (M('tcp', 80, 8080), M('tcp', 80, 9090), True),
    (M('tcp', 80, 8080), M('udp', 80, 8080), False),
    (M('tcp', 80, 8080, '127.0.0.1'), M('tcp', 80, 8080), True),
    (M('tcp', 80, 8080, '127.0.0.1'), M('tcp', 80, 8080, '10.0.0.1'), False),
    (M('tcp', 80, 8080, '::1'), M('tcp', 80, 8080, '0:0::1'), True),
])
def test_host_port_clashes(a, b, clash):
    assert a.clashes(b) is clash and b.clashes(a) is clash


@pytest.mark.parametrize('binding, taken, chosen', [
    (model.PortBinding('tcp', 80, '', 18080, 18082), [M('tcp', 18080, 1)],
     18081),
    (model.PortBinding('tcp', 80, '', 0, 0), [], bridge.EPHEMERAL[0]),
    (model.PortBinding('udp', 80, '', 18080, 18080), [M('tcp', 18080, 1)],
     18080),
])
def test_choose_host_port(binding, taken, chosen):
    assert bridge.BridgeDriver._choose(binding, taken).host_port == chosen


def test_taken_host_port_is_named():
    with pytest.raises(exception.HostPortInUse) as err:
        bridge.BridgeDriver._choose(
            model.PortBinding('tcp', 80, '', 18080, 18080),
            [M('tcp', 18080, 8080)])
    assert str(err.value) == ('host port 18080/tcp is already published '
                              'on this host')
    with pytest.raises(exception.Conflict) as err:
        bridge.BridgeDriver._choose(
            model.PortBinding('tcp', 80, '', 18080, 18081),
            [M('tcp', 18080, 1), M('tcp', 18081, 1)])
    assert 'no free host port in 18080-18081/tcp' in str(err.value)


def test_rule_comments_parse_back():
    mapping = M('udp', 18081, 8081, '127.0.0.1')
    comment = comments.endpoint_comment(EID, NID, mapping)
    assert len(comment) <= 128
    rule = {'comment': comment, 'expr': [{'match': {
        'op': '==', 'left': {'payload': {'protocol': 'ip',
                                         'field': 'daddr'}},
        'right': '127.0.0.1'}}]}
    assert comments.published_port(rule) == (EID, mapping)
    assert comments.endpoint_of(rule, NID[:12]) == EID
    assert comments.endpoint_of(rule, '2' * 12) is None
    assert comments.published_port(
        {'comment': 'published ports'}) is None


class PublishingPorts(test_api.RecordingPorts):
    def __init__(self, conf):
        super().__init__(conf)
        self.published_now = {}

    def publish(self, net, ep, bindings):
        found = [M(b.proto, b.host_port, b.port, b.host_ip)
                 for b in bindings]
        self.published_now[ep.id] = found
        return found

    def unpublish(self, network_id, endpoint_id):
        self.published_now.pop(endpoint_id, None)


class CountingBackend(mock.MockBackend):
    gets = 0

    def get_endpoint(self, net, endpoint_id):
        self.gets += 1
        return super().get_endpoint(net, endpoint_id)


@pytest.fixture
def env(conf):
    backend = CountingBackend(conf)
    ports = PublishingPorts(conf)
    driver = network.NetworkDriver(conf, backend, ports)
    app = webtest.TestApp(server.make_app(driver.calls(), 4096))
    yield app, backend, ports
    backend.stop()


def test_program_and_revoke(env):
    app, backend, ports = env
    call = test_api.call
    call(app, 'NetworkDriver.CreateNetwork', test_api.net_body())
    call(app, 'NetworkDriver.CreateEndpoint', test_api.ep_body())
    ids = {'NetworkID': NID, 'EndpointID': EID}
    # No ports: no backend request, nothing published.
    call(app, 'NetworkDriver.ProgramExternalConnectivity', dict(
        ids, Options={'com.docker.network.endpoint.exposedports': [],
                      'com.docker.network.portmap': []}))
    assert backend.gets == 0 and ports.published_now == {}
    assert call(app, 'NetworkDriver.ProgramExternalConnectivity',
                dict(ids, Options=OPTIONS)) == {}
    assert len(ports.published_now[EID]) == 2
    value = call(app, 'NetworkDriver.EndpointOperInfo', ids)['Value']
    assert value['com.docker.network.portmap'] == [
        {'Proto': 17, 'IP': '192.168.4.2', 'Port': 8081,
         'HostIP': '127.0.0.1', 'HostPort': 18081, 'HostPortEnd': 18081},
        {'Proto': 6, 'IP': '192.168.4.2', 'Port': 8080,
         'HostIP': '0.0.0.0', 'HostPort': 18080, 'HostPortEnd': 18080}]
    call(app, 'NetworkDriver.RevokeExternalConnectivity', ids)
    assert ports.published_now == {}
    value = call(app, 'NetworkDriver.EndpointOperInfo', ids)['Value']
    assert 'com.docker.network.portmap' not in value


def test_no_one_publishes(conf):
    backend = mock.MockBackend(conf)
    driver = network.NetworkDriver(conf, backend, test_api.RecordingPorts(
        conf))
    app = webtest.TestApp(server.make_app(driver.calls(), 4096))
    try:
        test_api.call(app, 'NetworkDriver.CreateNetwork',
                      test_api.net_body())
        test_api.call(app, 'NetworkDriver.CreateEndpoint',
                      test_api.ep_body())
        reply = test_api.call(
            app, 'NetworkDriver.ProgramExternalConnectivity',
            {'NetworkID': NID, 'EndpointID': EID, 'Options': OPTIONS},
            status=400)
        assert 'cannot publish ports' in reply['Err']
    finally:
        backend.stop()


def test_without_nftables_the_bridge_driver_still_starts(conf, monkeypatch):
    """A host (or a managed plugin) without the nftables module: containers
    connect, and -p is refused with the reason."""
    def missing():
        raise exception.PortError(reason='the nftables Python module is '
                                  'missing')
    monkeypatch.setattr(binding, 'context', missing)
    monkeypatch.setattr(bridge.veth.VethDriver, 'start', lambda self: None)
    conf.register_opts(bridge.BridgeDriver.CONFIG_OPTS,
                       group=bridge.BridgeDriver.CONFIG_GROUP)
    ports = bridge.BridgeDriver(conf)
    ports.start()
    assert ports.firewall is None
    net = model.Network(id=NID)
    ep = model.Endpoint(id=EID, network_id=NID)
    with pytest.raises(exception.CannotPublish) as err:
        ports.publish(net, ep, [model.PortBinding('tcp', 80, '', 18080,
                                                  18080)])
    assert 'nftables Python module is missing' in str(err.value)


def not_importable(monkeypatch):
    """As in a virtualenv without the binding (undone after the test)."""
    monkeypatch.setitem(sys.modules, 'nftables', None)
    monkeypatch.delitem(sys.modules, 'nftables.nftables', raising=False)


def test_nftables_binding_found_outside_the_virtualenv(
        monkeypatch, tmp_path):
    """The README's plain virtualenv cannot import Debian's binding: the
    driver loads it from where the system keeps it."""
    not_importable(monkeypatch)
    pkg = tmp_path / 'nftables'
    pkg.mkdir()
    (pkg / '__init__.py').write_text('from .nftables import *\n')
    (pkg / 'nftables.py').write_text('class Nftables:\n    pass\n')
    module = binding.load_binding([str(tmp_path / 'none'), str(pkg)])
    assert module.__file__ == str(pkg / '__init__.py')
    assert module.Nftables
    not_importable(monkeypatch)
    with pytest.raises(exception.PortError) as err:
        binding.load_binding([str(tmp_path / 'none')])
    assert "python3-nftables" in str(err.value)
    assert str(tmp_path / 'none') in str(err.value)


def test_nftables_binding_of_the_system(monkeypatch):
    """Debian's python3-nftables (tests/run-all.sh installs it and leaves
    the virtualenv without it), loaded by path and working."""
    not_importable(monkeypatch)
    module = binding.load_binding()
    assert module.__file__.startswith(binding.SYSTEM_BINDINGS[0])
    nft = module.Nftables()
    nft.set_json_output(True)
    rc, out, _err = nft.cmd('describe tcp dport')
    assert rc == 0
