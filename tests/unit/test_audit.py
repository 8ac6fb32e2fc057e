"""The audit's decisions, without a dockerd: what it finds, what it
repairs, and when it repairs nothing because it cannot be sure."""

import dataclasses
import os
import socket
import threading

import pytest

from opencontrail_net.audit import compare
from opencontrail_net.audit import findings
from opencontrail_net.audit import periodic as periodic_mod
from opencontrail_net.audit import repairs
from opencontrail_net.cmd import manage
from opencontrail_net import docker_api
from opencontrail_net import exception
from opencontrail_net import inflight
from opencontrail_net import model

A, B, C = 'a' * 64, 'b' * 64, 'c' * 64
EA, EB, EC = 'e' * 63 + 'a', 'e' * 63 + 'b', 'e' * 63 + 'c'
EB2 = 'e' * 62 + 'b2'
# An endpoint of this host in a network the audit does not look at.
ED = 'e' * 63 + 'd'
SANDBOX = '/var/run/docker/netns/0123456789ab'

NM, NL = findings.NETWORK_MISSING, findings.NETWORK_LEAKED
EM, EL = findings.ENDPOINT_MISSING, findings.ENDPOINT_LEAKED
IM, IS = findings.INTERFACE_MISSING, findings.INTERFACE_STRAY
PM, AU = findings.PORT_MISSING, findings.AGENT_UNREACHABLE
VU = findings.VROUTER_UNLINKED
PS = findings.POLICY_STALE
NE = findings.NETWORK_ELSEWHERE
GO = findings.GROUP_ORPHAN
PL = findings.POOL_STALE
EX = 'e' * 63 + 'f'      # an endpoint bound on another host, h2


class Conf:
    host = 'h1'


class View:
    """Docker's networks of the driver, as DockerView.networks gives them."""

    driver_name = 'opencontrail'

    def __init__(self, networks, sandboxes=None):
        self._networks = networks
        # Container ID -> SandboxKey of the running ones (or an error).
        self.sandboxes = dict(sandboxes or {})

    def networks(self):
        if isinstance(self._networks, Exception):
            raise self._networks
        return self._networks

    def sandbox_key(self, container_id):
        key = self.sandboxes.get(container_id)
        if isinstance(key, Exception):
            raise key
        return key


class Recorder:
    """Records each call in ``calls`` (shared by the backend and the port
    driver: their order shows); a call named in ``fail`` raises."""

    def _call(self, name, *args):
        self.calls.append((name,) + args)
        if name in self.fail:
            raise self.fail[name]


class Backend(Recorder):
    def __init__(self, networks, endpoints, others=(), foreign=None,
                 links=None, held=(), calls=None, policies=(),
                 elsewhere=None, groups=(), queued=(), pools=None):
        self.networks = {n.id: n for n in networks}
        self.endpoints = endpoints     # network ID -> [Endpoint]
        # Networks this driver did not make, found by ID.
        self.others = {n.id: n for n in others}
        self.foreign = foreign or {}   # network ID -> [text]
        self.links = links
        # [(network, endpoint)] of this host anywhere, for find_endpoints.
        self.held = list(held)
        self.calls = [] if calls is None else calls
        self.fail = {}
        self.deleted = []
        self.policies = list(policies)
        # network ID -> {other host: [endpoint ID]}
        self.elsewhere = dict(elsewhere or {})
        self.groups = list(groups)
        # Endpoint deletes recorded and not done yet.
        self.queued = list(queued)
        # This host's port pools: network ID -> (free, taken).
        self.pools = dict(pools or {})

    def queued_deletes(self):
        return self.queued

    def port_pools(self):
        return dict(self.pools)

    def reclaim_port_pool(self, network_id):
        self._call('reclaim_port_pool', network_id)
        self.pools.pop(network_id, None)

    def orphan_groups(self, networks=None):
        return self.groups

    def remove_orphan_group(self, group):
        self._call('remove_orphan_group', group['uuid'])
        self.deleted.append(group['uuid'])

    def allow_policies(self, scoped=False):
        return self.policies

    def remove_allow_policy(self, policy):
        self._call('remove_allow_policy', policy['uuid'])
        self.deleted.append(policy['uuid'])

    def owned_networks(self, networks=None):
        return list(self.networks.values())

    def get_network(self, network_id):
        if network_id in self.others:
            return self.others[network_id]
        raise exception.NetworkNotFound(id=network_id)

    def vrouter_links(self):
        return self.links

    def foreign_objects(self, network):
        return self.foreign.get(network.id, [])

    def network_endpoints(self, network, host=None):
        assert host is None         # the audit looks at every host's
        mine = [dataclasses.replace(e, host=e.host or Conf.host)
                for e in self.endpoints.get(network.id, [])]
        return mine + [model.Endpoint(id=e, network_id=network.id, host=h)
                       for h, eps in self.elsewhere.get(network.id, {}
                                                        ).items()
                       for e in eps]

    def find_endpoints(self, host, ids):
        return [(n, e) for n, e in self.held if e.id in ids]

    def delete_network(self, network_id, only_host=None):
        # The audit's delete leaves other hosts' endpoints alone.
        assert only_host == Conf.host
        self._call('delete_network', network_id)
        self.deleted.append(network_id)

    def delete_endpoint(self, network, endpoint_id):
        self._call('delete_endpoint', network.id, endpoint_id)
        self.deleted.append(endpoint_id)


