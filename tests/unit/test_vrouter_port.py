"""The vrouter port driver with netlink and the agent client mocked."""

import logging
from unittest import mock

import pytest

from opencontrail_net import exception
from opencontrail_net import ids
from opencontrail_net import model
from opencontrail_net import plugin
from opencontrail_net.port_drivers import base
from opencontrail_net.port_drivers import vrouter
from opencontrail_net import vrouter_agent
from tests import conftest

NID = 'a' * 64
EID = 'b' * 64
VMI = ids.endpoint_uuid(EID)
HOST_END = 'vethbbbbbbbbp0'
PEER = 'vethbbbbbbbbc0'
MAC = '02:11:22:33:44:55'
UNREACHABLE = vrouter_agent.AgentUnreachable('connection refused',
                                             method='POST', path='/port')
REFUSED = vrouter_agent.AgentError('Invalid VN uuid', status=500,
                                   method='POST', path='/port')


class Links:
    """Interfaces by name, with their alias, as linux_net reports them."""

    def __init__(self):
        self.aliases = {}
        self.indexes = {}

    def link_alias(self, name):
        return name in self.aliases, self.aliases.get(name)

    def if_index(self, name):
        return self.indexes.get(name)

    def link_index(self, name):
        if name not in self.aliases:
            return None, None
        return (self.indexes.setdefault(name, len(self.indexes) + 100),
                self.aliases[name])

    def create_veth(self, host, peer, mac, mtu, alias, master=None,
                    group=0):
        if host in self.aliases or peer in self.aliases:
            return False
        self.aliases[host] = alias
        self.aliases[peer] = None
        self.indexes[host] = len(self.indexes) + 100
        self.mtu = mtu
        return True

    def delete_link(self, name):
        gone = self.aliases.pop(name, None) is not None
        self.aliases.pop(name[:-2] + 'c0', None)
        self.indexes.pop(name, None)
        return gone

    def delete_index(self, index):
        for name, found in list(self.indexes.items()):
            if found == index:
                return self.delete_link(name)
        return False


@pytest.fixture
def links():
    fake = Links()
    with mock.patch.multiple(
            'opencontrail_net.linux_net', link_alias=fake.link_alias,
            if_index=fake.if_index, link_index=fake.link_index,
            create_veth=fake.create_veth, delete_link=fake.delete_link,
            delete_index=fake.delete_index):
        yield fake


def make_driver(tmp_path, **overrides):
    conf = conftest.make_conf(tmp_path)
    conf.register_opts(vrouter.VrouterDriver.CONFIG_OPTS, group='vrouter')
    conf.set_override('ports_dir', str(tmp_path / 'ports'), group='vrouter')
    for key, value in overrides.items():
        conf.set_override(key, value, group='vrouter')
    driver = vrouter.VrouterDriver(conf)
    driver.client = mock.Mock(spec=vrouter_agent.AgentClient,
                              url='http://agent', ports_dir='/ports')
    driver.client.wait_ready.return_value = True
    return driver


@pytest.fixture
def driver(tmp_path):
    return make_driver(tmp_path)


def network(mtu=None, internal=False):
    return model.Network(
        id=NID, mtu=mtu, internal=internal,
        subnets=[model.Subnet('10.0.0.0/24', '10.0.0.1'),
                 model.Subnet('fd00::/64', 'fd00::1')],
        uuid=ids.network_uuid(NID), project_uuid=ids.project_uuid(['d', 'p']))


def endpoint(**changes):
    ep = model.Endpoint(id=EID, network_id=NID, mac=MAC, ipv4='10.0.0.3/24',
                        ipv6='fd00::3/64', uuid=VMI, vm_uuid=ids.vm_uuid(
                            'h', 'sbx'), vm_name='sbx')
    for key, value in changes.items():
        setattr(ep, key, value)
    return ep


def expected_port():
    return {
        'id': VMI, 'instance-id': ids.vm_uuid('h', 'sbx'),
        'vn-id': ids.network_uuid(NID),
        'vm-project-id': ids.project_uuid(['d', 'p']),
        'display-name': 'sbx', 'ip-address': '10.0.0.3',
        'ip6-address': 'fd00::3', 'system-name': HOST_END,
        'mac-address': MAC, 'type': 0, 'rx-vlan-id': -1, 'tx-vlan-id': -1,
        'vhostuser-mode': 0}


