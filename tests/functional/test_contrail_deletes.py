"""DeleteEndpoint answers once the delete is recorded; the Contrail
deletes follow in the driver's background worker.

What a user sees: DeleteEndpoint costs no API request while Docker waits,
the objects are gone once the worker is done, also after a kill -9 right
after the answer, after a failed request, and before a DeleteNetwork or a
CreateEndpoint of the same ID that follows at once; ``status`` shows a
delete while it waits.
"""

import os
import time

import pytest

from opencontrail_net.backends.contrail import delete_queue
from opencontrail_net import ids
from tests import contrail_target
from tests import fake_engine
from tests.functional import conftest
from tests.functional import test_contrail_backend as base

contrail_driver = conftest.contrail_driver
drained = conftest.drained
queued_deletes = conftest.queued_deletes
manage = conftest.manage


# Endpoint ID -> the uuid of its container's VM, noted at Join.
VMS = {}


def joined(drv, fake, net, m, sandbox='0123456789ab'):
    """An endpoint of ``net``, created, joined and left, as before a
    ``docker rm``: its body."""
    ep = base.ep_body(net, m, v6=False)
    drv.ok('NetworkDriver.CreateEndpoint', ep)
    drv.ok('NetworkDriver.Join', base.join_body(ep, sandbox))
    drv.ok('NetworkDriver.Leave', base.ids_of(ep))
    vmi = fake.get('virtual-machine-interface',
                   ids.endpoint_uuid(ep['EndpointID']))
    VMS[ep['EndpointID']] = vmi['virtual_machine_refs'][0]['uuid']
    return ep


def endpoint_objects(fake, ep):
    """The endpoint's interface, its addresses and its VM, as uuids."""
    vmi = ids.endpoint_uuid(ep['EndpointID'])
    vm = VMS.get(ep['EndpointID'])
    return ([o['uuid'] for o in fake.objects('virtual-machine-interface')
             if o['uuid'] == vmi] +
            [o['uuid'] for o in fake.objects('instance-ip')
             if vmi in [r['uuid'] for r in
                        o.get('virtual_machine_interface_refs') or []]] +
            [o['uuid'] for o in fake.objects('virtual-machine')
             if o['uuid'] == vm])


def test_delete_endpoint_sends_nothing_while_docker_waits(fake, drv):
    net = base.net_body(21, v6=False)
    drv.ok('NetworkDriver.CreateNetwork', net)
    ep = joined(drv, fake, net, 0)
    assert len(endpoint_objects(fake, ep)) == 3
    on_path, after = base.counted_apart(fake, drv, 'DeleteEndpoint',
                                        base.ids_of(ep))
    assert (on_path, after) == (0, 3)
    assert endpoint_objects(fake, ep) == []
    assert 'Deleted virtual-machine-interface %s' % ids.endpoint_uuid(
        ep['EndpointID']) in drv.log_text()
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': net['NetworkID']})
    assert base.snapshot(fake) == {t: [] for t in base.TYPES}


def test_delete_endpoint_answers_with_the_api_down(fake, drv):
    """Nothing on the path needs the API: the delete waits for it."""
    net = base.net_body(22, v6=False)
    drv.ok('NetworkDriver.CreateNetwork', net)
    ep = joined(drv, fake, net, 0)
    fake.set_down(True)
    try:
        drv.ok('NetworkDriver.DeleteEndpoint', base.ids_of(ep))
        assert queued_deletes(drv) == [ep['EndpointID'] + '.json']
    finally:
        fake.set_down(False)
    drained(drv)
    assert endpoint_objects(fake, ep) == []
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': net['NetworkID']})


