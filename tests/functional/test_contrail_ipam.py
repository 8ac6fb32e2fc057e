"""The driver's IPAM on the contrail backend: Contrail picks addresses.

Real driver processes on their sockets, the fake config API, objects read
back with the real vnc_api client.
"""

import concurrent.futures

import pytest
from vnc_api import vnc_api

from opencontrail_net import ids
from opencontrail_net import ipam
from tests import contrail_target
from tests.functional import conftest
from tests.functional.test_contrail_backend import ids_of, join_body

GW = {'RequestAddressType': 'com.docker.network.gateway'}
SPACE = ipam.LOCAL_SPACE
PROJECT = contrail_target.PROJECT


@pytest.fixture
def vnc(fake):
    return contrail_target.vnc_client(fake)


def request_pool(drv, cidr='', sub='', v6=False, options=None):
    return drv.ok('IpamDriver.RequestPool', {
        'AddressSpace': SPACE, 'Pool': cidr, 'SubPool': sub,
        'Options': options or {}, 'V6': v6})


def request_address(drv, pid, addr='', options=None):
    return drv.ok('IpamDriver.RequestAddress', {
        'PoolID': pid, 'Address': addr, 'Options': options})['Address']


def make_network(drv, n, cidr, sub='', aux=None, generic=None):
    """What `docker network create --ipam-driver` sends, in its order."""
    pool = request_pool(drv, cidr, sub)
    gateway = request_address(drv, pool['PoolID'], '', GW)
    for addr in (aux or {}).values():
        request_address(drv, pool['PoolID'], addr)
    body = {'NetworkID': contrail_target.docker_id(n), 'Options': {
        'com.docker.network.generic': generic or {}},
        'IPv4Data': [{'AddressSpace': SPACE, 'Pool': pool['Pool'],
                      'Gateway': gateway,
                      'AuxAddresses': {k: v + '/' + cidr.split('/')[1]
                                       for k, v in (aux or {}).items()}}]}
    drv.ok('NetworkDriver.CreateNetwork', body)
    return body, pool['PoolID']


def endpoint(net, m, address):
    return {'NetworkID': net['NetworkID'],
            'EndpointID': 'e%s%08x' % (net['NetworkID'][-55:], m),
            'Interface': {'Address': address}}


def counted(fake, drv, name, body):
    fake.reset_requests()
    reply = drv.ok(name, body)
    return fake.count(), reply


def test_contrail_allocates_from_the_range(fake, drv, vnc):
    net, pid = make_network(drv, 1, '10.20.0.0/24', '10.20.0.128/25',
                            aux={'r': '10.20.0.5'})
    vn = vnc.virtual_network_read(id=ids.network_uuid(net['NetworkID']))
    sub = vn.get_network_ipam_refs()[0]['attr'].get_ipam_subnets()[0]
    assert sub.default_gateway == '10.20.0.1' and sub.addr_from_start
    assert [(p.start, p.end) for p in sub.allocation_pools] == [
        ('10.20.0.128', '10.20.0.254')]
    addr = request_address(drv, pid)
    assert addr == '10.20.0.128/24'
    iips = {o['instance_ip_address']: o for o in fake.objects('instance-ip')}
    assert set(iips) == {'10.20.0.128'}
    assert iips['10.20.0.128']['id_perms']['creator'] == 'opencontrail-net'
    ep = endpoint(net, 0, addr)
    drv.ok('NetworkDriver.CreateEndpoint', ep)
    vmi = vnc.virtual_machine_interface_read(
        id=ids.endpoint_uuid(ep['EndpointID']))
    assert [r['uuid'] for r in vmi.get_instance_ip_back_refs()] == [
        iips['10.20.0.128']['uuid']]
    assert request_address(drv, pid, '10.20.0.200') == '10.20.0.200/24'
    drv.ok('NetworkDriver.Join', join_body(ep))
    drv.ok('NetworkDriver.Leave', ids_of(ep))
    drv.ok('NetworkDriver.DeleteEndpoint', ids_of(ep))
    for a in ('10.20.0.128', '10.20.0.200', '10.20.0.5', '10.20.0.1'):
        drv.ok('IpamDriver.ReleaseAddress', {'PoolID': pid, 'Address': a})
    drv.ok('IpamDriver.ReleasePool', {'PoolID': pid})
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': net['NetworkID']})
    for kind in ('virtual-network', 'instance-ip',
                 'virtual-machine-interface', 'virtual-machine',
                 'security-group'):
        assert fake.objects(kind) == [], kind
    assert fake.kv() == {}


