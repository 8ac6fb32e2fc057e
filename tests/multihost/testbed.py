"""Several Docker hosts on one machine, for multi-host tests.

Each host is a network namespace with a mount and UTS namespace of its own
(its own hostname, /run/docker and /etc/docker), its own dockerd and its
own driver (a legacy plugin, or the managed plugin). The hosts are joined
by veth pairs to a bridge in a "switch" namespace, where the fake Contrail
API and etcd (the cluster store) listen: all traffic stays on addresses of
these namespaces. Everything is stopped and removed by close(), also after
a start that failed half-way.
"""

import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid

from tests.e2e import dockerd as dockerd_mod
from tests import driverproc
from tests.fakes import contrail_api

# The project Keystone's sync would have made on a real cluster.
PROJECT = ['default-domain', 'admin']

PREFIX = '10.213.0.'
SWITCH_ADDR = PREFIX + '254'
ETCD_PORT = 2379
CLONE_NEWNET = 0x40000000


def sh(*args, check=True, timeout=60):
    res = subprocess.run([str(a) for a in args], capture_output=True,
                         text=True, timeout=timeout)
    if check and res.returncode:
        raise RuntimeError('%s: %s%s' % (' '.join(map(str, args)),
                                         res.stdout, res.stderr))
    return res


def unavailable_reason():
    reason = dockerd_mod.unavailable_reason()
    if reason:
        return reason
    for binary in ('etcd', 'nsenter', 'unshare', 'ip'):
        if shutil.which(binary) is None:
            return '%s is not installed' % binary
    return None


def in_netns(path, func):
    """Run func in a thread that has entered the netns at ``path``.

    Sockets it binds stay in that namespace; the caller's is untouched.
    """
    result = {}

    def run():
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(path, os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), 'setns %s' % path)
        finally:
            os.close(fd)
        try:
            result['value'] = func()
        except BaseException as exc:
            result['error'] = exc
    thread = threading.Thread(target=run, name='in-netns')
    thread.start()
    thread.join()
    if 'error' in result:
        raise result['error']
    return result['value']


