"""This host's record in the key-value store: held deletes, allow pairs.

One key per entry: no writer stores over another's entries, whatever it
has read; the record of the former one-value form is moved to them.
"""

import contextlib
import json
import threading

import pytest

from oslo_config import cfg
from vnc_api import exceptions as vnc_exc

from opencontrail_net.backends.contrail import pending
from opencontrail_net import exception

LEGACY = pending.PENDING_KEY % 'h1'
PREFIX = pending.HOST_PREFIX % 'h1'


class Store:
    """The API server's key-value store, as the client sees it."""

    def __init__(self, kept=None):
        self.kept = dict(kept or {})
        self.writes = []

    def kv_retrieve(self, key=None):
        if key is None:
            return ([{'key': k, 'value': v} for k, v in self.kept.items()]
                    or [{'key': None, 'value': None}])
        if key not in self.kept:
            raise vnc_exc.NoIdError(key)
        return self.kept[key]

    def kv_store(self, key, value):
        self.writes.append(('store', key))
        self.kept[key] = value

    def kv_delete(self, key):
        self.writes.append(('delete', key))
        self.kept.pop(key, None)

    def ours(self):
        return sorted(k[len(PREFIX):] for k in self.kept
                      if k.startswith(PREFIX))


class Ctx:
    host = 'h1'
    opts = cfg.ConfigOpts()


def record(store, load=True):
    held = pending.PendingDeletes(Ctx())
    if load:
        held.load(store)
    return held


def test_one_value_record_is_moved_to_entries():
    store = Store({LEGACY: json.dumps({
        'pending': ['n1'], 'allow': {'a': ['b'], 'b': ['a']}}),
        'opencontrail-net:host:h2:held:x': '1'})
    held = record(store)
    assert held.ids == {'n1'} and held.allowed == {'a': {'b'}, 'b': {'a'}}
    assert store.ours() == ['allow:a:b', 'held:n1']
    assert LEGACY not in store.kept
    # Another host's entries are not this host's.
    assert 'opencontrail-net:host:h2:held:x' in store.kept
    # A list (held deletes alone) reads as before too.
    store = Store({LEGACY: json.dumps(['n1', 'n2'])})
    assert record(store).ids == {'n1', 'n2'}


def test_a_writer_that_never_read_loses_no_entry():
    """The record was lost: {'pending': [...], 'allow': {...}} became
    '["n-new"]' after one hold() by a process whose start-up read had
    failed (or by opencontrail-net-manage, which never read it)."""
    store = Store()
    driver = record(store)
    driver.hold(store, 'n-old', True)
    driver.pair(store, 'a', ['b'], True)
    cli = record(store, load=False)          # never read it
    cli.hold(store, 'n-new', True)
    again = record(store)
    assert again.ids == {'n-old', 'n-new'}
    assert again.allowed == {'a': {'b'}, 'b': {'a'}}
    # Forgetting, without having read, removes that entry alone.
    cli.pair(store, 'b', ['a'], False)
    assert record(store).allowed == {}
    assert record(store).ids == {'n-old', 'n-new'}


def test_pairs_are_known_at_both_ends_and_forgotten():
    store = Store()
    held = record(store)
    held.pair(store, 'a', ['b', 'c'], True)
    assert held.allowed == {'a': {'b', 'c'}, 'b': {'a'}, 'c': {'a'}}
    assert store.ours() == ['allow:a:b', 'allow:a:c']
    held.hold(store, 'x', True)
    again = record(store)
    assert again.allowed == held.allowed and again.ids == {'x'}
    # The same pair again writes nothing.
    writes = len(store.writes)
    held.pair(store, 'b', ['a'], True)
    held.hold(store, 'x', True)
    assert len(store.writes) == writes
    held.pair(store, 'a', ['b'], False)
    assert held.allowed == {'a': {'c'}, 'c': {'a'}}
    held.pair(store, 'c', ['a'], False)
    held.hold(store, 'x', False)
    assert store.ours() == [] and held.ids == set() and held.allowed == {}


def test_a_failed_write_changes_nothing():
    store = Store()
    held = record(store)

    def down(key, value):
        raise vnc_exc.ServiceUnavailableError('down')
    store.kv_store = down
    with pytest.raises(vnc_exc.ServiceUnavailableError):
        held.pair(store, 'a', ['b'], True)
    with pytest.raises(vnc_exc.ServiceUnavailableError):
        held.hold(store, 'n', True)
    assert held.allowed == {} and held.ids == set()


def test_start_reads_the_record_until_it_can(monkeypatch):
    """A start-up whose read failed tries again, rather than carrying on
    without the record."""
    monkeypatch.setattr(pending, 'LOAD_RETRY', 0.01)
    store = Store({pending.HELD_KEY % ('h1', 'n1'): '1'})
    tries = []
    loaded = threading.Event()

    @contextlib.contextmanager
    def api():
        tries.append(1)
        if len(tries) < 3:
            raise exception.BackendUnavailable(reason='down')
        yield store
        loaded.set()

    held = record(store, load=False)
    Ctx.opts.register_opt(cfg.IntOpt('retry_interval', default=0))
    try:
        held.start(lambda network_id: None, api)
        assert loaded.wait(5)
        held.stop()
        held._thread.join(5)
    finally:
        Ctx.opts.unregister_opt(cfg.IntOpt('retry_interval', default=0))
    assert held.loaded and held.ids == {'n1'} and len(tries) == 3
