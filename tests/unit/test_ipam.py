"""The IpamDriver calls on the embedded default (mock backend)."""

import json

import pytest
import webtest

from opencontrail_net.backends import mock
from opencontrail_net import ipam
from opencontrail_net import network
from opencontrail_net import server
from tests.unit import test_api

GW = {'RequestAddressType': 'com.docker.network.gateway'}


@pytest.fixture
def app(conf):
    backend = mock.MockBackend(conf)
    calls = dict(network.NetworkDriver(conf, backend,
                                       test_api.RecordingPorts(conf)).calls(),
                 **ipam.IpamDriver(conf, backend).calls())
    yield webtest.TestApp(server.make_app(calls, 1 << 20))
    backend.stop()


def call(app, name, body=None, status=200):
    res = app.post('/' + name, params=json.dumps(body or {}).encode(),
                   status=status, content_type='')
    if status != 200:
        assert res.json['Err'] == res.json['Error']
    return res.json


def pool(app, cidr='', sub='', v6=False, options=None, status=200):
    return call(app, 'IpamDriver.RequestPool', {
        'AddressSpace': ipam.LOCAL_SPACE, 'Pool': cidr, 'SubPool': sub,
        'Options': options or {}, 'V6': v6}, status)


def address(app, pool_id, addr='', options=None, status=200):
    reply = call(app, 'IpamDriver.RequestAddress', {
        'PoolID': pool_id, 'Address': addr, 'Options': options}, status)
    return reply.get('Address') if status == 200 else reply['Err']


def test_capabilities_and_spaces(app):
    assert call(app, 'IpamDriver.GetCapabilities') == {
        'RequiresMACAddress': False, 'RequiresRequestReplay': False}
    assert call(app, 'IpamDriver.GetDefaultAddressSpaces') == {
        'LocalDefaultAddressSpace': 'OpenContrailLocal',
        'GlobalDefaultAddressSpace': 'OpenContrailGlobal'}


def test_an_empty_body_only_where_docker_sends_one(app):
    for name in ('IpamDriver.GetCapabilities',
                 'IpamDriver.GetDefaultAddressSpaces'):
        assert 'Err' not in app.post('/' + name, params=b'',
                                     content_type='').json
    res = app.post('/IpamDriver.RequestAddress', params=b'',
                   content_type='', status=400).json
    assert res['Err'].startswith('IpamDriver.RequestAddress came with an '
                                 'empty body')
    assert 'run the command again' in res['Err']


def test_range_gateway_aux_and_ip(app):
    pid = pool(app, '10.20.0.0/24', '10.20.0.128/25')['PoolID']
    assert address(app, pid, '10.20.0.1', GW) == '10.20.0.1/24'
    assert address(app, pid, '10.20.0.5') == '10.20.0.5/24'
    got = [address(app, pid) for _ in range(3)]
    assert got == ['10.20.0.128/24', '10.20.0.129/24', '10.20.0.130/24']
    assert address(app, pid, '10.20.0.200') == '10.20.0.200/24'
    err = address(app, pid, '10.20.0.200', status=409)
    assert '10.20.0.200' in err and '10.20.0.0/24' in err
    call(app, 'IpamDriver.ReleaseAddress', {'PoolID': pid,
                                            'Address': '10.20.0.129'})
    # Released twice, or never taken: not an error.
    call(app, 'IpamDriver.ReleaseAddress', {'PoolID': pid,
                                            'Address': '10.20.0.129'})
    call(app, 'IpamDriver.ReleasePool', {'PoolID': pid})


def test_exhaustion_names_the_pool(app):
    pid = pool(app, '10.21.0.0/29')['PoolID']
    address(app, pid, '', GW)
    assert len({address(app, pid) for _ in range(5)}) == 5
    err = address(app, pid, status=409)
    assert '10.21.0.0/29' in err


def test_default_pools_move_on(app):
    first = pool(app)['Pool']
    second = pool(app)['Pool']
    assert first == '10.128.0.0/24' and second == '10.128.1.0/24'
    v6 = pool(app, v6=True)
    assert v6['Pool'] == 'fd00:ac10::/64'
    assert address(app, v6['PoolID']) == 'fd00:ac10::1/64'


@pytest.mark.parametrize('body,word', [
    ({'Pool': 'nope'}, 'nope'),
    ({'Pool': '', 'SubPool': '10.0.0.0/24'}, 'needs a --subnet'),
    ({'Pool': '10.0.0.0/24', 'SubPool': '10.0.1.0/25'}, 'outside'),
    ({'Pool': '2002::/64'}, 'IPv4'),
    ({'Pool': '10.0.0.0/24', 'V6': True}, 'IPv6'),
    ({'Pool': '10.0.0.0/24', 'Options': {'opencontrail.colour': 'x'}},
     'opencontrail.colour'),
    ({'Pool': '10.0.0.0/24', 'Options': {'tenant': 'a:b:c'}}, 'a:b:c'),
    ({'Pool': '10.0.0.0/24', 'Options': {'opencontrail.network': 'x'}},
     'opencontrail.network'),
])
def test_bad_pools(app, body, word):
    body.setdefault('AddressSpace', ipam.LOCAL_SPACE)
    reply = call(app, 'IpamDriver.RequestPool', body, status='4*')
    assert word in reply['Err']


@pytest.mark.parametrize('body,word', [
    ({'PoolID': 'LocalDefault/10.0.0.0/24'}, 'PoolID'),
    ({'PoolID': 'ocn1;bad'}, 'malformed'),
    ({'PoolID': 'ocn1;10.0.0.0/24;;4;default-domain:x;;;',
      'Address': '10.9.9.9'}, 'outside'),
    ({'PoolID': 'ocn1;10.0.0.0/24;;4;default-domain:x;;;',
      'Address': 'nope'}, 'nope'),
])
def test_bad_addresses(app, body, word):
    reply = call(app, 'IpamDriver.RequestAddress', body, status=400)
    assert word in reply['Err']


def test_pool_of_a_network_is_not_given_twice(app):
    pid = pool(app, '10.22.0.0/24')['PoolID']
    gw = address(app, pid, '', GW)
    call(app, 'NetworkDriver.CreateNetwork', {
        'NetworkID': 'a' * 64, 'Options': {},
        'IPv4Data': [{'AddressSpace': ipam.LOCAL_SPACE,
                      'Pool': '10.22.0.0/24', 'Gateway': gw}]})
    err = pool(app, '10.22.0.0/24', status=409)['Err']
    assert 'a' * 64 in err
