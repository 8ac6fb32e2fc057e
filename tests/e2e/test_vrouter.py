"""Contrail backend and vrouter ports under a real dockerd.

The fake Contrail config API and the fake vrouter agent run in this test
process on loopback; the driver process talks to both.
"""

import json
import shutil
import tempfile
import time

import pytest
from vnc_api import vnc_api

from opencontrail_net import ids
from opencontrail_net import vrouter_agent as agent_client
from tests.e2e import plugin as plugin_mod
from tests import contrail_target
from tests.fakes import vrouter_agent


@pytest.fixture(scope='module')
def fakes():
    api = contrail_target.start()
    # This host's virtual-router, as Contrail's provisioning makes it.
    api.vrouter = contrail_target.virtual_router(
        contrail_target.vnc_client(api))
    ports_dir = tempfile.mkdtemp(prefix='ocn-ports-')
    agent = vrouter_agent.FakeAgent(ports_dir)
    agent.start()
    yield api, agent
    agent.stop()
    api.stop()
    shutil.rmtree(ports_dir, ignore_errors=True)


def vrouter_plugin(fakes, prefix, **options):
    """A started driver plugin on the vrouter port driver, against the
    fakes; closed when the generator ends."""
    api, agent = fakes
    plugin = plugin_mod.DockerPlugin(
        prefix + ids.short_hash(str(time.time()), 6), backend='contrail',
        port_driver='vrouter', host=contrail_target.HOST,
        **contrail_target.driver_options(api, **dict({
            'vrouter.agent_url': agent.url,
            'vrouter.ports_dir': agent.ports_dir,
            'vrouter.port_ready_timeout': 2}, **options)))
    try:
        plugin.start()
        yield plugin
    finally:
        plugin.close()


@pytest.fixture(scope='module')
def drv(dockerd, fakes):
    yield from vrouter_plugin(fakes, 'ocnv')


def vmi_host(vmi):
    return {p.key: p.value for p in vmi.get_virtual_machine_interface_bindings(
        ).key_value_pair}['host_id']


def linked(vnc, vrouter):
    """The VMs the virtual-router refers to."""
    return [r['uuid'] for r in vnc.virtual_router_read(
        id=vrouter, fields=['virtual_machine_refs']).get_virtual_machine_refs()
        or []]


def test_container_port_matches_contrail(dockerd, drv, fakes):
    api, agent = fakes
    vnc = vnc_api.VncApi(api_server_host=api.host,
                         api_server_port=str(api.port), auth_type='noauth')
    dockerd.cli('network', 'create', '-d', drv.name, '--subnet',
                '192.168.44.0/24', '-o', 'rt=64512:100,64512:200', 'net4v')
    try:
        dockerd.cli('run', '-d', '--name', 'cv1', '--net', 'net4v',
                    'bb:latest', 'sleep', '600')
        info = json.loads(dockerd.cli('inspect', 'cv1').stdout)[0]
        ep = info['NetworkSettings']['Networks']['net4v']
        assert len(agent.ports) == 1
        port = list(agent.ports.values())[0]
        vmi = vnc.virtual_machine_interface_read(
            id=ids.endpoint_uuid(ep['EndpointID']))
        vn = vnc.virtual_network_read(id=ids.network_uuid(ep['NetworkID']))
        assert port['id'] == vmi.uuid
        vm_uuid = vmi.get_virtual_machine_refs()[0]['uuid']
        assert port['instance-id'] == vm_uuid
        # The agent gets the port's config only through this host's
        # virtual-router: it refers to the container's VM.
        assert vmi_host(vmi) == contrail_target.HOST
        assert linked(vnc, api.vrouter) == [vm_uuid]
        assert port['vn-id'] == vn.uuid
        assert port['vm-project-id'] == vn.parent_uuid
        mac = vmi.get_virtual_machine_interface_mac_addresses(
            ).mac_address[0]
        assert port['mac-address'] == mac == ep['MacAddress']
        assert port['ip-address'] == ep['IPAddress']
        eth0 = dockerd.cli('exec', 'cv1', 'ip', 'addr', 'show',
                           'eth0').stdout
        assert mac in eth0 and '%s/24' % ep['IPAddress'] in eth0
        # The host end the agent attaches exists, named from the endpoint.
        assert port['system-name'] in plugin_mod.host_links(('veth',))
        assert port['system-name'].startswith('veth' + ep['EndpointID'][:8])
        # The agent loses its ports while the driver is down: the driver
        # registers the running container's port again when it starts.
        drv.kill()
        agent_client.AgentClient(url=agent.url).delete_port(port['id'])
        assert agent.ports == {}
        drv.start()
        assert list(agent.ports.values()) == [port]
        assert linked(vnc, api.vrouter) == [vm_uuid]
        dockerd.cli('rm', '-f', 'cv1')
        assert agent.ports == {}
        assert plugin_mod.leftovers([ep['EndpointID']]) == []
        # The Contrail deletes follow DeleteEndpoint's answer.
        deadline = time.monotonic() + 20
        while linked(vnc, api.vrouter) or api.get('virtual-machine',
                                                  vm_uuid) is not None:
            assert time.monotonic() < deadline, (
                linked(vnc, api.vrouter), drv.log_tail())
            time.sleep(0.1)
    finally:
        dockerd.cli('rm', '-f', 'cv1', check=False)
        dockerd.cli('network', 'rm', 'net4v', check=False)
    assert api.objects('virtual-machine-interface') == []
    assert api.objects('virtual-network') == []


