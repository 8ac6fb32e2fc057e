"""The embedded default on a stock Docker host: dockerd with its defaults.

dockerd manages iptables there, as on every default install: FORWARD's
policy is DROP and bridged traffic goes through it (br_netfilter). The
"host" is a network namespace of this test, where dockerd runs with its
defaults (forwarding off first, as a host boots) and the driver beside
it; a second namespace, joined by a veth pair, plays another host and a
server outside. The machine's own firewall is never touched.
"""

import json
import subprocess
import sys

import pytest

from tests.e2e import dockerd as harness
from tests.e2e import plugin as plugin_mod
from tests.e2e import test_ports

HOST_ADDR, OUTSIDE_ADDR, PAGE = (test_ports.HOST_ADDR,
                                 test_ports.OUTSIDE_ADDR, test_ports.PAGE)
# A UDP listener on the host's 127.0.0.1: prints what reaches it.
LISTENER = '''
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('127.0.0.1', 9999))
s.settimeout(4)
print('listening', flush=True)
try:
    print('received %r' % s.recv(100))
except socket.timeout:
    print('nothing')
'''


class StockHost(test_ports.World):
    """test_ports' two hosts, with dockerd's defaults on the first."""

    def __init__(self):
        super().__init__(dockerd_defaults=True)

    def run(self, *cmd, check=True):
        return self.namespaces.run(self.host, *cmd, check=check)

    def container(self, name, *args):
        self.daemon.cli('run', '-d', '--name', name, *args, 'bb:latest',
                        'sleep', '600')
        return json.loads(self.daemon.cli('inspect', name).stdout)[0]

    def network(self, name, subnet, *args):
        self.daemon.cli('network', 'create', '-d', self.drv.name,
                        '--subnet', subnet, *args, name)

    def pings(self, container, address, tries=3):
        return plugin_mod.pings(self.daemon, container, address,
                                tries=tries)


def address(info, network):
    return info['NetworkSettings']['Networks'][network]['IPAddress']


@pytest.fixture(scope='module')
def stock(dockerd_host):
    world = StockHost()
    try:
        world.start()
        yield world
    finally:
        world.close()


def test_dockerd_manages_the_firewall(stock):
    """The premise: what a stock host has, and what the driver added."""
    forward = stock.run('iptables', '-S', 'FORWARD').stdout
    assert '-P FORWARD DROP' in forward
    assert '-j DOCKER-USER' in forward


def test_one_network_works_as_on_dockers_bridge(stock):
    d = stock.daemon
    stock.network('sa', '10.81.0.0/24')
    a = stock.container('sa1', '--net', 'sa')
    b = stock.container('sa2', '--net', 'sa')
    # Bridged traffic within the network passes FORWARD's DROP policy.
    assert stock.pings('sa1', address(b, 'sa'))
    # The way out: the outside host sees the host's address.
    assert stock.pings('sa1', OUTSIDE_ADDR)
    # A published port, from another host.
    stock.httpd('sweb', '--net', 'sa', '-p', '18090:8080')
    assert stock.fetch(stock.outside, HOST_ADDR, 18090) == PAGE + '\n'
    rules = stock.run('iptables', '-S', 'DOCKER-USER').stdout
    net_id = d.cli('network', 'inspect', '-f', '{{.Id}}', 'sa').stdout.strip()
    assert 'opencontrail-net %s' % net_id in rules
    # dockerd restarts (rebuilding its chains, keeping DOCKER-USER): the
    # containers Docker starts again still reach each other and out.
    d.cli('update', '--restart', 'always', 'sa1', 'sa2')
    d.restart()
    a = json.loads(d.cli('inspect', 'sa1').stdout)[0]
    b = json.loads(d.cli('inspect', 'sa2').stdout)[0]
    assert a['State']['Running'] and b['State']['Running']
    assert stock.pings('sa1', address(b, 'sa'))
    assert stock.pings('sa2', OUTSIDE_ADDR)
    d.cli('rm', '-f', 'sa1', 'sa2', 'sweb')
    d.cli('network', 'rm', 'sa')
    assert ('opencontrail-net %s' % net_id) not in stock.run(
        'iptables', '-S', 'DOCKER-USER').stdout


