"""What an idle host asks of the Contrail API, audit by audit.

A contrail driver with one network and one joined endpoint; its periodic
audit runs in the test's process (tests.idle_host) and is counted at the
API's proxy: requests, and the bytes the server answers.
"""

import pytest

from opencontrail_net.audit import findings
from opencontrail_net.audit import periodic
from opencontrail_net import ids
from tests import idle_host
from tests.functional import conftest


@pytest.fixture
def hosts(fake, workdir, namespaces):
    made = []

    def make(name='idle', **kwargs):
        netns = namespaces.add() if kwargs.pop('joined', True) else None
        host = idle_host.IdleHost(fake, workdir, name=name, netns=netns)
        made.append(host)
        return host
    yield make
    for host in reversed(made):
        host.close()


def cost(host):
    """(requests, bytes answered) of one audit round."""
    _report, requests = host.audit_requests()
    return requests, sum(host.api.answered())


def test_audit_cost_does_not_grow_with_other_hosts_networks(fake, hosts):
    """Past its first round, the audit reads only this host's networks:
    other hosts' networks in the same project cost it nothing, neither
    requests nor bytes; every FULL_EVERY-th round lists the project."""
    host = hosts().start()
    audit = host.start_audit()
    first, _ = cost(host)
    alone, alone_bytes = cost(host)
    # The network read by uuid, then its objects: the virtual-network,
    # its interfaces (twice: others' and this host's) and instance-ips.
    assert len(alone) == 5, alone
    assert ('POST', '/fqname-to-id') not in alone
    assert len(first) > len(alone)
    other = hosts('other', joined=False).start(networks=1, first=40,
                                               endpoint=False)
    one = cost(host)
    for n in range(41, 47):
        net = idle_host.net_body(n)
        other.drv.ok('NetworkDriver.CreateNetwork', net)
        other.nets.append(net)
    many = cost(host)
    assert one == many == (alone, alone_bytes)
    # The full round: the project's listings, which do grow.
    audit._rounds = periodic.FULL_EVERY
    full, full_bytes = cost(host)
    assert full == first and full_bytes > alone_bytes


def test_scoped_audit_finds_and_repairs_a_leak(fake, hosts):
    """A network Docker forgot while the driver's delete did not happen:
    found by the rounds that read only this host's networks, repaired on
    the second, as before."""
    host = hosts().start(networks=2)
    audit = host.start_audit()
    cost(host)
    leaked = host.nets[1]['NetworkID']
    del host.view.nets[leaked]
    report, _ = host.audit_requests()
    assert [(f.kind, f.network) for f in report.findings] == [
        (findings.NETWORK_LEAKED, leaked)]
    assert audit._rounds % periodic.FULL_EVERY
    report, _ = host.audit_requests()
    assert fake.get('virtual-network', ids.network_uuid(leaked)) is None
    host.nets.pop()
    report, _ = host.audit_requests()
    assert report.findings == []


def test_first_audit_of_a_process_finds_what_was_left_before(fake, hosts):
    """A network Docker removed while no driver ran: the next process's
    first audit lists the project and finds it."""
    host = hosts().start(networks=2)
    leaked = host.nets[1]['NetworkID']
    del host.view.nets[leaked]
    host.start_audit()
    report, _ = host.audit_requests()
    assert [(f.kind, f.network) for f in report.findings] == [
        (findings.NETWORK_LEAKED, leaked)]


conftest  # noqa: B018  (fixtures)
