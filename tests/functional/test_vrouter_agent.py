"""The vrouter agent client against a fake agent that answers as it does."""

import http.server
import json
import os
import socket
import threading
import time
import uuid

import pytest
import requests

from opencontrail_net import exception
from opencontrail_net import vrouter_agent
from opencontrail_net.vrouter_agent import AgentClient
from opencontrail_net.vrouter_agent import AgentError
from opencontrail_net.vrouter_agent import AgentUnreachable
from tests.agent_helpers import AgentTestClient
from tests.fakes.vrouter_agent import FakeAgent

VMI = '5b0b7a8e-1f2c-4d3e-9a4b-6c7d8e9f0a1b'
VM = '6c1c8b9f-2a3d-4e4f-8b5c-7d8e9f0a1b2c'
VN = '7d2d9ca0-3b4e-4f50-9c6d-8e9f0a1b2c3d'
PROJECT = '8e3eadb1-4c5f-4061-8d7e-9f0a1b2c3d4e'
MAC = '02:5b:0b:7a:8e:1f'
TAP = 'veth5b0b7a8ep0'


@pytest.fixture
def ports_dir(tmp_path):
    return str(tmp_path / 'ports')


@pytest.fixture
def agent(ports_dir):
    with FakeAgent(ports_dir) as fake:
        yield fake


@pytest.fixture
def client(agent, ports_dir):
    return AgentTestClient(url=agent.url, ports_dir=ports_dir, timeout=2.0)


def make_port(**changes):
    port = AgentClient.build_port(VMI, VM, VN, PROJECT, 'ctr-1',
                                  '10.1.2.3/24', None, TAP, MAC.upper())
    port.update(changes)
    return port


# -- build_port ---------------------------------------------------------------

def test_build_port_has_every_field_in_agent_form():
    port = AgentClient.build_port(VMI.upper(), VM, '{%s}' % VN,
                                  PROJECT.replace('-', ''), 'ctr-1',
                                  '10.1.2.3/24', 'FD00::3/64', TAP,
                                  '02-5B-0B-7A-8E-1F')
    assert port == {
        'id': VMI, 'instance-id': VM, 'vn-id': VN, 'vm-project-id': PROJECT,
        'display-name': 'ctr-1', 'ip-address': '10.1.2.3',
        'ip6-address': 'fd00::3', 'system-name': TAP, 'mac-address': MAC,
        'type': 0, 'rx-vlan-id': -1, 'tx-vlan-id': -1, 'vhostuser-mode': 0}
    assert AgentClient.build_port(VMI, VM, VN, PROJECT, 'c', None, '', TAP,
                                  MAC)['ip-address'] == ''


@pytest.mark.parametrize('changes', [
    {'vmi_uuid': 'not-a-uuid'}, {'vn_uuid': vrouter_agent._NIL_UUID},
    {'mac': '00:00:00:00:00:00'}, {'mac': '01:00:5e:00:00:01'},
    {'mac': '02:00:00:00:00'}, {'ipv4': 'fd00::1'}, {'ipv6': '10.0.0.1'},
    {'system_name': 'x' * 16}, {'system_name': ''},
])
def test_build_port_refuses_what_the_agent_would_lose(changes):
    args = dict(vmi_uuid=VMI, vm_uuid=VM, vn_uuid=VN, project_uuid=PROJECT,
                vm_name='c', ipv4='10.0.0.3', ipv6=None, system_name=TAP,
                mac=MAC)
    args.update(changes)
    with pytest.raises(ValueError):
        AgentClient.build_port(**args)


# -- add / get / delete -------------------------------------------------------

