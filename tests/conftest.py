"""Fixtures shared by every suite."""

import os

import pytest
from oslo_config import cfg

from opencontrail_net import config
from tests import contrail_target
from tests import keystone_server as keystone_mod

# Set by tests/run-all.sh, which installs Keystone: CI must not skip.
KEYSTONE_REQUIRED = 'OCN_KEYSTONE_REQUIRED'


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'noauth_only: run against the Contrail API without '
                   'Keystone only (long tests whose subject is not auth)')
    config.addinivalue_line(
        'markers', 'keystone_only: run against the Contrail API with '
                   'Keystone only')
    config.addinivalue_line(
        'markers', 'alone: measures a race of Docker\'s own that a busy '
                   'host changes: tests/run-all.sh runs these by themselves, '
                   'before the others')
    config.addinivalue_line(
        'markers', 'needs_fake: needs the in-process fake Contrail API '
                   'itself (not collected when %s names a real server)'
                   % contrail_target.ENV)


def pytest_report_header(config):
    from tests.e2e import dockerd as harness
    try:
        return 'engine: %s' % harness.engine_name()
    except Exception as exc:
        return 'engine: none (%s)' % exc


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """The engine the end-to-end tests ran on, just above the summary."""
    from tests.e2e import dockerd as harness
    try:
        name = harness.engine_name()
    except Exception:
        return
    terminalreporter.write_line('engine: %s' % name)


def pytest_generate_tests(metafunc):
    """Tests of the Contrail API run once without auth, once with
    Keystone; against a real server (noauth) only without."""
    if 'contrail_auth' in metafunc.fixturenames:
        auths = ['noauth', 'keystone']
        if contrail_target.REAL:
            auths = ['noauth']
        if metafunc.definition.get_closest_marker('noauth_only'):
            auths = ['noauth']
        elif metafunc.definition.get_closest_marker('keystone_only'):
            auths = ['keystone']
        metafunc.parametrize('contrail_auth', auths, indirect=True,
                             scope='module')


def pytest_collection_modifyitems(config, items):
    """Against a real server, what cannot apply there is not collected:
    tests of the fake itself and of Keystone (the server runs noauth)."""
    if not contrail_target.REAL:
        return
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, 'callspec', None)
        auth = callspec.params.get('contrail_auth') if callspec else None
        if item.get_closest_marker('needs_fake') or auth == 'keystone':
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope='session')
def keystone():
    """A real Keystone on loopback for the session (tests.keystone_server)."""
    reason = keystone_mod.unavailable_reason()
    if reason:
        if os.environ.get(KEYSTONE_REQUIRED):
            pytest.fail(reason)
        pytest.skip(reason)
    server = keystone_mod.Keystone()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope='module')
def contrail_auth(request):
    """The Keystone the Contrail API checks tokens with, or None."""
    if request.param == 'keystone':
        return request.getfixturevalue('keystone')
    return None


def make_conf(tmp_path, **overrides):
    """A private ConfigOpts with every option of the driver registered."""
    conf = cfg.ConfigOpts()
    config.register_opts(conf)
    conf.register_cli_opts(config.cli_opts)
    conf([], project='opencontrail-net', default_config_files=[])
    conf.set_override('state_path', str(tmp_path / 'state'))
    conf.set_override('host', 'testhost')
    conf.set_override('docker_url', '')
    for key, value in overrides.items():
        conf.set_override(key, value)
    return conf


@pytest.fixture
def conf(tmp_path):
    return make_conf(tmp_path)
