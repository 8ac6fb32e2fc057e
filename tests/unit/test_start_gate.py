"""The start behind the socket: calls held until it is over, refused
(503, saying why) when it never will be."""

import threading
import time

import pytest

from opencontrail_net import exception
from opencontrail_net import service


def answered(gate, name='NetworkDriver.CreateNetwork'):
    return gate.wrap(name, lambda body: {'got': body})


def in_thread(call, body):
    out = {}

    def run():
        try:
            out['reply'] = call(body)
        except exception.OpenContrailNetError as exc:
            out['error'] = exc
    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def test_a_call_waits_for_the_start_then_is_served():
    gate = service.StartGate()
    thread, out = in_thread(answered(gate), {'NetworkID': 'n'})
    thread.join(0.2)
    assert thread.is_alive() and not out
    gate.open()
    thread.join(5)
    assert out == {'reply': {'got': {'NetworkID': 'n'}}}


def test_after_the_start_calls_go_straight_through():
    gate = service.StartGate(wait=0)
    gate.open()
    assert answered(gate)({}) == {'got': {}}


@pytest.mark.parametrize('reason', [
    'could not start (backend unavailable: no route); see its log',
    'is stopping'])
def test_held_and_later_calls_are_refused_when_the_start_never_ends(reason):
    gate = service.StartGate()
    thread, out = in_thread(answered(gate, 'NetworkDriver.Join'), {})
    thread.join(0.1)
    gate.refuse(reason)
    thread.join(5)
    assert out['error'].code == 503
    assert out['error'].message == (
        'NetworkDriver.Join was not served: the driver ' + reason)
    with pytest.raises(exception.NotStarted) as later:
        answered(gate)({})
    assert later.value.message.endswith(reason)


def test_a_start_that_takes_too_long_is_said_so():
    gate = service.StartGate(wait=0.05)
    began = time.monotonic()
    with pytest.raises(exception.NotStarted) as exc:
        answered(gate)({})
    assert time.monotonic() - began < 5
    assert exc.value.code == 503
    assert 'the driver is still starting after 0 s; run the command again' \
        in exc.value.message