def test_loaded_by_name_with_its_options(conf):
    cls = plugin.load(plugin.PORT_DRIVERS, 'vrouter', base.PortDriver, conf,
                      'port driver')
    assert cls is vrouter.VrouterDriver
    assert (conf.vrouter.agent_url, conf.vrouter.ports_dir,
            conf.vrouter.port_ready_timeout, conf.vrouter.mtu) == (
        'http://127.0.0.1:9091', '/var/lib/contrail/ports', 5.0, None)
    assert all(opt.help for opt in cls.CONFIG_OPTS)


@pytest.mark.parametrize('vrouter_mtu, network_mtu, expected', [
    (None, None, 1500),
    (None, 1400, 1400),
    (1450, 1400, 1450),
    (9000, None, 9000),
])
def test_mtu(tmp_path, vrouter_mtu, network_mtu, expected):
    driver = make_driver(tmp_path, mtu=vrouter_mtu)
    assert driver.mtu(network(mtu=network_mtu)) == expected


def test_plug_registers_then_waits(driver, links):
    info = driver.plug(network(), endpoint(), '/run/netns/sbx')
    assert info == model.JoinInfo(src_name=PEER, gateway='10.0.0.1',
                                  gateway_ipv6='fd00::1',
                                  disable_gateway_service=True,
                                  host_if=HOST_END)
    assert driver.client.mock_calls == [
        mock.call.delete_port(VMI), mock.call.add_port(expected_port()),
        mock.call.wait_ready(VMI, 5.0)]
    assert links.aliases == {HOST_END: EID, PEER: None}


def test_plug_internal_network_has_no_gateway(driver, links):
    info = driver.plug(network(internal=True), endpoint(), 'k')
    assert (info.gateway, info.gateway_ipv6) == (None, None)


@pytest.mark.parametrize('failing', ['delete_port', 'add_port'])
def test_plug_agent_unreachable_writes_file(driver, links, failing, caplog):
    getattr(driver.client, failing).side_effect = UNREACHABLE
    info = driver.plug(network(), endpoint(), 'k')
    assert info.src_name == PEER
    driver.client.write_port_file.assert_called_once_with(expected_port())
    driver.client.wait_ready.assert_not_called()
    assert HOST_END in links.aliases
    assert 'http://agent is unreachable' in caplog.text


@pytest.mark.parametrize('client_setup, error', [
    (lambda c: setattr(c.add_port, 'side_effect', REFUSED),
     'Invalid VN uuid'),
    (lambda c: setattr(c.delete_port, 'side_effect', REFUSED),
     'Invalid VN uuid'),
    (lambda c: (setattr(c.add_port, 'side_effect', UNREACHABLE),
                setattr(c.write_port_file, 'side_effect',
                        PermissionError('denied'))),
     'cannot be written: denied'),
])
def test_plug_failure_leaves_no_veth(driver, links, client_setup, error):
    client_setup(driver.client)
    with pytest.raises(exception.OpenContrailNetError, match=error):
        driver.plug(network(), endpoint(), 'k')
    assert links.aliases == {}


@pytest.mark.parametrize('changes, error', [
    ({'uuid': None}, 'no interface uuid'),
    ({'uuid': 'not-a-uuid'}, 'no interface uuid'),
    ({'vm_uuid': None}, 'instance-id'),
    ({'ipv4': 'fd00::9'}, 'ip-address'),
])
def test_plug_refuses_incomplete_records(driver, links, changes, error):
    with pytest.raises(exception.PortError, match=error):
        driver.plug(network(), endpoint(**changes), 'k')
    assert links.aliases == {}
    driver.client.add_port.assert_not_called()


def test_plug_accepts_an_uppercase_vmi_uuid(driver, links):
    driver.plug(network(), endpoint(uuid=VMI.upper()), 'k')
    assert driver.client.add_port.call_args[0][0]['id'] == VMI


