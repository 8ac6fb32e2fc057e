"""The embedded default (mock backend, bridge ports) under a real dockerd."""

import json
import time

import pytest

from opencontrail_net import ids
from opencontrail_net.port_drivers import bridge as bridge_mod
from tests.e2e import dockerd as harness
from tests.e2e import plugin as plugin_mod
from tests import metrics_scrape
from tests import netns as nsmod


@pytest.fixture(scope='module')
def drv(dockerd):
    name = 'ocnb' + ids.short_hash(str(time.time()), 6)
    plugin = plugin_mod.DockerPlugin(name, port_driver='bridge',
                                     docker_url=dockerd.url)
    plugin.start()
    yield plugin
    plugin.close()


@pytest.fixture
def cleanup(dockerd):
    made = {'containers': [], 'networks': []}
    yield made
    for c in made['containers']:
        dockerd.cli('rm', '-f', c, check=False)
    for n in made['networks']:
        dockerd.cli('network', 'rm', n, check=False)


def network(dockerd, drv, cleanup, name, *args):
    dockerd.cli('network', 'create', '-d', drv.name, *args, name)
    cleanup['networks'].append(name)
    return json.loads(dockerd.cli('network', 'inspect', name).stdout)[0]


def run(dockerd, cleanup, name, *args):
    dockerd.cli('run', '-d', '--name', name, *args, 'bb:latest',
                'sleep', '600')
    cleanup['containers'].append(name)
    return json.loads(dockerd.cli('inspect', name).stdout)[0]


def sh(dockerd, container, *cmd, check=True):
    return dockerd.cli('exec', container, *cmd, check=check).stdout


def ip_link(dockerd, container):
    out = sh(dockerd, container, 'ip', '-o', 'link')
    return {line.split(':')[1].strip().split('@')[0]: line
            for line in out.splitlines()}


def test_network_create_and_inspect(dockerd, drv, cleanup):
    net = network(dockerd, drv, cleanup, 'net4', '--subnet',
                  '192.168.34.0/24', '-o', 'rt=64512:100,64512:200')
    assert net['Driver'] == drv.name
    assert net['IPAM']['Config'][0]['Subnet'] == '192.168.34.0/24'
    assert net['Options'] == {'rt': '64512:100,64512:200'}
    [record] = [n for n in drv.mock_rows('networks') if n['id'] == net['Id']]
    assert record['route_targets'] == ['target:64512:100',
                                       'target:64512:200']
    assert [s['cidr'] for s in record['subnets']] == ['192.168.34.0/24']


def test_route_targets_from_labels(dockerd, drv, cleanup):
    """The seed README's own command: --label, which Docker keeps to itself."""
    net = network(dockerd, drv, cleanup, 'net4l', '--label',
                  'rt=64512:100,64512:200', '--subnet', '192.168.3.0/24')
    assert net['Labels'] == {'rt': '64512:100,64512:200'}
    for _ in range(50):
        [record] = [n for n in drv.mock_rows('networks')
                    if n['id'] == net['Id']]
        if record['route_targets']:
            break
        time.sleep(0.1)
    assert record['route_targets'] == ['target:64512:100',
                                       'target:64512:200']


def test_two_containers_talk(dockerd, drv, cleanup):
    net = network(dockerd, drv, cleanup, 'net4b', '--subnet',
                  '192.168.34.0/24', '-o', 'mtu=1400')
    a = run(dockerd, cleanup, 'ca', '--net', 'net4b')
    b = run(dockerd, cleanup, 'cb', '--net', 'net4b')
    records = {e['id']: e for e in drv.mock_rows('endpoints')}
    for c in (a, b):
        ep = c['NetworkSettings']['Networks']['net4b']
        links = ip_link(dockerd, c['Name'].strip('/'))
        # Exactly one leg: no docker_gwbridge.
        assert set(links) == {'lo', 'eth0'}
        assert ep['MacAddress'] in links['eth0']
        assert ep['MacAddress'] == records[ep['EndpointID']]['mac']
        assert 'mtu 1400' in links['eth0']
        addr = sh(dockerd, c['Name'].strip('/'), 'ip', '-4', 'addr', 'show',
                  'eth0')
        assert '%s/24' % ep['IPAddress'] in addr
        route = sh(dockerd, c['Name'].strip('/'), 'ip', 'route')
        assert 'default via 192.168.34.1' in route
    assert plugin_mod.pings(
        dockerd, 'ca', b['NetworkSettings']['Networks']['net4b']['IPAddress'])
    assert plugin_mod.pings(dockerd, 'cb', '192.168.34.1')
    assert net['Id']


