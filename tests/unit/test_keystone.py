"""Keystone options of the contrail backend: URLs, domains, TLS."""

import time
import types

import pytest

from opencontrail_net.backends.contrail import options
from opencontrail_net.backends.contrail import keystone
from opencontrail_net import exception


def opts(**changes):
    values = {o.dest: o.default for o in options.CONFIG_OPTS}
    values.update(changes)
    return types.SimpleNamespace(**values)


@pytest.mark.parametrize('changes, url', [
    ({}, 'http://127.0.0.1:5000/v3'),
    ({'auth_host': 'ks.example', 'auth_port': 35357,
      'auth_protocol': 'https'}, 'https://ks.example:35357/v3'),
    # The former default, vnc_api's token path.
    ({'auth_url': '/v3/auth/tokens', 'auth_host': 'ks'},
     'http://ks:5000/v3'),
    ({'auth_url': '/identity/v3/', 'auth_host': 'ks'},
     'http://ks:5000/identity/v3'),
    ({'auth_url': 'https://ks.example/identity/v3'},
     'https://ks.example/identity/v3'),
    ({'auth_url': 'https://ks.example:5000/v3/auth/tokens'},
     'https://ks.example:5000/v3'),
    ({'auth_host': 'fd00::5'}, 'http://[fd00::5]:5000/v3'),
])
def test_identity_url(changes, url):
    assert keystone.identity_url(opts(**changes)) == url


def test_keystone_v2_is_refused_clearly():
    with pytest.raises(exception.InvalidConfig) as err:
        keystone.identity_url(opts(auth_url='/v2.0/tokens'))
    assert 'auth_url' in str(err.value) and 'v3' in str(err.value)


def test_domains_are_keystones_not_contrails():
    auth = keystone.KeystoneAuth(opts(
        auth_type='keystone', admin_user='ocn', admin_password='pw',
        admin_tenant='ops', user_domain_name='hosts',
        project_domain_name='Default', domain='corp'))
    plugin = auth._plugin
    assert (plugin.auth_methods[0].username,
            plugin.auth_methods[0].user_domain_name,
            plugin.project_name, plugin.project_domain_name) == (
        'ocn', 'hosts', 'ops', 'Default')


@pytest.mark.parametrize('changes, verify, cert', [
    ({}, True, None),
    ({'auth_cafile': '/etc/ca.pem'}, '/etc/ca.pem', None),
    ({'auth_cafile': '/etc/ca.pem', 'auth_insecure': True}, False, None),
    ({'auth_certfile': '/c.pem'}, True, '/c.pem'),
    ({'auth_certfile': '/c.pem', 'auth_keyfile': '/k.pem'}, True,
     ('/c.pem', '/k.pem')),
])
def test_tls_options(changes, verify, cert):
    session = keystone.KeystoneAuth(opts(**changes))._session
    assert (session.verify, session.cert) == (verify, cert)


def test_no_token_when_the_deadline_passed():
    auth = keystone.KeystoneAuth(opts())
    with pytest.raises(exception.BackendUnavailable) as err:
        auth.token(time.monotonic(), 1.0)
    assert 'Keystone at http://127.0.0.1:5000/v3' in str(err.value)