def test_add_get_delete(client, agent, ports_dir):
    client.add_port(make_port())
    assert list(agent.ports) == [VMI]
    stored = agent.ports[VMI]
    assert stored['system-name'] == TAP
    assert stored['mac-address'] == MAC
    # The agent keeps vlan ids in 16 bits.
    assert stored['rx-vlan-id'] == stored['tx-vlan-id'] == 65535
    assert stored['ip6-address'] == '::'
    # The agent wrote its port file.
    assert os.path.isfile(os.path.join(ports_dir, VMI))

    got = client.get_port(VMI)
    assert got['id'] == VMI and got['instance-id'] == VM
    assert got['ip-address'] == '10.1.2.3'
    assert got['plen'] == 24
    assert got['gateway'] == '10.1.2.254'
    assert got['dns-server'] == '10.1.2.253'

    client.delete_port(VMI)
    assert agent.ports == {}
    assert client.get_port(VMI) is None
    assert not os.path.exists(os.path.join(ports_dir, VMI))
    assert agent.requests == [('POST', '/port'), ('GET', '/port/' + VMI),
                              ('DELETE', '/port/' + VMI),
                              ('GET', '/port/' + VMI)]


def test_delete_unknown_port_is_fine(client, agent):
    client.delete_port(VMI)
    client.delete_port(VMI)
    assert agent.requests == [('DELETE', '/port/' + VMI)] * 2


def test_get_unknown_port_is_none(client):
    assert client.get_port(VMI) is None


def test_add_again_for_the_same_vm_keeps_the_first_port(client, agent):
    client.add_port(make_port())
    client.add_port(make_port(**{'system-name': 'tapother'}))
    assert agent.ports[VMI]['system-name'] == TAP


def test_sync_ports_drops_ports_not_added_again(client, agent):
    other = '9f4fbec2-5d60-4172-9e8f-0a1b2c3d4e5f'
    client.add_port(make_port())
    client.add_port(make_port(id=other, **{'system-name': 'tapother'}))
    client.sync_ports()
    assert agent.version == 1
    client.add_port(make_port())
    agent.run_stale_cleanup()
    assert list(agent.ports) == [VMI]


# -- errors -------------------------------------------------------------------

def _without(field):
    port = make_port()
    del port[field]
    return port


@pytest.mark.parametrize('port, text', [
    (_without('id'), 'Invalid or missing data for <id>'),
    (_without('vm-project-id'), 'Invalid or missing data for <vm-project-id>'),
    (_without('display-name'), 'Invalid or missing field for <display-name>'),
    (_without('ip6-address'), 'Invalid or missing field for <ip6-address>'),
    (_without('system-name'), 'Invalid or missing field for <system-name>'),
    (_without('tx-vlan-id'), 'Invalid or missing field for <tx-vlan-id>'),
    (make_port(type='0'), 'Invalid or missing field for <type>'),
    (make_port(type=0.0), 'Invalid or missing field for <type>'),
    (make_port(**{'rx-vlan-id': True}),
     'Invalid or missing field for <rx-vlan-id>'),
    (make_port(**{'instance-id': 42}),
     'Invalid or missing data for <instance-id>'),
    (make_port(**{'mac-address': '02:5b:0b:7a:8e'}),
     'Invalid MAC, Use xx:xx:xx:xx:xx:xx format'),
    (make_port(**{'mac-address': '02:5b:0b:7a:8e:1f:00'}),
     'Invalid MAC, Use xx:xx:xx:xx:xx:xx format'),
    (make_port(**{'mac-address': '02:5b:0g:7a:8e:1f'}),
     'Invalid MAC, Use xx:xx:xx:xx:xx:xx format'),
    (make_port(**{'mac-address': '00:00:00:00:00:00'}),
     'Invalid MAC, Use xx:xx:xx:xx:xx:xx format'),
    (make_port(**{'vn-id': '00000000-0000-0000-0000-000000000000'}),
     'Invalid VN uuid'),
    (make_port(**{'vn-id': 'not-a-uuid'}), 'Invalid VN uuid'),
])
def test_agent_refusal_is_agent_error_with_its_text(client, agent, port,
                                                    text):
    with pytest.raises(AgentError) as info:
        client.add_port(port)
    err = info.value
    assert not isinstance(err, AgentUnreachable)
    assert err.status == 500
    assert err.detail == text
    assert text in str(err)
    assert isinstance(err, exception.OpenContrailNetError)
    assert agent.ports == {}


def test_nil_vn_is_fine_for_a_namespace_port(client, agent):
    client.add_port(make_port(type=1, **{'vn-id': vrouter_agent._NIL_UUID}))
    assert agent.ports[VMI]['type'] == 1


