"""Spacing of DeleteEndpoint answers: a fake clock, then real threads."""

import logging
import threading
import time

from opencontrail_net import network
from opencontrail_net import pacing

NET_A = 'a' * 64
NET_B = 'b' * 64


class FakeClock:
    """A clock that moves only when someone sleeps or a test says so."""

    def __init__(self):
        self.now = 1000.0
        self.slept = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(round(seconds, 6))
        self.now += seconds


def fake_pacer(spacing=0.05):
    clock = FakeClock()
    return pacing.Pacer('DeleteEndpoint', spacing, clock=clock,
                        sleep=clock.sleep), clock


def test_lone_call_does_not_wait():
    pacer, clock = fake_pacer()
    with pacer.pace(NET_A):
        pass
    clock.now += 1
    with pacer.pace(NET_A):
        pass
    assert clock.slept == []


def test_call_just_after_an_answer_waits_the_rest():
    pacer, clock = fake_pacer()
    with pacer.pace(NET_A):
        pass
    clock.now += 0.02
    with pacer.pace(NET_A):
        pass
    assert clock.slept == [0.03]


def test_calls_in_flight_together_are_spaced():
    pacer, clock = fake_pacer()
    contexts = [pacer.pace(NET_A) for _ in range(4)]
    for ctx in contexts:
        ctx.__enter__()
    answers = []
    for ctx in contexts:
        ctx.__exit__(None, None, None)
        answers.append(round(clock.now - 1000.0, 6))
    # The first goes out at once, each next one spacing later.
    assert answers == [0.0, 0.05, 0.1, 0.15]


def test_networks_are_independent():
    pacer, clock = fake_pacer()
    with pacer.pace(NET_A):
        pass
    with pacer.pace(NET_B):
        pass
    assert clock.slept == []


def test_zero_spacing_turns_it_off():
    pacer, clock = fake_pacer(spacing=0)
    for _ in range(3):
        with pacer.pace(NET_A):
            pass
    assert clock.slept == []


def test_failed_call_is_spaced_too():
    """Docker swallows DeleteEndpoint errors and decrements all the same."""
    pacer, clock = fake_pacer()
    with pacer.pace(NET_A):
        pass
    try:
        with pacer.pace(NET_A):
            raise RuntimeError('backend down')
    except RuntimeError:
        pass
    assert clock.slept == [0.05]


def test_forget_drops_idle_networks_only():
    pacer, _clock = fake_pacer()
    with pacer.pace(NET_A):
        pass
    ctx = pacer.pace(NET_B)
    ctx.__enter__()
    pacer.forget(NET_A)
    pacer.forget(NET_B)
    assert list(pacer._networks) == [NET_B]
    ctx.__exit__(None, None, None)


def burst(pacer, clock, n, gap=0.0):
    """n calls in flight together, then n more coming ``gap`` apart."""
    contexts = [pacer.pace(NET_A) for _ in range(n)]
    for ctx in contexts:
        ctx.__enter__()
    for ctx in contexts:
        ctx.__exit__(None, None, None)
    for _ in range(n):
        clock.now += gap
        with pacer.pace(NET_A):
            pass


def messages(caplog):
    return [r.getMessage() for r in caplog.records]


def test_a_burst_is_logged_once(caplog):
    pacer, clock = fake_pacer()
    # Calls trickling in, each within spacing of the last answer.
    burst(pacer, clock, 5, gap=0.01)
    assert messages(caplog) == [
        'DeleteEndpoint calls on network %s come at once (5 so far): '
        'answering them 50 ms apart (Docker 20.10 loses endpoint-count '
        'updates otherwise; option delete_spacing_ms)' % NET_A]
    # A second burst, after a quiet while, is logged again.
    clock.now += pacing.BURST_QUIET + 1
    burst(pacer, clock, 2)
    assert len(messages(caplog)) == 2


def test_a_pacer_told_not_to_log_does_not(caplog):
    clock = FakeClock()
    pacer = pacing.Pacer('Leave', 0.05, log=False, clock=clock,
                         sleep=clock.sleep)
    burst(pacer, clock, 5)
    assert clock.slept and messages(caplog) == []


def test_zero_spacing_still_warns_of_a_burst(caplog):
    pacer, clock = fake_pacer(spacing=0)
    burst(pacer, clock, 3)
    assert clock.slept == []
    [message] = messages(caplog)
    assert message.startswith(
        'DeleteEndpoint calls on network %s come at once (3 so far), not '
        'spaced (delete_spacing_ms = 0)' % NET_A)


def test_lone_calls_log_nothing(caplog):
    caplog.set_level(logging.INFO)
    pacer, clock = fake_pacer()
    for _ in range(3):
        with pacer.pace(NET_A):
            pass
        clock.now += 1
    assert caplog.records == []


