"""The veth reaper: deletions after the answer, by index, in order."""

import threading
from unittest import mock

from opencontrail_net import exception
from opencontrail_net.port_drivers import veth


def test_deletes_by_index_in_order_and_waits():
    deleted, gate = [], threading.Event()

    def delete_index(index):
        gate.wait(5)
        deleted.append(index)
        return True
    reaper = veth.Reaper()
    with mock.patch.object(veth.linux_net, 'delete_index', delete_index):
        reaper.delete(7, 'vethaaaaaaaap0', 'a' * 64)
        reaper.delete(9, 'vethbbbbbbbbp0', 'b' * 64)
        # Handed over, not done: the caller did not wait.
        assert not reaper.wait(0.05) and deleted == []
        gate.set()
        assert reaper.wait(5)
    assert deleted == [7, 9]


def test_a_failed_deletion_is_logged_and_the_next_goes_on(caplog):
    calls = []

    def delete_index(index):
        calls.append(index)
        if index == 1:
            raise exception.PortError(reason='EBUSY')
        return True
    reaper = veth.Reaper()
    with mock.patch.object(veth.linux_net, 'delete_index', delete_index):
        reaper.delete(1, 'vethaaaaaaaap0', 'a' * 64)
        reaper.delete(2, 'vethbbbbbbbbp0', 'b' * 64)
        assert reaper.wait(5)
    assert calls == [1, 2]
    assert ('Deleting veth vethaaaaaaaap0 of endpoint %s failed (the '
            'start-up sweep deletes it)' % ('a' * 64)) in caplog.text
