"""Two driver processes on one Contrail API, as two hosts of a cluster.

With a cluster store, any host may create or delete a network at the same
moment as another: they must end with exactly one network, or none.
"""

import concurrent.futures
import uuid

from opencontrail_net import ids
from tests.functional.conftest import contrail_driver


def network_body(nid):
    return {'NetworkID': nid,
            'Options': {'com.docker.network.generic': {'rt': '64512:100'}},
            'IPv4Data': [{'AddressSpace': 'GlobalDefault',
                          'Pool': '192.168.10.0/24',
                          'Gateway': '192.168.10.1/24'}],
            'IPv6Data': []}


def both(drivers, name, body):
    with concurrent.futures.ThreadPoolExecutor(len(drivers)) as pool:
        return list(pool.map(lambda d: d.call(name, body), drivers))


def vns(fake, nid):
    return [o for o in fake.objects('virtual-network')
            if o['uuid'] == ids.network_uuid(nid)]


def test_two_hosts_race_to_create_and_delete(driver_factory, fake):
    drivers = [contrail_driver(driver_factory, fake, name=n).start()
               for n in ('h1', 'h2')]
    for _round in range(5):
        nid = uuid.uuid4().hex * 2
        results = both(drivers, 'NetworkDriver.CreateNetwork',
                       network_body(nid))
        assert [s for s, _ in results] == [200, 200], results
        assert len(vns(fake, nid)) == 1
        assert vns(fake, nid)[0]['route_target_list']['route_target'] == [
            'target:64512:100']
        results = both(drivers, 'NetworkDriver.DeleteNetwork',
                       {'NetworkID': nid})
        assert [s for s, _ in results] == [200, 200], results
        assert vns(fake, nid) == []
        assert [sg for sg in fake.objects('security-group')
                if sg['uuid'] == ids.security_group_uuid(nid)] == []


def test_other_host_finds_the_network_on_first_use(driver_factory, fake):
    h1, h2 = [contrail_driver(driver_factory, fake, name=n).start()
              for n in ('h1', 'h2')]
    nid = uuid.uuid4().hex * 2
    h1.ok('NetworkDriver.CreateNetwork', network_body(nid))
    eid = uuid.uuid4().hex * 2
    h2.ok('NetworkDriver.CreateEndpoint', {
        'NetworkID': nid, 'EndpointID': eid, 'Options': {},
        'Interface': {'Address': '192.168.10.2/24', 'AddressIPv6': '',
                      'MacAddress': ''}})
    h2.ok('NetworkDriver.DeleteEndpoint', {'NetworkID': nid,
                                           'EndpointID': eid})
    h2.ok('NetworkDriver.DeleteNetwork', {'NetworkID': nid})
    assert vns(fake, nid) == []


def test_allow_policy_goes_when_the_host_that_made_it_deletes(
        driver_factory, fake):
    """The policy of -o opencontrail.allow is recorded by the host that made
    it: a network removed first on another host (which made no policy) is
    taken from the policy when Docker's DeleteNetwork reaches the host
    that did."""
    h1, h2 = [contrail_driver(driver_factory, fake, name=n).start()
              for n in ('h1', 'h2')]
    web, db = uuid.uuid4().hex * 2, uuid.uuid4().hex * 2
    policy = ids.allow_policy_uuid(web, db)
    h1.ok('NetworkDriver.CreateNetwork', network_body(web))
    body = network_body(db)
    body['Options']['com.docker.network.generic']['opencontrail.allow'] = web
    h1.ok('NetworkDriver.CreateNetwork', body)
    h2.ok('NetworkDriver.CreateNetwork', network_body(web))
    h2.ok('NetworkDriver.DeleteNetwork', {'NetworkID': web})
    assert vns(fake, web) == []
    assert fake.get('network-policy', policy) is not None
    h1.ok('NetworkDriver.DeleteNetwork', {'NetworkID': web})
    assert fake.get('network-policy', policy) is None
    [left] = vns(fake, db)
    assert not left.get('network_policy_refs')
    for host in (h1, h2):
        host.ok('NetworkDriver.DeleteNetwork', {'NetworkID': db})
    assert vns(fake, db) == []
