"""What the driver takes from its environment for the Contrail API.

requests reads proxy variables and REQUESTS_CA_BUNDLE; the driver reads
them once, at start, and its API requests follow them as before.
"""

import pytest

from opencontrail_net import ids
from tests import contrail_target
from tests.fakes import api_proxy
from tests.functional import conftest
from tests.functional.test_contrail_backend import net_body
from tests.functional.test_contrail_tls import front  # noqa: F401
from tests.functional.test_contrail_tls import pki  # noqa: F401
from tests.functional.test_contrail_tls import tls_driver

conftest  # noqa: B018  (fixtures)

# A name that resolves nowhere: only a proxy reaches the API by it.
UNRESOLVABLE = 'contrail-api.invalid'


@pytest.fixture
def forward_proxy(fake):
    """An HTTP proxy on loopback that passes every request on to the API,
    whatever host it names, and counts them."""
    proxy = api_proxy.ApiProxy(fake.host, fake.port).start()
    yield proxy
    proxy.stop()


def proxied_driver(driver_factory, fake, forward_proxy, name, **env):
    drv = driver_factory(name=name, backend='contrail', port_driver='veth',
                         **contrail_target.driver_options(fake, **{
                             'contrail.api_server': UNRESOLVABLE,
                             'contrail.timeout': 3}))
    drv.env.update(env)
    return drv


@pytest.mark.noauth_only
def test_api_requests_go_through_the_environments_proxy(
        fake, driver_factory, forward_proxy):
    url = 'http://127.0.0.1:%d' % forward_proxy.port
    drv = proxied_driver(driver_factory, fake, forward_proxy, 'viaproxy',
                         http_proxy=url, no_proxy='localhost').start()
    body = net_body(311, v6=False)
    drv.ok('NetworkDriver.CreateNetwork', body)
    assert fake.get('virtual-network',
                    ids.network_uuid(body['NetworkID'])) is not None
    assert forward_proxy.count('POST', '/virtual-networks') == 1
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': body['NetworkID']})


@pytest.mark.noauth_only
def test_no_proxy_sends_api_requests_straight(fake, driver_factory,
                                              forward_proxy):
    url = 'http://127.0.0.1:%d' % forward_proxy.port
    drv = proxied_driver(driver_factory, fake, forward_proxy, 'noproxy',
                         http_proxy=url, no_proxy=UNRESOLVABLE).start()
    body = net_body(312, v6=False)
    status, reply = drv.call('NetworkDriver.CreateNetwork', body)
    # Straight to a name that resolves nowhere: a clear error, no proxy.
    assert status == 503, reply
    assert 'backend unavailable: Contrail API' in reply['Err'], reply
    assert forward_proxy.count() == 0
    assert fake.get('virtual-network',
                    ids.network_uuid(body['NetworkID'])) is None


@pytest.mark.noauth_only
def test_the_environments_ca_bundle_verifies_the_api(
        fake, driver_factory, front, pki):  # noqa: F811
    # No [contrail] cafile: requests' own bundle does not know this CA,
    # REQUESTS_CA_BUNDLE does.
    drv = tls_driver(driver_factory, fake, front, name='envca', **{
        'contrail.certfile': pki['client'][0],
        'contrail.keyfile': pki['client'][1]})
    drv.env['REQUESTS_CA_BUNDLE'] = pki['ca']
    drv.start()
    body = net_body(313, v6=False)
    drv.ok('NetworkDriver.CreateNetwork', body)
    assert front.handshakes_failed == []
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': body['NetworkID']})
