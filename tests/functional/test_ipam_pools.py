"""Two creates of one subnet at once, through the IPAM driver: the pool
is one request's, a ReleasePool of another request gives up nothing, and
no address is handed out twice. On the embedded default and on the
contrail backend (the fake, or a real server)."""

import pytest

from tests import contrail_target
from tests.functional import conftest
from tests.functional.test_contrail_ipam import (
    GW, SPACE, request_address, request_pool)

conftest  # noqa: B018  (fixtures)

CIDR = '10.211.7.0/24'


def test_mock(driver_factory):
    one_subnet_taken_twice_at_once(driver_factory().start())


@pytest.mark.noauth_only
def test_contrail(fake, driver_factory):
    one_subnet_taken_twice_at_once(
        conftest.contrail_driver(driver_factory, fake).start())


def create_network(drv, n, pool_id, gateway):
    body = {'NetworkID': contrail_target.docker_id(n, kind=7), 'Options': {
        'com.docker.network.generic': {}},
        'IPv4Data': [{'AddressSpace': SPACE, 'Pool': CIDR,
                      'Gateway': gateway}]}
    drv.ok('NetworkDriver.CreateNetwork', body)
    return body


def one_subnet_taken_twice_at_once(drv):
    # Two creates of one subnet, interleaved as Docker sends them.
    first = request_pool(drv, CIDR)['PoolID']
    status, reply = drv.call('IpamDriver.RequestPool', {
        'AddressSpace': SPACE, 'Pool': CIDR, 'SubPool': '', 'Options': {},
        'V6': False})
    assert status == 409, reply
    assert 'pool %s was taken' % CIDR in reply['Err']
    assert 'by another network create, not done yet' in reply['Err']
    # A release of a pool ID that does not own the pool (the loser's, or
    # one from before owners) gives up nothing.
    for other in (first.rsplit(';', 1)[0] + ';' + 'f' * 16,
                  first.rsplit(';', 1)[0]):
        assert drv.ok('IpamDriver.ReleasePool', {'PoolID': other}) == {}
    assert 'does not hold it' in drv.log_text()
    gateway = request_address(drv, first, '', GW)
    net = create_network(drv, 1, first, gateway)
    # Still the winner's: in use, and its addresses stay its own.
    status, reply = drv.call('IpamDriver.RequestPool', {
        'AddressSpace': SPACE, 'Pool': CIDR, 'SubPool': '', 'Options': {},
        'V6': False})
    assert status == 409 and 'in use' in reply['Err'], reply
    given = {request_address(drv, first) for _ in range(3)}
    assert len(given) == 3 and gateway.split('/')[0] not in given
    stranger = first.rsplit(';', 1)[0] + ';' + 'e' * 16
    drv.ok('IpamDriver.ReleasePool', {'PoolID': stranger})
    more = {request_address(drv, first) for _ in range(3)}
    assert not given & more
    # Its owner's release frees it: the subnet can be taken again.
    for address in given | more | {gateway.split('/')[0]}:
        drv.ok('IpamDriver.ReleaseAddress',
               {'PoolID': first, 'Address': address})
    drv.ok('IpamDriver.ReleasePool', {'PoolID': first})
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': net['NetworkID']})
    again = request_pool(drv, CIDR)['PoolID']
    drv.ok('IpamDriver.ReleasePool', {'PoolID': again})
