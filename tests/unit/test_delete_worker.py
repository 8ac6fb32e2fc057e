"""The contrail backend's queued endpoint deletes: the record and the
worker's decisions, without a driver or an API."""

import threading

import pytest

from opencontrail_net.backends.contrail import delete_queue
from opencontrail_net.backends.contrail import delete_worker
from opencontrail_net import exception


class Deleter:
    """Fails the endpoints named in ``failing`` (until taken out)."""

    def __init__(self):
        self.failing = set()
        self.done = []
        self.lock = threading.Lock()

    def __call__(self, item):
        item['parts'] = {'vm': 'vm-1', 'iips': [], 'floating_ip': False,
                         'group': False}
        if item['endpoint'] in self.failing:
            raise exception.BackendUnavailable(reason='API down')
        with self.lock:
            self.done.append(item['endpoint'])


@pytest.fixture
def queue(tmp_path):
    return delete_queue.DeleteQueue(str(tmp_path))


def test_backoff_doubles_within_bounds():
    for attempts in range(1, 12):
        top = min(delete_worker.BACKOFF_MAX,
                  delete_worker.BACKOFF_FIRST * 2 ** (attempts - 1))
        for _ in range(20):
            assert top / 2 <= delete_worker.backoff(attempts) <= top
    assert delete_worker.backoff(40) <= delete_worker.BACKOFF_MAX


def test_a_failed_delete_stays_recorded_with_why(queue):
    deleter = Deleter()
    worker = delete_worker.DeleteWorker(queue, deleter, 'h1')
    deleter.failing.add('e1')
    assert worker.submit(delete_queue.entry('e1', 'n1', 'h1'))
    assert not worker.submit(delete_queue.entry('e1', 'n1', 'h1'))
    with pytest.raises(exception.BackendUnavailable):
        worker.run_now(['e1'])
    [item] = queue.entries()
    # What the failed try read is kept for the next one.
    assert item['attempts'] == 1 and 'API down' in item['error']
    assert item['parts']['vm'] == 'vm-1'
    assert worker.queued('n1') == ['e1'] and worker.queued('n2') == []
    deleter.failing.clear()
    worker.run_now(['e1'])
    assert deleter.done == ['e1']
    assert queue.entries() == [] and worker.queued() == []
    # Done already: nothing more.
    worker.run_now(['e1'])
    assert deleter.done == ['e1']


def test_start_takes_up_this_hosts_record_only(queue):
    queue.write(delete_queue.entry('e1', 'n1', 'h1'))
    queue.write(delete_queue.entry('e2', 'n1', 'h2'))
    deleter = Deleter()
    worker = delete_worker.DeleteWorker(queue, deleter, 'h1')
    worker.start()
    try:
        worker.run_now(['e1', 'e2'])
    finally:
        worker.stop()
    assert deleter.done == ['e1']
    assert [i['endpoint'] for i in queue.entries()] == ['e2']


def test_unreadable_entries_are_left(queue, tmp_path):
    queue.write(delete_queue.entry('e1', 'n1', 'h1'))
    path = delete_queue.directory(str(tmp_path))
    with open(path + '/e2.json', 'w') as f:
        f.write('{not json')
    with open(path + '/e3.json', 'w') as f:
        f.write('{"endpoint": "other", "network": "n1"}')
    assert [i['endpoint'] for i in queue.entries()] == ['e1']
