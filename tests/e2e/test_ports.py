"""Published ports and masquerade of the embedded default, on a real dockerd.

The "host" is a network namespace of this test, where dockerd and the
driver run; a second one, joined to it by a veth pair, plays another host
and a server outside. Rules and forwarding change only in those.
"""

import subprocess
import sys
import time
import uuid

import pytest

from tests.e2e import dockerd as harness
from tests.e2e import plugin as plugin_mod
from tests import netns as nsmod

HOST_ADDR = '198.18.71.1'
OUTSIDE_ADDR = '198.18.71.2'
HOST_ADDR6 = 'fd00:71::1'
OUTSIDE_ADDR6 = 'fd00:71::2'
SUBNET = '10.71.0.0/24'
SUBNET6 = 'fd00:7171::/64'
PAGE = 'hello-from-ocn'
# A server outside: prints the address its one client came from.
SERVER = '''
import socket
s = socket.socket()
s.bind(('%s', 9000))
s.listen(1)
s.settimeout(10)
print('listening', flush=True)
print(s.accept()[1][0])
'''


class World:
    """A host (dockerd and the driver) and another host outside.

    ``dockerd_defaults``: dockerd as users run it, managing iptables
    (forwarding is off before it starts, as when a host boots, so it sets
    FORWARD's policy to DROP); else with its firewall off.
    """

    def __init__(self, dockerd_defaults=False):
        self.namespaces = nsmod.Namespaces()
        self.daemon = self.drv = None
        self.dockerd_defaults = dockerd_defaults

    def start(self):
        self.host = self.namespaces.add(nsmod.unique('ocnph'))
        self.outside = self.namespaces.add(nsmod.unique('ocnpo'))
        nsmod.sh('ip', '-n', self.host, 'link', 'add', 'eth1', 'type',
                 'veth', 'peer', 'name', 'eth1', 'netns', self.outside)
        for ns, addr, addr6 in ((self.host, HOST_ADDR, HOST_ADDR6),
                                (self.outside, OUTSIDE_ADDR, OUTSIDE_ADDR6)):
            nsmod.sh('ip', '-n', ns, 'addr', 'add', addr + '/24', 'dev',
                     'eth1')
            nsmod.sh('ip', '-n', ns, 'addr', 'add', addr6 + '/64', 'dev',
                     'eth1', 'nodad')
            nsmod.sh('ip', '-n', ns, 'link', 'set', 'eth1', 'up')
        if self.dockerd_defaults:
            self.namespaces.run(self.host, 'sysctl', '-qw',
                                'net.ipv4.ip_forward=0')
        self.daemon = harness.DockerDaemon(harness.make_base_dir(),
                                           netns=self.host,
                                           defaults=self.dockerd_defaults)
        self.daemon.start()
        self.daemon.import_busybox()
        self.drv = plugin_mod.DockerPlugin(
            'ocnp' + uuid.uuid4().hex[:6], port_driver='bridge',
            netns=self.host, docker_url=self.daemon.url)
        self.drv.start()

    def close(self):
        # dockerd first: it removes its containers through the driver.
        if self.daemon is not None:
            self.daemon.stop()
        if self.drv is not None:
            self.drv.close()
        self.namespaces.close()

    def rules(self):
        """Our table, as an operator lists it in the host."""
        return self.namespaces.run(self.host, 'nft', 'list', 'table',
                                   'inet', 'opencontrail_net').stdout

    def fetch(self, ns, address, port, tries=20):
        """The page at address:port, fetched from namespace ``ns``."""
        host = '[%s]' % address if ':' in address else address
        for _ in range(tries):
            res = self.namespaces.run(
                ns, 'timeout', '3', 'busybox', 'wget', '-q', '-O', '-',
                'http://%s:%d/' % (host, port), check=False)
            if res.returncode == 0:
                return res.stdout
            time.sleep(0.2)
        return None

    def httpd(self, name, *args):
        self.daemon.cli('run', '-d', '--name', name, *args, 'bb:latest',
                        'sh', '-c', 'echo %s > /tmp/index.html && '
                        'exec httpd -f -p 8080 -h /tmp' % PAGE)


@pytest.fixture(scope='module')
def world(dockerd_host):
    w = World()
    try:
        w.start()
        yield w
    finally:
        w.close()


