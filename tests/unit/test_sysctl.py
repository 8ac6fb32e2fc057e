"""The sysctl writer (opencontrail_net.sysctl) on files of a temporary
directory: a value already there is not written, another is, and one
that cannot be written is reported."""

import errno
import logging
import os

import pytest

from opencontrail_net import sysctl

WHY = 'network n routes'


@pytest.fixture
def param(tmp_path):
    """A parameter holding 0, its modification time at the epoch (a write
    moves it)."""
    path = tmp_path / 'ip_forward'
    path.write_text('0\n')
    os.utime(path, ns=(0, 0))
    return path


def written(path):
    return path.stat().st_mtime_ns != 0


def read_only(monkeypatch):
    """/proc/sys as a managed plugin sees it: readable, not writable (the
    tests run as root, whom file modes do not stop)."""
    def fake(path, mode='r'):
        if 'w' in mode:
            raise OSError(errno.EROFS, 'Read-only file system', path)
        return open(path, mode)
    monkeypatch.setattr(sysctl, 'open', fake, raising=False)


def test_an_unchanged_value_is_not_written(param, caplog):
    caplog.set_level(logging.DEBUG)
    assert sysctl.write(str(param), '0') is False
    assert sysctl.ensure(str(param), '0', WHY) is True
    assert not written(param)
    assert caplog.records == []


def test_a_changed_value_is_written(param, caplog):
    caplog.set_level(logging.INFO)
    assert sysctl.ensure(str(param), '1', WHY) is True
    assert written(param) and param.read_text() == '1'
    assert [r.getMessage() for r in caplog.records] == [
        'Set %s to 1: %s' % (param, WHY)]
    os.utime(param, ns=(0, 0))
    assert sysctl.write(str(param), '1') is False
    assert not written(param)


def test_a_read_only_value_is_reported(param, monkeypatch, caplog):
    read_only(monkeypatch)
    with pytest.raises(OSError) as err:
        sysctl.write(str(param), '1')
    assert err.value.errno == errno.EROFS
    assert sysctl.ensure(str(param), '1', WHY) is False
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ('WARNING', 'Cannot set %s to 1 (%s): Read-only file system'
         % (param, WHY))]
    assert param.read_text() == '0\n' and not written(param)
    # Already so: nothing to write, nothing reported.
    caplog.clear()
    assert sysctl.ensure(str(param), '0', WHY) is True
    assert caplog.records == []


def test_a_missing_parameter_is_the_callers(tmp_path):
    """FileNotFoundError (IPv6's parameters in a kernel without IPv6)."""
    with pytest.raises(FileNotFoundError):
        sysctl.write(str(tmp_path / 'disable_ipv6'), '0')
    assert sysctl.ensure(str(tmp_path / 'disable_ipv6'), '0', WHY) is False
