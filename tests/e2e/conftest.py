"""Fixtures for end-to-end tests against a real, private dockerd."""

import uuid

import pytest

from . import dockerd as harness


@pytest.fixture(scope='session')
def dockerd_host():
    """Skip unless this host can run a private dockerd."""
    reason = harness.unavailable_reason()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope='session')
def dockerd(dockerd_host):
    """A private dockerd for the session, with the busybox image bb:latest.

    Tests share it: networks and plugins they make need unique names.
    """
    daemon = harness.DockerDaemon(harness.make_base_dir())
    try:
        daemon.start()
        daemon.import_busybox()
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture
def unique_name():
    """Return a maker of short unique names, e.g. 'ocn1a2b3c'.

    Short enough for an interface name: /run/docker/plugins and the host's
    interfaces are shared with every daemon on the host.
    """
    def make(prefix='ocn'):
        return prefix + uuid.uuid4().hex[:6]
    return make