def test_published_port(world):
    d = world.daemon
    d.cli('network', 'create', '-d', world.drv.name, '--ipv6', '--subnet',
          SUBNET, '--subnet', SUBNET6, 'pnet')
    try:
        world.httpd('web', '--net', 'pnet', '-p', '18080:8080')
        # From another host, at the host's addresses (both families).
        assert world.fetch(world.outside, HOST_ADDR, 18080) == PAGE + '\n'
        assert world.fetch(world.outside, HOST_ADDR6, 18080) == PAGE + '\n'
        # From the host itself, localhost included.
        assert world.fetch(world.host, '127.0.0.1', 18080) == PAGE + '\n'
        assert world.fetch(world.host, HOST_ADDR, 18080) == PAGE + '\n'

        # A host port already published is refused, and named.
        res = d.cli('run', '-d', '--name', 'web2', '--net', 'pnet', '-p',
                    '18080:8080', 'bb:latest', 'sleep', '60', check=False)
        assert res.returncode == 125
        assert 'host port 18080/tcp is already published' in res.stderr
        d.cli('rm', '-f', 'web2')

        # A range takes its first free port; HostIP binds one address.
        d.cli('run', '-d', '--name', 'rng', '--net', 'pnet', '-p',
              '18080-18082:8080', '-p', '127.0.0.1:18083:8083/udp',
              'bb:latest', 'sleep', '600')
        rules = world.rules()
        assert 'tcp dport 18081 dnat ip to 10.71.0.' in rules
        assert 'ip daddr 127.0.0.1 udp dport 18083' in rules
        d.cli('rm', '-f', 'rng')
        assert '18081' not in world.rules()

        # The container reaches a server outside, which sees the host.
        server = subprocess.Popen(
            ['ip', 'netns', 'exec', world.outside, sys.executable, '-c',
             SERVER % OUTSIDE_ADDR], stdout=subprocess.PIPE, text=True)
        try:
            assert server.stdout.readline().strip() == 'listening'
            d.cli('exec', 'web', 'sh', '-c',
                  'echo hi | nc -w 3 %s 9000' % OUTSIDE_ADDR, check=False)
            peer, _ = server.communicate(timeout=15)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
        assert peer.strip() == HOST_ADDR

        endpoint = d.cli('inspect', '-f',
                         '{{.NetworkSettings.Networks.pnet.EndpointID}}',
                         'web').stdout.strip()
        assert endpoint in world.rules()
        d.cli('rm', '-f', 'web')
        rules = world.rules()
        assert '18080' not in rules and endpoint not in rules
        assert world.fetch(world.outside, HOST_ADDR, 18080, tries=1) is None
        assert '10.71.0.0/24' in rules
    finally:
        d.cli('rm', '-f', 'web', 'web2', 'rng', check=False)
        d.cli('network', 'rm', 'pnet', check=False)
    rules = world.rules()
    assert '10.71.0.0' not in rules and 'fd00:7171' not in rules, rules


def test_no_masquerade_and_internal(world):
    d = world.daemon
    d.cli('network', 'create', '-d', world.drv.name, '--subnet',
          '10.72.0.0/24', '-o',
          'com.docker.network.bridge.enable_ip_masquerade=false', 'pnm')
    d.cli('network', 'create', '-d', world.drv.name, '--internal',
          '--subnet', '10.73.0.0/24', 'pni')
    try:
        for net in ('pnm', 'pni'):
            d.cli('run', '-d', '--name', 'c' + net, '--net', net,
                  'bb:latest', 'sleep', '600')
        rules = world.rules()
        assert 'ip saddr 10.72.0.0/24 oifname != ' not in rules
        assert '10.73.0.0' not in rules
    finally:
        d.cli('rm', '-f', 'cpnm', 'cpni', check=False)
        d.cli('network', 'rm', 'pnm', 'pni', check=False)


def test_restart_after_kill(world):
    """kill -9 with ports published: after restart the rules stand, and
    rules of what went while the driver was down are gone."""
    d = world.daemon
    d.cli('network', 'create', '-d', world.drv.name, '--subnet',
          '10.74.0.0/24', 'pnk')
    try:
        world.httpd('webk', '--net', 'pnk', '-p', '18090:8080')
        assert world.fetch(world.outside, HOST_ADDR, 18090) == PAGE + '\n'
        before = world.rules()
        world.drv.kill()
        stale = 'ep %s %s t18099>80' % ('ab' * 32, 'cd' * 6)
        world.namespaces.run(
            world.host, 'nft', 'add', 'rule', 'inet', 'opencontrail_net',
            'publish', 'meta', 'nfproto', 'ipv4', 'tcp', 'dport', '18099',
            'dnat', 'ip', 'to', '10.74.0.99:80', 'comment', '"%s"' % stale)
        world.namespaces.run(
            world.host, 'nft', 'add', 'rule', 'inet', 'opencontrail_net',
            'postrouting', 'ip', 'saddr', '10.79.0.0/24', 'masquerade',
            'comment', '"net %s"' % ('ef' * 32))
        # Still served while the driver is down: the kernel forwards.
        assert world.fetch(world.outside, HOST_ADDR, 18090) == PAGE + '\n'
        world.drv.start()
        after = world.rules()
        assert '18099' not in after and '10.79.0.0' not in after
        assert after == before
        res = d.cli('run', '-d', '--name', 'webk2', '--net', 'pnk', '-p',
                    '18090:8080', 'bb:latest', 'sleep', '60', check=False)
        assert 'host port 18090/tcp is already published' in res.stderr
        d.cli('rm', '-f', 'webk2', 'webk')
        assert '18090' not in world.rules()
    finally:
        d.cli('rm', '-f', 'webk', 'webk2', check=False)
        d.cli('network', 'rm', 'pnk', check=False)
    assert '10.74.0.0' not in world.rules()