def test_networks_are_isolated(stock):
    """As Docker's bridge networks are: no traffic between two networks of
    the driver, nor between one of ours and one of Docker's; an internal
    network has no way out."""
    d = stock.daemon
    stock.network('ia', '10.82.0.0/24')
    stock.network('ib', '10.83.0.0/24')
    stock.network('ii', '10.84.0.0/24', '--internal')
    a = stock.container('ia1', '--net', 'ia')
    b = stock.container('ib1', '--net', 'ib')
    i1 = stock.container('ii1', '--net', 'ii')
    stock.container('ii2', '--net', 'ii')
    theirs = stock.container('dk1')     # on Docker's own bridge
    try:
        assert stock.pings('ia1', OUTSIDE_ADDR)   # the rules are in place
        assert not stock.pings('ia1', address(b, 'ib'))
        assert not stock.pings('ib1', address(a, 'ia'))
        assert not stock.pings('ia1', address(theirs, 'bridge'))
        assert not stock.pings('dk1', address(a, 'ia'))
        assert stock.pings('ii2', address(i1, 'ii'))
        assert not stock.pings('ii1', OUTSIDE_ADDR)
        assert not stock.pings('ii1', address(a, 'ia'))
    finally:
        d.cli('rm', '-f', 'ia1', 'ib1', 'ii1', 'ii2', 'dk1')
        for net in ('ia', 'ib', 'ii'):
            d.cli('network', 'rm', net)


def test_allowed_networks_talk(stock):
    """-o opencontrail.allow=NET: two networks of the driver talk both
    ways, whichever bridge came first and across a restart of the
    driver; a third stays isolated from both; the rules go with either
    network."""
    d = stock.daemon
    stock.network('wa', '10.86.0.0/24')
    stock.network('wb', '10.87.0.0/24', '-o', 'opencontrail.allow=wa')
    stock.network('wc', '10.88.0.0/24')
    ids = {n: d.cli('network', 'inspect', '-f', '{{.Id}}', n).stdout.strip()
           for n in ('wa', 'wb', 'wc')}
    try:
        # wb's bridge first; then the driver restarts and forgets what
        # it was told; then wa's bridge, which must find wb by itself.
        b = stock.container('wb1', '--net', 'wb')
        stock.drv.restart()
        a = stock.container('wa1', '--net', 'wa')
        c = stock.container('wc1', '--net', 'wc')
        assert stock.pings('wa1', address(b, 'wb'))
        assert stock.pings('wb1', address(a, 'wa'))
        assert not stock.pings('wc1', address(a, 'wa'))
        assert not stock.pings('wc1', address(b, 'wb'))
        assert not stock.pings('wa1', address(c, 'wc'))
        assert 'allow %s' % min(ids['wa'], ids['wb'])[:32] in stock.rules()
        d.cli('rm', '-f', 'wa1')
        d.cli('network', 'rm', 'wa')
        assert 'allow ' not in stock.rules()
        assert stock.pings('wb1', '10.87.0.1')
    finally:
        d.cli('rm', '-f', 'wa1', 'wb1', 'wc1', check=False)
        for net in ('wa', 'wb', 'wc'):
            d.cli('network', 'rm', net, check=False)


