"""Two driver processes on one Contrail API, as two hosts of a cluster.

With a cluster store, any host may create or delete a network at the same
moment as another: they must end with exactly one network, or none.
"""

import concurrent.futures
import uuid

from opencontrail_net import ids
from tests import fake_engine
from tests.functional.conftest import contrail_driver
from tests.functional.conftest import drained
from tests.functional.conftest import manage


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


def test_other_host_never_deletes_this_hosts_endpoint(driver_factory,
                                                      fake):
    """A DeleteEndpoint on another host (say, of a global network whose
    endpoint IDs it saw) leaves this host's endpoint alone: its record is
    its own, and its worker reads whose the interface is."""
    h1 = contrail_driver(driver_factory, fake, name='h1',
                         host='ocn-h1').start()
    h2 = contrail_driver(driver_factory, fake, name='h2',
                         host='ocn-h2').start()
    nid, eid = uuid.uuid4().hex * 2, uuid.uuid4().hex * 2
    h1.ok('NetworkDriver.CreateNetwork', network_body(nid))
    h1.ok('NetworkDriver.CreateEndpoint', {
        'NetworkID': nid, 'EndpointID': eid, 'Options': {},
        'Interface': {'Address': '192.168.10.2/24'}})
    h2.ok('NetworkDriver.CreateNetwork', network_body(nid))
    h2.ok('NetworkDriver.DeleteEndpoint', {'NetworkID': nid,
                                           'EndpointID': eid})
    drained(h2)
    assert fake.get('virtual-machine-interface',
                    ids.endpoint_uuid(eid)) is not None
    assert 'bound on host ocn-h1' in h2.log_text()
    h1.ok('NetworkDriver.DeleteEndpoint', {'NetworkID': nid,
                                           'EndpointID': eid})
    h1.ok('NetworkDriver.DeleteNetwork', {'NetworkID': nid})
    assert fake.get('virtual-machine-interface',
                    ids.endpoint_uuid(eid)) is None
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


def test_audit_leaves_other_hosts_endpoints(driver_factory, fake):
    """A network host h1 made, which Docker on h1 no longer has, while h2
    still has an endpoint in it (a global network h1 no longer sees): h1's
    audit shows it and deletes nothing of h2's; once h2's endpoint is
    gone, it is a leak h1 repairs."""
    gone, kept = uuid.uuid4().hex * 2, uuid.uuid4().hex * 2
    with fake_engine.FakeEngine(networks={
            kept: {'Name': 'kept', 'Driver': 'p'}}) as engine:
        h1 = contrail_driver(driver_factory, fake, name='h1',
                             host='ocn-h1', docker_url=engine.url).start()
        h2 = contrail_driver(driver_factory, fake, name='h2',
                             host='ocn-h2').start()
        for nid, n in ((gone, 10), (kept, 11)):
            body = network_body(nid)
            body['IPv4Data'][0].update(Pool='192.168.%d.0/24' % n,
                                       Gateway='192.168.%d.1/24' % n)
            h1.ok('NetworkDriver.CreateNetwork', body)
        eid = uuid.uuid4().hex * 2
        h2.ok('NetworkDriver.CreateEndpoint', {
            'NetworkID': gone, 'EndpointID': eid, 'Options': {},
            'Interface': {'Address': '192.168.10.2/24'}})
        res = manage(h1, 'audit', '--fix', '--settle', '0')
        assert 'network-elsewhere' in res.stdout, res.stdout + res.stderr
        assert 'ocn-h2: %s' % eid in res.stdout
        assert len(vns(fake, gone)) == 1
        assert fake.get('virtual-machine-interface',
                        ids.endpoint_uuid(eid)) is not None
        h2.ok('NetworkDriver.DeleteEndpoint', {'NetworkID': gone,
                                               'EndpointID': eid})
        drained(h2)
        res = manage(h1, 'audit', '--fix', '--settle', '0')
        assert 'deleted network %s' % gone in res.stdout, res.stdout
        assert vns(fake, gone) == [] and len(vns(fake, kept)) == 1
