"""Many containers of one network removed at once, as compose down does.

Docker 20.10 loses endpoint-count updates when a network's endpoints go at
once, then refuses ``docker network rm`` ("has active endpoints"). The
driver spaces its DeleteEndpoint answers so that it does not happen.

dockerd and the driver run in a network namespace of their own: other
drivers starting on this host delete idle veth pairs, and a pair is idle
between Join and Docker moving it into the container.
"""

import time
import uuid

import pytest

from tests.e2e import bulk
from tests.e2e import dockerd as harness
from tests.e2e import plugin as plugin_mod
from tests import netns as nsmod

CONTAINERS = 48
TRIALS = 10

pytestmark = pytest.mark.alone


@pytest.fixture(scope='module')
def isolated(dockerd_host):
    """(dockerd, driver, netns): a private dockerd and driver in a netns."""
    namespaces = nsmod.Namespaces()
    daemon = drv = None
    try:
        ns = namespaces.add(nsmod.unique('ocnbk'))
        daemon = harness.DockerDaemon(harness.make_base_dir(), netns=ns)
        daemon.start()
        daemon.import_busybox()
        drv = plugin_mod.DockerPlugin('ocnbk' + uuid.uuid4().hex[:6],
                                      port_driver='bridge', netns=ns,
                                      docker_url=daemon.url, debug='false')
        drv.start()
        yield daemon, drv, ns
    finally:
        # dockerd first: it removes its containers through the driver.
        if daemon is not None:
            daemon.stop()
        if drv is not None:
            drv.close()
        namespaces.close()


def test_bulk_remove_leaves_no_stuck_network(isolated):
    daemon, drv, ns = isolated
    start = time.monotonic()
    outcomes = [bulk.bulk_trial(daemon, drv.name, '10.93.0.0/24',
                                CONTAINERS, 'bk%d' % i)
                for i in range(TRIALS)]
    took = time.monotonic() - start
    stuck = sum(was_stuck for _rm, was_stuck in outcomes)
    assert stuck == 0, (
        '%d of %d networks stuck after docker rm -f of %d containers; '
        'rm -f took %s s' % (stuck, TRIALS, CONTAINERS,
                             ['%.2f' % rm for rm, _ in outcomes]))
    log = drv.log_text()
    assert 'DeleteEndpoint calls on network' in log
    assert 'answering them 50 ms apart' in log
    assert drv.mock_rows('endpoints') == []
    assert drv.mock_rows('networks') == []
    assert nsmod.wait_links(ns, {'lo'}) == {'lo'}
    print('%d bulk removals of %d containers in %.1f s; rm -f %s s'
          % (TRIALS, CONTAINERS, took,
             ' '.join('%.2f' % rm for rm, _ in outcomes)))


def test_lone_remove_is_not_held(isolated):
    """One container leaving waits for nothing."""
    daemon, drv, _ns = isolated
    name = 'bklone'
    held = drv.log_text().count('come at once')
    daemon.cli('network', 'create', '-d', drv.name, '--subnet',
               '10.92.0.0/24', name)
    try:
        for _ in range(3):
            daemon.cli('run', '--rm', '--net', name, 'bb:latest', 'true')
    finally:
        daemon.cli('network', 'rm', name)
    assert drv.log_text().count('come at once') == held
