"""The contrail backend with Keystone: a real Keystone, the fake API.

The fake config API checks every token with Keystone as keystonemiddleware
does. The driver's user lives in a Keystone domain of its own
(``docker-hosts``), its project in ``Default``, and Contrail's domain is
``default-domain``: three names that must not be confused.
"""

import concurrent.futures
import os
import subprocess
import socket
import time

import pytest
import requests
from vnc_api import vnc_api

from tests import contrail_target
from tests import driverproc
from tests.fakes import contrail_api
from tests.functional import conftest
from tests.functional.test_contrail_backend import (
    ep_body, ids_of, net_body)
from tests import keystone_server

contrail_driver = conftest.contrail_driver
conftest  # noqa: B018  (fixtures)

pytestmark = contrail_target.needs_fake


@pytest.fixture
def fake(keystone):
    """Only with Keystone here (overrides the suite's two-way fixture)."""
    api = contrail_target.start(keystone=keystone, timeout_hold=4)
    yield api
    api.stop()


def parallel(func, args):
    with concurrent.futures.ThreadPoolExecutor(len(args)) as pool:
        return list(pool.map(func, args))


def test_fake_api_wants_a_token_like_keystonemiddleware(fake, keystone):
    for headers in ({}, {'X-Auth-Token': 'not-a-token'}):
        res = requests.get(fake.url + '/', headers=headers, timeout=10)
        assert res.status_code == 401
        assert res.headers['WWW-Authenticate'] == \
            'Keystone uri="%s"' % keystone.url
    token = keystone.token()
    res = requests.get(fake.url + '/', headers={'X-Auth-Token': token},
                       timeout=10)
    assert res.status_code == 200 and res.json()['links']
    keystone.revoke(token)
    res = requests.get(fake.url + '/', headers={'X-Auth-Token': token},
                       timeout=10)
    assert res.status_code == 401
    # The stock client authenticates after its first 401, as with a
    # real server.
    vnc = contrail_target.vnc_client(fake)
    vnc.virtual_network_create(vnc_api.VirtualNetwork('by-hand'))
    assert fake.tokens[-1][1:] == (keystone_server.ADMIN,
                                   keystone_server.PROJECT)


def test_one_token_for_every_call(fake, drv, keystone):
    nets = [net_body(n, v6=False) for n in range(20, 26)]
    parallel(lambda net: drv.ok('NetworkDriver.CreateNetwork', net), nets)
    # One token, asked for once, used by every pooled client from their
    # first request on: no 401 spent to learn that a token is needed.
    assert [t[1:] for t in fake.tokens] == [(keystone_server.DRIVER_USER,
                                            keystone_server.PROJECT)]
    assert fake.refused == 0
    # Keystone's domains went to Keystone; Contrail's stays Contrail's.
    vn = fake.objects('virtual-network')[0]
    assert vn['fq_name'][:2] == contrail_target.PROJECT
    log = drv.log_text()
    assert log.count('Keystone at %s gave user %s a token' % (
        keystone.url, keystone_server.DRIVER_USER)) == 1
    assert keystone.driver_password not in log


def test_revoked_token_is_renewed_unseen_by_docker(fake, drv, keystone):
    net = net_body(27, v6=False)
    drv.ok('NetworkDriver.CreateNetwork', net)
    eps = [ep_body(net, m, v6=False) for m in range(4)]
    # Several clients in the pool, all holding the token.
    parallel(lambda ep: drv.ok('NetworkDriver.CreateEndpoint', ep), eps[:2])
    [(old, _user, _project)] = fake.tokens
    keystone.revoke(old)
    replies = parallel(
        lambda ep: drv.call('NetworkDriver.CreateEndpoint', ep), eps[2:])
    assert [status for status, _ in replies] == [200, 200], replies
    # One new token for all of them, each refused request sent again.
    tokens = [t[0] for t in fake.tokens]
    assert len(tokens) == 2 and tokens[0] == old
    assert 1 <= fake.refused <= 2
    for ep in eps:
        drv.ok('NetworkDriver.DeleteEndpoint', ids_of(ep))
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': net['NetworkID']})
    log = drv.log_text()
    assert 'refused the Keystone token of user %s' % (
        keystone_server.DRIVER_USER) in log
    assert 'Traceback' not in log
    assert keystone.driver_password not in log


def test_wrong_password_is_a_clear_error(fake, driver_factory, keystone):
    wrong = 'Not-The-Password-42'
    # A roomy bound: the subject is the message, not the timing.
    drv = contrail_driver(driver_factory, fake, timeout=9,
                          **{'contrail.admin_password': wrong}).start()
    status, reply = drv.call('NetworkDriver.CreateNetwork', net_body(28))
    assert status == 500
    assert reply['Err'].startswith(
        'backend error: Keystone at %s refused the credentials of user %s '
        '(project %s) (Request-ID: req-' % (
            keystone.url, keystone_server.DRIVER_USER,
            keystone_server.PROJECT))
    # Nothing reached the API without a token.
    assert fake.count() == 0 and fake.tokens == []
    drv.stop()
    log = drv.log_text()
    # Start-up already said so, without a traceback or the password.
    assert 'Could not look for unused VMs and pending deletes at start: ' \
        'backend error: Keystone at %s refused' % keystone.url in log
    assert 'Traceback' not in log
    assert wrong not in log and wrong not in str(reply)