def test_agent_reads_a_non_uuid_id_as_the_nil_uuid(agent):
    # The real agent does not refuse it: build_port must (see above).
    resp = requests.post(agent.url + '/port',
                         data=json.dumps(make_port(id='garbage')))
    assert resp.status_code == 200
    assert list(agent.ports) == [vrouter_agent._NIL_UUID]


def test_an_array_is_all_or_none_and_the_agent_hides_a_refusal(agent):
    other = make_port(id='9f4fbec2-5d60-4172-9e8f-0a1b2c3d4e5f')
    bad = make_port(**{'mac-address': '00:00:00:00:00:00'})
    resp = requests.post(agent.url + '/port', data=json.dumps([other, bad]))
    assert (resp.status_code, resp.json()) == (200, {})
    assert agent.ports == {}


def test_client_checks_an_array_itself(client, agent):
    other = make_port(id='9f4fbec2-5d60-4172-9e8f-0a1b2c3d4e5f')
    bad = make_port(**{'mac-address': '00:00:00:00:00:00'})
    with pytest.raises(ValueError, match='port 1: Invalid MAC'):
        client.add_port([other, bad])
    assert agent.requests == []
    client.add_port([other, make_port()])
    assert sorted(agent.ports) == sorted([VMI, other['id']])


def test_bad_json_is_agent_error(agent):
    resp = requests.post(agent.url + '/port', data='{"id": ')
    assert resp.status_code == 500
    assert resp.json() == {'error': '{ Invalid Json string ==> {"id":  }'}


# -- uppercase ----------------------------------------------------------------

def test_agent_routes_only_lowercase_uuids(agent):
    resp = requests.delete(agent.url + '/port/' + VMI.upper())
    assert resp.status_code == 404
    assert resp.json() == {'error': 'Unknown Request'}
    resp = requests.get(agent.url + '/port/' + VMI.upper())
    assert resp.status_code == 404


def test_client_lowercases_uuids(client, agent):
    client.add_port(make_port(id=VMI))
    assert client.get_port(VMI.upper())['id'] == VMI
    client.delete_port(VMI.upper())
    assert agent.ports == {}
    assert ('DELETE', '/port/' + VMI) in agent.requests


# -- readiness ----------------------------------------------------------------

def test_wait_ready_after_delay(ports_dir):
    with FakeAgent(ports_dir, ready_delay=0.5) as agent:
        client = AgentClient(url=agent.url, ports_dir=ports_dir)
        client.add_port(make_port())
        assert client.get_port(VMI) is None
        start = time.monotonic()
        assert client.wait_ready(VMI, timeout=5) is True
        assert 0.4 <= time.monotonic() - start < 2


def test_wait_ready_times_out(ports_dir):
    with FakeAgent(ports_dir, ready_delay=5) as agent:
        client = AgentClient(url=agent.url, ports_dir=ports_dir)
        client.add_port(make_port())
        start = time.monotonic()
        assert client.wait_ready(VMI, timeout=0.3) is False
        assert 0.25 <= time.monotonic() - start < 1


def test_not_ready_without_ipam(ports_dir):
    with FakeAgent(ports_dir, ipam=lambda port: None) as agent:
        client = AgentClient(url=agent.url, ports_dir=ports_dir)
        client.add_port(make_port())
        assert client.wait_ready(VMI, timeout=0.2) is False


# -- agent down ---------------------------------------------------------------

def test_agent_down_is_unreachable_quickly(client, agent):
    client.add_port(make_port())
    agent.set_down(True)
    for call in (lambda: client.add_port(make_port()),
                 lambda: client.get_port(VMI),
                 lambda: client.delete_port(VMI),
                 client.sync_ports):
        start = time.monotonic()
        with pytest.raises(AgentUnreachable) as info:
            call()
        assert time.monotonic() - start < 2
        assert info.value.code == 503
    start = time.monotonic()
    assert client.wait_ready(VMI, timeout=0.3) is False
    assert time.monotonic() - start < 2
    agent.set_down(False)
    assert client.get_port(VMI)['id'] == VMI