def test_no_localhost_exposure(stock):
    """A container that routes 127.0.0.1 through its gateway reaches no
    service the host binds to 127.0.0.1 (the CVE-2020-8558 pattern)."""
    d = stock.daemon
    stock.network('lh', '10.85.0.0/24')
    info = stock.container('lh1', '--net', 'lh', '--cap-add', 'NET_ADMIN')
    gateway = info['NetworkSettings']['Networks']['lh']['Gateway']
    listener = subprocess.Popen(
        ['ip', 'netns', 'exec', stock.host, sys.executable, '-c', LISTENER],
        stdout=subprocess.PIPE, text=True)
    try:
        assert listener.stdout.readline().strip() == 'listening'
        script = ('ip route del local 127.0.0.1 table local; '
                  'ip route del local 127.0.0.0/8 table local; '
                  'ip route add 127.0.0.1/32 via %s; '
                  'ip route get 127.0.0.1; '
                  # busybox's tftp: a UDP datagram to 127.0.0.1:9999.
                  'timeout 2 tftp -g -r leaked 127.0.0.1 9999' % gateway)
        routed = d.cli('exec', 'lh1', 'sh', '-c', script, check=False)
        got = listener.communicate(timeout=10)[0].strip()
    finally:
        if listener.poll() is None:
            listener.kill()
            listener.wait()
        d.cli('rm', '-f', 'lh1')
        d.cli('network', 'rm', 'lh')
    # The datagram went to the host (the test's premise), and no further.
    assert '127.0.0.1 via %s' % gateway in routed.stdout, routed
    assert got == 'nothing'


def v6(info, network):
    return info['NetworkSettings']['Networks'][network]['GlobalIPv6Address']


def test_ipv6_as_on_dockers_bridge(stock):
    """IPv6 through Docker's firewall, as IPv4 goes: within a network, the
    way out, -p from outside, isolation from our other networks and from
    Docker's, and again after dockerd restarts. A Docker IPv6 network on
    the host first: dockerd then forwards IPv6 and, from 27.0 on (ip6tables
    on by default), sets ip6tables' FORWARD policy to DROP. From 28.0 the
    network is IPv6-only (--ipv4=false)."""
    d = stock.daemon
    d.cli('network', 'create', '--ipv6', '--subnet', 'fd00:d0c::/64', 'dk6')
    only6 = harness.engine_version() >= (28, 0)
    if only6:
        stock.network('s6', 'fd00:61::/64', '--ipv6', '--ipv4=false')
    else:
        stock.network('s6', 'fd00:61::/64', '--ipv6', '--subnet',
                      '10.89.0.0/24')
    stock.network('o6', 'fd00:62::/64', '--ipv6', '--subnet', '10.91.0.0/24')
    try:
        a = stock.container('s6a', '--net', 's6', '--restart', 'always')
        b = stock.container('s6b', '--net', 's6', '--restart', 'always')
        other = stock.container('o6a', '--net', 'o6')
        theirs = stock.container('dk6a', '--net', 'dk6')
        if only6:
            assert a['NetworkSettings']['Networks']['s6']['IPAddress'] == ''
        forward6 = stock.run('ip6tables', '-S', 'FORWARD').stdout
        if harness.engine_version() >= (27, 0):
            assert '-P FORWARD DROP' in forward6   # the premise
        assert stock.pings('s6a', v6(b, 's6'))
        assert stock.pings('s6b', test_ports.OUTSIDE_ADDR6)
        stock.httpd('s6web', '--net', 's6', '-p', '18092:8080')
        assert stock.fetch(stock.outside, test_ports.HOST_ADDR6,
                           18092) == PAGE + '\n'
        assert not stock.pings('o6a', v6(a, 's6'))
        assert not stock.pings('s6a', v6(other, 'o6'))
        assert not stock.pings('dk6a', v6(a, 's6'))
        assert not stock.pings('s6a', v6(theirs, 'dk6'))
        net_id = d.cli('network', 'inspect', '-f', '{{.Id}}',
                       's6').stdout.strip()
        assert 'opencontrail-net %s' % net_id in stock.run(
            'ip6tables', '-S', 'DOCKER-USER').stdout
        d.restart()
        a = json.loads(d.cli('inspect', 's6a').stdout)[0]
        b = json.loads(d.cli('inspect', 's6b').stdout)[0]
        assert stock.pings('s6a', v6(b, 's6'))
        assert stock.pings('s6b', test_ports.OUTSIDE_ADDR6)
        assert not stock.pings('dk6a', v6(a, 's6'))
    finally:
        d.cli('rm', '-f', 's6a', 's6b', 'o6a', 'dk6a', 's6web', check=False)
        for net in ('s6', 'o6', 'dk6'):
            d.cli('network', 'rm', net, check=False)
    for cmd in ('iptables', 'ip6tables'):
        assert 'opencontrail-net %s' % net_id not in stock.run(
            cmd, '-S', 'DOCKER-USER').stdout