def _wait(what, check, timeout, interval=0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError('waited %.0f s for %s' % (timeout, what))
        time.sleep(interval)


# Inside a host's new mount namespace: a sysfs of its own netns (the
# cgroup mounts moved back on top), private /run/docker and /etc/docker.
_HOST_SETUP = '''set -e
mount --make-rprivate /
mkdir -p /etc/docker /run/docker
mkdir -p "$ASIDE"
mount --rbind /sys/fs/cgroup "$ASIDE"
mount -t sysfs sysfs /sys
mount --rbind "$ASIDE" /sys/fs/cgroup
umount -l "$ASIDE"
mount -t tmpfs tmpfs /run/docker
mkdir /run/docker/plugins
mount -t tmpfs tmpfs /etc/docker
mkdir /etc/docker/plugins
hostname "$HOSTNAME_"
echo ready
exec sleep infinity
'''


class Host:
    """One Docker host: namespaces, dockerd, and a driver."""

    def __init__(self, bed, index, cluster_store=False, env=None):
        self.bed = bed
        self.index = index
        self.name = 'h%d' % index
        self.netns = bed.tag + self.name
        self.addr = PREFIX + str(index)
        self.base = os.path.join(bed.base, self.name)
        self.cluster_store = cluster_store
        self.env = env or {}
        self.holder = None
        self.dockerd = None
        self.driver = None

    def start(self):
        os.makedirs(self.base)
        sh('ip', 'netns', 'add', self.netns)
        self.bed.netns.append(self.netns)
        sh('ip', '-n', self.netns, 'link', 'set', 'lo', 'up')
        sh('ip', '-n', self.bed.switch, 'link', 'add', 'p' + self.name,
           'type', 'veth', 'peer', 'name', 'eth0', 'netns', self.netns)
        sh('ip', '-n', self.bed.switch, 'link', 'set', 'p' + self.name,
           'master', 'br0', 'up')
        sh('ip', '-n', self.netns, 'addr', 'add', self.addr + '/24', 'dev',
           'eth0')
        sh('ip', '-n', self.netns, 'link', 'set', 'eth0', 'up')
        os.makedirs('/run/docker', exist_ok=True)
        self.holder = subprocess.Popen(
            ['nsenter', '--net=/run/netns/' + self.netns, 'unshare', '-m',
             '-u', '--propagation', 'private', 'sh', '-c', _HOST_SETUP],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
            env=dict(os.environ, ASIDE=os.path.join(self.base, 'cg'),
                     HOSTNAME_=self.name))
        line = self.holder.stdout.readline().strip()
        if line != 'ready':
            raise RuntimeError('host %s did not start: %s%s' % (
                self.name, line, self.holder.stdout.read()))
        args = []
        if self.cluster_store:
            args = ['--cluster-store=etcd://%s:%d' % (SWITCH_ADDR,
                                                      ETCD_PORT),
                    '--cluster-advertise=%s:2376' % self.addr]
        self.dockerd = dockerd_mod.DockerDaemon(
            os.path.join(self.base, 'd'), extra_args=args,
            prefix=self.enter(), env=self.env)
        self.dockerd.start()
        self.dockerd.import_busybox()

    def enter(self):
        """A command prefix that runs in this host's namespaces."""
        return ['nsenter', '-t', str(self.holder.pid), '-m', '-u', '-n',
                '--']

    def path(self, path):
        """``path`` as this host's processes see it."""
        return '/proc/%d/root%s' % (self.holder.pid, path)

    def run(self, *args, check=True):
        return sh(*(self.enter() + list(args)), check=check)

    def start_driver(self, name, **options):
        """The driver as a legacy plugin ``name`` of this host's dockerd."""
        work = os.path.join(self.base, 'drv')
        os.makedirs(work)
        self.driver = HostDriver(self, work, os.path.join(work, 'p.sock'),
                                 **options)
        self.driver.start()
        with open(self.path('/etc/docker/plugins/%s.spec' % name), 'w') as f:
            f.write('unix://%s\n' % self.driver.socket_path)
        return self.driver

    def cli(self, *args, **kwargs):
        return self.dockerd.cli(*args, **kwargs)

    def links(self, kind=None):
        """This host's interfaces as ``ip -j -d link`` gives them."""
        extra = ['type', kind] if kind else []
        return json.loads(sh('ip', '-n', self.netns, '-j', '-d', 'link',
                             'show', *extra).stdout)

    def bridge_of(self, network_id):
        """The name of the ``bridge`` port driver's bridge of a network."""
        for link in self.links('bridge'):
            if link.get('ifalias') == network_id:
                return link['ifname']
        return None

    def stop(self):
        if self.dockerd is not None:
            try:
                self.dockerd.stop()
            finally:
                self.dockerd = None
        if self.driver is not None:
            self.driver.kill()
            self.driver = None
        if self.holder is not None:
            os.killpg(self.holder.pid, signal.SIGKILL)
            self.holder.wait()
            self.holder.stdout.close()
            self.holder = None


class HostDriver(driverproc.DriverProcess):
    """The driver process in a host's namespaces."""

    def __init__(self, host, workdir, socket_path, **options):
        self.host = host
        super().__init__(workdir, socket_path, **options)

    def command(self):
        return self.host.enter() + super().command()


class Testbed:
    """A switch namespace with the fake Contrail API, and hosts."""

    def __init__(self):
        self.tag = 'ocm' + uuid.uuid4().hex[:5]
        # Short: dockerd makes sockets a few levels below each host's dir.
        self.base = tempfile.mkdtemp(prefix='ocm-', dir='/tmp')
        self.switch = self.tag + 'sw'
        self.netns = []
        self.hosts = []
        self.fake = None
        self.etcd = None
        self.segments = 0

    def start(self, n_hosts=0, etcd=False, **host_options):
        sh('ip', 'netns', 'add', self.switch)
        self.netns.append(self.switch)
        for cmd in (['link', 'set', 'lo', 'up'],
                    ['link', 'add', 'br0', 'type', 'bridge'],
                    ['addr', 'add', SWITCH_ADDR + '/24', 'dev', 'br0'],
                    ['link', 'set', 'br0', 'up'],
                    # The segment that links the hosts' network bridges.
                    ['link', 'add', 'seg', 'type', 'bridge'],
                    ['link', 'set', 'seg', 'up']):
            sh('ip', '-n', self.switch, *cmd)
        self.fake = in_netns('/run/netns/' + self.switch, self._start_fake)
        if etcd:
            self._start_etcd()
        self.add_hosts(n_hosts, cluster_store=etcd, **host_options)
        return self

    def _start_fake(self):
        fake = contrail_api.FakeContrailAPI(host=SWITCH_ADDR)
        fake.start()
        fake.add_project(PROJECT)
        return fake

    def _start_etcd(self):
        data = os.path.join(self.base, 'etcd')
        log = open(os.path.join(self.base, 'etcd.log'), 'w')
        peer = 'http://127.0.0.1:2380'
        self.etcd = subprocess.Popen(
            ['ip', 'netns', 'exec', self.switch, 'etcd', '--name', self.tag,
             '--data-dir', data, '--enable-v2=true',
             '--listen-client-urls', 'http://%s:%d,http://127.0.0.1:%d' % (
                 SWITCH_ADDR, ETCD_PORT, ETCD_PORT),
             '--advertise-client-urls',
             'http://%s:%d' % (SWITCH_ADDR, ETCD_PORT),
             '--listen-peer-urls', peer,
             '--initial-advertise-peer-urls', peer,
             '--initial-cluster', '%s=%s' % (self.tag, peer)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

        def ready():
            if self.etcd.poll() is not None:
                raise RuntimeError('etcd exited:\n' + self.etcd_log())
            return 'ready to serve client requests' in self.etcd_log()
        _wait('etcd', ready, 20, 0.05)

    def etcd_log(self):
        with open(os.path.join(self.base, 'etcd.log')) as f:
            return f.read()

    def add_hosts(self, n, **options):
        start = len(self.hosts) + 1
        hosts = [Host(self, i, **options) for i in range(start, start + n)]
        self.hosts.extend(hosts)
        errors = []

        def start_one(host):
            try:
                host.start()
            except Exception as exc:
                errors.append(exc)
        threads = [threading.Thread(target=start_one, args=(h,))
                   for h in hosts]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        return hosts

    def link_to_segment(self, host, bridge):
        """Put ``bridge`` of ``host`` on the shared segment (L2)."""
        self.segments += 1
        outside, inside = 's%d' % self.segments, 'ocseg%d' % self.segments
        sh('ip', '-n', self.switch, 'link', 'add', outside, 'type', 'veth',
           'peer', 'name', inside, 'netns', host.netns)
        sh('ip', '-n', self.switch, 'link', 'set', outside, 'master', 'seg',
           'up')
        sh('ip', '-n', host.netns, 'link', 'set', inside, 'master', bridge,
           'up')

    def driver_options(self, **options):
        """Driver options for the contrail backend on the fake API."""
        base = {'backend': 'contrail', 'port_driver': 'bridge',
                'scope': 'global', 'contrail.api_server': SWITCH_ADDR,
                'contrail.api_port': self.fake.port,
                'contrail.auth_type': 'noauth',
                'contrail.project': PROJECT[1]}
        base.update(options)
        return base

    def close(self):
        """Stop and remove everything; the first error is raised last."""
        errors = []
        with contextlib.ExitStack() as stack:
            for host in self.hosts:
                stack.callback(self._guard, errors, host.stop)
        if self.etcd is not None:
            self._guard(errors, self._stop_etcd)
        if self.fake is not None:
            self._guard(errors, self.fake.stop)
            self.fake = None
        for name in reversed(self.netns):
            sh('ip', 'netns', 'del', name, check=False)
        self.netns = []
        shutil.rmtree(self.base, ignore_errors=True)
        if errors:
            raise errors[0]

    def _stop_etcd(self):
        os.killpg(self.etcd.pid, signal.SIGKILL)
        self.etcd.wait()
        self.etcd = None

    @staticmethod
    def _guard(errors, func):
        try:
            func()
        except Exception as exc:
            errors.append(exc)


wait = _wait
