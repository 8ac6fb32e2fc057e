"""The API server side of the cluster benchmark, each in a process of its
own so that no part of it shares an interpreter lock with the hosts'
clients: the fake Contrail API (``tests.fakes.contrail_api``) and the
counting proxy (``tests.fakes.api_proxy``) in front of any API server.

Run as ``python -m benchmarks.cluster_servers fake PROJECT`` or
``... proxy HOST PORT``; the child prints ``port N`` once it serves, then
answers one line per command read on its standard input:

* ``count``: the number of requests since the last ``reset``;
* ``reset``: forget the requests counted (answers ``ok``);
* ``record``: keep the method, path with query and body of every request
  from now (answers ``ok``);
* ``take``: those kept, as one JSON line, and stop keeping them.

End of input stops it. :class:`Served` starts such a child and speaks
that protocol; :class:`RealProject` stands for a real server instead of
the fake, with a project of the run's own.
"""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from tests.fakes import api_proxy  # noqa: E402
from tests.fakes import contrail_api  # noqa: E402


class RecordingProxy(api_proxy.ApiProxy):
    """The counting proxy that can also keep whole requests."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.recorded = None

    def handle(self, handler):
        # The class's read_body: the instance's is the one set for the
        # connection's previous request.
        body = type(handler).read_body(handler)
        handler.read_body = lambda: body
        kept = self.recorded
        if kept is not None:
            kept.append((handler.command, handler.path,
                         body.decode('utf-8', 'replace')))
        super().handle(handler)


def serve(argv):
    kind = argv[0]
    if kind == 'fake':
        server = contrail_api.FakeContrailAPI().start()
        server.add_project(['default-domain', argv[1]])
    elif kind == 'proxy':
        server = RecordingProxy(argv[1], int(argv[2])).start()
    else:
        raise SystemExit('usage: fake PROJECT | proxy HOST PORT')
    print('port %d' % server.port, flush=True)
    try:
        for line in sys.stdin:
            command = line.strip()
            if command == 'count':
                answer = str(server.count())
            elif command == 'reset':
                server.reset_requests()
                answer = 'ok'
            elif command == 'record':
                server.recorded = []
                answer = 'ok'
            elif command == 'take':
                answer = json.dumps(server.recorded or [])
                server.recorded = None
            else:
                answer = 'unknown command %r' % command
            print(answer, flush=True)
    finally:
        server.stop()


class Served:
    """One child process of :func:`serve`."""

    def __init__(self, *argv):
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'benchmarks.cluster_servers'] +
            [str(a) for a in argv], cwd=ROOT, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, start_new_session=True)
        line = self.proc.stdout.readline()
        if not line.startswith('port '):
            self.stop()
            raise RuntimeError('%s did not start: %r' % (argv[0], line))
        self.host = '127.0.0.1'
        self.port = int(line.split()[1])
        self.pid = self.proc.pid

    def command(self, line):
        self.proc.stdin.write(line + '\n')
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def count(self):
        return int(self.command('count'))

    def reset(self):
        self.command('reset')

    def record(self):
        self.command('record')

    def take(self):
        return [tuple(r) for r in json.loads(self.command('take'))]

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()


def cpu_seconds(pid):
    """User and system CPU time process ``pid`` has used, in seconds."""
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def listening_pid(port):
    """The process listening on TCP ``port`` of this machine, or None."""
    inodes = set()
    for table in ('/proc/net/tcp', '/proc/net/tcp6'):
        with open(table) as f:
            for line in list(f)[1:]:
                cols = line.split()
                if cols[3] == '0A' and int(cols[1].rsplit(':', 1)[1],
                                           16) == port:
                    inodes.add('socket:[%s]' % cols[9])
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            fds = os.listdir('/proc/%s/fd' % pid)
            if any(os.readlink('/proc/%s/fd/%s' % (pid, fd)) in inodes
                   for fd in fds):
                return int(pid)
        except OSError:
            continue
    return None


class RealProject:
    """A real API server, and the project of this run on it."""

    def __init__(self, where, project):
        from vnc_api import vnc_api
        self.host, _, port = where.rpartition(':')
        self.port = int(port)
        self.name = project
        self.vnc = vnc_api.VncApi(api_server_host=self.host,
                                  api_server_port=port, auth_type='noauth')
        self.vnc.project_create(vnc_api.Project(
            project, vnc_api.Domain('default-domain')))
        # Its CPU time is read where it runs on this machine.
        self.pid = listening_pid(self.port)

    def delete(self):
        """Everything of this run: the drivers' records that name it, the
        objects a failed start or run left in its project (interfaces,
        their addresses and containers, groups, networks), the project.
        """
        from vnc_api import exceptions
        token = self.name.rsplit('-', 1)[1]
        vnc = self.vnc
        for pair in vnc.kv_retrieve():
            if token in (pair['key'] or ''):
                vnc.kv_delete(pair['key'])
        fq_name = ['default-domain', self.name]
        parent = vnc.fq_name_to_id('project', fq_name)
        gone = (exceptions.NoIdError, exceptions.RefsExistError)
        for ref in vnc.resource_list('virtual-machine-interface',
                                     parent_id=parent)[
                                         'virtual-machine-interfaces']:
            vmi = vnc.virtual_machine_interface_read(
                id=ref['uuid'],
                fields=['instance_ip_back_refs', 'virtual_machine_refs'])
            for iip in vmi.get_instance_ip_back_refs() or []:
                vnc.instance_ip_delete(id=iip['uuid'])
            vnc.virtual_machine_interface_delete(id=ref['uuid'])
            for vm in vmi.get_virtual_machine_refs() or []:
                try:
                    vnc.virtual_machine_delete(id=vm['uuid'])
                except gone:
                    pass
        for vm in vnc.resource_list('virtual-machine', detail=True):
            if token in (vm.display_name or ''):
                try:
                    vnc.virtual_machine_delete(id=vm.uuid)
                except gone:
                    pass
        for res_type in ('security-group', 'virtual-network'):
            for ref in vnc.resource_list(res_type, parent_id=parent)[
                    res_type + 's']:
                vnc._object_delete(res_type, id=ref['uuid'])
        try:
            vnc.project_delete(fq_name=fq_name)
        except Exception as exc:
            print('project %s left on the server: %s' % (self.name, exc),
                  file=sys.stderr)


if __name__ == '__main__':
    serve(sys.argv[1:])
