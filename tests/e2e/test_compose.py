"""Compose v2 stacks on the driver's networks, with the engine's compose.

The embedded default on a stock host (dockerd with its defaults, firewall
on, in a namespace of this test): dual-stack networks of the driver,
fixed addresses, ``gw_priority``, names resolving both ways. The contrail
backend (the fake API, or a real server): per-service ``driver_opts``
giving one container its own security groups. ``up`` then ``down``
leaves nothing behind.
"""

import json
import os
import shutil
import tempfile
import time

import pytest
from vnc_api import exceptions as vnc_exc
from vnc_api import vnc_api

from opencontrail_net import ids
from tests import contrail_target
from tests.e2e import dockerd as harness
from tests.e2e import plugin as plugin_mod
from tests.e2e import test_stock_host
from tests.e2e.test_contrail import fake  # noqa: F401 (a fixture)

STACK = '''
name: {project}
services:
  web:
    image: bb:latest
    command:
      - sh
      - -c
      - echo {page} > /tmp/index.html && exec httpd -f -p 8080 -h /tmp
    networks:
      front:
        ipv4_address: 10.95.0.10
        ipv6_address: fd00:95::10
        gw_priority: 1
      back: {{}}
  client:
    image: bb:latest
    command: ["sleep", "600"]
    networks:
      front: {{}}
networks:
  front:
    driver: {driver}
    enable_ipv6: true
    ipam:
      config:
        - subnet: 10.95.0.0/24
        - subnet: fd00:95::/64
  back:
    driver: {driver}
    enable_ipv6: true
    ipam:
      config:
        - subnet: 10.96.0.0/24
        - subnet: fd00:96::/64
'''

GROUPS_STACK = '''
name: {project}
services:
  locked:
    image: bb:latest
    command: ["sleep", "600"]
    networks:
      net:
        driver_opts:
          opencontrail.security_groups: "{groups}"
  plain:
    image: bb:latest
    command: ["sleep", "600"]
    networks:
      net: {{}}
networks:
  net:
    driver: {driver}
    ipam:
      config:
        - subnet: 192.168.61.0/24
'''


def compose_reason(daemon):
    res = daemon.cli('compose', 'version', check=False)
    if res.returncode:
        return ('no Compose v2 beside %s (Debian 12 packages none; the '
                'newer engine brings its own)' % harness.engine_name())
    return None


class Stack:
    """A compose project in a directory of its own."""

    def __init__(self, daemon, text):
        self.daemon = daemon
        self.dir = tempfile.mkdtemp(prefix='ocn-compose-')
        self.project = 'ocn' + os.path.basename(self.dir)[-6:].lower()
        with open(os.path.join(self.dir, 'compose.yaml'), 'w') as f:
            f.write(text.replace('{project}', self.project))

    def __call__(self, *args, check=True):
        return self.daemon.cli('compose', '--project-directory', self.dir,
                               *args, check=check, timeout=180)

    def container(self, service):
        return '%s-%s-1' % (self.project, service)

    def inspect(self, service):
        return json.loads(self.daemon.cli(
            'inspect', self.container(service)).stdout)[0]

    def network(self, name):
        return '%s_%s' % (self.project, name)

    def close(self):
        self('down', '--timeout', '1', check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope='module')
def stock(dockerd_host):
    world = test_stock_host.StockHost()
    try:
        world.start()
        reason = compose_reason(world.daemon)
        if reason:
            pytest.skip(reason)
        yield world
    finally:
        world.close()


def resolves(daemon, container, name, family):
    """The address ``name`` resolves to in ``container`` (ping's line)."""
    res = daemon.cli('exec', container, 'ping', '-%d' % family, '-c', '1',
                     '-W', '2', name, check=False)
    return res.returncode == 0, res.stdout