def test_killed_after_the_answer_the_next_start_deletes(fake,
                                                        driver_factory):
    """kill -9 right after DeleteEndpoint answered (the API down, so the
    worker cannot have done it): the delete is on this host's record,
    ``status`` shows it, and the restarted driver does it."""
    net = base.net_body(23, v6=False)
    with fake_engine.FakeEngine(networks={
            net['NetworkID']: {'Name': 'n23', 'Driver': 'p'}}) as engine:
        drv = contrail_driver(driver_factory, fake,
                              docker_url=engine.url).start()
        drv.ok('NetworkDriver.CreateNetwork', net)
        eps = [joined(drv, fake, net, m, sandbox='%012x' % m)
               for m in range(2)]
        fake.set_down(True)
        try:
            for ep in eps:
                drv.ok('NetworkDriver.DeleteEndpoint', base.ids_of(ep))
            drv.kill()
        finally:
            fake.set_down(False)
        assert all(len(endpoint_objects(fake, ep)) == 3 for ep in eps)
        res = manage(drv, 'status')
        for ep in eps:
            assert 'QUEUED DELETE endpoint %s of network %s' % (
                ep['EndpointID'], net['NetworkID']) in res.stdout, res.stdout
            # On its way out: not a leak.
            assert 'endpoint-leaked' not in res.stdout
        drv.start()
        drained(drv)
        assert [endpoint_objects(fake, ep) for ep in eps] == [[], []]
        assert '2 endpoint deletes queued before this start' in \
            drv.log_text()
        assert 'QUEUED DELETE' not in manage(drv, 'status').stdout
        drv.ok('NetworkDriver.DeleteNetwork',
               {'NetworkID': net['NetworkID']})
    assert base.snapshot(fake) == {t: [] for t in base.TYPES}


def test_delete_network_right_after_delete_endpoint(fake, drv):
    """Deletes still queued (the API was away a moment) are done before
    the network's: it goes at once, with nothing left."""
    net = base.net_body(24, v6=False)
    drv.ok('NetworkDriver.CreateNetwork', net)
    eps = [joined(drv, fake, net, m, sandbox='%012x' % m) for m in range(3)]
    fake.set_down(True)
    try:
        for ep in eps:
            drv.ok('NetworkDriver.DeleteEndpoint', base.ids_of(ep))
    finally:
        fake.set_down(False)
    assert len(queued_deletes(drv)) == 3
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': net['NetworkID']})
    assert queued_deletes(drv) == []
    assert base.snapshot(fake) == {t: [] for t in base.TYPES}
    assert 'still holds' not in drv.log_text()


def test_create_endpoint_of_a_queued_delete(fake, drv):
    """CreateEndpoint of the same ID while its delete waits: the old one
    goes first, and the new one stays."""
    net = base.net_body(25, v6=False)
    drv.ok('NetworkDriver.CreateNetwork', net)
    ep = joined(drv, fake, net, 0)
    fake.set_down(True)
    try:
        drv.ok('NetworkDriver.DeleteEndpoint', base.ids_of(ep))
    finally:
        fake.set_down(False)
    again = dict(base.ids_of(ep), Interface={'Address': '10.0.25.9/24'})
    drv.ok('NetworkDriver.CreateEndpoint', again)
    drained(drv)
    vmi = fake.get('virtual-machine-interface',
                   ids.endpoint_uuid(ep['EndpointID']))
    assert vmi is not None
    assert [o['instance_ip_address'] for o in fake.objects('instance-ip')
            ] == ['10.0.25.9']
    assert fake.objects('virtual-machine') == []
    drv.ok('NetworkDriver.DeleteEndpoint', base.ids_of(again))
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': net['NetworkID']})
    assert base.snapshot(fake) == {t: [] for t in base.TYPES}


@pytest.mark.noauth_only
@pytest.mark.parametrize('kind', ['500', '503', 'timeout', 'drop'])
def test_fault_at_every_request_of_the_delete(fake, drv, kind):
    """A fault at each request of the worker's delete: nothing of the
    endpoint is left once it is done. A 500 or no answer fails the try,
    which the worker makes again (the log says so); a dropped request and
    a 503 are sent again within the try."""
    net = base.net_body(26, v6=False)
    drv.ok('NetworkDriver.CreateNetwork', net)
    k = 0
    while True:
        k += 1
        ep = joined(drv, fake, net, k, sandbox='%012x' % k)
        fake.reset_requests()
        fake.fail_request(k, kind)
        drv.ok('NetworkDriver.DeleteEndpoint', base.ids_of(ep))
        drained(drv)
        fake.clear_faults()
        assert endpoint_objects(fake, ep) == [], k
        if fake.count() <= k:
            break   # No k-th request: every position was tried.
        failed = 'Delete of endpoint %s of network %s failed (attempt 1)' % (
            ep['EndpointID'], net['NetworkID']) in drv.log_text()
        assert failed == (kind in ('500', 'timeout')), k
    assert k > 3
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': net['NetworkID']})
    assert base.snapshot(fake) == {t: [] for t in base.TYPES}


