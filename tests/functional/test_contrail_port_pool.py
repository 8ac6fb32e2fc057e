"""Port pools: interfaces made ahead, so that a container start makes one
request per address.

What a user sees: with ``[contrail] port_pool_size``, each network this
host serves keeps that many interfaces (with their VMs) ready;
CreateEndpoint takes one and sends only its instance-ip while Docker
waits, Join sends nothing; the interface comes to name its endpoint after
the answer; an interface is never taken twice, also across a kill -9;
``docker network rm`` and the audit leave nothing of the pool behind.
Run on the fake and on the real server (``OCN_CONTRAIL_API``).
"""

import json
import os
import time

import pytest

from opencontrail_net.backends.contrail import port_pool
from opencontrail_net import ids
from tests import contrail_target
from tests import fake_engine
from tests.functional import conftest
from tests.functional import test_contrail_backend as base

SIZE = 2
manage = conftest.manage
HOST = 'ocn-pool-h1'


def pooled_driver(driver_factory, fake, name='drv', host=HOST, **options):
    return conftest.contrail_driver(
        driver_factory, fake, name=name, host=host,
        **dict({'contrail.port_pool_size': SIZE}, **options))


@pytest.fixture
def drv(driver_factory, fake):
    return pooled_driver(driver_factory, fake).start()


def pooled(fake, net, host=HOST):
    """uuids of ``host``'s pooled interfaces in ``net`` that stand."""
    return sorted(o['uuid'] for o in fake.objects('virtual-machine-interface')
                  if json.loads(_annotation(o) or '{}').get('pool_of') ==
                  net['NetworkID'] and _bound(o) == host)


def _annotation(obj):
    pairs = (obj.get('annotations') or {}).get('key_value_pair') or []
    return {p['key']: p['value'] for p in pairs}.get('opencontrail-net')


def _bound(obj):
    pairs = (obj.get('virtual_machine_interface_bindings') or {}).get(
        'key_value_pair') or []
    return {p['key']: p['value'] for p in pairs}.get('host_id')