class Ports(Recorder):
    def __init__(self, interfaces=(), states=None, calls=None):
        self.interfaces = list(interfaces)   # (name, endpoint ID, in a box)
        self.states = states or {}           # endpoint ID -> port_state
        self.calls = [] if calls is None else calls
        self.fail = {}
        self.unplugged = []

    def host_interfaces(self):
        return self.interfaces

    def host_interface(self, endpoint_id):
        for name, ep_id, _inside in self.interfaces:
            if ep_id == endpoint_id:
                return name
        return None

    def port_state(self, network, endpoint):
        return self.states.get(endpoint.id)

    def unplug(self, network_id, endpoint_id):
        self._call('unplug', network_id, endpoint_id)
        self.unplugged.append(endpoint_id)

    def network_deleted(self, network_id):
        self._call('network_deleted', network_id)

    def reregister(self, network, endpoint):
        self._call('reregister', network.id, endpoint.id)

    def replug(self, network, endpoint, sandbox_key):
        self._call('replug', network.id, endpoint.id, sandbox_key)
        self.interfaces.append(('veth' + endpoint.id[-1].upper(),
                                endpoint.id, True))
        return 'eth1'


class Claims:
    """Claims granted like the driver's, recording the IDs asked for; from
    the ``unreadable_after``-th on, the calls in flight cannot be read."""

    def __init__(self, unreadable_after=None):
        self.asked = []
        self.unreadable_after = unreadable_after

    def repair(self, *ids):
        if self.unreadable_after is not None and \
                len(self.asked) >= self.unreadable_after:
            raise exception.AuditUnsure(
                reason='cannot read the calls in flight from the driver at '
                '/run/docker/plugins/opencontrail.sock (ConnectionResetError'
                ': [Errno 104] Connection reset by peer)')
        self.asked.append(ids)
        return repairs.NoClaims().repair(*ids)


def cid(endpoint_id):
    """The container ID docker_net gives the container of an endpoint."""
    return 'f' * 63 + endpoint_id[-1]


def docker_net(name, endpoints=()):
    return {'name': name, 'endpoints': {
        ep: {'container': 'c-' + ep[-1], 'container_id': cid(ep)}
        for ep in endpoints}}


def net(net_id, **kwargs):
    return model.Network(id=net_id, uuid='u-' + net_id[0], **kwargs)


def policy(gone=(B,), ours=((A, 'u-a'),), others=()):
    """An allow policy of ours between networks A and B."""
    return {'uuid': 'p-ab', 'fq_name': ['d', 'p', 'docker-allow-a-b'],
            'networks': [A, B], 'gone': list(gone), 'ours': list(ours),
            'others': list(others)}


def ep(ep_id, net_id, **kwargs):
    return model.Endpoint(id=ep_id, network_id=net_id, uuid='u-' + ep_id[-1],
                          **kwargs)


def audited(docker, networks, endpoints=None, interfaces=(), states=None,
            sandboxes=None, **backend_kwargs):
    calls = []
    backend = Backend(networks, endpoints or {}, calls=calls,
                      **backend_kwargs)
    ports = Ports(interfaces, states, calls=calls)
    view = View(docker, sandboxes)
    report = compare.collect(Conf(), backend, ports, view)
    return report, backend, ports, view


def group(network_id, uuid='g-c'):
    return {'uuid': uuid, 'fq_name': ['d', 'p', 'docker-' + network_id],
            'network': network_id}


def scenario(kind, **changes):
    """What gives one finding of ``kind``, beside network A of Docker (so
    Docker lists some of the driver's networks)."""
    joined = dict(docker={A: docker_net('a', [EA])}, networks=[net(A)],
                  endpoints={A: [ep(EA, A)]},
                  interfaces=[('vethA', EA, True)])
    case = {
        NL: dict(docker={A: docker_net('a')}, networks=[net(A), net(B)],
                 endpoints={B: [ep(EB, B)]},
                 interfaces=[('vethB', EB, False)]),
        NM: dict(docker={A: docker_net('a'), B: docker_net('b')},
                 networks=[net(A)]),
        EL: dict(docker={A: docker_net('a')}, networks=[net(A)],
                 endpoints={A: [ep(EA, A)]},
                 interfaces=[('vethA', EA, False)]),
        EM: dict(docker={A: docker_net('a', [EA])}, networks=[net(A)]),
        IM: dict(joined, interfaces=[], sandboxes={cid(EA): SANDBOX}),
        IS: dict(docker={A: docker_net('a')}, networks=[net(A)],
                 interfaces=[('vethD', ED, False)],
                 held=[(net(C), ep(ED, C))]),
        PM: dict(joined, states={EA: 'missing'}),
        AU: dict(joined, states={EA: 'unreachable'}),
        VU: dict(joined, endpoints={A: [ep(EA, A, vm_uuid='vm-a')]},
                 links=set()),
        PS: dict(docker={A: docker_net('a')}, networks=[net(A)],
                 policies=[policy()]),
        NE: dict(docker={A: docker_net('a')}, networks=[net(A), net(B)],
                 elsewhere={B: {'h2': [EX]}}),
        GO: dict(docker={A: docker_net('a')}, networks=[net(A)],
                 groups=[group(C)]),
        # Docker's network A keeps its pool; B's is this host's no more.
        PL: dict(docker={A: docker_net('a')}, networks=[net(A)],
                 pools={A: (2, 1), B: (3, 0)}),
        'clean': joined,
    }[kind]
    return dict(case, **changes)


def keys(report):
    return [f.key for f in report.findings]


