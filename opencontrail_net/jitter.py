"""Random spread of periodic work, so that hosts never act in step.

Hosts started together (a cluster's rollout, a power cut) would audit,
retry and renew tokens at the same moments and meet the API server all
at once. Each periodic job instead waits a random part of its interval
before its first run (:func:`first`), then a random
:data:`LOW`-:data:`HIGH` share of the interval between runs
(:func:`between`).
"""

import random

# Each wait between runs is drawn from [LOW, HIGH] x the interval: the
# mean stays the interval.
LOW, HIGH = 0.8, 1.2

_RANDOM = random.SystemRandom()


def first(interval, rng=_RANDOM):
    """Seconds before a job's first run: anywhere within its interval."""
    return rng.uniform(0, interval)


def between(interval, rng=_RANDOM):
    """Seconds between two runs of a job every ``interval`` seconds."""
    return interval * rng.uniform(LOW, HIGH)


def share(low, high, rng=_RANDOM):
    """A random share between ``low`` and ``high``."""
    return rng.uniform(low, high)