@pytest.mark.parametrize('timeout, ready, calls_wait, warns', [
    (5.0, True, True, False),
    (0.5, False, True, True),
    (0.0, None, False, False),
])
def test_plug_readiness(tmp_path, links, caplog, timeout, ready, calls_wait,
                        warns):
    driver = make_driver(tmp_path, port_ready_timeout=timeout)
    driver.client.wait_ready.return_value = ready
    with caplog.at_level(logging.WARNING):
        driver.plug(network(), endpoint(), 'k')
    assert driver.client.wait_ready.called is calls_wait
    assert ('is not ready at the vrouter agent http://agent'
            in caplog.text) is warns


@pytest.mark.parametrize('delete_error, level', [
    (None, None),
    (UNREACHABLE, 'WARNING'),
    (REFUSED, 'ERROR'),
])
def test_unplug_always_removes_file_and_veth(driver, links, caplog,
                                             delete_error, level):
    driver.plug(network(), endpoint(), 'k')
    driver.client.reset_mock()
    driver.client.delete_port.side_effect = delete_error
    with caplog.at_level(logging.WARNING):
        driver.unplug(NID, EID)
    assert driver.client.mock_calls == [mock.call.delete_port(VMI),
                                        mock.call.remove_port_file(VMI)]
    assert links.aliases == {}
    assert [r.levelname for r in caplog.records] == ([level] if level
                                                     else [])


def test_unplug_of_nothing_is_fine(driver, links):
    driver.unplug(NID, EID)
    driver.unplug(NID, EID)
    assert driver.client.delete_port.call_count == 2


def test_unplug_survives_a_port_file_it_cannot_remove(driver, links, caplog):
    driver.plug(network(), endpoint(), 'k')
    driver.client.remove_port_file.side_effect = PermissionError('denied')
    driver.unplug(NID, EID)
    assert links.aliases == {}
    assert 'not removed: denied' in caplog.text


def other_endpoint(n):
    eid = ('%d' % n) * 64
    return endpoint(id=eid, uuid=ids.endpoint_uuid(eid))


def test_resync_posts_only_ports_whose_interface_exists(driver, links,
                                                        caplog):
    kept, gone = other_endpoint(1), other_endpoint(2)
    links.aliases['veth11111111p0'] = kept.id
    with caplog.at_level(logging.INFO):
        driver.resync([(network(), kept), (network(), gone)])
    [call] = driver.client.add_port.call_args_list
    assert call[0][0]['id'] == kept.uuid
    assert call[0][0]['system-name'] == 'veth11111111p0'
    driver.client.delete_port.assert_not_called()
    assert 'Not resyncing endpoint %s' % gone.id in caplog.text


def test_resync_with_agent_down_files_every_port_after_one_try(driver,
                                                               links):
    eps = [other_endpoint(n) for n in (1, 2, 3)]
    for ep in eps:
        links.aliases['veth%sp0' % ep.id[:8]] = ep.id
    driver.client.add_port.side_effect = UNREACHABLE
    driver.resync([(network(), ep) for ep in eps])
    assert driver.client.add_port.call_count == 1
    written = [c[0][0]['id'] for c in
               driver.client.write_port_file.call_args_list]
    assert written == [ep.uuid for ep in eps]


def test_resync_goes_on_after_a_refusal(driver, links, caplog):
    eps = [other_endpoint(n) for n in (1, 2)]
    for ep in eps:
        links.aliases['veth%sp0' % ep.id[:8]] = ep.id
    driver.client.add_port.side_effect = [REFUSED, None]
    driver.resync([(network(), ep) for ep in eps])
    assert driver.client.add_port.call_count == 2
    assert 'Resync of endpoint %s failed' % eps[0].id in caplog.text


def test_resync_goes_on_after_a_netlink_error(driver, links, caplog):
    eps = [other_endpoint(n) for n in (1, 2)]
    links.aliases['veth22222222p0'] = eps[1].id
    real = links.link_index

    def link_index(name):
        if name.startswith('veth1'):
            raise exception.PortError(reason='netlink says no')
        return real(name)

    with mock.patch('opencontrail_net.linux_net.link_index', link_index):
        driver.resync([(network(), ep) for ep in eps])
    [call] = driver.client.add_port.call_args_list
    assert call[0][0]['id'] == eps[1].uuid
    assert 'netlink says no' in caplog.text


def test_stop_leaves_the_agent_alone(driver):
    driver.stop()
    assert driver.client.mock_calls == []
