"""Periodic jobs spread at random: hosts started together never act in
step. Shown without sleeping: the waits each job asks for are recorded."""

import datetime
import random
import threading
import time
import types

from opencontrail_net.audit import periodic
from opencontrail_net.backends.contrail import keystone
from opencontrail_net.backends.contrail import pending
from opencontrail_net import jitter

HOSTS = 64


class Waits:
    """A stop event that records each wait and stops after ``rounds``."""

    def __init__(self, rounds):
        self.rounds = rounds
        self.waits = []

    def wait(self, seconds):
        self.waits.append(seconds)
        return len(self.waits) > self.rounds

    def set(self):
        pass


def audit_waits(interval, rounds):
    audit = periodic.PeriodicAudit.__new__(periodic.PeriodicAudit)
    audit.conf = types.SimpleNamespace(audit_interval=interval)
    audit._stop = Waits(rounds)
    audit.run_once = lambda: None
    audit._loop()
    return audit._stop.waits


def retry_waits(interval, rounds):
    record = pending.PendingDeletes(types.SimpleNamespace(
        host='h1', opts=types.SimpleNamespace(retry_interval=interval)))
    record.loaded = True
    record._stopping = Waits(rounds)
    record._loop(lambda network_id: None, None)
    return record._stopping.waits


def spread(firsts, interval, parts=8):
    """How many of ``parts`` equal slices of the interval hold a first
    run."""
    return len({int(f / interval * parts) for f in firsts})


def test_first_runs_of_64_hosts_spread_over_the_interval():
    rng = random.Random(29)
    firsts = [jitter.first(300, rng) for _ in range(HOSTS)]
    assert all(0 <= f <= 300 for f in firsts)
    assert spread(firsts, 300) == 8


def test_intervals_within_bounds_and_apart():
    rng = random.Random(29)
    waits = [jitter.between(300, rng) for _ in range(1000)]
    assert min(waits) >= 240 and max(waits) <= 360
    # Neither all alike nor gathered at one end.
    assert min(waits) < 250 and max(waits) > 350
    assert 290 < sum(waits) / len(waits) < 310


def test_audits_of_64_hosts_never_in_step():
    """Each driver's audit thread: the first audit within the interval
    (not after it, as before), the next 0.8-1.2 x it apart."""
    runs = [audit_waits(300, 5) for _ in range(HOSTS)]
    firsts = [waits[0] for waits in runs]
    assert all(0 <= f <= 300 for f in firsts)
    assert spread(firsts, 300) >= 6
    later = [w for waits in runs for w in waits[1:]]
    assert all(240 <= w <= 360 for w in later)
    assert len({round(w, 3) for w in later}) > len(later) // 2


def test_held_delete_retries_of_64_hosts_never_in_step():
    runs = [retry_waits(30, 5) for _ in range(HOSTS)]
    firsts = [waits[0] for waits in runs]
    assert all(0 <= f <= 30 for f in firsts)
    assert spread(firsts, 30) >= 6
    assert all(24 <= w <= 36 for waits in runs for w in waits[1:])


def test_audit_off_waits_for_nothing():
    assert audit_waits(0, 5) == []


def test_token_renewals_spread_over_the_end_of_its_life():
    issued = datetime.datetime(2026, 12, 6, 12, tzinfo=datetime.timezone.utc)
    ref = types.SimpleNamespace(issued=issued,
                                expires=issued + datetime.timedelta(hours=1))
    rng = random.Random(29)
    at = [(keystone.renewal(ref, rng) - issued).total_seconds()
          for _ in range(HOSTS)]
    # Between 75 % and 90 % of the hour.
    assert all(2700 <= a <= 3240 for a in at)
    assert max(at) - min(at) > 300
    assert keystone.renewal(types.SimpleNamespace(issued=None,
                                                  expires=None)) is None


def test_token_renewed_once_its_renewal_is_due():
    """Past its drawn renewal point, the next request gets a new token;
    before it, the same one."""
    issued = datetime.datetime.now(datetime.timezone.utc)

    class Plugin:
        auth_ref = types.SimpleNamespace(
            issued=issued, expires=issued + datetime.timedelta(hours=1),
            auth_token='t0')
        n = 0

        def invalidate(self):
            self.auth_ref = None

        def get_token(self, session):
            if self.auth_ref is None:
                Plugin.n += 1
                self.auth_ref = types.SimpleNamespace(
                    issued=issued, expires=issued + datetime.timedelta(
                        hours=1), auth_token='t%d' % Plugin.n)
            return self.auth_ref.auth_token

    auth = keystone.KeystoneAuth.__new__(keystone.KeystoneAuth)
    auth.url, auth.user, auth._last = 'http://ks/v3', 'admin', None
    auth._plugin, auth._session = Plugin(), types.SimpleNamespace()
    auth._lock = threading.Lock()
    auth._renew_at = None
    deadline = time.monotonic() + 5
    assert auth.token(deadline, 1) == 't0'
    assert auth.token(deadline, 1) == 't0'
    auth._renew_at = issued - datetime.timedelta(seconds=1)
    assert auth.token(deadline, 1) == 't1'
    assert auth._renew_at > issued