@pytest.mark.parametrize('case', [
    # (Docker's networks, the backend's, interfaces, findings, deleted)
    dict(docker={A: docker_net('a', [EA])}, backend=[A],
         eps={A: [EA]}, interfaces=[('vethA', EA, True)],
         kinds=[], deleted=[]),
    # Docker dropped network B while keeping A: B leaked, repaired.
    dict(docker={A: docker_net('a')}, backend=[A, B], eps={},
         interfaces=[], kinds=[findings.NETWORK_LEAKED], deleted=[B]),
    # An endpoint Docker forgot, idle: leaked, repaired.
    dict(docker={A: docker_net('a')}, backend=[A], eps={A: [EA]},
         interfaces=[('vethA', EA, False)],
         kinds=[findings.ENDPOINT_LEAKED], deleted=[EA]),
    # B leaked, but a container still has B's interface: left alone.
    dict(docker={A: docker_net('a')}, backend=[A, B], eps={B: [EB]},
         interfaces=[('vethB', EB, True)],
         kinds=[findings.NETWORK_LEAKED], deleted=[]),
    # Docker has a network the backend lost: shown, not repairable.
    dict(docker={A: docker_net('a'), B: docker_net('b')}, backend=[A],
         eps={}, interfaces=[], kinds=[findings.NETWORK_MISSING], deleted=[]),
], ids=['in-step', 'network-leaked', 'endpoint-leaked',
        'leaked-but-in-use', 'network-missing'])
def test_findings_and_repairs(case):
    networks = [model.Network(id=n, uuid='u-' + n[0])
                for n in case['backend']]
    endpoints = {n: [model.Endpoint(id=e, network_id=n, uuid='u-' + e[-1])
                     for e in eps] for n, eps in case['eps'].items()}
    report, backend, ports, view = audited(case['docker'], networks,
                                           endpoints, case['interfaces'])
    assert sorted(f.kind for f in report.findings) == sorted(case['kinds'])
    assert report.unsure() is None
    done = repairs.repair(report, backend, ports, view)
    assert backend.deleted == case['deleted']
    if case['kinds'] == [findings.NETWORK_LEAKED] and not case['deleted']:
        assert 'running containers (vethB)' in done[0][1]


def test_docker_listing_none_of_ours_repairs_nothing():
    """A misspelt driver_name (or a Docker that answers an empty list):
    every network of this host looks leaked. Nothing is deleted."""
    networks = [model.Network(id=n, uuid='u') for n in (A, B)]
    report, backend, ports, view = audited({}, networks)
    assert [f.kind for f in report.findings] == [findings.NETWORK_LEAKED] * 2
    assert 'no network of driver' in report.unsure()
    with pytest.raises(exception.AuditUnsure) as err:
        repairs.repair(report, backend, ports, view)
    assert "driver_name" in str(err.value)
    assert backend.deleted == [] and ports.unplugged == []


def test_periodic_audit_repairs_nothing_when_unsure(tmp_path):
    networks = [model.Network(id=A, uuid='u')]
    backend, ports = Backend(networks, {}), Ports()

    class Conf2(Conf):
        docker_url = ''
        audit_interval = 0
        socket_path = str(tmp_path / 'x.sock')
        driver_name = 'opencontrail'
    periodic = periodic_mod.PeriodicAudit.__new__(periodic_mod.PeriodicAudit)
    periodic.conf, periodic.backend, periodic.ports = Conf2(), backend, ports
    periodic.claims, periodic.view = None, View({})
    periodic._previous = {(findings.NETWORK_LEAKED, A, None, None)}
    for _ in range(2):
        periodic.run_once()
    assert backend.deleted == []


def _serve_once(path, reply):
    """A Unix socket that answers one request with ``reply`` bytes."""
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen(1)

    def run():
        conn, _ = srv.accept()
        conn.recv(65536)
        conn.sendall(reply)
        conn.close()
        srv.close()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_in_flight_calls_unreadable_means_unsure(tmp_path):
    path = str(tmp_path / 'drv.sock')
    # No driver serves: nothing can be in flight.
    assert manage.DriverClaims(path)._in_flight() == set()
    thread = _serve_once(path, b'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n'
                         b'\r\n{"x":')
    with pytest.raises(exception.AuditUnsure) as err:
        manage.DriverClaims(path).repair(A)
    assert 'cannot read the calls in flight' in str(err.value)
    thread.join(5)
    os.unlink(path)
    body = b'{"InFlight": ["%s"]}' % A.encode()
    thread = _serve_once(path, b'HTTP/1.1 200 OK\r\nContent-Length: %d\r\n'
                         b'\r\n%s' % (len(body), body))
    with manage.DriverClaims(path).repair(A) as granted:
        assert not granted
    thread.join(5)


# What counts as a finding ---------------------------------------------------