def wait_for(what, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value:
            return value
        assert time.monotonic() < deadline, what.__doc__
        time.sleep(0.05)


def filled(drv, fake, net, size=SIZE, host=HOST):
    """Wait until ``drv`` holds ``size`` free interfaces of ``net`` (its
    record says so) and they stand; their uuids."""
    def full():
        """the pool filled"""
        free = [r for r in records(drv, full=True)
                if r['network'] == net['NetworkID'] and r['state'] == 'free']
        found = pooled(fake, net, host)
        return found if len(free) == size == len(found) else None
    return wait_for(full)


def network(drv, n):
    net = base.net_body(n, v6=False)
    drv.ok('NetworkDriver.CreateNetwork', net)
    return net


def records(drv, full=False):
    """This host's pooled-interface records (what ``status`` reads): their
    interface uuids, or (``full``) what they hold."""
    found = port_pool.records(drv.options['state_path']).entries()
    return [rec if full else vmi for vmi, rec in found]


def test_a_start_sends_one_request_while_docker_waits(fake,
                                                      driver_factory):
    net = base.net_body(41, v6=False)
    with fake_engine.FakeEngine(networks={
            net['NetworkID']: {'Name': 'n41', 'Driver': 'p'}}) as engine:
        drv = pooled_driver(driver_factory, fake,
                            docker_url=engine.url).start()
        drv.ok('NetworkDriver.CreateNetwork', net)
        _one_request(fake, drv, net)


def _one_request(fake, drv, net):
    ready = filled(drv, fake, net)
    assert ready == sorted(ids.pooled_interface_uuid(
        net['NetworkID'], HOST, s) for s in range(SIZE))
    ep = base.ep_body(net, 0, v6=False)
    fake.reset_requests()
    status, reply = drv.call('NetworkDriver.CreateEndpoint', ep)
    assert status == 200, reply
    on_path = [r for r in fake.request_ids() if r is not None]
    assert len(on_path) == 1, fake.requests
    taken = ids.pooled_interface_uuid(net['NetworkID'], HOST, 0)
    assert reply == {'Interface': {'MacAddress': ids.mac_from_uuid(taken)}}
    fake.reset_requests()
    drv.ok('NetworkDriver.Join', base.join_body(ep))
    assert [r for r in fake.request_ids() if r is not None] == []
    # Its address is on the pooled interface; the pool is full again.
    iip = fake.get('instance-ip',
                   ids.instance_ip_uuid(ep['EndpointID'], 'v4'))
    assert iip['instance_ip_address'] == '10.0.41.2'
    assert [r['uuid'] for r in iip['virtual_machine_interface_refs']] == [
        taken]
    filled(drv, fake, net)

    def named():
        """the interface names its endpoint"""
        vmi = fake.get('virtual-machine-interface', taken)
        return vmi['display_name'] == ep['EndpointID'] and json.loads(
            _annotation(vmi)).get('endpoint') == ep['EndpointID']
    wait_for(named)
    res = manage(drv, 'status')
    assert 'PORT POOL of network %s: %d free, 1 taken' % (
        net['NetworkID'], SIZE) in res.stdout, res.stdout + res.stderr
    assert taken in res.stdout
    # docker rm: the taken interface goes with its VM and address.
    drv.ok('NetworkDriver.Leave', base.ids_of(ep))
    assert base.counted_apart(fake, drv, 'DeleteEndpoint',
                              base.ids_of(ep))[0] == 0
    assert fake.get('virtual-machine-interface', taken) is None
    assert fake.get('instance-ip', iip['uuid']) is None
    assert fake.get('virtual-machine', ids.pooled_vm_uuid(
        net['NetworkID'], HOST, 0)) is None
    # docker network rm: nothing of the pool is left.
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': net['NetworkID']})
    assert base.snapshot(fake) == {t: [] for t in base.TYPES}
    assert records(drv) == []
    res = manage(drv, 'status')
    assert 'PORT POOL' not in res.stdout, res.stdout + res.stderr


def test_an_interface_is_never_taken_twice_across_a_kill(fake, drv):
    net = network(drv, 42)
    filled(drv, fake, net)
    first = base.ep_body(net, 0, v6=False)
    reply = drv.ok('NetworkDriver.CreateEndpoint', first)
    drv.kill()
    drv.start()
    # Docker sends it again: the same interface.
    assert drv.ok('NetworkDriver.CreateEndpoint', first) == reply
    second = base.ep_body(net, 1, v6=False)
    other = drv.ok('NetworkDriver.CreateEndpoint', second)
    assert other['Interface']['MacAddress'] != reply['Interface'][
        'MacAddress']
    for m, ep in enumerate((first, second)):
        drv.ok('NetworkDriver.Join', base.join_body(ep, '%012x' % m))
    info = drv.ok('NetworkDriver.EndpointOperInfo', base.ids_of(first))
    assert info['Value']
    drv.restart()
    for ep in (first, second):
        drv.ok('NetworkDriver.Leave', base.ids_of(ep))
        drv.ok('NetworkDriver.DeleteEndpoint', base.ids_of(ep))
    conftest.drained(drv)
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': net['NetworkID']})
    assert base.snapshot(fake) == {t: [] for t in base.TYPES}


def test_what_a_pooled_interface_cannot_serve(fake, drv):
    """--mac-address and --driver-opt security groups get an interface of
    their own, named after the endpoint; the pool is left as it was."""
    net = network(drv, 43)
    ready = filled(drv, fake, net)
    ep = base.ep_body(net, 0, v6=False)
    ep['Interface']['MacAddress'] = '02:42:0a:00:2b:09'
    assert drv.ok('NetworkDriver.CreateEndpoint', ep) == {'Interface': {}}
    vmi = fake.get('virtual-machine-interface',
                   ids.endpoint_uuid(ep['EndpointID']))
    assert vmi['virtual_machine_interface_mac_addresses'][
        'mac_address'] == ['02:42:0a:00:2b:09']
    assert pooled(fake, net) == ready
    drv.ok('NetworkDriver.DeleteEndpoint', base.ids_of(ep))
    conftest.drained(drv)
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': net['NetworkID']})
    assert base.snapshot(fake) == {t: [] for t in base.TYPES}


def test_hosts_keep_pools_of_their_own(fake, driver_factory):
    h1 = pooled_driver(driver_factory, fake, name='h1').start()
    h2 = pooled_driver(driver_factory, fake, name='h2',
                       host='ocn-pool-h2').start()
    net = network(h1, 44)
    filled(h1, fake, net)
    # h2 serves the network from its first endpoint there on.
    ep = base.ep_body(net, 0, v6=False)
    h2.ok('NetworkDriver.CreateEndpoint', ep)
    vmi = fake.get('virtual-machine-interface',
                   ids.endpoint_uuid(ep['EndpointID']))
    assert vmi is not None and _bound(vmi) == 'ocn-pool-h2'
    filled(h2, fake, net, host='ocn-pool-h2')
    assert len(pooled(fake, net)) == SIZE
    h2.ok('NetworkDriver.DeleteEndpoint', base.ids_of(ep))
    conftest.drained(h2)
    # docker network rm (the network is gone from every host's Docker):
    # every pool in it goes, and the log says whose.
    h1.ok('NetworkDriver.DeleteNetwork', {'NetworkID': net['NetworkID']})
    assert 'of the port pool of host ocn-pool-h2' in h1.log_text()
    assert base.snapshot(fake) == {t: [] for t in base.TYPES}
    h2.ok('NetworkDriver.DeleteNetwork', {'NetworkID': net['NetworkID']})
    assert records(h2) == []


def test_the_audit_reclaims_a_pool_docker_no_longer_has(fake,
                                                        driver_factory):
    net = base.net_body(45, v6=False)
    kept = base.net_body(46, v6=False)
    with fake_engine.FakeEngine(networks={
            kept['NetworkID']: {'Name': 'kept', 'Driver': 'p'}}) as engine:
        drv = pooled_driver(driver_factory, fake,
                            docker_url=engine.url).start()
        for body in (net, kept):
            drv.ok('NetworkDriver.CreateNetwork', body)
        filled(drv, fake, net)
        filled(drv, fake, kept)
        drv.stop()
        res = manage(drv, 'audit', '--fix', '--settle', '0')
        assert 'pool-stale: network %s' % net['NetworkID'] in res.stdout, \
            res.stdout + res.stderr
        assert pooled(fake, net) == []
        assert len(pooled(fake, kept)) == SIZE
        drv.start()
        drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': kept['NetworkID']})
        assert pooled(fake, kept) == []


def test_a_failed_start_gives_its_interface_back(fake, drv):
    """An address someone else holds fails CreateEndpoint: the interface
    it took is free again, the next start takes it."""
    net = network(drv, 47)
    filled(drv, fake, net)
    other = base.someone_elses_address(fake, net, '10.0.47.2')
    try:
        status, reply = drv.call('NetworkDriver.CreateEndpoint',
                                 base.ep_body(net, 0, v6=False))
        assert status == 409 and '10.0.47.2' in reply['Err'], reply
        assert sorted(r['state'] for r in records(drv, full=True)) == [
            'free'] * SIZE
        ep = base.ep_body(net, 1, v6=False)
        reply = drv.ok('NetworkDriver.CreateEndpoint', ep)
        assert reply['Interface']['MacAddress'] == ids.mac_from_uuid(
            ids.pooled_interface_uuid(net['NetworkID'], HOST, 0))
        drv.ok('NetworkDriver.DeleteEndpoint', base.ids_of(ep))
        conftest.drained(drv)
    finally:
        contrail_target.vnc_client(fake).instance_ip_delete(id=other)
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': net['NetworkID']})
    assert base.snapshot(fake) == {t: [] for t in base.TYPES}
    assert records(drv) == []


def test_a_making_cut_off_is_undone_at_the_next_start(fake, drv):
    """A driver killed while it made a pooled interface: the next start
    deletes what stands of it, and never hands it out."""
    net = network(drv, 48)
    filled(drv, fake, net)
    drv.stop()
    cut = ids.pooled_interface_uuid(net['NetworkID'], HOST, 1)
    path = os.path.join(drv.options['state_path'], port_pool.DIRECTORY,
                        cut + '.json')
    with open(path) as f:
        rec = json.load(f)
    with open(path, 'w') as f:
        json.dump(dict(rec, state='making'), f)
    drv.start()

    def undone():
        """the cut-off interface and its VM deleted"""
        return (fake.get('virtual-machine-interface', cut) is None and
                fake.get('virtual-machine', rec['vm']) is None and
                cut not in records(drv))
    wait_for(undone)
    taken = []
    for m in range(2):
        ep = base.ep_body(net, m, v6=False)
        reply = drv.ok('NetworkDriver.CreateEndpoint', ep)
        taken.append(reply['Interface']['MacAddress'])
        drv.ok('NetworkDriver.DeleteEndpoint', base.ids_of(ep))
    assert ids.mac_from_uuid(cut) not in taken
    assert taken[0] == ids.mac_from_uuid(
        ids.pooled_interface_uuid(net['NetworkID'], HOST, 0))
    conftest.drained(drv)
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': net['NetworkID']})
    assert base.snapshot(fake) == {t: [] for t in base.TYPES}
    assert records(drv) == []


def test_killed_before_the_interface_names_its_endpoint(fake, drv,
                                                        namespaces):
    """kill -9 after Join, before the pooled interface's annotation names
    its endpoint (the API was away): the next start finds the container's
    endpoint by this host's record alone, and shows it as before."""
    from tests.functional.test_contrail_shared import move_container_end
    net = network(drv, 49)
    filled(drv, fake, net)
    ep = base.ep_body(net, 0, v6=False)
    drv.ok('NetworkDriver.CreateEndpoint', ep)
    fake.set_down(True)
    try:
        move_container_end(drv.ok('NetworkDriver.Join', base.join_body(ep)),
                           namespaces.add())
        shown = drv.ok('NetworkDriver.EndpointOperInfo', base.ids_of(ep))
        drv.kill()
    finally:
        fake.set_down(False)
    assert shown['Value']['host_if']
    taken = ids.pooled_interface_uuid(net['NetworkID'], HOST, 0)
    assert 'endpoint' not in json.loads(_annotation(fake.get(
        'virtual-machine-interface', taken)))
    # A start may look at this host's endpoints before it writes the
    # owed annotation: here it never writes it (the record says written),
    # so the look has only the record to go by.
    path = os.path.join(drv.options['state_path'], port_pool.DIRECTORY,
                        taken + '.json')
    with open(path) as f:
        rec = json.load(f)
    with open(path, 'w') as f:
        json.dump(dict(rec, noted=True), f)
    drv.start()
    assert drv.ok('NetworkDriver.EndpointOperInfo',
                  base.ids_of(ep)) == shown
    drv.ok('NetworkDriver.Leave', base.ids_of(ep))
    drv.ok('NetworkDriver.DeleteEndpoint', base.ids_of(ep))
    conftest.drained(drv)
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': net['NetworkID']})
    assert base.snapshot(fake) == {t: [] for t in base.TYPES}
    assert records(drv) == []
