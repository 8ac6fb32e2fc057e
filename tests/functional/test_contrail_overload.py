"""An overloaded Contrail API: turned away (503) or slow.

The driver tries a turned-away request three times at most, with growing
jittered waits, within its ``[contrail] timeout``; Docker gets an error
that names the server's answer, in time, and the next try succeeds once
the server takes requests again.
"""

import time

import pytest

from tests.functional import conftest
from tests.functional.test_contrail_backend import (
    ep_body, ids_of, join_body, net_body)

TIMEOUT = 3
NET = net_body(31, v6=False)
EP = ep_body(NET, 0, v6=False)


def _network(drv):
    drv.ok('NetworkDriver.CreateNetwork', NET)


def _endpoint(drv):
    _network(drv)
    drv.ok('NetworkDriver.CreateEndpoint', EP)


CALLS = [('CreateNetwork', lambda drv: None, NET),
         ('CreateEndpoint', _network, EP),
         ('Join', _endpoint, join_body(EP))]


@pytest.fixture
def drv(driver_factory, fake):
    drv = conftest.contrail_driver(driver_factory, fake,
                                   timeout=TIMEOUT).start()
    yield drv
    fake.clear_faults()
    fake.delay = 0
    drv.call('NetworkDriver.Leave', ids_of(EP))
    drv.call('NetworkDriver.DeleteEndpoint', ids_of(EP))
    drv.call('NetworkDriver.DeleteNetwork', {'NetworkID': NET['NetworkID']})


def timed(drv, name, body):
    start = time.monotonic()
    status, reply = drv.call('NetworkDriver.' + name, body)
    return status, reply, time.monotonic() - start


@pytest.mark.noauth_only
@pytest.mark.parametrize('name,setup,body', CALLS, ids=[c[0] for c in CALLS])
def test_turned_away_every_time(fake, drv, name, setup, body):
    setup(drv)
    fake.reset_requests()
    fake.fail_all('503')
    status, reply, took = timed(drv, name, body)
    assert status == 503, reply
    assert '503 Service Unavailable: Injected fault 503' in reply['Err']
    assert 'tried 3 times' in reply['Err'], reply
    # One operation failed: three tries of it, nothing more.
    assert fake.count() == 3, fake.requests
    assert took < TIMEOUT
    fake.clear_faults()
    # Docker's next try, once the server takes requests again.
    drv.ok('NetworkDriver.' + name, body)


@pytest.mark.noauth_only
@pytest.mark.parametrize('name,setup,body', CALLS, ids=[c[0] for c in CALLS])
def test_turned_away_once(fake, drv, name, setup, body):
    """A 503 then an answer: the request is sent again, the call
    succeeds."""
    setup(drv)
    fake.reset_requests()
    fake.fail_request(1, '503')
    status, reply, took = timed(drv, name, body)
    assert status == 200, reply
    requests = fake.requests
    assert len(requests) >= 2 and requests[0] == requests[1], requests
    assert took < TIMEOUT


@pytest.mark.noauth_only
def test_slow_server(fake, drv):
    """Answers later than the timeout: a clear error, in time, and no
    request sent again."""
    fake.reset_requests()
    fake.delay = TIMEOUT + 1
    status, reply, took = timed(drv, 'CreateNetwork', NET)
    assert status == 503, reply
    assert 'Timeout' in reply['Err'] or 'in time' in reply['Err'], reply
    assert took < TIMEOUT + 0.5
    assert fake.count() == 1, fake.requests
    fake.delay = 0
    # The slow request may still be done: Docker's re-send completes it.
    time.sleep(TIMEOUT + 1.5)
    drv.ok('NetworkDriver.CreateNetwork', NET)


conftest  # noqa: B018  (fixtures)
