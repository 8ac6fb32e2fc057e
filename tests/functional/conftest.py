"""Fixtures for tests that run the real driver process as root."""

import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

from opencontrail_net.backends.contrail import delete_queue
from tests import contrail_target
from tests import driverproc
from tests import netns as netns_mod


def need_root():
    if os.geteuid() != 0 or not shutil.which('ip'):
        pytest.skip('needs root and iproute2')


@pytest.fixture
def workdir():
    # Short paths: a Unix socket path must stay under 108 bytes.
    path = tempfile.mkdtemp(prefix='ocnf-')
    yield path
    if os.environ.get("OCN_KEEP"):
        return
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def namespaces():
    need_root()
    ns = netns_mod.Namespaces()
    yield ns
    ns.close()


@pytest.fixture
def driver_factory(workdir):
    procs = []

    def make(netns=None, name='drv', **options):
        sub = os.path.join(workdir, name)
        os.makedirs(sub, exist_ok=True)
        proc = driverproc.DriverProcess(
            sub, os.path.join(sub, 'p.sock'), netns=netns, **options)
        procs.append(proc)
        return proc

    yield make
    for proc in procs:
        # Stopped as a service is: the pairs of a last Leave go with it.
        proc.stop()


@pytest.fixture
def fake(contrail_auth):
    """The Contrail API, without auth and (a second run) with Keystone."""
    api = contrail_target.start(keystone=contrail_auth, timeout_hold=4)
    yield api
    api.stop()


def contrail_driver(driver_factory, fake, name='drv', timeout=3, **options):
    return driver_factory(name=name, backend='contrail', port_driver='veth',
                          **contrail_target.driver_options(
                              fake, **dict({'contrail.timeout': timeout},
                                           **options)))


@pytest.fixture
def drv(driver_factory, fake):
    return contrail_driver(driver_factory, fake).start()


def queued_deletes(drv):
    """The endpoint deletes the driver has recorded and not done yet, as
    files under its state_path (what ``status`` shows)."""
    path = delete_queue.directory(drv.options['state_path'])
    try:
        return sorted(n for n in os.listdir(path) if n.endswith('.json'))
    except FileNotFoundError:
        return []


def counted_apart(fake, drv, call, body):
    """(requests on the path Docker waits for, requests after the answer
    until the driver's queued deletes are done). The requests of a call
    carry its request ID; the background deletes' carry none."""
    fake.reset_requests()
    status, reply = drv.call(call, body)
    assert status == 200, (call, reply)
    drained(drv)
    sent = fake.request_ids()
    on_path = len([r for r in sent if r is not None])
    return on_path, len(sent) - on_path


def drained(drv, timeout=20):
    """Wait until the driver has done its queued endpoint deletes."""
    deadline = time.monotonic() + timeout
    while queued_deletes(drv):
        assert time.monotonic() < deadline, (queued_deletes(drv),
                                             drv.log_tail())
        time.sleep(0.02)


def manage(drv, *args):
    """``opencontrail-net-manage ARGS`` on ``drv``'s configuration."""
    cmd = [sys.executable, '-m', 'opencontrail_net.cmd.manage',
           '--config-file', drv.config_path] + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)