def test_connect_and_disconnect(dockerd, drv, cleanup):
    network(dockerd, drv, cleanup, 'netc1', '--subnet', '192.168.6.0/24')
    network(dockerd, drv, cleanup, 'netc2', '--subnet', '192.168.7.0/24')
    run(dockerd, cleanup, 'cc', '--net', 'netc1')
    dockerd.cli('network', 'connect', 'netc2', 'cc')
    assert set(ip_link(dockerd, 'cc')) == {'lo', 'eth0', 'eth1'}
    assert plugin_mod.pings(dockerd, 'cc', '192.168.7.1')
    ep = json.loads(dockerd.cli('inspect', 'cc').stdout)[0][
        'NetworkSettings']['Networks']['netc2']['EndpointID']
    # The host end (the container end is inside the container).
    assert plugin_mod.leftovers([ep], settle=0) == ['veth%sp0' % ep[:8]]
    dockerd.cli('network', 'disconnect', 'netc2', 'cc')
    assert set(ip_link(dockerd, 'cc')) == {'lo', 'eth0'}
    assert plugin_mod.leftovers([ep]) == []
    assert plugin_mod.pings(dockerd, 'cc', '192.168.6.1')


def test_dual_stack(dockerd, drv, cleanup):
    network(dockerd, drv, cleanup, 'net46', '--ipv6', '--subnet',
            '192.168.5.0/24', '--subnet', '2002:1::/64')
    a = run(dockerd, cleanup, 'c6a', '--net', 'net46')
    b = run(dockerd, cleanup, 'c6b', '--net', 'net46')
    ep_a = a['NetworkSettings']['Networks']['net46']
    ep_b = b['NetworkSettings']['Networks']['net46']
    assert ep_a['IPAddress'].startswith('192.168.5.')
    assert ep_a['GlobalIPv6Address'].startswith('2002:1::')
    addr = sh(dockerd, 'c6a', 'ip', 'addr', 'show', 'eth0')
    assert ep_a['GlobalIPv6Address'] + '/64' in addr
    assert plugin_mod.pings(dockerd, 'c6a', ep_b['GlobalIPv6Address'])
    assert plugin_mod.pings(dockerd, 'c6b', ep_a['IPAddress'])


def endpoint_ids(*containers):
    return [ep['EndpointID'] for c in containers
            for ep in c['NetworkSettings']['Networks'].values()]


def test_removal_leaves_nothing(dockerd, drv, cleanup):
    net = network(dockerd, drv, cleanup, 'netrm', '--subnet',
                  '192.168.8.0/24')
    eps = endpoint_ids(run(dockerd, cleanup, 'crm1', '--net', 'netrm'),
                       run(dockerd, cleanup, 'crm2', '--net', 'netrm'))
    assert len(plugin_mod.leftovers(eps, [net['Id']])) == 3
    dockerd.cli('rm', '-f', 'crm1', 'crm2')
    dockerd.cli('network', 'rm', 'netrm')
    assert net['Id'] not in [n['id'] for n in drv.mock_rows('networks')]
    assert [e for e in drv.mock_rows('endpoints')
            if e['network_id'] == net['Id']] == []
    assert plugin_mod.leftovers(eps, [net['Id']]) == []


def test_driver_killed_while_containers_run(dockerd, drv, cleanup):
    network(dockerd, drv, cleanup, 'netk', '--subnet', '192.168.9.0/24')
    a = run(dockerd, cleanup, 'ck1', '--net', 'netk')
    b = run(dockerd, cleanup, 'ck2', '--net', 'netk')
    drv.restart()
    ip_b = b['NetworkSettings']['Networks']['netk']['IPAddress']
    assert plugin_mod.pings(dockerd, 'ck1', ip_b)
    c = run(dockerd, cleanup, 'ck3', '--net', 'netk')
    eps = endpoint_ids(a, b, c)
    assert plugin_mod.pings(dockerd, 'ck3', ip_b)
    assert plugin_mod.pings(
        dockerd, 'ck1', c['NetworkSettings']['Networks']['netk']['IPAddress'])
    dockerd.cli('rm', '-f', 'ck1', 'ck2', 'ck3')
    dockerd.cli('network', 'rm', 'netk')
    net_id = a['NetworkSettings']['Networks']['netk']['NetworkID']
    assert net_id not in [n['id'] for n in drv.mock_rows('networks')]
    assert drv.mock_rows('endpoints') == []
    assert drv.mock_rows('vms') == []
    assert plugin_mod.leftovers(eps, [net_id]) == []


