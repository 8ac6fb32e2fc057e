"""TLS to the Contrail API, as OpenStack services do it: verified by the
driver's own HTTP session, with a client certificate where the server
asks for one; nothing written to disk; a refusal says why.

The API (the fake, or a real server) stands behind a TLS front that asks
for a client certificate (tests.tls_front); certificates come from the
openssl command, in a directory of the test's own.
"""

import os
import shutil
import tempfile

import pytest

from opencontrail_net import ids
from tests import contrail_target
from tests.functional import conftest
from tests.functional.test_contrail_backend import net_body
from tests import tls_front

conftest  # noqa: B018  (fixtures)

# Where vnc_api, given a CA file, writes a bundle of its own (mode 0777)
# and reuses a newer one it finds: the driver must never.
VNC_BUNDLE = '/tmp/127_0_0_1/apiservercertbundle.pem'


@pytest.fixture(scope='module')
def pki():
    directory = tempfile.mkdtemp(prefix='ocn-pki-')
    try:
        certs = {'ca': tls_front.make_ca(directory, 'ca'),
                 'other_ca': tls_front.make_ca(directory, 'otherca')}
        certs['server'] = tls_front.make_cert(directory, 'ca', 'server',
                                              ip='127.0.0.1')
        certs['client'] = tls_front.make_cert(directory, 'ca', 'client')
        certs['rogue'] = tls_front.make_cert(directory, 'otherca', 'rogue')
        yield certs
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def front(fake, pki):
    server = tls_front.TLSFront(fake.host, fake.port, *pki['server'],
                                client_ca=pki['ca'])
    yield server
    server.close()


def tls_driver(driver_factory, fake, front, name='drv', **options):
    opts = contrail_target.driver_options(fake, **{
        'contrail.timeout': 3, 'contrail.use_ssl': 'true'})
    opts['contrail.api_server'] = '127.0.0.1'
    opts['contrail.api_port'] = front.port
    opts.update(options)
    return driver_factory(name=name, backend='contrail', port_driver='veth',
                          **opts)


def bundle_state():
    try:
        st = os.stat(VNC_BUNDLE)
    except FileNotFoundError:
        return None
    return st.st_mtime_ns, st.st_ino


@pytest.mark.noauth_only
def test_mutual_tls(fake, driver_factory, front, pki):
    before = bundle_state()
    drv = tls_driver(driver_factory, fake, front, **{
        'contrail.cafile': pki['ca'],
        'contrail.certfile': pki['client'][0],
        'contrail.keyfile': pki['client'][1]}).start()
    body = net_body(301)
    drv.ok('NetworkDriver.CreateNetwork', body)
    assert fake.get('virtual-network',
                    ids.network_uuid(body['NetworkID'])) is not None
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': body['NetworkID']})
    # Nothing of the driver's under /tmp (vnc_api's bundle untouched).
    assert bundle_state() == before
    assert front.handshakes_failed == []


@pytest.mark.noauth_only
@pytest.mark.parametrize('case', ['no-client-cert', 'untrusted-client',
                                  'untrusted-server'])
def test_tls_refusals_say_why(fake, driver_factory, front, pki, case):
    options = {'contrail.cafile': pki['ca'],
               'contrail.certfile': pki['client'][0],
               'contrail.keyfile': pki['client'][1]}
    if case == 'no-client-cert':
        del options['contrail.certfile'], options['contrail.keyfile']
        expected = ('TLS: the API server refused this client\'s certificate '
                    '(none sent: set [contrail] certfile and keyfile)')
    elif case == 'untrusted-client':
        options['contrail.certfile'], options['contrail.keyfile'] = \
            pki['rogue']
        expected = ('TLS: the API server refused this client\'s certificate '
                    '([contrail] certfile %s)' % pki['rogue'][0])
    else:
        options['contrail.cafile'] = pki['other_ca']
        expected = ('TLS: the API server\'s certificate is not trusted '
                    '([contrail] cafile %s)' % pki['other_ca'])
    drv = tls_driver(driver_factory, fake, front, **options).start()
    body = net_body(302)
    status, reply = drv.call('NetworkDriver.CreateNetwork', body)
    assert status == 503, reply
    assert expected in reply['Err'], reply['Err']
    assert expected in drv.log_text()
    assert fake.get('virtual-network',
                    ids.network_uuid(body['NetworkID'])) is None


@pytest.mark.noauth_only
def test_insecure_is_a_warning(fake, driver_factory, front, pki):
    drv = tls_driver(driver_factory, fake, front, **{
        'contrail.insecure': 'true',
        'contrail.certfile': pki['client'][0],
        'contrail.keyfile': pki['client'][1]}).start()
    body = net_body(303)
    drv.ok('NetworkDriver.CreateNetwork', body)
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': body['NetworkID']})
    assert 'WARNING' in drv.log_text() and \
        'certificate is not verified' in drv.log_text()


@pytest.mark.noauth_only
def test_unreadable_key_stops_the_driver(fake, driver_factory, front, pki):
    drv = tls_driver(driver_factory, fake, front, **{
        'contrail.cafile': pki['ca'],
        'contrail.certfile': pki['client'][0],
        'contrail.keyfile': '/nonexistent/client.key'})
    with pytest.raises(RuntimeError) as err:
        drv.start()
    assert ("invalid [contrail] keyfile '/nonexistent/client.key': it "
            "cannot be read") in str(err.value)