@pytest.mark.parametrize('case, expected', [
    pytest.param(scenario('clean'), [],
                 id='endpoint-in-both-with-interface-is-clean'),
    pytest.param(scenario('clean', states={EA: 'ready'}), [],
                 id='agent-port-ready-is-clean'),
    pytest.param(scenario(NL), [(NL, B, None, None)],
                 id='network-leaked-its-endpoints-go-with-it'),
    pytest.param(scenario(NM), [(NM, B, None, None)],
                 id='network-in-docker-backend-missing-it'),
    pytest.param(scenario(NM, docker={A: docker_net('a'),
                                      B: docker_net('b', [EB])},
                          interfaces=[('vethB', EB, False)],
                          held=[(net(B), ep(EB, B))]),
                 [(NM, B, None, None)],
                 id='network-missing-its-interfaces-not-stray'),
    pytest.param(dict(docker={C: docker_net('c', [EC])}, networks=[],
                      others=[net(C, existing='default-domain:p:vn-c')],
                      endpoints={C: [ep(EC, C)]},
                      interfaces=[('vethC', EC, True)]), [],
                 id='network-of-others-found-by-id-is-clean'),
    pytest.param(scenario('clean', foreign={A: ['port p1 of project x']}),
                 [], id='foreign-objects-in-a-network-are-no-finding'),
    pytest.param(scenario(EM), [(EM, A, EA, None)],
                 id='endpoint-in-docker-backend-missing-it'),
    pytest.param(scenario(EL), [(EL, A, EA, 'vethA')],
                 id='endpoint-leaked-with-its-interface'),
    pytest.param(scenario(EL, interfaces=[]), [(EL, A, EA, None)],
                 id='endpoint-leaked-without-interface'),
    pytest.param(scenario(IM), [(IM, A, EA, None)],
                 id='interface-missing'),
    pytest.param(scenario(IM, states={EA: 'missing'}), [(IM, A, EA, None)],
                 id='interface-missing-agent-port-not-judged'),
    pytest.param(scenario(PM), [(PM, A, EA, 'vethA')], id='port-missing'),
    pytest.param(scenario(AU), [(AU, A, EA, None)],
                 id='agent-unreachable'),
    pytest.param(scenario(VU), [(VU, A, EA, None)], id='vrouter-unlinked'),
    pytest.param(scenario(VU, states={EA: 'missing'}),
                 [(VU, A, EA, None), (PM, A, EA, 'vethA')],
                 id='vrouter-unlinked-and-port-missing'),
    pytest.param(scenario(VU, links={'vm-a'}), [],
                 id='vrouter-linked-is-clean'),
    pytest.param(scenario(VU, links=None), [],
                 id='backend-without-vrouter-links-is-clean'),
    pytest.param(scenario(VU, endpoints={A: [ep(EA, A)]}), [],
                 id='endpoint-without-vm-not-judged-unlinked'),
    pytest.param(scenario(IS), [(IS, None, ED, 'vethD')],
                 id='interface-stray'),
    pytest.param(scenario(PS), [(PS, B, None, 'p-ab')], id='policy-stale'),
    pytest.param(scenario(PL), [(PL, B, None, None)], id='pool-stale'),
    pytest.param(scenario(PL, pools={B: (0, 1)}), [],
                 id='pool-with-only-taken-interfaces-is-not-stale'),
    pytest.param(scenario(PS, policies=[policy(gone=[A, B], ours=[])]),
                 [(PS, A, None, 'p-ab')], id='policy-stale-both-gone'),
    pytest.param(scenario(PS, policies=[policy(gone=[], ours=[
        (A, 'u-a'), (B, 'u-b')])]), [], id='policy-in-use-is-clean'),
    pytest.param(scenario(IS, held=[]), [],
                 id='idle-interface-of-endpoint-backend-lacks-not-stray'),
    pytest.param(scenario(IS, interfaces=[('vethD', ED, True)]), [],
                 id='interface-in-a-container-not-stray'),
    pytest.param(scenario(EL, interfaces=[('vethA', EA, False)],
                          held=[(net(A), ep(EA, A))]),
                 [(EL, A, EA, 'vethA')],
                 id='leaked-endpoint-interface-not-also-stray'),
    pytest.param(dict(docker={A: docker_net('a', [EA])},
                      networks=[net(A), net(B)],
                      endpoints={A: [ep(EA, A)], B: [ep(EB, B)]},
                      interfaces=[('vethD', ED, False)],
                      held=[(net(C), ep(ED, C))]),
                 [(IM, A, EA, None), (NL, B, None, None),
                  (IS, None, ED, 'vethD')],
                 id='several-networks-first-then-strays'),
])
def test_what_is_a_finding(case, expected):
    report, _backend, _ports, _view = audited(**case)
    assert keys(report) == expected
    assert report.clean is (not expected)
    assert report.unsure() is None


def test_queued_delete_is_shown_not_leaked():
    """An endpoint whose delete the backend has recorded and not done
    yet is on its way out: shown as such, neither leaked nor repaired."""
    queued = {'endpoint': EA, 'network': A, 'queued': 1.0, 'attempts': 2,
              'error': 'Contrail API: service unavailable'}
    report, backend, ports, view = audited(
        {A: docker_net('a')}, [net(A)], {A: [ep(EA, A)]},
        [('vethA', EA, False)], queued=[queued])
    assert report.clean
    assert report.queued_deletes == [queued]
    assert report.to_dict()['queued_deletes'] == [queued]
    assert repairs.repair(report, backend, ports, view) == []
    assert backend.deleted == []


def test_rows_show_foreign_objects_and_networks_of_others():
    report, _b, _p, _v = audited(
        docker={A: docker_net('a', [EA]), C: docker_net('c')},
        networks=[net(A)], others=[net(C, existing='default-domain:p:vn-c')],
        endpoints={A: [ep(EA, A)]}, interfaces=[('vethA', EA, True)],
        foreign={A: ['port p1 of project x']})
    assert report.clean
    rows = {row['id']: row for row in report.networks}
    assert rows[A]['foreign_objects'] == ['port p1 of project x']
    assert rows[A]['endpoints'][0]['host_interface'] == 'vethA'
    assert rows[C]['backend']['existing'] == 'default-domain:p:vn-c'
    assert rows[C]['in_docker']


