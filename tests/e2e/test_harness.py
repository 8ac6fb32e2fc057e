"""Smoke tests of the private dockerd harness itself."""

import hashlib
import os
import signal

import pytest

from . import dockerd as harness


def test_run_busybox(dockerd):
    out = dockerd.cli('run', '--rm', '--net', 'none', 'bb:latest',
                      'ip', 'addr').stdout
    assert ': lo: <LOOPBACK' in out


def test_client_lists_image(dockerd):
    tags = [t for image in dockerd.client.images.list() for t in image.tags]
    assert 'bb:latest' in tags


def test_cli_error_carries_output(dockerd):
    with pytest.raises(harness.DockerCLIError) as exc:
        dockerd.cli('run', '--rm', '--net', 'none', 'bb:latest',
                    'sh', '-c', 'echo to-stdout; echo to-stderr >&2; exit 3')
    assert exc.value.returncode == 3
    assert 'to-stdout' in str(exc.value)
    assert 'to-stderr' in str(exc.value)


def _pids():
    return [int(entry) for entry in os.listdir('/proc') if entry.isdigit()]


def _cmdline(pid):
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            return f.read()
    except OSError:
        return b''  # Gone meanwhile.


def _processes_naming(path):
    marker = path.encode() + b'/'
    return [pid for pid in _pids() if marker in _cmdline(pid)]


def _netns_users(netns_id):
    users = []
    for pid in _pids():
        try:
            if os.readlink('/proc/%d/ns/net' % pid) == netns_id:
                users.append(pid)
        except OSError:
            pass
    return users


def _mountinfo_lines(*needles):
    with open('/proc/self/mountinfo') as f:
        return [line for line in f if any(n in line for n in needles)]


def _shim_socket(daemon, container_id):
    # Named as containerd 1.6 names it; checked to exist while the shim runs.
    key = os.path.join(daemon.exec_root, 'containerd', 'containerd.sock',
                       'moby', container_id)
    return os.path.join(harness.SHIM_SOCKET_DIR,
                        hashlib.sha256(key.encode()).hexdigest())


@pytest.mark.parametrize('crash', [False, True], ids=['clean', 'crashed'])
def test_stop_leaves_nothing(dockerd_host, crash):
    daemon = harness.DockerDaemon(harness.make_base_dir())
    try:
        daemon.start()
        daemon.import_busybox()
        container_id = daemon.cli('run', '-d', '--net', 'none', 'bb:latest',
                                  'sleep', '600').stdout.strip()
        assert harness.container_cgroups(container_id)
        shim_socket = _shim_socket(daemon, container_id)
        assert os.path.exists(shim_socket)
        netns, = os.listdir(daemon.netns_dir)
        inode = os.stat(os.path.join(daemon.netns_dir, netns)).st_ino
        netns_id = 'net:[%d]' % inode
        users = _netns_users(netns_id)
        assert users
        # Held through a process's link, not dockerd's mount: the
        # namespace outlives the daemon's stop, so its number cannot go
        # to a namespace another test makes meanwhile.
        held = os.open('/proc/%d/ns/net' % users[0], os.O_RDONLY)
        assert os.fstat(held).st_ino == inode
        if crash:
            # What a crashed or hung daemon leaves: the shim, the container,
            # its netns and cgroups, dockerd's mounts and the shim's socket.
            os.kill(daemon.pid, signal.SIGKILL)
            daemon._proc.wait()
    finally:
        daemon.stop()

    try:
        assert _processes_naming(daemon.base_dir) == []
        assert _netns_users(netns_id) == []
        assert _mountinfo_lines(daemon.base_dir, netns_id) == []
    finally:
        os.close(held)
    assert not os.path.exists(shim_socket)
    assert harness.container_cgroups(container_id) == []
    assert not os.path.exists(daemon.base_dir)


@pytest.mark.parametrize('extra_args, timeout, error', [
    (['--no-such-flag'], 30, 'unknown flag: --no-such-flag'),
    # No wait at all: dockerd cannot answer the instant it is spawned.
    ([], 0, 'did not answer'),
], ids=['dockerd-exits', 'api-timeout'])
def test_failed_start_leaves_nothing(dockerd_host, extra_args, timeout,
                                     error):
    daemon = harness.DockerDaemon(harness.make_base_dir(), extra_args)
    daemon.START_TIMEOUT = timeout
    try:
        with pytest.raises(harness.DockerDaemonError, match=error):
            daemon.start()
    finally:
        daemon.stop()
    assert _processes_naming(daemon.base_dir) == []
    assert _mountinfo_lines(daemon.base_dir) == []
    assert not os.path.exists(daemon.base_dir)


def test_restart_keeps_state(dockerd_host):
    daemon = harness.DockerDaemon(harness.make_base_dir())
    try:
        daemon.start()
        daemon.import_busybox()
        # sleep as pid 1 ignores SIGTERM: do not wait 10 s for it.
        daemon.cli('run', '-d', '--net', 'none', '--name', 'sleeper',
                   '--stop-timeout', '1', 'bb:latest', 'sleep', '600')
        daemon.restart()
        state = daemon.cli('inspect', '-f', '{{.State.Running}}', 'sleeper')
        assert state.stdout.strip() == 'false'
        daemon.cli('run', '--rm', '--net', 'none', 'bb:latest', 'true')
    finally:
        daemon.stop()
    assert not os.path.exists(daemon.base_dir)