@pytest.fixture(params=['refused', 'hangs'])
def dead_keystone(request):
    """A Keystone URL where nothing answers: the port refuses
    connections, or accepts them (the kernel does) and never answers."""
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    if request.param == 'hangs':
        sock.listen(16)
    yield request.param, 'http://127.0.0.1:%d/v3' % sock.getsockname()[1]
    sock.close()


def test_keystone_down_is_a_clear_error_in_time(fake, driver_factory,
                                                dead_keystone):
    how, url = dead_keystone
    drv = contrail_driver(driver_factory, fake, timeout=3,
                          **{'contrail.auth_url': url}).start()
    for _ in range(2):
        start = time.monotonic()
        status, reply = drv.call('NetworkDriver.CreateNetwork', net_body(29))
        assert time.monotonic() - start < 3 + 1
        assert status == 503
        assert reply['Err'].startswith(
            'backend unavailable: Keystone at %s: ' % url)
        assert {'refused': 'cannot connect',
                'hangs': 'no answer in time'}[how] in reply['Err']
    assert fake.count() == 0
    drv.stop()
    assert 'Traceback' not in drv.log_text()


def test_api_without_keystone_config_says_so(fake, driver_factory):
    """A driver left at noauth against an API behind Keystone."""
    drv = contrail_driver(driver_factory, fake,
                          **{'contrail.auth_type': 'noauth'}).start()
    status, reply = drv.call('NetworkDriver.CreateNetwork', net_body(30))
    assert status == 503
    assert 'set [contrail] auth_type = keystone' in reply['Err']


def test_token_check_follows_keystone(keystone):
    """The fake's TokenCheck, straight: valid, bad, revoked."""
    check = contrail_api.TokenCheck(keystone.url, keystone_server.ADMIN,
                                    keystone.admin_password,
                                    keystone_server.PROJECT)
    token = keystone.token(keystone_server.DRIVER_USER,
                           keystone.driver_password,
                           keystone_server.DRIVER_DOMAIN)
    assert check.user_of(token) == (keystone_server.DRIVER_USER,
                                    keystone_server.PROJECT)
    assert check.user_of('gAAAAA-bogus') is None
    keystone.revoke(token)
    assert check.user_of(token) is None


def test_password_from_a_file(fake, driver_factory, keystone, workdir):
    """admin_password_file: the password from a file only root reads,
    never on the command line or in the config; a file others can read
    is refused at start, naming it."""
    options = contrail_target.driver_options(fake)
    secret = options.pop('contrail.admin_password')
    path = os.path.join(workdir, 'password')
    with open(path, 'w') as f:
        f.write(secret + '\n')
    os.chmod(path, 0o600)
    drv = driver_factory(name='pwfile', backend='contrail',
                         port_driver='veth', **dict(
                             options, **{'contrail.admin_password_file':
                                         path})).start()
    drv.ok('NetworkDriver.CreateNetwork', net_body(29))
    drv.ok('NetworkDriver.DeleteNetwork',
           {'NetworkID': net_body(29)['NetworkID']})
    assert secret not in drv.log_text()
    with open(drv.config_path) as f:
        assert secret not in f.read()
    drv.stop()

    os.chmod(path, 0o644)
    loose = driver_factory(name='pwloose', backend='contrail',
                           port_driver='veth', **dict(
                               options, **{'contrail.admin_password_file':
                                           path}))
    with pytest.raises(RuntimeError) as err:
        loose.start()
    assert ("invalid [contrail] admin_password_file '%s': mode 644, owner "
            "uid 0: it must be readable by its owner (root) only (chmod "
            "600)" % path) in str(err.value)


def serving(socket_path):
    try:
        return driverproc.call(socket_path, 'Plugin.Activate')[0] == 200
    except OSError:
        return False


def test_password_on_the_command_line_is_a_warning(fake, driver_factory,
                                                   keystone):
    options = contrail_target.driver_options(fake)
    secret = options.pop('contrail.admin_password')
    drv = driver_factory(name='pwcli', backend='contrail',
                         port_driver='veth', **options)
    log = open(drv.log_path, 'w')
    proc = subprocess.Popen(drv.command() + ['-p', secret], stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while not serving(drv.socket_path):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.1)
        drv.ok('NetworkDriver.CreateNetwork', net_body(30))
        drv.ok('NetworkDriver.DeleteNetwork',
               {'NetworkID': net_body(30)['NetworkID']})
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()
    out = drv.log_text()
    assert ('The admin password was given on the command line (-p): every '
            'local user can read it in /proc/%d/cmdline' % proc.pid) in out
    assert secret not in out
