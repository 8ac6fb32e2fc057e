"""opencontrail-net-manage: what Docker and the backend hold, and repairs.

    opencontrail-net-manage [--config-file F] status [--format json]
    opencontrail-net-manage [--config-file F] audit [--fix] [--format json]

Reads the driver's own configuration files. Exit status: 0 when Docker,
the backend and the host agree (after the repairs, with ``--fix``), 1 when
something is out of step, 2 when Docker or the backend cannot be read.
"""

import http.client
import json
import socket
import sys
import time

from oslo_config import cfg
from oslo_log import log as logging

from opencontrail_net.audit import compare
from opencontrail_net.audit import repairs
from opencontrail_net.backends import base as backend_base
from opencontrail_net import config
from opencontrail_net import exception
from opencontrail_net import plugin
from opencontrail_net.port_drivers import base as port_base

LOG = logging.getLogger(__name__)

OK, OUT_OF_STEP, UNAVAILABLE = 0, 1, 2


def add_command_parsers(subparsers):
    status = subparsers.add_parser(
        'status', help='Docker networks of this driver, their backend '
        'networks and endpoints on this host, every mismatch marked.')
    status.add_argument('--format', choices=['table', 'json'],
                        default='table')
    status.set_defaults(func=status_command)
    audit_p = subparsers.add_parser(
        'audit', help='The mismatches; with --fix, repair them.')
    audit_p.add_argument('--fix', action='store_true',
                         help='Repair: delete leaked objects of this driver '
                         '(never anyone else\'s), plug lost interfaces '
                         'again, register missing agent ports, remove '
                         'stray host interfaces.')
    audit_p.add_argument('--settle', type=float, default=3.0,
                         help='Seconds between the two looks --fix takes: '
                         'only what is out of step on both is repaired '
                         '(default 3).')
    audit_p.add_argument('--format', choices=['table', 'json'],
                         default='table')
    audit_p.set_defaults(func=audit_command)


command_opt = cfg.SubCommandOpt('command', title='Commands',
                                handler=add_command_parsers)


class Tool:
    """The plugins as the driver loads them, without serving anything."""

    def __init__(self, conf):
        backend_cls = plugin.load(plugin.BACKENDS, conf.backend,
                                  backend_base.Backend, conf, 'backend')
        port_cls = plugin.load(plugin.PORT_DRIVERS, conf.port_driver,
                               port_base.PortDriver, conf, 'port driver')
        config.apply_cli_overrides(conf)
        self.conf = conf
        self.backend = backend_cls(conf)
        self.ports = port_cls(conf)
        self.view = compare.docker_view(conf)

    def collect(self):
        return compare.collect(self.conf, self.backend, self.ports, self.view)

    def close(self):
        self.ports.stop()
        self.backend.stop()


class DriverClaims:
    """Repairs wait for nothing but skip what the running driver is
    working on, as it tells over its own socket."""

    def __init__(self, socket_path):
        self.socket_path = socket_path

    def _in_flight(self):
        conn = _UnixHTTPConnection(self.socket_path)
        try:
            conn.request('POST', '/OpenContrailNet.InFlight', body=b'')
            reply = conn.getresponse()
            body = json.loads(reply.read() or b'null')
            if reply.status != 200 or not isinstance(body, dict) or \
                    not isinstance(body.get('InFlight'), list):
                raise ValueError('HTTP %s, %r' % (reply.status, body))
            return set(body['InFlight'])
        except (FileNotFoundError, ConnectionRefusedError):
            return set()    # No driver serves: no call in flight.
        except (OSError, ValueError, http.client.HTTPException) as exc:
            raise exception.AuditUnsure(
                reason='cannot read the calls in flight from the driver '
                'at %s (%s: %s)' % (self.socket_path, type(exc).__name__,
                                    exc))
        finally:
            conn.close()

    def repair(self, *ids):
        busy = self._in_flight().intersection(i for i in ids if i)
        return _Claim(not busy)


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__('localhost', timeout=5)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


class _Claim:
    def __init__(self, granted):
        self.granted = granted

    def __enter__(self):
        return self.granted

    def __exit__(self, *exc):
        return False


# Output -------------------------------------------------------------------

def _marks(report):
    marks = {}
    for f in report.findings:
        marks.setdefault((f.network, f.endpoint), []).append(f.kind)
    return marks