def threaded_answers(spacing, networks):
    """Real threads entering together; when each answer was due to go out.

    Due times, as the pacer reckoned them: on a loaded machine a thread can
    wake late, which says nothing of the pacer.
    """
    local = threading.local()

    def clock():
        local.now = local.due = time.monotonic()
        local.waited = False
        return local.now

    def sleep(seconds):
        local.due = local.now + seconds
        local.waited = True
        time.sleep(seconds)

    pacer = pacing.Pacer('DeleteEndpoint', spacing, clock=clock, sleep=sleep)
    barrier = threading.Barrier(len(networks))
    answers = {}

    def call(i, network_id):
        barrier.wait()
        with pacer.pace(network_id):
            time.sleep(0.001)
        answers[i] = (network_id, local.due, local.waited)

    threads = [threading.Thread(target=call, args=(i, net))
               for i, net in enumerate(networks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers.values()


def test_real_threads_are_spaced_per_network():
    spacing = 0.03
    answers = threaded_answers(spacing, [NET_A] * 6 + [NET_B] * 6)
    for net in (NET_A, NET_B):
        times = sorted(t for n, t, _ in answers if n == net)
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert min(gaps) >= spacing - 1e-9, gaps
        # Each network's first answer waits for no other network's.
        assert any(not waited for n, _, waited in answers if n == net)


class _Ports:
    def __init__(self):
        self.unplugged = []

    def unplug(self, network_id, endpoint_id, background=False):
        self.unplugged.append(endpoint_id)


class _Backend:
    def delete_endpoint(self, net, endpoint_id):
        pass


def test_delete_endpoint_is_paced(conf):
    conf.set_override('delete_spacing_ms', 40)
    driver = network.NetworkDriver(conf, _Backend(), _Ports())
    assert driver.delete_pacer.spacing == 0.04
    start = time.monotonic()
    for i in range(3):
        assert driver.delete_endpoint(
            {'NetworkID': NET_A, 'EndpointID': '%064x' % i}) == {}
    # One after the other, each within 40 ms of the last answer.
    assert time.monotonic() - start >= 0.08
    assert len(driver.ports.unplugged) == 3


def test_leave_is_not_paced(conf):
    # Docker's count goes down after DeleteEndpoint, not after Leave: a
    # burst of Leave calls is answered at once.
    conf.set_override('delete_spacing_ms', 200)
    driver = network.NetworkDriver(conf, _Backend(), _Ports())
    start = time.monotonic()
    for i in range(3):
        assert driver.leave(
            {'NetworkID': NET_A, 'EndpointID': '%064x' % i}) == {}
    assert time.monotonic() - start < 0.2
    assert len(driver.ports.unplugged) == 3


def test_delete_spacing_default_and_off(conf):
    # Unset: spaced as for an engine not known yet (the service sets it
    # once it has read the engine).
    assert conf.delete_spacing_ms is None
    assert network.NetworkDriver(
        conf, _Backend(), _Ports()).delete_pacer.spacing == 0.05
    conf.set_override('delete_spacing_ms', 0)
    driver = network.NetworkDriver(conf, _Backend(), _Ports())
    slept = []
    driver.delete_pacer.sleep = slept.append
    for i in range(5):
        body = {'NetworkID': NET_A, 'EndpointID': '%064x' % i}
        driver.leave(body)
        driver.delete_endpoint(body)
    assert slept == []


class FakePool:
    """cheroot's ThreadPool as HeldThreads uses it."""

    def __init__(self, queued=0):
        self.threads = 8
        self.qsize = queued

    def grow(self, amount):
        self.threads += amount

    def shrink(self, amount):
        self.threads -= amount


def test_waits_beyond_a_few_add_threads_until_over():
    pool = FakePool(queued=3)
    held = pacing.HeldThreads(few=2)
    held.attach(pool)
    waits = [held.held() for _ in range(4)]
    waits[0].__enter__()
    waits[1].__enter__()
    assert pool.threads == 8
    # The third wait: one thread for it, three for the calls queued.
    waits[2].__enter__()
    assert pool.threads == 12
    pool.qsize = 0
    waits[3].__enter__()
    assert pool.threads == 12
    for ctx in waits[:2]:
        ctx.__exit__(None, None, None)
    assert pool.threads == 8 and held.added == 0
    for ctx in waits[2:]:
        ctx.__exit__(None, None, None)
    assert pool.threads == 8 and held.peak == 4


class SlowPool(FakePool):
    """A pool whose growing takes time, on the pacer's clock."""

    def __init__(self, clock, takes):
        super().__init__()
        self.clock, self.takes = clock, takes

    def grow(self, amount):
        super().grow(amount)
        self.clock.now += self.takes


def test_adding_threads_does_not_move_an_answer_turn():
    """The time a thread takes to add comes off the wait: answers stay
    spacing apart."""
    pacer, clock = fake_pacer()
    pacer.threads = pacing.HeldThreads(few=0)
    pacer.threads.attach(SlowPool(clock, takes=0.03))
    contexts = [pacer.pace(NET_A) for _ in range(3)]
    for ctx in contexts:
        ctx.__enter__()
    answers = []
    for ctx in contexts:
        ctx.__exit__(None, None, None)
        answers.append(round(clock.now - 1000.0, 6))
    assert answers == [0.0, 0.05, 0.1]
