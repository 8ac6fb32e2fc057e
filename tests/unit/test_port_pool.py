"""The port pool's record and choices, without an API server."""

import json
import os

from opencontrail_net.backends.contrail import port_pool
from opencontrail_net import ids
from opencontrail_net import model

NET = 'a' * 64


class Ctx:
    host = 'h1'


def network(**changes):
    return model.Network(**dict(dict(id=NET, project=['d', 'p'],
                                     name=NET), **changes))


def endpoint(**changes):
    return model.Endpoint(**dict(dict(id='e' * 64, network_id=NET),
                                 **changes))


def pool(tmp_path, size=2):
    return port_pool.PortPool(Ctx(), size, str(tmp_path), vrouter=None)


def test_what_a_pooled_interface_serves():
    assert port_pool.serves(network())
    assert port_pool.serves(network(), endpoint())
    # The driver's IPAM and someone else's network keep no pool.
    assert not port_pool.serves(network(own_ipam=True))
    assert not port_pool.serves(network(existing='d:p:theirs'))
    # Its own MAC or groups: an interface of its own.
    assert not port_pool.serves(network(), endpoint(mac='02:00:00:00:00:01'))
    assert not port_pool.serves(network(), endpoint(security_groups=[]))


def test_records_survive_a_new_process(tmp_path):
    rec = dict(port_pool.record(network(), 'h1', 0), state=port_pool.FREE)
    port_pool.records(str(tmp_path)).write(rec)
    # Another host's record and a torn file are not taken up.
    port_pool.records(str(tmp_path)).write(dict(
        port_pool.record(network(), 'h2', 0), state=port_pool.FREE))
    with open(os.path.join(str(tmp_path), port_pool.DIRECTORY,
                           'torn.json'), 'w') as f:
        f.write('{"vmi": ')
    again = pool(tmp_path)
    assert again.state() == {NET: (1, 0)}
    taken = again.take(network(), endpoint())
    assert taken['vmi'] == ids.pooled_interface_uuid(NET, 'h1', 0)
    assert taken['mac'] == ids.mac_from_uuid(taken['vmi'])
    # Taken is recorded before it is handed out; asked again, the same.
    assert pool(tmp_path).state() == {NET: (0, 1)}
    assert again.take(network(), endpoint()) is taken
    # None left for another endpoint; given back, it is free again.
    assert again.take(network(), endpoint(id='f' * 64)) is None
    again.give_back(endpoint().id)
    assert pool(tmp_path).state() == {NET: (1, 0)}
    with open(os.path.join(str(tmp_path), port_pool.DIRECTORY,
                           taken['vmi'] + '.json')) as f:
        assert json.load(f)['state'] == port_pool.FREE


def test_no_pool_takes_nothing(tmp_path):
    rec = dict(port_pool.record(network(), 'h1', 0), state=port_pool.FREE)
    port_pool.records(str(tmp_path)).write(rec)
    off = pool(tmp_path, size=0)
    off.start()
    try:
        assert off.take(network(), endpoint()) is None
        off.want(network())
        assert off._wanted == {}
    finally:
        off.stop()
        if off._thread is not None:
            off._thread.join(5)
            assert not off._thread.is_alive()


# The filling thread's steps, with a mocked API ----------------------------

import contextlib  # noqa: E402
from unittest import mock  # noqa: E402

import pytest  # noqa: E402
from vnc_api import exceptions as vnc_exc  # noqa: E402

from opencontrail_net import exception  # noqa: E402


class ApiCtx:
    """A context whose API is a mock; ``fail`` maps a method to what it
    raises (in the API's step, as the client maps it)."""

    host = 'h1'

    def __init__(self, mapped=None):
        self.calls = mock.MagicMock()
        self.mapped = mapped
        self.client = self

    @contextlib.contextmanager
    def api(self, budget=1.0):
        try:
            yield self.calls
        except vnc_exc.NoIdError as exc:
            raise exception.NotFound(kind='Contrail object', id=exc)