def print_table(report, out=sys.stdout):
    marks = _marks(report)
    w = out.write
    w('Host %s, driver %s\n' % (report.host, report.driver))
    if not report.networks:
        w('No networks.\n')
    for net in report.networks:
        state = ', '.join(marks.get((net['id'], None), ())) or 'ok'
        w('\nNETWORK %s %s [%s]\n' % (
            net['name'] or '(not in Docker)', net['id'], state))
        b = net['backend']
        if b:
            w('  backend   %s %s%s\n' % (b['uuid'], b['fq_name'],
                                         ' (existing)' if b['existing']
                                         else ''))
            w('  subnets   %s\n' % (', '.join(b['subnets']) or '-'))
            targets = b['route_targets'] + [
                'import ' + t for t in b['import_targets']] + [
                'export ' + t for t in b['export_targets']]
            w('  targets   %s\n' % (', '.join(targets) or '-'))
            w('  groups    %s\n' % (', '.join(b['security_groups']) or '-'))
        for obj in net['foreign_objects']:
            w('  foreign   %s (not ours: never touched)\n' % obj)
        if net['endpoints']:
            w('  %-16s %-12s %-36s %-18s %-17s %-15s %-11s %-9s %s\n' % (
                'CONTAINER', 'ENDPOINT', 'INTERFACE UUID', 'ADDRESS', 'MAC',
                'HOST IF', 'AGENT PORT', 'VROUTER', 'STATE'))
        for ep in net['endpoints']:
            state = ', '.join(marks.get((net['id'], ep['id']), ())) or 'ok'
            addresses = ' '.join(a for a in (ep['ipv4'], ep['ipv6']) if a)
            w('  %-16s %-12s %-36s %-18s %-17s %-15s %-11s %-9s %s\n' % (
                ep['container'] or '-', ep['id'][:12], ep['uuid'] or '-',
                addresses or '-', ep['mac'] or '-',
                ep['host_interface'] or '-', ep['agent_port'] or '-',
                ep['vrouter'] or '-', state))
    for iface in report.interfaces:
        w('\nSTRAY INTERFACE %s of endpoint %s\n' % (
            iface['name'], iface['endpoint']))
    for policy in report.policies:
        w('\nALLOW POLICY %s %s [%s]\n  networks  %s\n' % (
            ':'.join(policy['fq_name']), policy['uuid'],
            'policy-stale: gone ' + ', '.join(policy['gone'])
            if policy['gone'] else 'ok', ', '.join(policy['networks'])))
        for obj in policy['others']:
            w('  foreign   %s (not ours: never touched)\n' % obj)
    for net_id, (free, taken) in sorted(report.port_pools.items()):
        w('\nPORT POOL of network %s: %d free, %d taken\n' % (
            net_id, free, taken))
    for queued in report.queued_deletes:
        w('\nQUEUED DELETE endpoint %s of network %s%s\n' % (
            queued['endpoint'], queued['network'], _queued_state(queued)))
    w('\n%s\n' % ('In step.' if report.clean else
                  '%d out of step:' % len(report.findings)))
    for f in report.findings:
        w('  %s\n' % f)


def _queued_state(queued):
    said = []
    if queued.get('queued'):
        said.append('queued %s' % time.strftime(
            '%Y-%m-%d %H:%M:%S', time.localtime(queued['queued'])))
    if queued.get('attempts'):
        said.append('%d failed tries, the latest: %s' % (
            queued['attempts'], queued.get('error')))
    return ' (%s)' % '; '.join(said) if said else ''


def _print_actions(actions, out=sys.stdout):
    for finding, action in actions:
        out.write('%s\n  -> %s\n' % (finding, action))


# Commands -----------------------------------------------------------------

def status_command(tool, args):
    report = tool.collect()
    if args.format == 'json':
        json.dump(report.to_dict(), sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write('\n')
    else:
        print_table(report)
    return OK if report.clean else OUT_OF_STEP


def audit_command(tool, args):
    report = tool.collect()
    actions = []
    if args.fix and report.findings:
        time.sleep(max(args.settle, 0))
        second = tool.collect()
        confirmed = {f.key for f in report.findings}
        try:
            actions = repairs.repair(second, tool.backend, tool.ports,
                                     tool.view,
                                     DriverClaims(tool.conf.socket_path),
                                     confirmed)
        except exception.AuditUnsure as exc:
            # Stopped part-way: what was repaired is said all the same.
            _print_actions(getattr(exc, 'done', []))
            print('opencontrail-net-manage: %s' % exc, file=sys.stderr)
            return UNAVAILABLE
        report = tool.collect()
    if args.format == 'json':
        json.dump({'findings': [f.to_dict() for f in report.findings],
                   'actions': [dict(f.to_dict(), action=a)
                               for f, a in actions],
                   'clean': report.clean},
                  sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write('\n')
    else:
        _print_actions(actions)
        if actions:
            sys.stdout.write('\nAfter the repairs:\n')
        for f in report.findings:
            sys.stdout.write('%s\n' % f)
        if report.clean:
            sys.stdout.write('In step.\n')
    return OK if report.clean else OUT_OF_STEP


def main(argv=None):
    conf = config.CONF
    conf.register_cli_opt(command_opt)
    config.parse_args(sys.argv[1:] if argv is None else argv, conf)
    # Standard output carries the report (JSON for scripts): logs go to
    # the configured log file, else to standard error.
    conf.set_override('use_stderr', not conf.log_file)
    logging.setup(conf, 'opencontrail-net')
    if not conf.host:
        conf.set_override('host', socket.gethostname())
    try:
        tool = Tool(conf)
    except exception.OpenContrailNetError as exc:
        print('opencontrail-net-manage: %s' % exc, file=sys.stderr)
        return UNAVAILABLE
    try:
        return conf.command.func(tool, conf.command)
    except exception.OpenContrailNetError as exc:
        print('opencontrail-net-manage: %s' % exc, file=sys.stderr)
        return UNAVAILABLE
    finally:
        tool.close()


if __name__ == '__main__':
    sys.exit(main())
