"""A private dockerd for end-to-end tests.

Everything a DockerDaemon owns (data root, exec root, API socket, pid file,
log, containerd and its shims) is named by a path under one base directory,
so stop() can find all of it again, even after a start that failed half-way.
"""

import glob
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time

import docker

BUSYBOX = '/bin/busybox'
# The engine under test: Debian 12's docker.io, installed, unless
# OCN_DOCKER_ENGINE names a directory where another Debian docker.io and
# docker-cli are extracted (tests/engines.sh): its usr/sbin/dockerd,
# usr/bin/docker, and its docker-proxy and CLI plugins (compose).
ENGINE_ENV = 'OCN_DOCKER_ENGINE'
ENGINE_ROOT = os.environ.get(ENGINE_ENV) or None
if ENGINE_ROOT:
    DOCKERD = os.path.join(ENGINE_ROOT, 'usr', 'sbin', 'dockerd')
    DOCKER_CLI = os.path.join(ENGINE_ROOT, 'usr', 'bin', 'docker')
    CLI_PLUGINS = os.path.join(ENGINE_ROOT, 'usr', 'libexec', 'docker',
                               'cli-plugins')
else:
    DOCKERD = 'dockerd'
    # The CLI shipped with Debian's dockerd: another one may come first in
    # PATH.
    DOCKER_CLI = '/usr/bin/docker'
    CLI_PLUGINS = '/usr/libexec/docker/cli-plugins'
# Shared by every daemon in this mount namespace: legacy plugins put their
# sockets here, and dockerd keeps managed plugins' exec dirs here too.
PLUGIN_DIR = '/run/docker/plugins'
# containerd 1.6 puts its shims' sockets here, whatever its state dir.
SHIM_SOCKET_DIR = '/run/containerd/s'
SOCKET_PATH_MAX = 107
CGROUP_ROOT = '/sys/fs/cgroup'


def unavailable_reason():
    """Say why this host cannot run a private dockerd, or return None."""
    if os.geteuid() != 0:
        return 'end-to-end tests need root'
    for binary in (DOCKERD, 'containerd', 'runc', DOCKER_CLI, BUSYBOX):
        if shutil.which(binary) is None:
            return '%s is not installed' % binary
    return None


_VERSION = []


def engine_version():
    """The engine's version as a tuple of ints, e.g. (28, 5, 2)."""
    if not _VERSION:
        out = subprocess.run([DOCKERD, '--version'], capture_output=True,
                             text=True, check=True).stdout
        found = re.search(r'version (\d+)\.(\d+)\.(\d+)', out)
        _VERSION.append(tuple(int(n) for n in found.groups()))
    return _VERSION[0]


def engine_name():
    """'Docker 28.5.2 (<where dockerd is>)', for reports."""
    return 'Docker %s (%s)' % ('.'.join(map(str, engine_version())),
                               shutil.which(DOCKERD))


def container_cgroups(container_id):
    """The cgroup dirs of a container (under /docker) or a managed plugin."""
    return (glob.glob(os.path.join(CGROUP_ROOT, '*', container_id)) +
            glob.glob(os.path.join(CGROUP_ROOT, '*', '*', container_id)))


def make_base_dir():
    """Make a fresh base directory with a short path.

    Not in $TMPDIR or pytest's tmp_path: a unix socket path must stay under
    108 bytes, and dockerd makes sockets a few levels below the base.
    """
    return tempfile.mkdtemp(prefix='ocn-e2e-', dir='/tmp')


class DockerDaemonError(Exception):
    """dockerd did not start or did not go away."""


class DockerCLIError(subprocess.CalledProcessError):
    """A docker command failed; its message carries the command's output."""

    def __str__(self):
        return '%s\nstdout:\n%s\nstderr:\n%s' % (
            super().__str__(), self.stdout, self.stderr)