def test_leaked_network_names_the_objects_of_others_in_it():
    report, _b, _p, _v = audited(**scenario(
        NL, foreign={B: ['port p1 of project x', 'port p2 of project y']}))
    assert [str(f) for f in report.findings] == [
        'network-leaked: network %s (the backend has a network of this host '
        'that Docker no longer has): held by objects of others: port p1 of '
        'project x; port p2 of project y' % B]


class Client:
    """The Docker Engine API client, as DockerView uses it."""

    def __init__(self, networks):
        self._networks = networks    # [network inspect]

    def networks(self, filters):
        return [{'Id': n['Id'], 'Driver': n['Driver']}
                for n in self._networks]

    def inspect_network(self, network_id):
        return next(n for n in self._networks if n['Id'] == network_id)

    def close(self):
        pass


def entry(endpoint_id, name):
    return {'EndpointID': endpoint_id, 'Name': name,
            'MacAddress': '02:42:ac:11:00:02', 'IPv4Address': '10.0.0.2/24',
            'IPv6Address': ''}


@pytest.mark.parametrize('containers, expected', [
    pytest.param({cid(EA): entry(EA, 'c-a')}, [], id='local-endpoint'),
    pytest.param({cid(EA): entry(EA, 'c-a'),
                  'ep-' + EB: entry(EB, 'remote-b')}, [],
                 id='remote-endpoint-of-multi-host-network-ignored'),
    pytest.param({cid(EA): entry(EA, 'c-a'), cid(EB): entry('', 'c-b')}, [],
                 id='container-without-endpoint-ignored'),
    pytest.param({cid(EA): entry(EA, 'c-a'), cid(EB): entry(EB, 'c-b')},
                 [(EM, A, EB, None)], id='local-endpoint-backend-lacks'),
])
def test_docker_endpoints_of_this_host_only(containers, expected):
    view = docker_api.DockerView('unix://docker.sock', 'opencontrail')
    client = Client([
        {'Id': A, 'Name': 'a', 'Driver': 'opencontrail',
         'Containers': containers},
        {'Id': C, 'Name': 'c', 'Driver': 'overlay',
         'Containers': {cid(EC): entry(EC, 'c-c')}}])
    view._client = lambda: client
    backend = Backend([net(A)], {A: [ep(EA, A)]})
    ports = Ports([('vethA', EA, True)])
    report = compare.collect(Conf(), backend, ports, view)
    assert keys(report) == expected
    assert [row['id'] for row in report.networks] == [A]


def test_docker_unreachable_is_an_error_not_an_empty_view():
    unavailable = exception.DockerUnavailable(url='unix://docker.sock',
                                              reason='connection refused')
    with pytest.raises(exception.DockerUnavailable):
        audited(unavailable, [net(A)])


# What repair() does ---------------------------------------------------------

def repaired(kind, claims=None, confirmed='all', **changes):
    report, backend, ports, view = audited(**scenario(kind, **changes))
    if confirmed == 'all':
        confirmed = set(keys(report))
    done = repairs.repair(report, backend, ports, view, claims, confirmed)
    return [(f.kind, action) for f, action in done], backend.calls


@pytest.mark.parametrize('kind, changes, action, calls, claimed', [
    pytest.param(NL, {}, 'deleted network %s (backend uuid u-b) and its '
                 'endpoints on this host' % B,
                 [('unplug', B, EB), ('delete_network', B),
                  ('network_deleted', B)], (B, None),
                 id='network-leaked-deleted'),
    pytest.param(EL, {}, 'deleted endpoint %s (interface uuid u-a)' % EA,
                 [('unplug', A, EA), ('delete_endpoint', A, EA)], (A, EA),
                 id='endpoint-leaked-deleted'),
    pytest.param(IM, {}, 'plugged endpoint %s into container c-a again '
                 '(vethA, eth1)' % EA, [('replug', A, EA, SANDBOX)],
                 (A, EA), id='interface-missing-plugged-again'),
    pytest.param(IM, {'sandboxes': {}},
                 'left: container c-a is not running', [], (A, EA),
                 id='interface-missing-container-not-running'),
    pytest.param(PM, {}, 'registered port u-a of endpoint %s with the '
                 'vrouter agent again' % EA, [('reregister', A, EA)],
                 (A, EA), id='port-missing-registered-again'),
    pytest.param(IS, {}, 'removed host interface vethD; the endpoint itself '
                 'is left to its network\'s audit', [('unplug', None, ED)],
                 (None, ED), id='interface-stray-removed'),
    pytest.param(PS, {}, 'deleted network-policy p-ab and the ref of '
                 'network %s to it' % A, [('remove_allow_policy', 'p-ab')],
                 (B, None, A), id='policy-stale-deleted'),
    pytest.param(GO, {}, 'deleted security-group g-c (d:p:docker-%s)' % C,
                 [('remove_orphan_group', 'g-c')], (C, None),
                 id='group-orphan-deleted'),
    pytest.param(PL, {}, 'deleted this host\'s free pooled interfaces of '
                 'network %s' % B, [('reclaim_port_pool', B)], (B, None),
                 id='pool-stale-reclaimed'),
    pytest.param(PS, {'policies': [policy(others=[
        'virtual-network u-n (d:p:nova)'])]},
                 'left: objects of others refer to it (virtual-network u-n '
                 '(d:p:nova))', [], (B, None, A),
                 id='policy-stale-held-by-others-left'),
])
def test_repair_of_confirmed_finding(kind, changes, action, calls, claimed):
    claims = Claims()
    done, made = repaired(kind, claims, **changes)
    assert done == [(kind, action)]
    assert made == calls
    assert claims.asked == [claimed]


