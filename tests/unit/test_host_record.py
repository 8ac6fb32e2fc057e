"""This host's record in the key-value store: held deletes, allow pairs."""

import json

import pytest

from oslo_config import cfg
from vnc_api import exceptions as vnc_exc

from opencontrail_net.backends.contrail import pending

KEY = pending.PENDING_KEY % 'h1'


class Store:
    """The API server's key-value store, as the client sees it."""

    def __init__(self, kept=None):
        self.kept = {} if kept is None else {KEY: kept}
        self.writes = []

    def kv_retrieve(self, key):
        if key not in self.kept:
            raise vnc_exc.NoIdError(key)
        return self.kept[key]

    def kv_store(self, key, value):
        self.writes.append(('store', key))
        self.kept[key] = value

    def kv_delete(self, key):
        self.writes.append(('delete', key))
        self.kept.pop(key, None)


class Ctx:
    host = 'h1'
    opts = cfg.ConfigOpts()


def record(kept=None):
    store = Store(kept)
    held = pending.PendingDeletes(Ctx())
    held.load(store)
    return held, store


def test_record_of_held_deletes_alone_reads_as_before():
    held, store = record(json.dumps(['n1', 'n2']))
    assert held.ids == {'n1', 'n2'} and held.allowed == {}
    held.hold(store, 'n1', False)
    # Without pairs it is written as before: a list.
    assert json.loads(store.kept[KEY]) == ['n2']


def test_pairs_are_recorded_at_both_ends_and_forgotten():
    held, store = record()
    held.pair(store, 'a', ['b', 'c'], True)
    assert held.allowed == {'a': {'b', 'c'}, 'b': {'a'}, 'c': {'a'}}
    assert json.loads(store.kept[KEY]) == {
        'pending': [], 'allow': {'a': ['b', 'c'], 'b': ['a'], 'c': ['a']}}
    held.hold(store, 'x', True)
    again, _ = record(store.kept[KEY])
    assert again.allowed == held.allowed and again.ids == {'x'}
    # The same pair again writes nothing.
    writes = len(store.writes)
    held.pair(store, 'b', ['a'], True)
    assert len(store.writes) == writes
    held.pair(store, 'a', ['b'], False)
    assert held.allowed == {'a': {'c'}, 'c': {'a'}}
    held.pair(store, 'c', ['a'], False)
    assert json.loads(store.kept[KEY]) == ['x']
    held.hold(store, 'x', False)
    assert KEY not in store.kept and store.writes[-1] == ('delete', KEY)


def test_a_failed_write_changes_nothing():
    held, store = record()

    def down(key, value):
        raise vnc_exc.ServiceUnavailableError('down')
    store.kv_store = down
    with pytest.raises(vnc_exc.ServiceUnavailableError):
        held.pair(store, 'a', ['b'], True)
    assert held.allowed == {}
