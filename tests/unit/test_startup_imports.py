"""What the driver imports before it serves, on the embedded default.

The driver is started for etc/opencontrail-net.conf (mock backend,
bridge port driver, docker_url set, no metrics address) in a process of
its own, up to the point where it would serve; what it imported by then
is read from ``sys.modules``. The Contrail backend, vnc_api, Keystone's
client, docker-py and prometheus_client are each imported at their first
use, which is no part of this start; pyroute2 in the start that follows
serving (only its lazy module stands before: none of its netlink
families is loaded).
"""

import configparser
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

# Up to serving: server.serve is where the socket would be bound.
SCRIPT = r'''
import json
import sys

from opencontrail_net import config
from opencontrail_net import server
from opencontrail_net import service

seen = {}


def serve(calls, *args, **kwargs):
    seen['modules'] = sorted(sys.modules)


server.serve = serve
conf = config.CONF
config.parse_args(['--config-file', sys.argv[1]], conf)
conf.set_override('host', 'startup-test')
service.Service(conf).run()
print(json.dumps(seen['modules']))
'''

NOT_IMPORTED = (
    'opencontrail_net.backends.contrail', 'vnc_api', 'cfgm_common',
    'keystoneauth1', 'docker', 'requests', 'pycurl', 'prometheus_client',
    'opencontrail_net.vrouter_agent', 'pyroute2.netlink', 'pyroute2.iproute',
)


@pytest.fixture(scope='module')
def modules(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('startup')
    conf = configparser.ConfigParser()
    conf.read(os.path.join(ROOT, 'etc', 'opencontrail-net.conf'))
    assert conf['DEFAULT']['backend'] == 'mock'
    conf['DEFAULT']['socket_path'] = str(tmp / 'startup-imports-test.sock')
    conf['DEFAULT']['state_path'] = str(tmp / 'state')
    # The host's firewall is no unit test's to touch.
    conf['bridge'] = {'firewall': 'false'}
    path = tmp / 'driver.conf'
    with open(path, 'w') as f:
        conf.write(f)
    res = subprocess.run([sys.executable, '-c', SCRIPT, str(path)],
                         capture_output=True, text=True, timeout=120,
                         cwd=ROOT)
    assert res.returncode == 0, res.stderr
    return set(json.loads(res.stdout.splitlines()[-1]))


def test_the_default_path_was_taken(modules):
    assert 'opencontrail_net.backends.mock' in modules
    assert 'opencontrail_net.port_drivers.bridge' in modules
    assert 'opencontrail_net.audit.periodic' in modules


@pytest.mark.parametrize('name', NOT_IMPORTED)
def test_not_imported_before_serving(modules, name):
    found = sorted(m for m in modules
                   if m == name or m.startswith(name + '.'))
    assert not found, '%s imported on the default path' % found