class VRouter:
    def __init__(self, uuid):
        self._uuid = uuid

    def uuid(self, api):
        return self._uuid


def filling(tmp_path, ctx, vrouter=None):
    p = port_pool.PortPool(ctx, 2, str(tmp_path), VRouter(vrouter))
    p._loaded = True
    p.want(network(security_group_refs=[]))
    return p


def test_a_making_links_the_vm_to_this_hosts_virtual_router(tmp_path):
    ctx = ApiCtx()
    p = filling(tmp_path, ctx, vrouter='vr-1')
    p._make(p._wanted[NET])
    vm = ids.pooled_vm_uuid(NET, 'h1', 0)
    ctx.calls.ref_update.assert_called_once_with(
        'virtual-router', 'vr-1', 'virtual-machine', vm, None, 'ADD')
    assert p.state() == {NET: (1, 0)}


def test_a_network_gone_is_no_longer_filled(tmp_path):
    ctx = ApiCtx()
    p = filling(tmp_path, ctx)
    p._make(p._wanted[NET])
    ctx.calls.virtual_machine_interface_create.side_effect = \
        vnc_exc.NoIdError('virtual-network gone')
    p._make(p._wanted[NET])
    # What it knew of the network is forgotten, its records too.
    assert p._wanted == {} and p.state() == {}
    assert port_pool.records(str(tmp_path)).entries() == []


def test_a_failed_making_leaves_no_record_and_is_tried_again(tmp_path):
    ctx = ApiCtx()
    p = filling(tmp_path, ctx)
    ctx.calls.virtual_machine_interface_create.side_effect = \
        RuntimeError('500')
    assert not p._attempt(p._make, p._wanted[NET])
    assert port_pool.records(str(tmp_path)).entries() == []
    assert NET in p._wanted
    # The VM it made went again.
    ctx.calls.virtual_machine_delete.assert_called_once()


def test_a_failed_note_is_owed_again(tmp_path):
    ctx = ApiCtx()
    p = filling(tmp_path, ctx)
    p._make(p._wanted[NET])
    ep = endpoint(ipv4='10.0.0.2/24')
    p.take(network(), ep)
    p.joined(ep, 'sandbox1')
    kind, rec = p._next()
    ctx.calls.virtual_machine_interface_update.side_effect = \
        RuntimeError('503')
    assert not p._attempt(kind, rec)
    assert list(p._notes) == [ep.id]
    ctx.calls.virtual_machine_interface_update.side_effect = None
    kind, rec = p._next()
    assert p._attempt(kind, rec)
    assert pool(tmp_path).taken_interface(rec['vmi'])['noted']


def test_what_forget_cannot_delete_stays_free(tmp_path):
    ctx = ApiCtx()
    p = filling(tmp_path, ctx)
    for _ in range(2):
        p._make(p._wanted[NET])
    ctx.calls.virtual_machine_interface_delete.side_effect = \
        vnc_exc.RefsExistError('held by instance-ip theirs')
    with pytest.raises(exception.Conflict):
        p.forget(NET)
    assert p.state() == {NET: (2, 0)}
    ctx.calls.virtual_machine_interface_delete.side_effect = None
    p.forget(NET)
    assert p.state() == {}


def test_a_taken_interface_gone_is_forgotten(tmp_path):
    ctx = ApiCtx()
    p = filling(tmp_path, ctx)
    p._make(p._wanted[NET])
    p.take(network(), endpoint())
    p.discard(endpoint().id)
    assert p.taken(endpoint().id) is None
    assert port_pool.records(str(tmp_path)).entries() == []


def test_no_record_no_interface(tmp_path):
    ctx = ApiCtx()
    p = filling(tmp_path, ctx)
    p._make(p._wanted[NET])
    with mock.patch.object(p.records, 'write', side_effect=OSError('full')):
        assert p.take(network(), endpoint()) is None
    assert p.state() == {NET: (1, 0)}