def test_operators_rules_come_first(stock):
    """A DROP the operator put in DOCKER-USER applies to the driver's
    containers as to Docker's (both families where dockerd runs
    ip6tables): put there before the network exists, added last after
    it, and after the driver and dockerd restart. The rest passes."""
    d = stock.daemon
    families = [('iptables', '10.92.0.0/24', OUTSIDE_ADDR)]
    if harness.engine_version() >= (27, 0):
        families.append(('ip6tables', 'fd00:92::/64',
                         test_ports.OUTSIDE_ADDR6))
    theirs = []

    def operator(cmd, *rule):
        stock.run(cmd, *rule)
        theirs.append((cmd, rule[1:]))

    try:
        for cmd, subnet, outside in families:
            operator(cmd, '-I', 'DOCKER-USER', '-s', subnet, '-d', outside,
                     '-p', 'icmp' if cmd == 'iptables' else 'ipv6-icmp',
                     '-j', 'DROP')
        stock.network('op', '10.92.0.0/24', '--ipv6', '--subnet',
                      'fd00:92::/64')
        # Fixed addresses: the operator's rule names them, and a restart
        # hands addresses out again in another order.
        a = stock.container('op1', '--net', 'op', '--ip', '10.92.0.11',
                            '--restart', 'always')
        b = stock.container('op2', '--net', 'op', '--ip', '10.92.0.12',
                            '--restart', 'always')
        for cmd, _subnet, outside in families:
            assert not stock.pings('op2', outside, tries=2), cmd
        assert stock.pings('op2', address(a, 'op'))
        assert stock.pings('op2', v6(a, 'op'))
        chain = stock.run('iptables', '-S', 'DOCKER-USER').stdout
        assert chain.index(' -j DROP') < chain.index('opencontrail-net')

        # Added last, after ours (before the RETURN that Docker puts last
        # before 28.2.2): op2 may not ping op1. The driver's restart moves
        # its accepts below.
        chain = stock.run('iptables', '-S', 'DOCKER-USER').stdout.split('\n')
        last = [str(sum(line.startswith('-A ') for line in chain))] if (
            '-A DOCKER-USER -j RETURN' in chain) else []
        operator('iptables', '-I' if last else '-A', 'DOCKER-USER', *last,
                 '-s', address(b, 'op'), '-d', address(a, 'op'), '-p',
                 'icmp', '--icmp-type', 'echo-request', '-j', 'DROP')
        stock.drv.restart()
        chain = stock.run('iptables', '-S', 'DOCKER-USER').stdout
        assert chain.index('-d %s/32' % address(a, 'op')) < chain.rindex(
            'opencontrail-net'), chain
        assert 'below the operator\'s rules' in stock.drv.log_text()

        def check(a, b):
            for cmd, _subnet, outside in families:
                assert not stock.pings('op2', outside, tries=2), cmd
            assert not stock.pings('op2', address(a, 'op'), tries=2)
            assert stock.pings('op1', address(b, 'op'))
            assert stock.pings('op2', v6(a, 'op'))
        check(a, b)
        d.restart()
        a = json.loads(d.cli('inspect', 'op1').stdout)[0]
        b = json.loads(d.cli('inspect', 'op2').stdout)[0]
        check(a, b)
    finally:
        d.cli('rm', '-f', 'op1', 'op2', check=False)
        d.cli('network', 'rm', 'op', check=False)
        for cmd, rule in theirs:
            if rule[1].isdigit():
                rule = rule[:1] + rule[2:]
            stock.run(cmd, '-D', *rule, check=False)