def test_agent_that_does_not_answer_is_unreachable():
    # A listening socket nobody accepts on: the connection is made, no answer.
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        sock.listen(8)
        url = 'http://127.0.0.1:%d' % sock.getsockname()[1]
        client = AgentClient(url=url, ports_dir='/nonexistent', timeout=0.3)
        start = time.monotonic()
        with pytest.raises(AgentUnreachable):
            client.get_port(VMI)
        assert time.monotonic() - start < 2


# -- port files ---------------------------------------------------------------

def test_port_file_round_trip(client, ports_dir, tmp_path):
    port = make_port()
    path = client.write_port_file(port)
    assert path == os.path.join(ports_dir, VMI)
    assert client.list_port_files() == [VMI]
    # No temp file is left (the fixture's agent made 'vm').
    assert sorted(os.listdir(ports_dir)) == sorted([VMI, 'vm'])

    # The agent at its start reads the file back as the port a POST gives.
    with FakeAgent(ports_dir, interface_exists=lambda name: name == TAP) as a:
        assert a.load_ports_dir() == [VMI]
        loaded = a.ports[VMI]
    other_dir = str(tmp_path / 'posted')
    with FakeAgent(other_dir) as b:
        AgentClient(url=b.url, ports_dir=other_dir).add_port(port)
        posted = b.ports[VMI]
        with open(os.path.join(other_dir, VMI)) as handle:
            agent_text = handle.read()
    assert loaded == posted

    # Same layout, same keys in the same order as the agent's own file.
    with open(path) as handle:
        client_text = handle.read()
    mine, theirs = json.loads(client_text), json.loads(agent_text)
    assert list(mine) == list(theirs)
    for key in ('author', 'time'):
        mine.pop(key), theirs.pop(key)
    assert mine == theirs
    assert client_text.startswith('{\n    "id": "%s",\n' % VMI)
    assert not client_text.endswith('\n')


def test_agent_start_skips_ports_without_interface(client, ports_dir):
    client.write_port_file(make_port())
    with FakeAgent(ports_dir, interface_exists=lambda name: False) as agent:
        assert agent.load_ports_dir() == []
        # A DPDK agent does not check.
        assert agent.load_ports_dir(check_port=False) == [VMI]


def test_agent_does_not_overwrite_a_file_written_first(client, agent,
                                                       ports_dir):
    client.write_port_file(make_port())
    client.add_port(make_port())
    assert client.read_port_file(VMI)['author'] == 'opencontrail-net'
    # DELETE removes it.
    client.delete_port(VMI)
    assert client.list_port_files() == []


def test_remove_and_list_port_files(client, ports_dir):
    assert client.list_port_files() == []
    client.write_port_file(make_port())
    os.makedirs(os.path.join(ports_dir, 'vm'), exist_ok=True)
    with open(os.path.join(ports_dir, 'README'), 'w') as handle:
        handle.write('not a port')
    assert client.list_port_files() == [VMI]
    client.remove_port_file(VMI)
    client.remove_port_file(VMI)
    assert client.list_port_files() == []
    assert client.read_port_file(VMI) is None


HUNG = str(uuid.uuid4())


def test_a_hung_call_holds_up_no_other():
    """Calls to the agent run side by side: one the agent does not answer
    waits its own timeout, while Join's and Leave's others go through."""
    release = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _answer(self):
            if self.path.endswith('/' + HUNG):
                release.wait(10)
            self.send_response(200)
            self.send_header('Content-Length', '2')
            self.end_headers()
            self.wfile.write(b'{}')

        do_GET = do_DELETE = _answer

    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    client = vrouter_agent.AgentClient(
        url='http://127.0.0.1:%d' % server.server_address[1], timeout=5)
    try:
        hung = threading.Thread(target=client.get_port, args=(HUNG,))
        hung.start()
        time.sleep(0.3)
        started = time.monotonic()
        client.delete_port(str(uuid.uuid4()))
        assert time.monotonic() - started < 1
        assert hung.is_alive()
    finally:
        release.set()
        hung.join(10)
        server.shutdown()
        server.server_close()