REPAIRABLE = sorted(findings.REPAIRABLE)
NOT_REPAIRABLE = [NM, EM, AU, VU, NE]


@pytest.mark.parametrize('kind', REPAIRABLE)
@pytest.mark.parametrize('confirmed', [
    pytest.param(set(), id='nothing-seen-before'),
    pytest.param({(NL, C, None, None), (EL, A, EB, None),
                  (IS, None, EA, 'vethA')}, id='others-seen-before'),
])
def test_repair_leaves_finding_seen_once(kind, confirmed):
    done, made = repaired(kind, confirmed=confirmed)
    assert done == [(kind, 'left: seen once, checked again on the next '
                     'audit')]
    assert made == []


@pytest.mark.parametrize('kind, busy, left', [
    pytest.param(NL, B, True, id='network-leaked-network-busy'),
    pytest.param(EL, EA, True, id='endpoint-leaked-endpoint-busy'),
    pytest.param(EL, A, True, id='endpoint-leaked-network-busy'),
    pytest.param(IM, EA, True, id='interface-missing-endpoint-busy'),
    pytest.param(PM, A, True, id='port-missing-network-busy'),
    pytest.param(IS, ED, True, id='interface-stray-endpoint-busy'),
    pytest.param(NL, A, False, id='network-leaked-other-network-busy'),
    pytest.param(IS, EA, False, id='interface-stray-other-endpoint-busy'),
    pytest.param(PS, B, True, id='policy-stale-gone-network-busy'),
    pytest.param(PS, A, True, id='policy-stale-other-network-busy'),
    pytest.param(PS, C, False, id='policy-stale-third-network-busy'),
])
def test_repair_leaves_what_a_call_in_flight_holds(kind, busy, left):
    flight = inflight.InFlight()
    with flight.call(busy):
        done, made = repaired(kind, flight)
    if left:
        assert done == [(kind, 'left: a Docker call for it is in flight')]
        assert made == []
    else:
        assert not done[0][1].startswith('left')
        assert made


@pytest.mark.parametrize('kind', NOT_REPAIRABLE)
@pytest.mark.parametrize('confirmed', [
    pytest.param('all', id='confirmed'),
    pytest.param(None, id='no-confirmation-asked'),
])
def test_repair_refuses_what_it_cannot_repair(kind, confirmed):
    claims = Claims()
    done, made = repaired(kind, claims, confirmed=confirmed)
    assert done == [(kind, 'left: not repairable by the audit')]
    assert made == []
    assert claims.asked == []


@pytest.mark.parametrize('kind, where, name, error, action, calls', [
    pytest.param(NL, 'backend', 'delete_network',
                 exception.BackendUnavailable(reason='api down'),
                 'failed: backend unavailable: api down',
                 [('unplug', B, EB), ('delete_network', B)],
                 id='network-leaked-backend-down'),
    pytest.param(NL, 'ports', 'unplug', OSError('Device or resource busy'),
                 'failed: OSError: Device or resource busy',
                 [('unplug', B, EB)], id='network-leaked-unplug-crashes'),
    pytest.param(EL, 'backend', 'delete_endpoint',
                 exception.BackendError(reason='409 still referred to'),
                 'failed: backend error: 409 still referred to',
                 [('unplug', A, EA), ('delete_endpoint', A, EA)],
                 id='endpoint-leaked-backend-refuses'),
    pytest.param(IM, 'ports', 'replug',
                 exception.PortError(reason='no such netns'),
                 'failed: host interface error: no such netns',
                 [('replug', A, EA, SANDBOX)], id='interface-missing-replug'),
    pytest.param(IM, 'view', 'sandbox_key',
                 exception.DockerUnavailable(url='unix://docker.sock',
                                             reason='timed out'),
                 'failed: Docker Engine API at unix://docker.sock: timed out',
                 [], id='interface-missing-docker-down'),
    pytest.param(PM, 'ports', 'reregister', RuntimeError('agent closed'),
                 'failed: RuntimeError: agent closed',
                 [('reregister', A, EA)], id='port-missing-agent-crashes'),
    pytest.param(IS, 'ports', 'unplug',
                 exception.PortError(reason='cannot delete vethD'),
                 'failed: host interface error: cannot delete vethD',
                 [('unplug', None, ED)], id='interface-stray-unplug'),
    pytest.param(PS, 'backend', 'remove_allow_policy',
                 exception.Conflict(reason='network-policy p-ab is referred '
                                    'to by objects opencontrail-net did not '
                                    'make: virtual-network u-n'),
                 'failed: network-policy p-ab is referred to by '
                 'objects opencontrail-net did not make: virtual-network u-n',
                 [('remove_allow_policy', 'p-ab')],
                 id='policy-stale-referred-meanwhile'),
])
def test_repair_that_fails_says_so(kind, where, name, error, action, calls):
    report, backend, ports, view = audited(**scenario(kind))
    if where == 'view':
        view.sandboxes[cid(EA)] = error
    else:
        {'backend': backend, 'ports': ports}[where].fail[name] = error
    done = repairs.repair(report, backend, ports, view, None,
                          set(keys(report)))
    assert [(f.kind, a) for f, a in done] == [(kind, action)]
    assert backend.calls == calls


