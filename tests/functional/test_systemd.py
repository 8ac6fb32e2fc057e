"""The service systemd runs: the shipped unit, and readiness (Type=notify)."""

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from tests import driverproc

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
UNIT = os.path.join(ROOT, 'etc', 'systemd', 'opencontrail-net.service')


def unit_text():
    with open(UNIT) as f:
        return f.read()


def test_unit_verifies(tmp_path):
    analyze = shutil.which('systemd-analyze')
    if analyze is None:
        pytest.skip('systemd-analyze is not installed')
    # The unit as shipped, but for where this checkout's driver is: verify
    # checks that ExecStart's program exists.
    driver = os.path.join(os.path.dirname(sys.executable),
                          'opencontrail-net-driver')
    assert os.path.exists(driver)
    text = unit_text().replace('/opt/opencontrail-net/bin/'
                               'opencontrail-net-driver', driver)
    path = tmp_path / 'opencontrail-net.service'
    path.write_text(text)
    res = subprocess.run([analyze, 'verify', str(path)],
                         capture_output=True, text=True, timeout=60)
    # Only what is about this unit: the host's own units may warn too.
    mine = [line for line in res.stderr.splitlines()
            if 'opencontrail-net' in line]
    assert mine == [], res.stderr


def test_unit_settings():
    text = unit_text()
    assert re.search(r'^Type=notify$', text, re.M)
    assert re.search(r'^Restart=on-failure$', text, re.M)
    assert re.search(r'^Before=docker.service$', text, re.M)
    assert ('--config-file /etc/opencontrail-net/opencontrail-net.conf'
            in text)


def test_ready_only_once_served(tmp_path):
    """READY=1 arrives after the socket answers, and not before."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify_path = str(tmp_path / 'notify.sock')
    listener.bind(notify_path)
    listener.settimeout(0.05)
    work = tempfile.mkdtemp(prefix='ocn-sd-', dir='/tmp')
    sock_path = os.path.join(work, 'ocnsd.sock')
    drv = driverproc.DriverProcess(work, sock_path, socket_mode='0640')
    os.environ['NOTIFY_SOCKET'] = notify_path
    try:
        drv.start(wait=False)
    finally:
        del os.environ['NOTIFY_SOCKET']
    try:
        messages = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not messages:
            try:
                messages.append(listener.recv(4096).decode())
            except socket.timeout:
                assert drv.proc.poll() is None, drv.log_tail()
                continue
            # The moment READY=1 arrives, the socket is served, with its
            # mode.
            assert drv.call('Plugin.Activate')[0] == 200
            assert oct(os.stat(sock_path).st_mode & 0o777) == '0o640'
        assert messages and 'READY=1' in messages[0].split('\n'), \
            drv.log_tail()
        drv.stop()
        listener.settimeout(2)
        assert 'STOPPING=1' in listener.recv(4096).decode()
    finally:
        drv.kill()
        listener.close()
        shutil.rmtree(work, ignore_errors=True)
