"""Validation of network options and request fields."""

import pytest

from opencontrail_net import exception
from opencontrail_net import netopts

NID = 'a' * 64


def create(generic=None, v4=None, v6=None, **options):
    options['com.docker.network.generic'] = generic or {}
    return {'NetworkID': NID, 'Options': options,
            'IPv4Data': v4 if v4 is not None else [
                {'Pool': '192.168.4.0/24', 'Gateway': '192.168.4.1/24'}],
            'IPv6Data': v6 or []}


RULES = (64512, False)     # Contrail's defaults: global ASN, 2-byte ASNs


@pytest.mark.parametrize('value,expected', [
    ('64512:100', ['target:64512:100']),
    ('64512:100,64512:200', ['target:64512:100', 'target:64512:200']),
    ('target:64512:100, 10.1.2.3:7', ['target:64512:100',
                                      'target:10.1.2.3:7']),
    ('64512:100,64512:100', ['target:64512:100']),
    ('65000:8000000', ['target:65000:8000000']),
    ('64512:7999999', ['target:64512:7999999']),
    ('64512:16777217', ['target:64512:16777217']),
    ('64513:4294967295', ['target:64513:4294967295']),
    ('1.2.3.4:5', ['target:1.2.3.4:5']),
])
def test_route_targets_valid(value, expected):
    assert netopts.route_targets('rt', value, RULES) == expected


@pytest.mark.parametrize('value,word', [
    ('banana', 'banana'),
    ('64512', '64512'),
    ('64512:x', '64512:x'),
    ('0:5', '0:5'),
    ('70000:5', 'enable_4byte_as'),
    ('10.1.2.3:70000', '10.1.2.3:70000'),
    ('64512:8000000', 'reserved'),
    ('64512:8000001', '64512:8000001'),
    ('64512:16777216', 'reserved'),
    ('1.2.3:4', '1.2.3:4'),
    ('64512:100,banana', 'banana'),
])
def test_route_targets_invalid(value, word):
    with pytest.raises(exception.InvalidOption) as err:
        netopts.route_targets('rt', value, RULES)
    assert word in str(err.value)


def test_four_byte_asns_when_the_cluster_allows_them():
    assert netopts.route_targets('rt', '70000:5', (64512, True)) == [
        'target:70000:5']
    with pytest.raises(exception.InvalidOption) as err:
        netopts.route_targets('rt', '70000:70000', (64512, True))
    assert '70000:70000' in str(err.value)


def test_rules_are_asked_only_for_asn_targets():
    asked = []

    def rules():
        asked.append(1)
        return RULES
    assert netopts.route_targets('rt', '1.2.3.4:5', rules)
    assert asked == []
    assert netopts.route_targets('rt', '64512:5', rules)
    assert asked == [1]


def test_parse_network_options():
    net = netopts.parse_network(create(
        {'rt': '64512:100', 'opencontrail.rt.import': '64512:1',
         'opencontrail.rt.export': '64512:2', 'name': 'blue',
         'tenant': 'demo', 'mtu': '1400', 'opencontrail.ipam': 'ipam1',
         'com.docker.network.bridge.name': 'x'},
        v6=[{'Pool': '2002:1::/64', 'Gateway': '2002:1::1/64'}],
        **{'com.docker.network.enable_ipv6': True}))
    assert net.id == NID
    assert [(s.cidr, s.gateway) for s in net.subnets] == [
        ('192.168.4.0/24', '192.168.4.1'), ('2002:1::/64', '2002:1::1')]
    assert net.route_targets == ['target:64512:100']
    assert net.import_targets == ['target:64512:1']
    assert net.export_targets == ['target:64512:2']
    assert (net.name, net.project, net.mtu) == (
        'blue', ['demo'], 1400)
    assert net.ipam == 'ipam1' and net.security_groups is None
    assert net.enable_ipv6 and net.gateway(6) == '2002:1::1'
    net = netopts.parse_network(create(
        {'opencontrail.security_groups': 'web, d:p:db', 'tenant': 'd:p'}))
    assert net.security_groups == ['web', 'd:p:db']
    assert net.project == ['d', 'p']
    assert net.floating_ip_pool is None
    net = netopts.parse_network(create(
        {'opencontrail.floating_ip_pool': 'd:p:public:pool'}))
    assert net.floating_ip_pool == 'd:p:public:pool'
    assert net.policies is None
    net = netopts.parse_network(create(
        {'opencontrail.policies': 'web, p:db,d:p:any'}))
    assert net.policies == ['web', 'p:db', 'd:p:any']
    assert net.router is None
    net = netopts.parse_network(create({'opencontrail.router': 'p:gw'}))
    assert net.router == 'p:gw'
    assert net.allow is None
    net = netopts.parse_network(create({'opencontrail.allow': 'web, 3f2a'}))
    assert net.allow == ['web', '3f2a']


