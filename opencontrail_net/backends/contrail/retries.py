"""Which Contrail API requests are sent again, how often, how far apart.

A request the server turned away (502, 503: nothing was done) is sent
again after a growing, jittered wait, :data:`ATTEMPTS` times at most in
all, and only while the Docker call's deadline leaves room for it: an
overloaded server gets no storm of retries, and Docker a clear error in
time. Nothing else is sent again: a request that got no answer may have
been done.
"""

import time

import tenacity
from vnc_api import exceptions as vnc_exc

# Tries of one request the server turned away, and the waits between
# them: 0.2 s, then 0.4 s, each plus up to 0.2 s at random.
ATTEMPTS = 3
BACKOFF = tenacity.wait_exponential_jitter(multiplier=0.2, max=2.0,
                                           jitter=0.2)
# Time a try needs at least: none is started with less left.
LEAST = 0.05


def retrying(deadline):
    """A tenacity.Retrying for one request, within ``deadline``
    (``time.monotonic()``; None: ATTEMPTS alone bounds it)."""

    def out_of_time(state):
        if state.attempt_number >= ATTEMPTS:
            return True
        return deadline is not None and (
            deadline - time.monotonic() <= (state.upcoming_sleep or 0) +
            LEAST)

    return tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(
            vnc_exc.ServiceUnavailableError),
        stop=out_of_time, wait=BACKOFF, reraise=True)


def refusal(retried, answer):
    """What Docker reads when the server turned every try away."""
    tries = retried.statistics.get('attempt_number', 1)
    return 'the server answered %s (%s)' % (
        answer or '503 Service Unavailable',
        'tried %d times' % tries if tries > 1 else
        'no time left to try again')