@pytest.mark.noauth_only
def test_request_budget(fake, drv):
    # Warm: the client connected, the project known.
    warm = request_pool(drv, '10.99.0.0/24')
    drv.ok('IpamDriver.ReleasePool', {'PoolID': warm['PoolID']})
    fake.reset_requests()
    pool_reply = request_pool(drv, '10.23.0.0/24')
    counts = {'RequestPool': fake.count()}
    pid = pool_reply['PoolID']
    gw = request_address(drv, pid, '', GW)
    drv.ok('NetworkDriver.CreateNetwork', {
        'NetworkID': contrail_target.docker_id(3), 'Options': {},
        'IPv4Data': [{'AddressSpace': SPACE, 'Pool': '10.23.0.0/24',
                      'Gateway': gw}]})
    fake.reset_requests()
    addr = request_address(drv, pid)
    counts['RequestAddress'] = fake.count()
    net = {'NetworkID': contrail_target.docker_id(3)}
    counts['CreateEndpoint'], _r = counted(fake, drv,
                                           'NetworkDriver.CreateEndpoint',
                                           endpoint(net, 0, addr))
    # On the path Docker waits for, and after its answer.
    counts['DeleteEndpoint'] = conftest.counted_apart(
        fake, drv, 'NetworkDriver.DeleteEndpoint',
        ids_of(endpoint(net, 0, addr)))
    counts['ReleaseAddress'], _r = counted(
        fake, drv, 'IpamDriver.ReleaseAddress',
        {'PoolID': pid, 'Address': addr.split('/')[0]})
    assert counts == {'RequestPool': 2, 'RequestAddress': 2,
                      'CreateEndpoint': 2, 'DeleteEndpoint': (0, 2),
                      'ReleaseAddress': 1}


def test_foreign_address_is_never_handed_out(fake, drv, vnc):
    net, pid = make_network(drv, 4, '10.24.0.0/29')
    vn = vnc.virtual_network_read(id=ids.network_uuid(net['NetworkID']))
    theirs = vnc_api.InstanceIp('k8s-pod-ip-' + contrail_target.RUN,
                                instance_ip_address='10.24.0.2')
    theirs.set_virtual_network(vn)
    vnc.instance_ip_create(theirs)
    got = {request_address(drv, pid) for _ in range(4)}
    assert got == {'10.24.0.%d/29' % n for n in (3, 4, 5, 6)}
    status, reply = drv.call('IpamDriver.RequestAddress',
                             {'PoolID': pid, 'Address': ''})
    assert status == 409 and '10.24.0.0/29' in reply['Err']
    status, reply = drv.call('IpamDriver.RequestAddress',
                             {'PoolID': pid, 'Address': '10.24.0.2'})
    assert status == 409 and '10.24.0.2' in reply['Err']
    assert fake.get('instance-ip', theirs.uuid) is not None


def test_two_hosts_never_share_an_address(fake, driver_factory):
    one = conftest.contrail_driver(driver_factory, fake, name='h1').start()
    two = conftest.contrail_driver(driver_factory, fake, name='h2').start()
    _net, pid = make_network(one, 5, '10.25.0.0/24')

    def take(drv):
        return [request_address(drv, pid) for _ in range(50)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(take, [one, two, one, two]))
    flat = [a for r in results for a in r]
    assert len(flat) == 200 and len(set(flat)) == 200
    in_contrail = [o['instance_ip_address']
                   for o in fake.objects('instance-ip')]
    assert sorted(a.split('/')[0] for a in flat) == sorted(in_contrail)


def someone_elses_network(vnc, name, prefix):
    """A /24 virtual-network made straight at the API."""
    project = vnc.project_read(fq_name=PROJECT)
    ipam_obj = vnc.network_ipam_read(fq_name=[
        'default-domain', 'default-project', 'default-network-ipam'])
    vn = vnc_api.VirtualNetwork(name, parent_obj=project)
    subnet = vnc_api.IpamSubnetType(subnet=vnc_api.SubnetType(prefix, 24))
    vn.add_network_ipam(ipam_obj, vnc_api.VnSubnetsType([subnet]))
    vnc.virtual_network_create(vn)
    return vn


def test_default_pool_skips_the_projects_subnets(fake, drv, vnc):
    vn = someone_elses_network(vnc, 'nova-net', '10.128.0.0')
    first = request_pool(drv)
    assert first['Pool'] == '10.128.1.0/24'
    # Docker asks again while it holds the first: the next one.
    second = request_pool(drv)
    assert second['Pool'] == '10.128.2.0/24'
    for pool in (first, second):
        drv.ok('IpamDriver.ReleasePool', {'PoolID': pool['PoolID']})
    vnc.virtual_network_delete(id=vn.uuid)


def test_pool_of_an_existing_network(fake, drv, vnc):
    vn = someone_elses_network(vnc, 'shared-net', '10.26.0.0')
    fq = ':'.join(PROJECT + ['shared-net'])
    pool = request_pool(drv, options={'opencontrail.network': fq})
    assert pool['Pool'] == '10.26.0.0/24'
    assert pool['Data'] == {'com.docker.network.gateway': '10.26.0.254/24'}
    addr = request_address(drv, pool['PoolID'])
    iip = fake.objects('instance-ip')[0]
    assert iip['instance_ip_address'] == addr.split('/')[0]
    assert iip['virtual_network_refs'][0]['uuid'] == vn.uuid
    drv.ok('IpamDriver.ReleaseAddress', {'PoolID': pool['PoolID'],
                                         'Address': addr.split('/')[0]})
    assert fake.objects('instance-ip') == []
    vnc.virtual_network_delete(id=vn.uuid)