@pytest.mark.parametrize('generic,word', [
    ({'rt': 'banana'}, 'banana'),
    ({'mtu': 'big'}, 'big'),
    ({'mtu': '20'}, '20'),
    ({'tenant': 'a:b:c'}, 'a:b:c'),
    ({'name': 'has/slash'}, 'has/slash'),
    ({'opencontrail.network': 'nope'}, 'nope'),
    ({'opencontrail.ipam': 'a:b:c:d'}, 'opencontrail.ipam'),
    ({'opencontrail.ipam': ''}, 'opencontrail.ipam'),
    ({'opencontrail.security_groups': ','},
     'opencontrail.security_groups'),
    ({'opencontrail.security_groups': 'a/b'}, 'a/b'),
    ({'opencontrail.policies': ' , '}, 'opencontrail.policies'),
    ({'opencontrail.policies': 'a:b:c:d'}, 'a:b:c:d'),
    ({'opencontrail.policies': 'web,web'}, 'named twice'),
    ({'opencontrail.router': 'a:b:c:d'}, 'a:b:c:d'),
    ({'opencontrail.router': ''}, 'opencontrail.router'),
    ({'opencontrail.allow': ','}, 'opencontrail.allow'),
    ({'opencontrail.allow': 'web,web'}, 'named twice'),
    ({'opencontrail.allow': 'p:web'}, "'p:web' is not the name or ID"),
    ({'opencontrail.allow': '-web'}, "'-web' is not the name or ID"),
    ({'opencontrail.floating_ip_pool': 'public:pool'},
     'DOMAIN:PROJECT:NETWORK:POOL'),
    ({'opencontrail.floating_ip_pool': 'a:b:c:d:e'}, 'a:b:c:d:e'),
    ({'opencontrail.floating_ip_pool': 'a::c:d'}, 'a::c:d'),
    ({'opencontrail.colour': 'red'}, 'opencontrail.colour'),
    # Misspelt: refused, naming the key meant (it used to be ignored).
    ({'tennant': 'x'}, 'tennant'),
    ({'tennant': 'x'}, 'did you mean tenant?'),
    ({'opencontrail.rt.imprt': '64512:1'}, 'opencontrail.rt.import?'),
    ({'floating_ip_pool': 'a:b:c:d'}, 'opencontrail.floating_ip_pool?'),
    ({'unrelated': 'x'}, 'unknown option; known: '),
    ({'rt': '64512:1', 'opencontrail.rt': '64512:2'}, 'conflicts'),
])
def test_parse_network_bad_options(generic, word):
    with pytest.raises(exception.InvalidOption) as err:
        netopts.parse_network(create(generic))
    assert word in str(err.value)


@pytest.mark.parametrize('body,word', [
    ({}, 'NetworkID'),
    ({'NetworkID': 5}, 'NetworkID'),
    ({'NetworkID': 'not-hex!'}, 'not a Docker ID'),
    ({'NetworkID': NID, 'Options': []}, 'Options'),
    ({'NetworkID': NID, 'IPv4Data': {}}, 'IPv4Data'),
    ({'NetworkID': NID, 'IPv4Data': [{'Pool': 'x'}]}, 'IPv4Data'),
    ({'NetworkID': NID, 'IPv4Data': [{'Pool': '2002::/64'}]}, 'IPv6'),
    ({'NetworkID': NID, 'IPv4Data': [{'Pool': 167772160}]}, 'string'),
    ({'NetworkID': NID, 'IPv4Data': [{'Pool': '10.0.0.0/24',
                                      'Gateway': True}]}, 'string'),
    ({'NetworkID': NID, 'IPv4Data': [{'Pool': '10.0.0.0/24',
                                      'AuxAddresses': {'a': 5}}]}, 'string'),
    ({'NetworkID': NID, 'IPv4Data': [{'Pool': '10.0.0.0/24',
                                      'Gateway': False}]}, 'string'),
    ({'NetworkID': NID, 'IPv4Data': [{'Pool': '10.0.0.0/24',
                                      'AuxAddresses': []}]}, 'AuxAddresses'),
    ({'NetworkID': NID, 'IPv4Data': [{'Pool': '10.0.0.0/24',
                                      'Gateway': '10.0.1.1/24'}]},
     'outside'),
])
def test_parse_network_bad_requests(body, word):
    with pytest.raises(exception.InvalidRequest) as err:
        netopts.parse_network(body)
    assert word in str(err.value)