def test_503_until_the_server_recovers(fake, drv):
    """The server answers 503 to every request for a while: the delete
    fails, is tried again with a backoff, and is done once it answers."""
    net = base.net_body(29, v6=False)
    drv.ok('NetworkDriver.CreateNetwork', net)
    ep = joined(drv, fake, net, 0)
    failed = 'Delete of endpoint %s of network %s failed (attempt 2)' % (
        ep['EndpointID'], net['NetworkID'])
    fake.fail_all('503')
    try:
        drv.ok('NetworkDriver.DeleteEndpoint', base.ids_of(ep))
        deadline = time.monotonic() + 20
        while failed not in drv.log_text():
            assert time.monotonic() < deadline, drv.log_tail()
            time.sleep(0.05)
        assert len(endpoint_objects(fake, ep)) == 3
    finally:
        fake.clear_faults()
    drained(drv)
    assert endpoint_objects(fake, ep) == []
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': net['NetworkID']})


def test_held_delete_waits_and_status_says_why(fake, driver_factory):
    """An object of someone else's holds the interface: the delete stays
    queued (status names why), and is done once it has gone."""
    from vnc_api import vnc_api
    net = base.net_body(27, v6=False)
    with fake_engine.FakeEngine(networks={
            net['NetworkID']: {'Name': 'n27', 'Driver': 'p'}}) as engine:
        drv = contrail_driver(driver_factory, fake,
                              docker_url=engine.url).start()
        drv.ok('NetworkDriver.CreateNetwork', net)
        ep = joined(drv, fake, net, 0)
        vnc = contrail_target.vnc_client(fake)
        vmi = vnc.virtual_machine_interface_read(
            id=ids.endpoint_uuid(ep['EndpointID']))
        theirs = vnc_api.InstanceIp('someone-elses-ip-' + contrail_target.RUN,
                                    instance_ip_address='10.0.27.77')
        theirs.set_virtual_network(vnc.virtual_network_read(
            id=ids.network_uuid(net['NetworkID'])))
        theirs.set_virtual_machine_interface(vmi)
        vnc.instance_ip_create(theirs)
        try:
            drv.ok('NetworkDriver.DeleteEndpoint', base.ids_of(ep))
            deadline = time.monotonic() + 20
            res = manage(drv, 'status')
            while 'failed tries' not in res.stdout:
                assert time.monotonic() < deadline, res.stdout
                res = manage(drv, 'status')
            assert 'QUEUED DELETE endpoint %s' % ep['EndpointID'] in \
                res.stdout
            assert 'opencontrail-net did not make' in res.stdout
            assert fake.get('virtual-machine-interface', vmi.uuid)
        finally:
            vnc.instance_ip_delete(id=theirs.uuid)
        drained(drv, timeout=70)
        assert endpoint_objects(fake, ep) == []
        drv.ok('NetworkDriver.DeleteNetwork',
               {'NetworkID': net['NetworkID']})
    assert base.snapshot(fake) == {t: [] for t in base.TYPES}


def test_delete_not_recorded_is_done_at_once(fake, drv):
    """state_path cannot hold the record: the delete is done before the
    answer, as before, and the log says why."""
    net = base.net_body(28, v6=False)
    drv.ok('NetworkDriver.CreateNetwork', net)
    ep = joined(drv, fake, net, 0)
    os.makedirs(drv.options['state_path'], exist_ok=True)
    with open(delete_queue.directory(drv.options['state_path']), 'w'):
        pass    # A file where the directory goes.
    drv.ok('NetworkDriver.DeleteEndpoint', base.ids_of(ep))
    assert endpoint_objects(fake, ep) == []
    assert 'Cannot record the delete of endpoint %s' % ep['EndpointID'] in \
        drv.log_text()
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': net['NetworkID']})