@pytest.fixture(scope='module')
def pooled_drv(dockerd, fakes):
    """The same driver with a port pool of 2 per network."""
    yield from vrouter_plugin(fakes, 'ocnp', **{'contrail.port_pool_size': 2})


def free_pooled(api, network_id):
    """uuids of the pooled interfaces of a network no endpoint has."""
    found = []
    for vmi in api.objects('virtual-machine-interface'):
        pairs = (vmi.get('annotations') or {}).get('key_value_pair') or []
        view = json.loads({p['key']: p['value'] for p in pairs}.get(
            'opencontrail-net', '{}'))
        if view.get('pool_of') == network_id:
            found.append(vmi['uuid'])
    return sorted(found)


def wait_until(what, timeout=20):
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, what.__doc__
        time.sleep(0.1)


def test_pooled_container_port_matches_contrail(dockerd, pooled_drv, fakes):
    """docker run on a network with a port pool: the container's port is
    a pooled interface, its VM linked to this host's virtual-router ahead
    of time; a restart re-registers it, docker rm removes it, and docker
    network rm leaves nothing of the pool."""
    api, agent = fakes
    vnc = vnc_api.VncApi(api_server_host=api.host,
                         api_server_port=str(api.port), auth_type='noauth')
    dockerd.cli('network', 'create', '-d', pooled_drv.name, '--subnet',
                '192.168.45.0/24', 'net4p')
    try:
        nid = json.loads(dockerd.cli('network', 'inspect',
                                     'net4p').stdout)[0]['Id']

        def full():
            """the pool filled"""
            return len(free_pooled(api, nid)) == 2
        wait_until(full)
        ready = free_pooled(api, nid)
        dockerd.cli('run', '-d', '--name', 'cp1', '--net', 'net4p',
                    'bb:latest', 'sleep', '600')
        ep = json.loads(dockerd.cli('inspect', 'cp1').stdout)[0][
            'NetworkSettings']['Networks']['net4p']
        port = list(agent.ports.values())[0]
        assert port['id'] in ready
        vmi = vnc.virtual_machine_interface_read(id=port['id'])
        vm_uuid = vmi.get_virtual_machine_refs()[0]['uuid']
        assert port['instance-id'] == vm_uuid
        assert vm_uuid in linked(vnc, api.vrouter)
        mac = vmi.get_virtual_machine_interface_mac_addresses(
            ).mac_address[0]
        assert port['mac-address'] == mac == ep['MacAddress']
        assert port['ip-address'] == ep['IPAddress']
        eth0 = dockerd.cli('exec', 'cp1', 'ip', 'addr', 'show',
                           'eth0').stdout
        assert mac in eth0 and '%s/24' % ep['IPAddress'] in eth0
        wait_until(full)
        pooled_drv.kill()
        agent_client.AgentClient(url=agent.url).delete_port(port['id'])
        pooled_drv.start()
        assert list(agent.ports.values()) == [port]
        dockerd.cli('rm', '-f', 'cp1')
        assert agent.ports == {}

        def gone():
            """the container's interface and VM deleted"""
            return (api.get('virtual-machine-interface', port['id']) is None
                    and api.get('virtual-machine', vm_uuid) is None)
        wait_until(gone)
        assert vm_uuid not in linked(vnc, api.vrouter)
    finally:
        dockerd.cli('rm', '-f', 'cp1', check=False)
        dockerd.cli('network', 'rm', 'net4p', check=False)
    assert api.objects('virtual-machine-interface') == []
    assert api.objects('virtual-machine') == []
    assert linked(vnc, api.vrouter) == []
    assert api.objects('virtual-network') == []