def test_bad_route_target(dockerd, drv, cleanup):
    before = drv.mock_rows('networks')
    res = dockerd.cli('network', 'create', '-d', drv.name, '--subnet',
                      '192.168.10.0/24', '-o', 'rt=banana', 'netbad',
                      check=False)
    cleanup['networks'].append('netbad')
    assert res.returncode != 0
    assert 'banana' in res.stderr
    assert 'netbad' not in dockerd.cli('network', 'ls', '--format',
                                       '{{.Name}}').stdout.split()
    assert drv.mock_rows('networks') == before


def test_misspelt_option_is_refused(dockerd, drv, cleanup):
    """A misspelt -o used to be ignored (the network then landed in the
    default project): refused, naming the key meant."""
    before = drv.mock_rows('networks')
    res = dockerd.cli('network', 'create', '-d', drv.name, '--subnet',
                      '192.168.11.0/24', '-o', 'tennant=blue', 'nettypo',
                      check=False)
    cleanup['networks'].append('nettypo')
    assert res.returncode != 0
    assert 'tennant' in res.stderr and 'did you mean tenant?' in res.stderr
    assert 'nettypo' not in dockerd.cli('network', 'ls', '--format',
                                        '{{.Name}}').stdout.split()
    assert drv.mock_rows('networks') == before
    # Docker's own keys go through, for every driver.
    dockerd.cli('network', 'create', '-d', drv.name, '--subnet',
                '192.168.11.0/24', '-o', 'com.docker.network.bridge.name=x',
                'netdock')
    cleanup['networks'].append('netdock')
    dockerd.cli('network', 'rm', 'netdock')


def bridge_of(network_id):
    return bridge_mod.BridgeDriver.find_bridge(network_id)


def test_leaked_network_gives_up_its_subnet(dockerd, drv, cleanup):
    """A network Docker removed while the driver was down leaks, its
    bridge keeping the gateway address: a new network of the same subnet
    removes it first, and its containers talk."""
    old = network(dockerd, drv, cleanup, 'netl1', '--subnet',
                  '192.168.12.0/24')
    run(dockerd, cleanup, 'cl0', '--net', 'netl1')
    dockerd.cli('rm', '-f', 'cl0')
    plugin_mod.kill_during(drv, lambda: dockerd.cli(
        'network', 'rm', 'netl1', check=False))
    assert 'netl1' not in dockerd.cli('network', 'ls', '--format',
                                      '{{.Name}}').stdout.split()
    assert old['Id'] in [n['id'] for n in drv.mock_rows('networks')]
    assert bridge_of(old['Id']) is not None

    try:
        new = network(dockerd, drv, cleanup, 'netl2', '--subnet',
                      '192.168.12.0/24')
        run(dockerd, cleanup, 'cl1', '--net', 'netl2')
        b = run(dockerd, cleanup, 'cl2', '--net', 'netl2')
        ip_b = b['NetworkSettings']['Networks']['netl2']['IPAddress']
        assert plugin_mod.pings(dockerd, 'cl1', ip_b)
        assert plugin_mod.pings(dockerd, 'cl1', '192.168.12.1')
        assert [n['id'] for n in drv.mock_rows('networks')
                if n['id'] in (old['Id'], new['Id'])] == [new['Id']]
        assert bridge_of(old['Id']) is None
        assert ('Network %s holds subnet 192.168.12.0/24 on this host'
                % old['Id']) in drv.log_text()
    finally:
        # What a failure here would leave of the leaked network.
        left = bridge_of(old['Id'])
        if left:
            nsmod.sh('ip', 'link', 'del', left, check=False)


