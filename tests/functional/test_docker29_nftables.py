"""The bridge data plane beside Docker 29's nftables firewall backend.

No Debian package of Docker 29 exists, so its rules are loaded from
recorded rule sets (tests/data/docker29-nftables*.nft: the tables ``ip``
and ``ip6 docker-bridges`` with the default bridge docker0, one container
on it and a user network, with and without --bridge-accept-fwmark), and
the engine's ``/info`` comes from a recorded answer (tests.fake_engine).
The driver runs in a "host" namespace with those rules; "containers" are
namespaces, as in test_ports.
"""

import os
import re
import time

import pytest

from tests import fake_engine
from tests.functional import conftest
from tests.functional import test_ports
from tests import netns as nsmod

DATA = os.path.join(os.path.dirname(__file__), '..', 'data')
RULESETS = ('docker29-nftables.nft', 'docker29-nftables-fwmark.nft')
DOCKER0 = ('172.17.0.1/16', 'fd00:d0c::1/64')
THEIRS = ('172.17.0.2', 'fd00:d0c::2')

conftest  # noqa: B018  (fixtures)


@pytest.fixture
def engine():
    with fake_engine.FakeEngine() as fake:
        yield fake


def docker_tables(namespaces, host):
    """Docker's tables, counters left out."""
    text = ''.join(namespaces.run(host, 'nft', 'list', 'table', family,
                                  'docker-bridges').stdout
                   for family in ('ip', 'ip6'))
    return re.sub(r'packets \d+ bytes \d+', '', text)


def dockers_container(namespaces, host):
    """docker0 with the address Docker gives it, and a container on it."""
    nsmod.sh('ip', '-n', host, 'link', 'add', 'docker0', 'type', 'bridge')
    theirs = namespaces.add()
    nsmod.sh('ip', '-n', host, 'link', 'add', 'vethd0', 'type', 'veth',
             'peer', 'name', 'eth0', 'netns', theirs)
    nsmod.sh('ip', '-n', host, 'link', 'set', 'vethd0', 'master', 'docker0',
             'up')
    for addr in DOCKER0:
        nsmod.sh('ip', '-n', host, 'addr', 'add', addr, 'dev', 'docker0',
                 'nodad')
    nsmod.sh('ip', '-n', host, 'link', 'set', 'docker0', 'up')
    for addr, gw in zip(THEIRS, DOCKER0):
        plen = gw.split('/')[1]
        namespaces.run(theirs, 'ip', 'addr', 'add', '%s/%s' % (addr, plen),
                       'dev', 'eth0', 'nodad')
    namespaces.run(theirs, 'ip', 'link', 'set', 'eth0', 'up')
    namespaces.run(theirs, 'ip', 'route', 'add', 'default', 'via',
                   '172.17.0.1')
    return theirs


@pytest.mark.parametrize('ruleset', RULESETS)
def test_bridges_beside_dockers_nftables(namespaces, driver_factory, engine,
                                         ruleset):
    host = namespaces.add()
    namespaces.run(host, 'nft', '-f', os.path.join(DATA, ruleset))
    before = docker_tables(namespaces, host)
    theirs = dockers_container(namespaces, host)
    drv = driver_factory(netns=host, port_driver='bridge',
                         docker_url=engine.url).start()
    test_ports.network(drv)
    _eid1, c1, _mac1, _join = test_ports.attach(drv, namespaces, host, 1)
    _eid2, c2, _mac2, _join = test_ports.attach(drv, namespaces, host, 2)
    # Within the network, both families.
    assert test_ports.ping(namespaces, c1, '10.77.0.3')
    assert test_ports.ping(namespaces, c2, 'fd00:77::2')
    # Isolated from Docker's containers, both ways.
    for addr in THEIRS:
        assert not test_ports.ping(namespaces, c1, addr, tries=2)
    assert not test_ports.ping(namespaces, theirs, '10.77.0.2', tries=2)
    # What the driver read of the engine, and said.
    wait_for_log(drv, 'runs its firewall on nftables')
    assert any(p.endswith('/info') for p in engine.paths)
    assert 'FORWARD\'s policy is DROP' not in drv.log_text()
    # Docker's tables are as they were.
    assert docker_tables(namespaces, host) == before


def test_forward_drop_under_nftables_is_named(namespaces, driver_factory,
                                              engine):
    """A FORWARD policy of DROP that iptables keeps (Docker on iptables
    before, or the operator's): on nftables nothing jumps to DOCKER-USER,
    so the driver says what drops its traffic and what to set; it changes
    no chain of others."""
    host = namespaces.add()
    namespaces.run(host, 'nft', '-f', os.path.join(DATA, RULESETS[0]))
    namespaces.run(host, 'iptables', '-P', 'FORWARD', 'DROP')
    drv = driver_factory(netns=host, port_driver='bridge',
                         docker_url=engine.url).start()
    wait_for_log(drv, 'iptables: FORWARD\'s policy is DROP, and Docker '
                 'on nftables jumps to no DOCKER-USER')
    assert '-P FORWARD DROP' in namespaces.run(
        host, 'iptables', '-S', 'FORWARD').stdout


def wait_for_log(drv, text, timeout=10):
    deadline = time.monotonic() + timeout
    while text not in drv.log_text():
        assert time.monotonic() < deadline, drv.log_tail()
        time.sleep(0.05)