@pytest.mark.parametrize('iface,expected', [
    ({'Address': '10.0.0.2/24'}, ('10.0.0.2/24', None, None)),
    ({'Address': '10.0.0.2/24', 'AddressIPv6': '2002::2/64',
      'MacAddress': '02:AA:bb:cc:dd:ee'},
     ('10.0.0.2/24', '2002::2/64', '02:aa:bb:cc:dd:ee')),
    ({'Address': '', 'MacAddress': ''}, (None, None, None)),
])
def test_parse_interface(iface, expected):
    assert netopts.parse_interface({'Interface': iface}) == expected


@pytest.mark.parametrize('iface', [
    {'Address': 'nope'}, {'Address': '2002::2/64'},
    {'AddressIPv6': '10.0.0.2/24'}, {'MacAddress': 'zz:zz'}, 'string',
    {'Address': 167772162}, {'MacAddress': 5}, {'Address': []},
    {'AddressIPv6': False}, {'MacAddress': {}},
    {'MacAddress': '02:42:ac:11:00:02\n'}])
def test_parse_interface_bad(iface):
    with pytest.raises(exception.InvalidRequest):
        netopts.parse_interface({'Interface': iface})


SWARM_NID = 'x3k9q0w2e8r7t6y5u4i1o2p3a'


@pytest.mark.parametrize('key,value,ok', [
    ('NetworkID', NID, True),
    ('NetworkID', SWARM_NID, True),
    ('NetworkID', '0123456789' * 2 + 'abcde', True),
    ('EndpointID', NID, True),
    ('EndpointID', SWARM_NID, False),
    ('NetworkID', 'zz', False),
    ('NetworkID', 'z' * 40, False),
    ('NetworkID', 'z' * 64, False),
    ('NetworkID', 'A' * 64, False),
    ('NetworkID', 'A' * 25, False),
    ('NetworkID', 'a' * 63, False),
    ('NetworkID', 'a' * 65, False),
    ('NetworkID', 'a' * 24, False),
    ('NetworkID', 'a' * 26, False),
    ('NetworkID', ' ' + 'a' * 63, False),
    ('NetworkID', 'a' * 64 + '\n', False),
    ('EndpointID', 'Q', False),
    ('EndpointID', 'é' * 64, False),
    ('EndpointID', '٣' * 64, False),
])
def test_docker_ids(key, value, ok):
    body = {key: value}
    if ok:
        assert netopts.require_id(body, key) == value
        return
    with pytest.raises(exception.InvalidRequest) as err:
        netopts.require_id(body, key)
    assert key in str(err.value) and 'not a Docker ID' in str(err.value)


@pytest.mark.parametrize('value,word', [
    (None, 'missing'), ('', 'missing'), (5, 'not int'),
    ([NID], 'not list'), ({'id': NID}, 'not dict'), (True, 'not bool')])
def test_docker_id_types(value, word):
    with pytest.raises(exception.InvalidRequest) as err:
        netopts.require_id({'EndpointID': value}, 'EndpointID')
    assert 'EndpointID' in str(err.value) and word in str(err.value)


def test_long_bad_id_is_cut_in_the_message():
    with pytest.raises(exception.InvalidRequest) as err:
        netopts.require_id({'NetworkID': 'z' * 5000}, 'NetworkID')
    assert len(str(err.value)) < 300


@pytest.mark.parametrize('options,expected', [
    (None, None),
    ({}, None),
    ({'com.docker.network.portmap': []}, None),
    ({'opencontrail.security_groups': 'web, p:db'}, ['web', 'p:db']),
])
def test_endpoint_security_groups(options, expected):
    body = {'Options': options} if options is not None else {}
    assert netopts.endpoint_security_groups(body) == expected


@pytest.mark.parametrize('value', [',', 'a/b', 3])
def test_endpoint_security_groups_refused(value):
    with pytest.raises(exception.InvalidOption) as err:
        netopts.endpoint_security_groups(
            {'Options': {'opencontrail.security_groups': value}})
    assert 'opencontrail.security_groups' in str(err.value)