def test_subnet_held_by_a_live_network_is_refused(dockerd, drv, cleanup):
    """Docker lets another IPAM driver hand out a subnet its default one
    gave a network: on this host one bridge carries it, the new network
    is refused naming the other, and nothing of it is made."""
    held = network(dockerd, drv, cleanup, 'neth1', '--subnet',
                   '192.168.14.0/24')
    run(dockerd, cleanup, 'ch1', '--net', 'neth1')
    before = drv.mock_rows('networks')
    res = dockerd.cli('network', 'create', '-d', drv.name, '--ipam-driver',
                      drv.name, '--subnet', '192.168.14.0/25', 'neth2',
                      check=False)
    cleanup['networks'].append('neth2')
    assert res.returncode != 0
    assert ('subnet 192.168.14.0/25 is held on this host by Docker network '
            '%s' % held['Id']) in res.stderr, res.stderr
    assert 'remove that network first' in res.stderr
    assert 'neth2' not in dockerd.cli('network', 'ls', '--format',
                                      '{{.Name}}').stdout.split()
    assert drv.mock_rows('networks') == before
    assert bridge_of(held['Id']) is not None
    assert plugin_mod.pings(dockerd, 'ch1', '192.168.14.1')


def test_metrics_of_a_container_run(dockerd, cleanup):
    """[DEFAULT] metrics_address under a real dockerd: docker run --rm
    shows as the calls Docker made, each timed."""
    address = '127.0.0.1:%d' % metrics_scrape.free_port()
    name = 'ocnm' + ids.short_hash(str(time.time()), 6)
    plugin = plugin_mod.DockerPlugin(name, port_driver='bridge',
                                     docker_url=dockerd.url,
                                     metrics_address=address)
    plugin.start()
    try:
        dockerd.cli('network', 'create', '-d', name, '--subnet',
                    '192.168.15.0/24', 'netm')
        cleanup['networks'].append('netm')
        dockerd.cli('run', '--rm', '--net', 'netm', 'bb:latest', 'true')
        samples = metrics_scrape.scrape(address)
        for call in ('NetworkDriver.CreateNetwork',
                     'NetworkDriver.CreateEndpoint', 'NetworkDriver.Join',
                     'NetworkDriver.Leave', 'NetworkDriver.DeleteEndpoint'):
            assert metrics_scrape.value(
                samples, 'opencontrail_net_call_seconds_count',
                call=call) >= 1, call
        assert metrics_scrape.value(samples, 'opencontrail_net_networks') == 1
        assert metrics_scrape.value(samples, 'opencontrail_net_endpoints') == 0
        assert metrics_scrape.total(
            samples, 'opencontrail_net_call_errors_total') == 0
        dockerd.cli('network', 'rm', 'netm')
    finally:
        dockerd.cli('network', 'rm', 'netm', check=False)
        plugin.close()


def test_engine_is_read_once_and_sets_the_spacing(dockerd, drv):
    """The driver reads the engine through docker_url and spaces
    DeleteEndpoint answers only where the engine has the race (before
    28.1); delete_spacing_ms is unset here."""
    version = harness.engine_version()
    text = '.'.join(map(str, version))
    expected = ('are not spaced on Docker %s' if version >= (28, 1) else
                'are spaced 50 ms apart on Docker %s') % text
    deadline = time.monotonic() + 10
    while expected not in drv.log_text():
        assert time.monotonic() < deadline, drv.log_tail()
        time.sleep(0.1)
    # Once per start of the driver (the module restarts it).
    log = drv.log_text()
    assert log.count('Docker Engine %s' % text) == log.count(
        'Starting: backend')


def test_run_cut_off_by_a_driver_restart(dockerd, drv, cleanup):
    """The driver dies while Docker waits on it at "docker run": Docker
    sends the call again, with no body, to the restarted driver. The user
    reads why the run failed and what to do; the run again works, and
    nothing of the first one is left."""
    net = network(dockerd, drv, cleanup, 'netcut', '--subnet',
                  '192.168.13.0/24')
    cleanup['containers'].append('ccut')
    result = {}
    plugin_mod.kill_during(drv, lambda: result.update(run=dockerd.cli(
        'run', '--name', 'ccut', '--net', 'netcut', 'bb:latest', 'true',
        check=False)))
    failed = result['run']
    assert failed.returncode != 0
    assert 'came with an empty body' in failed.stderr, failed.stderr
    assert 'run the command again' in failed.stderr
    dockerd.cli('rm', '-f', 'ccut', check=False)
    out = dockerd.cli('run', '--rm', '--name', 'ccut', '--net', 'netcut',
                      'bb:latest', 'echo', 'ran').stdout
    assert out.strip() == 'ran'
    assert [e for e in drv.mock_rows('endpoints')
            if e.get('network_id') == net['Id']] == []
