"""Fixtures for multi-host tests: a testbed of several Docker hosts."""

import pytest

from tests.multihost import testbed as testbed_mod


@pytest.fixture(scope='session')
def multihost():
    """Skip unless this machine can run several private Docker hosts."""
    reason = testbed_mod.unavailable_reason()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def bed(multihost):
    """A testbed; the test starts it with the hosts it needs."""
    testbed = testbed_mod.Testbed()
    try:
        yield testbed
    finally:
        testbed.close()