def test_dual_stack_stack_up_and_down(stock):
    d = stock.daemon
    stack = Stack(d, STACK.format(project='{project}', page='ocnpage',
                                  driver=stock.drv.name))
    try:
        stack('up', '-d', '--quiet-pull')
        web = stack.inspect('web')
        front = web['NetworkSettings']['Networks'][stack.network('front')]
        assert front['IPAddress'] == '10.95.0.10'
        assert front['GlobalIPv6Address'] == 'fd00:95::10'
        assert stack.network('back') in web['NetworkSettings']['Networks']
        client = stack.container('client')
        # By name, both families, and plain ping (IPv6 first).
        for family in (4, 6):
            ok, out = resolves(d, client, 'web', family)
            assert ok, out
        assert plugin_mod.pings(d, client, 'web')
        page = d.cli('exec', client, 'wget', '-q', '-O', '-',
                     'http://web:8080/').stdout
        assert page.strip() == 'ocnpage'
        page6 = d.cli('exec', client, 'wget', '-q', '-O', '-',
                      'http://[fd00:95::10]:8080/').stdout
        assert page6.strip() == 'ocnpage'
        # gw_priority: web's way out is front's gateway.
        route = d.cli('exec', stack.container('web'), 'ip', 'route',
                      'show', 'default').stdout
        assert 'via 10.95.0.1 ' in route, route
        ids_ = [json.loads(d.cli('network', 'inspect', stack.network(n)
                                 ).stdout)[0]['Id'] for n in ('front', 'back')]
        stack('down', '--timeout', '1')
        assert d.cli('ps', '-aq', '--filter', 'label=com.docker.compose.'
                     'project=%s' % stack.project).stdout.strip() == ''
        assert not [n for n in stock.drv.mock_rows('networks')
                    if n['id'] in ids_]
        for net_id in ids_:
            assert net_id not in stock.rules()
        assert stock.namespaces.run(
            stock.host, 'ip', '-o', 'link', 'show').stdout.count(
                'ocbr' + ids_[0][:11]) == 0
    finally:
        stack.close()


@pytest.fixture(scope='module')
def contrail_drv(dockerd, fake):  # noqa: F811
    reason = compose_reason(dockerd)
    if reason:
        pytest.skip(reason)
    name = 'ocnk' + ids.short_hash(str(time.time()), 6)
    plugin = plugin_mod.DockerPlugin(name, backend='contrail',
                                     docker_url=dockerd.url,
                                     port_driver='bridge',
                                     **contrail_target.driver_options(fake))
    try:
        plugin.start()
        yield plugin
    finally:
        plugin.close()


@pytest.mark.noauth_only
def test_per_service_driver_opts(dockerd, fake, contrail_drv,  # noqa: F811
                                 unique_name):
    """networks.<net>.driver_opts of one service: its interface gets those
    security groups, its neighbour the network's own group; down leaves
    no object of the driver's in Contrail."""
    vnc = contrail_target.vnc_client(fake)
    parent = vnc_api.Project(contrail_target.PROJECT[1],
                             vnc_api.Domain(contrail_target.PROJECT[0]))
    groups = []
    stack = None
    try:
        for tag in ('a', 'b'):
            group = vnc_api.SecurityGroup(unique_name('sg' + tag), parent)
            vnc.security_group_create(group)
            groups.append(group)
        stack = Stack(dockerd, GROUPS_STACK.format(
            project='{project}', driver=contrail_drv.name,
            groups=','.join(g.name for g in groups)))
        stack('up', '-d')
        net = json.loads(dockerd.cli('network', 'inspect',
                                     stack.network('net')).stdout)[0]

        def groups_of(service):
            ep = stack.inspect(service)['NetworkSettings']['Networks'][
                stack.network('net')]['EndpointID']
            vmi = vnc.virtual_machine_interface_read(
                id=ids.endpoint_uuid(ep))
            return {r['uuid'] for r in vmi.get_security_group_refs()}
        assert groups_of('locked') == {g.uuid for g in groups}
        assert groups_of('plain') == {ids.security_group_uuid(net['Id'])}
        plain = stack.inspect('plain')['NetworkSettings']['Networks'][
            stack.network('net')]['IPAddress']
        assert plugin_mod.pings(dockerd, stack.container('locked'), plain)
        stack('down', '--timeout', '1')
        left = [vn['uuid'] for vn in vnc.resource_list(
            'virtual-network')['virtual-networks']
            if vn['uuid'] == ids.network_uuid(net['Id'])]
        assert left == []
        for group in groups:
            vnc.security_group_read(id=group.uuid)     # theirs stay
    finally:
        if stack is not None:
            stack.close()
        for group in groups:
            try:
                vnc.security_group_delete(id=group.uuid)
            except vnc_exc.NoIdError:
                pass