class DockerDaemon:
    """A dockerd with its own data root, exec root, API socket and containerd.

    No bridge, iptables or forwarding: it touches no host network setting;
    with ``defaults`` (in a network namespace only) dockerd's own.
    """

    START_TIMEOUT = 30
    STOP_TIMEOUT = 20
    KILL_TIMEOUT = 10

    def __init__(self, base_dir, extra_args=(), dockerd=DOCKERD,
                 docker_cli=DOCKER_CLI, netns=None, prefix=(), env=None,
                 defaults=False):
        self.base_dir = os.path.abspath(base_dir)
        # dockerd's own defaults (iptables, forwarding, masquerade, the
        # docker0 bridge), as users run it: only in a namespace of ours.
        if defaults and not netns:
            raise ValueError('dockerd with its defaults only in a netns')
        self.defaults = defaults
        # A network namespace (by ``ip netns`` name) to run dockerd in, away
        # from other drivers that sweep the host's idle veth pairs.
        self.netns = netns
        self.extra_args = list(extra_args)
        self.dockerd = dockerd
        self.docker_cli = docker_cli
        # Run dockerd through this (e.g. nsenter into a host's namespaces).
        self.prefix = list(prefix)
        self.env = dict(env or {})
        if ENGINE_ROOT:
            # Its own docker-proxy (the one dockerd execs).
            self.env.setdefault('PATH', '%s:%s' % (
                os.path.join(ENGINE_ROOT, 'usr', 'sbin'),
                os.environ.get('PATH', '')))
        self.data_root = os.path.join(self.base_dir, 'data')
        self.exec_root = os.path.join(self.base_dir, 'exec')
        # Docker's SandboxKeys (container netns paths) live here.
        self.netns_dir = os.path.join(self.exec_root, 'netns')
        self.socket_path = os.path.join(self.base_dir, 'docker.sock')
        self.url = 'unix://' + self.socket_path
        self.log_path = os.path.join(self.base_dir, 'dockerd.log')
        self._proc = None
        self._client = None
        self._images = set()
        # Hermetic CLI: no user config, credential helper or context.
        self._cli_env = {k: v for k, v in os.environ.items()
                         if k not in ('DOCKER_HOST', 'DOCKER_CONTEXT')}
        self._cli_env['DOCKER_CONFIG'] = os.path.join(self.base_dir, 'cli')

    def __repr__(self):
        return '<DockerDaemon %s>' % self.base_dir

    @property
    def pid(self):
        """The pid of dockerd, or None if it is not running."""
        if self._proc is None or self._proc.poll() is not None:
            return None
        return self._proc.pid

    def start(self):
        """Start dockerd and wait until its API answers.

        If it does not, stop() it (nothing is left behind) and raise
        DockerDaemonError with the tail of its log.
        """
        if self.pid is not None:
            raise DockerDaemonError('%r is already running' % self)
        # The longest socket path dockerd makes under the base dir.
        containerd_sock = os.path.join(
            self.exec_root, 'containerd', 'containerd.sock.ttrpc')
        if len(containerd_sock) > SOCKET_PATH_MAX:
            raise ValueError('base dir %s is too long for unix sockets'
                             % self.base_dir)
        os.makedirs(self.base_dir, exist_ok=True)
        # Ignore the host's /etc/docker/daemon.json, and keep the engine ID
        # (key.json) of this daemon out of the shared /etc/docker.
        config_file = os.path.join(self.base_dir, 'daemon.json')
        with open(config_file, 'w') as f:
            json.dump({'deprecated-key-path':
                       os.path.join(self.base_dir, 'key.json')}, f)
        # The CLI's config: the engine's own CLI plugins (compose).
        os.makedirs(self._cli_env['DOCKER_CONFIG'], exist_ok=True)
        with open(os.path.join(self._cli_env['DOCKER_CONFIG'],
                               'config.json'), 'w') as f:
            json.dump({'cliPluginsExtraDirs': [CLI_PLUGINS]}, f)
        cmd = [self.dockerd,
               '--data-root', self.data_root,
               '--exec-root', self.exec_root,
               '-H', self.url,
               '--pidfile', os.path.join(self.base_dir, 'docker.pid'),
               '--config-file', config_file]
        if not self.defaults:
            cmd += ['--iptables=false', '--ip-forward=false',
                    '--ip-masq=false', '--bridge=none']
        cmd += ['--storage-driver=vfs'] + self.extra_args
        if self.netns:
            cmd = ['nsenter', '--net=/run/netns/' + self.netns] + cmd
        cmd = self.prefix + cmd
        with open(self.log_path, 'ab') as log:
            # A session of its own: a Ctrl-C meant for pytest must not kill
            # dockerd before stop() has removed its containers. TMPDIR: when
            # dockerd gives up on containerd it has it dump its stacks there.
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
                env=dict(os.environ, TMPDIR=self.base_dir, **self.env))
        try:
            self._wait_for_api()
        except DockerDaemonError as exc:
            msg = '%s\n--- last lines of %s ---\n%s' % (
                exc, self.log_path, self.log_tail())
            self.stop()
            raise DockerDaemonError(msg) from None

    def restart(self):
        """Stop dockerd gracefully and start it again on the same state.

        As on any restart of dockerd, its containers are stopped.
        """
        self._terminate()
        self.start()

    def stop(self):
        """Remove all containers, stop dockerd and remove all it left.

        Safe in any state, also after a start() that failed half-way:
        kills every process named by a path under the base dir (dockerd,
        containerd, shims) and the containers they run, unmounts every
        mount under it (data root, container netns) and removes it.
        """
        # A daemon that does not answer cannot remove containers either.
        if self.pid is not None and self._ping():
            self._remove_containers()
        self._terminate()
        if self._client is not None:
            self._client.close()
            self._client = None
        killed_shims = self._kill_leftovers()
        roots = [self.base_dir] + self._plugin_exec_dirs()
        self._unmount_all(roots)
        for path in filter(os.path.exists, roots):
            shutil.rmtree(path)
        self._remove_shim_leftovers(killed_shims)
        self._images.clear()

    def cli(self, *args, check=True, timeout=120, input=None):
        """Run the docker CLI against this daemon; return CompletedProcess."""
        cmd = [self.docker_cli, '-H', self.url] + [str(a) for a in args]
        proc = subprocess.run(cmd, input=input, capture_output=True,
                              text=True, timeout=timeout, env=self._cli_env)
        if check and proc.returncode:
            raise DockerCLIError(proc.returncode, cmd, proc.stdout,
                                 proc.stderr)
        return proc

    @property
    def client(self):
        """A docker-py client of this daemon, made on first use."""
        if self._client is None:
            self._client = docker.DockerClient(base_url=self.url)
        return self._client

    def import_busybox(self, tag='bb:latest'):
        """Import an image holding only busybox and its applets; return tag.

        No registry is reachable, so the image is built from the host's
        static busybox. Done once per daemon and tag.
        """
        if tag in self._images:
            return tag
        with tempfile.TemporaryDirectory(prefix='ocn-rootfs-') as tmp:
            root = os.path.join(tmp, 'rootfs')
            bin_dir = os.path.join(root, 'bin')
            os.makedirs(bin_dir)
            os.mkdir(os.path.join(root, 'tmp'))
            os.chmod(os.path.join(root, 'tmp'), 0o1777)
            shutil.copy(BUSYBOX, os.path.join(bin_dir, 'busybox'))
            applets = subprocess.run([BUSYBOX, '--list'], check=True,
                                     capture_output=True, text=True)
            for applet in applets.stdout.split():
                if applet != 'busybox':
                    os.symlink('busybox', os.path.join(bin_dir, applet))
            tarball = os.path.join(tmp, 'rootfs.tar')
            with tarfile.open(tarball, 'w') as tar:
                tar.add(root, arcname='.')
            self.cli('import', tarball, tag)
        self._images.add(tag)
        return tag

    def log_tail(self, n=50):
        """Return the last n lines of dockerd's log."""
        try:
            with open(self.log_path, errors='replace') as f:
                return ''.join(f.readlines()[-n:])
        except FileNotFoundError:
            return ''

    def _wait_for_api(self):
        deadline = time.monotonic() + self.START_TIMEOUT
        while not self._ping():
            if self._proc.poll() is not None:
                raise DockerDaemonError('dockerd exited with status %s'
                                        % self._proc.returncode)
            if time.monotonic() > deadline:
                raise DockerDaemonError('dockerd API did not answer within '
                                        '%s s' % self.START_TIMEOUT)
            time.sleep(0.05)

    def _ping(self):
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(2)
                sock.connect(self.socket_path)
                sock.sendall(b'GET /_ping HTTP/1.0\r\n\r\n')
                status_line = sock.recv(64).split(b'\r\n', 1)[0]
        except OSError:
            return False
        return b' 200 ' in status_line

    def _remove_containers(self):
        # Removed while dockerd and the plugins still run, so the network
        # drivers see each container leave.
        try:
            ids = self.cli('ps', '-aq', check=False, timeout=30).stdout
            if ids.split():
                self.cli('rm', '-f', *ids.split(), check=False, timeout=60)
        except subprocess.TimeoutExpired:
            pass  # A hung plugin; _kill_leftovers() does the rest.

    def _terminate(self):
        if self.pid is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(self.STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def _own_processes(self):
        """Map pid to argv of live processes that belong to this daemon.

        Those naming a path under the base dir (dockerd, containerd, the
        shims, a stray CLI) and their descendants: containers run as
        children of their shim, with command lines of their own.
        """
        marker = (self.base_dir + '/').encode()
        children, argvs, owned = {}, {}, set()
        for entry in os.listdir('/proc'):
            if not entry.isdigit():
                continue
            pid = int(entry)
            try:
                with open('/proc/%d/stat' % pid, 'rb') as f:
                    state, ppid = f.read().rsplit(b')', 1)[1].split()[:2]
                with open('/proc/%d/cmdline' % pid, 'rb') as f:
                    argv = f.read().split(b'\0')
            except OSError:
                continue  # Gone meanwhile.
            if state == b'Z' or pid == os.getpid():
                continue
            children.setdefault(int(ppid), []).append(pid)
            argvs[pid] = argv
            if marker in b'\0'.join(argv):
                owned.add(pid)
        todo = list(owned)
        while todo:
            for child in children.get(todo.pop(), ()):
                if child not in owned:
                    owned.add(child)
                    todo.append(child)
        return {pid: argvs[pid] for pid in owned}

    def _kill_leftovers(self):
        processes = self._own_processes()
        shims = [opts for opts in map(self._shim_opts, processes.values())
                 if opts]
        deadline = time.monotonic() + self.KILL_TIMEOUT
        while processes:
            for pid in processes:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if time.monotonic() > deadline:
                raise DockerDaemonError('processes of %r survive SIGKILL: %s'
                                        % (self, sorted(processes)))
            time.sleep(0.1)
            processes = self._own_processes()
        return shims

    @staticmethod
    def _remove_shim_leftovers(shims):
        # A shim removes its socket and its container's cgroups when it
        # exits, not when it is killed.
        for opts in shims:
            key = os.path.join(opts['-address'], opts['-namespace'],
                               opts['-id'])
            try:
                os.unlink(os.path.join(
                    SHIM_SOCKET_DIR, hashlib.sha256(key.encode()).hexdigest()))
            except FileNotFoundError:
                pass
            for cgroup in container_cgroups(opts['-id']):
                os.rmdir(cgroup)

    @staticmethod
    def _shim_opts(argv):
        """The options of a containerd shim's command line, or None."""
        argv = [arg.decode(errors='replace') for arg in argv]
        opts = dict(zip(argv[1::2], argv[2::2]))
        if (argv[0].endswith('containerd-shim-runc-v2') and
                {'-address', '-namespace', '-id'} <= set(opts)):
            return opts
        return None

    def _plugin_exec_dirs(self):
        """Exec dirs, in the shared PLUGIN_DIR, of this daemon's plugins.

        dockerd keeps them there, not under its exec root, to keep managed
        plugins' socket paths short.
        """
        try:
            ids = os.listdir(os.path.join(self.data_root, 'plugins'))
        except FileNotFoundError:
            return []
        return [os.path.join(PLUGIN_DIR, plugin_id) for plugin_id in ids
                if re.fullmatch('[0-9a-f]{64}', plugin_id)]

    @staticmethod
    def _mounts_under(roots):
        """Mount points at or under any of roots, deepest first."""
        found = []
        with open('/proc/self/mountinfo') as f:
            for line in f:
                point = re.sub(r'\\([0-7]{3})',
                               lambda m: chr(int(m.group(1), 8)),
                               line.split()[4])
                if any(point == root or point.startswith(root + '/')
                       for root in roots):
                    found.append(point)
        return sorted(found, key=lambda p: p.count('/'), reverse=True)

    def _unmount_all(self, roots):
        # Mounts can be stacked on one point: unmount until none is left.
        for _attempt in range(10):
            mounts = self._mounts_under(roots)
            if not mounts:
                return
            for point in mounts:
                subprocess.run(['umount', '--lazy', point],
                               stderr=subprocess.DEVNULL)
        raise DockerDaemonError('cannot unmount %s' % ', '.join(mounts))