def test_a_failed_repair_does_not_stop_the_others():
    report, backend, ports, view = audited(
        docker={A: docker_net('a')}, networks=[net(A), net(B)],
        endpoints={A: [ep(EA, A)], B: [ep(EB, B)]})
    backend.fail['delete_endpoint'] = exception.BackendUnavailable(
        reason='api down')
    done = repairs.repair(report, backend, ports, view, None,
                          set(keys(report)))
    assert [(f.key, a) for f, a in done] == [
        ((EL, A, EA, None), 'failed: backend unavailable: api down'),
        ((NL, B, None, None), 'deleted network %s (backend uuid u-b) and '
         'its endpoints on this host' % B)]
    assert backend.deleted == [B]


# When it repairs nothing ----------------------------------------------------

@pytest.mark.parametrize('docker, networks, unsure, calls', [
    pytest.param({}, [net(A), net(B)], True, [],
                 id='docker-lists-none-backend-holds-two'),
    pytest.param({}, [net(B)], True, [],
                 id='docker-lists-none-backend-holds-one'),
    pytest.param({}, [], False, [('unplug', None, ED)],
                 id='docker-lists-none-backend-holds-none'),
    pytest.param({A: docker_net('a')}, [net(A), net(B)], False,
                 [('unplug', B, EB), ('delete_network', B),
                  ('network_deleted', B), ('unplug', None, ED)],
                 id='docker-lists-some-backend-holds-more'),
])
def test_docker_listing_none_while_backend_holds_some(docker, networks,
                                                      unsure, calls):
    report, backend, ports, view = audited(
        docker, networks, {B: [ep(EB, B)]},
        interfaces=[('vethB', EB, False), ('vethD', ED, False)],
        held=[(net(C), ep(ED, C))])
    assert IS in [f.kind for f in report.findings]
    if unsure:
        with pytest.raises(exception.AuditUnsure) as err:
            repairs.repair(report, backend, ports, view, None,
                           set(keys(report)))
        assert str(err.value) == (
            "the audit repairs nothing: Docker lists no network of driver "
            "'opencontrail' while the backend holds %d of this host's: is "
            "driver_name right, and is it the Docker this host's driver "
            "serves?" % len(networks))
    else:
        assert report.unsure() is None
        repairs.repair(report, backend, ports, view, None, set(keys(report)))
    assert backend.calls == calls


def claims_case():
    report, backend, ports, view = audited(
        docker={A: docker_net('a')}, networks=[net(A), net(B)],
        endpoints={A: [ep(EA, A)], B: [ep(EB, B)]},
        interfaces=[('vethA', EA, False), ('vethB', EB, False)])
    assert keys(report) == [(EL, A, EA, 'vethA'), (NL, B, None, None)]
    return report, backend, ports, view


def test_claims_unreadable_repairs_nothing():
    report, backend, ports, view = claims_case()
    with pytest.raises(exception.AuditUnsure) as err:
        repairs.repair(report, backend, ports, view, Claims(0),
                       set(keys(report)))
    assert not isinstance(err.value, exception.AuditStopped)
    assert 'cannot read the calls in flight' in str(err.value)
    assert backend.calls == []


def test_claims_unreadable_after_a_repair_say_what_was_done():
    """Unreadable after one repair: the audit stops there, and says what
    it repaired and what it left."""
    report, backend, ports, view = claims_case()
    with pytest.raises(exception.AuditStopped) as err:
        repairs.repair(report, backend, ports, view, Claims(1),
                       set(keys(report)))
    assert str(err.value).startswith(
        'the audit stopped, repairing nothing more: cannot read the calls '
        'in flight')
    assert backend.calls == [('unplug', A, EA), ('delete_endpoint', A, EA)]
    [(first, repaired), (second, left)] = err.value.done
    assert (first.kind, first.endpoint) == (EL, EA)
    assert not repaired.startswith(('left:', 'failed'))
    assert (second.kind, second.network) == (NL, B)
    assert left.startswith('left: cannot read the calls in flight')


@pytest.mark.parametrize('interfaces, live, calls', [
    pytest.param([('vethB', EB, True)], 'vethB', [],
                 id='its-endpoint-in-a-running-container'),
    pytest.param([('vethB', EB, False), ('vethB2', EB2, True)], 'vethB2',
                 [], id='one-of-its-endpoints-in-a-running-container'),
    pytest.param([('vethB2', EB2, True), ('vethB', EB, True)],
                 'vethB, vethB2', [], id='two-in-running-containers'),
    pytest.param([('vethB', EB, False), ('vethB2', EB2, False)], None,
                 [('unplug', B, EB), ('unplug', B, EB2),
                  ('delete_network', B), ('network_deleted', B)],
                 id='interfaces-idle-deleted'),
    pytest.param([], None,
                 [('unplug', B, EB), ('unplug', B, EB2),
                  ('delete_network', B), ('network_deleted', B)],
                 id='only-another-networks-interface-live-deleted'),
])
def test_network_with_live_interfaces_is_never_deleted(interfaces, live,
                                                       calls):
    report, backend, ports, view = audited(**scenario(
        NL, docker={A: docker_net('a', [EA])},
        endpoints={A: [ep(EA, A)], B: [ep(EB, B), ep(EB2, B)]},
        interfaces=[('vethA', EA, True)] + interfaces))
    assert keys(report) == [(NL, B, None, None)]
    # Neither confirmation nor claims stand in the way: only the check.
    done = repairs.repair(report, backend, ports, view)
    if live:
        assert [a for _f, a in done] == [
            'left: its endpoints have interfaces in running containers '
            '(%s)' % live]
    else:
        assert [a for _f, a in done] == [
            'deleted network %s (backend uuid u-b) and its endpoints on '
            'this host' % B]
    assert backend.calls == calls


