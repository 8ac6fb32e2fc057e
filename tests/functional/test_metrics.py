"""Prometheus metrics ([DEFAULT] metrics_address), scraped as Prometheus
does, from a driver on the Contrail API (the fake, or a real server)."""

import os
import stat
import subprocess

import pytest

from tests.functional.conftest import contrail_driver
from tests.metrics_scrape import free_port, scrape, total, value
from tests.functional.test_contrail_backend import (
    ep_body, ids_of, net_body)


@pytest.mark.noauth_only
def test_calls_errors_and_contrail_requests(fake, driver_factory):
    """Each call's latency and errors by reason; the Contrail requests
    they made, as many as the API saw."""
    address = '127.0.0.1:%d' % free_port()
    drv = contrail_driver(driver_factory, fake,
                          metrics_address=address).start()
    before = scrape(address)
    fake.reset_requests()
    net = net_body(40, v6=False)
    drv.ok('NetworkDriver.CreateNetwork', net)
    ep = ep_body(net, 0, v6=False)
    drv.ok('NetworkDriver.CreateEndpoint', ep)
    bad = net_body(41, v6=False, generic={'rt': 'banana'})
    assert drv.call('NetworkDriver.CreateNetwork', bad)[0] == 400
    assert drv.call('NetworkDriver.Nonsense', {})[0] == 404
    sent = fake.count()
    after = scrape(address)
    create = 'NetworkDriver.CreateNetwork'
    assert value(after, 'opencontrail_net_call_seconds_count',
                 call=create) == value(
        before, 'opencontrail_net_call_seconds_count', call=create) + 2
    assert value(after, 'opencontrail_net_call_errors_total', call=create,
                 reason='InvalidOption') == 1
    assert value(after, 'opencontrail_net_call_errors_total',
                 call='unknown', reason='UnknownCall') == 1
    assert total(after, 'opencontrail_net_contrail_requests_total') - \
        total(before, 'opencontrail_net_contrail_requests_total') == sent
    assert value(after, 'opencontrail_net_contrail_requests_total',
                 method='POST', status='200') >= 2
    assert value(after, 'opencontrail_net_networks') == 1
    drv.ok('NetworkDriver.DeleteEndpoint', ids_of(ep))
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': net['NetworkID']})
    assert value(scrape(address), 'opencontrail_net_networks') == 0


@pytest.mark.noauth_only
def test_unix_socket(fake, driver_factory, workdir):
    path = os.path.join(workdir, 'metrics.sock')
    drv = contrail_driver(driver_factory, fake,
                          metrics_address='unix:' + path).start()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
    drv.ok('NetworkDriver.GetCapabilities')
    assert value(scrape('unix:' + path), 'opencontrail_net_call_seconds_count',
                 call='NetworkDriver.GetCapabilities') == 1
    assert drv.stop() == 0
    assert not os.path.exists(path)


@pytest.mark.parametrize('address', ['0.0.0.0:9180', '10.1.2.3:9180',
                                     'localhost', 'unix:relative.sock'])
def test_a_listener_off_loopback_is_refused(driver_factory, address):
    drv = driver_factory(metrics_address=address)
    res = subprocess.run(drv.command(), capture_output=True, text=True,
                         timeout=30)
    assert res.returncode != 0
    assert '[DEFAULT] metrics_address' in res.stderr
    assert address in res.stderr
    assert not os.path.exists(drv.socket_path)


def test_off_by_default(driver_factory):
    """No address: the driver listens on its socket alone."""
    drv = driver_factory().start()
    inodes = {line.split()[9] for line in open(
        '/proc/%d/net/tcp' % drv.proc.pid).read().splitlines()[1:]
        if line.split()[3] == '0A'}
    fds = {os.readlink('/proc/%d/fd/%s' % (drv.proc.pid, fd))
           for fd in os.listdir('/proc/%d/fd' % drv.proc.pid)}
    assert not {'socket:[%s]' % inode for inode in inodes} & fds
