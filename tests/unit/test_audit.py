"""The audit's decisions, without a dockerd: what it finds, what it
repairs, and when it repairs nothing because it cannot be sure."""

import os
import socket
import threading

import pytest

from opencontrail_net import audit
from opencontrail_net.cmd import manage
from opencontrail_net import exception
from opencontrail_net import model

A, B = 'a' * 64, 'b' * 64
EA, EB = 'e' * 63 + 'a', 'e' * 63 + 'b'


class Conf:
    host = 'h1'


class View:
    """Docker's networks of the driver, as DockerView.networks gives them."""

    driver_name = 'opencontrail'

    def __init__(self, networks):
        self._networks = networks

    def networks(self):
        return self._networks


class Backend:
    def __init__(self, networks, endpoints):
        self.networks = {n.id: n for n in networks}
        self.endpoints = endpoints     # network ID -> [Endpoint]
        self.deleted = []

    def owned_networks(self):
        return list(self.networks.values())

    def get_network(self, network_id):
        raise exception.NetworkNotFound(id=network_id)

    def vrouter_links(self):
        return None

    def foreign_objects(self, network):
        return []

    def network_endpoints(self, network, host):
        return self.endpoints.get(network.id, [])

    def find_endpoints(self, host, ids):
        return []

    def delete_network(self, network_id):
        self.deleted.append(network_id)

    def delete_endpoint(self, network, endpoint_id):
        self.deleted.append(endpoint_id)


class Ports:
    def __init__(self, interfaces=()):
        self.interfaces = list(interfaces)   # (name, endpoint ID, in a box)
        self.unplugged = []

    def host_interfaces(self):
        return self.interfaces

    def host_interface(self, endpoint_id):
        for name, ep_id, _inside in self.interfaces:
            if ep_id == endpoint_id:
                return name
        return None

    def port_state(self, network, endpoint):
        return None

    def unplug(self, network_id, endpoint_id):
        self.unplugged.append(endpoint_id)

    def network_deleted(self, network_id):
        pass


def docker_net(name, endpoints=()):
    return {'name': name, 'endpoints': {
        ep: {'container': 'c-' + ep[-1], 'container_id': 'f' * 64}
        for ep in endpoints}}


def audited(docker, networks, endpoints=None, interfaces=()):
    backend = Backend(networks, endpoints or {})
    ports = Ports(interfaces)
    view = View(docker)
    report = audit.collect(Conf(), backend, ports, view)
    return report, backend, ports, view


@pytest.mark.parametrize('case', [
    # (Docker's networks, the backend's, interfaces, findings, deleted)
    dict(docker={A: docker_net('a', [EA])}, backend=[A],
         eps={A: [EA]}, interfaces=[('vethA', EA, True)],
         kinds=[], deleted=[]),
    # Docker dropped network B while keeping A: B leaked, repaired.
    dict(docker={A: docker_net('a')}, backend=[A, B], eps={},
         interfaces=[], kinds=[audit.NETWORK_LEAKED], deleted=[B]),
    # An endpoint Docker forgot, idle: leaked, repaired.
    dict(docker={A: docker_net('a')}, backend=[A], eps={A: [EA]},
         interfaces=[('vethA', EA, False)],
         kinds=[audit.ENDPOINT_LEAKED], deleted=[EA]),
    # B leaked, but a container still has B's interface: left alone.
    dict(docker={A: docker_net('a')}, backend=[A, B], eps={B: [EB]},
         interfaces=[('vethB', EB, True)],
         kinds=[audit.NETWORK_LEAKED], deleted=[]),
    # Docker has a network the backend lost: shown, not repairable.
    dict(docker={A: docker_net('a'), B: docker_net('b')}, backend=[A],
         eps={}, interfaces=[], kinds=[audit.NETWORK_MISSING], deleted=[]),
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
    done = audit.repair(report, backend, ports, view)
    assert backend.deleted == case['deleted']
    if case['kinds'] == [audit.NETWORK_LEAKED] and not case['deleted']:
        assert 'running containers (vethB)' in done[0][1]


def test_docker_listing_none_of_ours_repairs_nothing():
    """A misspelt driver_name (or a Docker that answers an empty list):
    every network of this host looks leaked. Nothing is deleted."""
    networks = [model.Network(id=n, uuid='u') for n in (A, B)]
    report, backend, ports, view = audited({}, networks)
    assert [f.kind for f in report.findings] == [audit.NETWORK_LEAKED] * 2
    assert 'no network of driver' in report.unsure()
    with pytest.raises(exception.AuditUnsure) as err:
        audit.repair(report, backend, ports, view)
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
    periodic = audit.PeriodicAudit.__new__(audit.PeriodicAudit)
    periodic.conf, periodic.backend, periodic.ports = Conf2(), backend, ports
    periodic.claims, periodic.view = None, View({})
    periodic._previous = {(audit.NETWORK_LEAKED, A, None, None)}
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