def test_network_whose_container_started_since_the_look_is_kept():
    report, backend, ports, view = audited(**scenario(NL))
    ports.interfaces = [('vethB', EB, True)]
    done = repairs.repair(report, backend, ports, view)
    assert [a for _f, a in done] == [
        'left: its endpoints have interfaces in running containers (vethB)']
    assert backend.calls == []


# The periodic audit ---------------------------------------------------------

def periodic(backend, ports, view):
    class PeriodicConf(Conf):
        docker_url = ''
        audit_interval = 0
        driver_name = 'opencontrail'
    audits = periodic_mod.PeriodicAudit.__new__(periodic_mod.PeriodicAudit)
    audits.conf, audits.backend, audits.ports = PeriodicConf(), backend, ports
    audits.claims, audits.view = inflight.InFlight(), view
    audits._previous = None
    return audits


LEAK = {A: docker_net('a')}
BACK = {A: docker_net('a'), B: docker_net('b', [EB])}
DOWN = exception.DockerUnavailable(url='unix://docker.sock', reason='down')


@pytest.mark.parametrize('rounds, deleted', [
    pytest.param([LEAK, LEAK], [[], [B]], id='repaired-on-second-sighting'),
    pytest.param([LEAK, BACK, LEAK], [[], [], []],
                 id='back-in-docker-starts-over'),
    pytest.param([LEAK, DOWN, LEAK, LEAK], [[], [], [], [B]],
                 id='docker-unreachable-in-between-starts-over'),
])
def test_periodic_audit_repairs_what_two_audits_in_a_row_saw(
        rounds, deleted):
    _report, backend, ports, view = audited(**scenario(NL))
    audits = periodic(backend, ports, view)
    seen = []
    for docker in rounds:
        view._networks = docker
        audits.run_once()
        seen.append(list(backend.deleted))
    assert seen == deleted


@pytest.mark.parametrize('in_container, calls', [
    pytest.param(True, [], id='its-interface-in-a-running-container'),
    pytest.param(False, [('unplug', A, EA), ('delete_endpoint', A, EA)],
                 id='its-interface-idle-deleted'),
])
def test_leaked_endpoint_in_a_running_container_is_kept(in_container,
                                                        calls):
    """An endpoint Docker no longer lists while a running container still
    has its interface: Docker's view is wrong, the endpoint stays."""
    report, backend, ports, view = audited(**scenario(
        EL, interfaces=[('vethA', EA, in_container)]))
    [(finding, action)] = repairs.repair(report, backend, ports, view,
                                         confirmed=set(keys(report)))
    assert finding.kind == EL
    assert backend.calls == calls
    if in_container:
        assert action == ('left: its interface is in a running container '
                          '(vethA)')


# Other hosts' endpoints -----------------------------------------------------

@pytest.mark.parametrize('changes, expected', [
    pytest.param({}, [(NE, B, None, None)],
                 id='endpoints-elsewhere-network-left-to-them'),
    pytest.param({'elsewhere': {B: {'h2': [EX], 'h3': [EB2]}}},
                 [(NE, B, None, None)], id='endpoints-on-two-hosts'),
    pytest.param({'elsewhere': {A: {'h2': [EX]}}}, [(NL, B, None, None)],
                 id='only-a-network-docker-lacks-is-asked'),
    pytest.param({'elsewhere': {}}, [(NL, B, None, None)],
                 id='no-endpoints-elsewhere-leaked'),
])
def test_network_with_endpoints_on_other_hosts(changes, expected):
    report, backend, ports, view = audited(**scenario(NE, **changes))
    assert keys(report) == expected
    if expected[0][0] == NE:
        [finding] = report.findings
        assert 'endpoints on other hosts: h2: ' + EX in finding.detail
        [row] = [r for r in report.networks if r['id'] == B]
        assert 'h2' in row['elsewhere']
    done = repairs.repair(report, backend, ports, view,
                          confirmed=set(keys(report)))
    if expected[0][0] == NE:
        assert [action for _f, action in done] == [
            'left: not repairable by the audit']
        assert backend.calls == []


def test_endpoint_elsewhere_since_the_look_keeps_the_network():
    """Leaked when the audit looked; by the repair another host's
    container joined it: left, nothing deleted."""
    report, backend, ports, view = audited(**scenario(NL))
    backend.elsewhere = {B: {'h2': [EX]}}
    done = repairs.repair(report, backend, ports, view,
                          confirmed=set(keys(report)))
    assert [(f.kind, action) for f, action in done] == [
        (NL, 'left: endpoints on other hosts use it (h2: %s)' % EX)]
    assert backend.calls == []


@pytest.mark.parametrize('changes, expected', [
    pytest.param({}, [(GO, C, None, 'g-c')], id='group-of-no-network'),
    # Docker has the network: its create is under way (the group is made
    # before the virtual-network).
    pytest.param({'docker': {A: docker_net('a'), C: docker_net('c')}}, [
        (NM, C, None, None)], id='docker-has-it-no-orphan'),
])
def test_orphan_groups(changes, expected):
    report, _backend, _ports, _view = audited(**scenario(GO, **changes))
    assert keys(report) == expected
