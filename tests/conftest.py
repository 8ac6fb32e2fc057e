"""Fixtures shared by every suite."""

import os

import pytest
from oslo_config import cfg

from opencontrail_net import config
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


def pytest_generate_tests(metafunc):
    """Tests of the Contrail API run once without auth, once with
    Keystone."""
    if 'contrail_auth' in metafunc.fixturenames:
        auths = ['noauth', 'keystone']
        if metafunc.definition.get_closest_marker('noauth_only'):
            auths = ['noauth']
        elif metafunc.definition.get_closest_marker('keystone_only'):
            auths = ['keystone']
        metafunc.parametrize('contrail_auth', auths, indirect=True,
                             scope='module')


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
