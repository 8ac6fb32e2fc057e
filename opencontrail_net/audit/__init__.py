"""Docker against the backend and the host: what is out of step, and repairs.

Docker swallows the errors of DeleteEndpoint, DeleteNetwork and Leave, so
an outage of the driver or of the backend during ``docker rm`` leaves
objects nobody sees. :func:`collect` compares Docker's networks of this
driver (from the Docker Engine API) and their endpoints on this host with
the backend's records and the host's interfaces; :func:`repair` fixes what
can be fixed, deleting only the driver's own objects through the
backends' ordinary delete paths, which never touch anyone else's.

Used by ``opencontrail-net-manage`` and by the driver's periodic audit.
Docker being unreachable is an error here, never an empty view: the audit
then skips rather than guess.
"""

import dataclasses
import threading
import typing

from oslo_log import log as logging

from opencontrail_net import config
from opencontrail_net import docker_api
from opencontrail_net import exception
from opencontrail_net import metrics

LOG = logging.getLogger(__name__)

NETWORK_MISSING = 'network-missing'
NETWORK_LEAKED = 'network-leaked'
ENDPOINT_MISSING = 'endpoint-missing'
ENDPOINT_LEAKED = 'endpoint-leaked'
INTERFACE_MISSING = 'interface-missing'
INTERFACE_STRAY = 'interface-stray'
PORT_MISSING = 'port-missing'
AGENT_UNREACHABLE = 'agent-unreachable'
VROUTER_UNLINKED = 'vrouter-unlinked'
POLICY_STALE = 'policy-stale'
NETWORK_ELSEWHERE = 'network-elsewhere'
GROUP_ORPHAN = 'group-orphan'

WHY = {
    NETWORK_MISSING: 'Docker has the network, the backend does not',
    NETWORK_LEAKED: 'the backend has a network of this host that Docker '
                    'no longer has',
    ENDPOINT_MISSING: 'Docker has the endpoint, the backend does not',
    ENDPOINT_LEAKED: 'the backend has an endpoint of this host that '
                     'Docker no longer has',
    INTERFACE_MISSING: 'the endpoint\'s host interface is gone',
    INTERFACE_STRAY: 'a host interface of an endpoint of this host that '
                     'Docker does not have, plugged into no container',
    PORT_MISSING: 'the vrouter agent has no (ready) port for the endpoint',
    AGENT_UNREACHABLE: 'the vrouter agent does not answer',
    VROUTER_UNLINKED: 'this host\'s virtual-router does not refer to the '
                      'container\'s VM: the vrouter agent never gets the '
                      'port ([DEFAULT] host must be the virtual-router\'s '
                      'name)',
    NETWORK_ELSEWHERE: 'the backend has a network this host made that '
                       'Docker here no longer has, and endpoints on other '
                       'hosts use it: left to them',
    GROUP_ORPHAN: 'a security group the driver made for a network whose '
                  'create failed and could not be undone: no network has '
                  'it',
    POLICY_STALE: 'a network-policy the driver made between two networks '
                  '(opencontrail.allow) outlives one of them: its rule would '
                  'let through a network made later under the same name',
}
DockerUnavailable = exception.DockerUnavailable
AuditUnsure = exception.AuditUnsure
REPAIRABLE = {NETWORK_LEAKED, ENDPOINT_LEAKED, INTERFACE_MISSING,
              INTERFACE_STRAY, PORT_MISSING, POLICY_STALE, GROUP_ORPHAN}


@dataclasses.dataclass
class Finding:
    kind: str
    network: typing.Optional[str] = None
    endpoint: typing.Optional[str] = None
    interface: typing.Optional[str] = None
    detail: str = ''
    policy: typing.Optional[str] = None
    group: typing.Optional[str] = None

    @property
    def key(self):
        # A finding is about an interface, a policy or a group, never
        # two of them.
        return (self.kind, self.network, self.endpoint,
                self.interface or self.policy or self.group)

    @property
    def repairable(self):
        return self.kind in REPAIRABLE

    def to_dict(self):
        return dict(dataclasses.asdict(self), why=WHY[self.kind],
                    repairable=self.repairable)

    def __str__(self):
        what = ' '.join('%s %s' % (k, v) for k, v in (
            ('network', self.network), ('endpoint', self.endpoint),
            ('interface', self.interface), ('policy', self.policy),
            ('group', self.group)) if v)
        return '%s: %s (%s)%s' % (self.kind, what, WHY[self.kind],
                                  ': ' + self.detail if self.detail else '')


@dataclasses.dataclass
class Report:
    """What an audit saw: a row per network and endpoint, and findings."""

    host: str
    driver: str
    networks: typing.List[dict] = dataclasses.field(default_factory=list)
    findings: typing.List[Finding] = dataclasses.field(default_factory=list)
    interfaces: typing.List[dict] = dataclasses.field(default_factory=list)
    # The driver's own allow policies (Backend.allow_policies).
    policies: typing.List[dict] = dataclasses.field(default_factory=list)
    # For repairs: the records behind the rows.
    records: dict = dataclasses.field(default_factory=dict, repr=False)
    # How many of the driver's networks Docker listed, and how many of
    # this host's the backend holds: an audit that sees none in Docker
    # while the backend holds some is unsure of its view.
    docker_networks: int = 0
    backend_networks: int = 0

    def unsure(self):
        """Why repairs would be a guess (a reason), or None."""
        if self.docker_networks == 0 and self.backend_networks:
            return ('Docker lists no network of driver %r while the '
                    'backend holds %d of this host\'s: is driver_name '
                    'right, and is it the Docker this host\'s driver '
                    'serves?' % (self.driver, self.backend_networks))
        return None

    @property
    def clean(self):
        return not self.findings

    def to_dict(self):
        return {'host': self.host, 'driver': self.driver,
                'networks': self.networks,
                'stray_interfaces': self.interfaces,
                'allow_policies': [
                    {'uuid': p['uuid'], 'fq_name': ':'.join(p['fq_name']),
                     'networks': p['networks'], 'gone': p['gone'],
                     'others': p['others']} for p in self.policies],
                'findings': [f.to_dict() for f in self.findings],
                'clean': self.clean}


def _network_row(net_id, docker_net, record, foreign):
    row = {'id': net_id, 'name': docker_net['name'] if docker_net else None,
           'in_docker': docker_net is not None, 'backend': None,
           'foreign_objects': foreign, 'endpoints': []}
    if record is not None:
        row['backend'] = {
            'uuid': record.uuid,
            'fq_name': ':'.join(list(record.project or ()) +
                                [record.name or record.id]),
            'existing': record.existing,
            'subnets': [s.cidr for s in record.subnets],
            'route_targets': record.route_targets,
            'import_targets': record.import_targets,
            'export_targets': record.export_targets,
            'security_groups': [':'.join(r['to'])
                                for r in record.security_group_refs]}
    return row


def collect(conf, backend, ports, view):
    """Compare Docker, the backend and this host; return a Report."""
    host = conf.host
    docker_nets = view.networks()
    report = Report(host=host, driver=view.driver_name)
    owned = {n.id: n for n in backend.owned_networks()}
    report.docker_networks, report.backend_networks = (len(docker_nets),
                                                       len(owned))
    links = backend.vrouter_links()
    known_endpoints = set()
    backend_endpoints = set()
    for net_id in sorted(set(docker_nets) | set(owned)):
        docker_net = docker_nets.get(net_id)
        record = owned.get(net_id)
        if record is None:
            try:
                record = backend.get_network(net_id)
            except exception.NetworkNotFound:
                record = None
        if record is None:
            report.networks.append(_network_row(net_id, docker_net, None,
                                                []))
            report.findings.append(Finding(NETWORK_MISSING, net_id))
            known_endpoints.update(docker_net['endpoints'])
            continue
        report.records[net_id] = record
        theirs = backend.foreign_objects(record)
        row = _network_row(net_id, docker_net, record, theirs)
        report.networks.append(row)
        # Every host's endpoints, in one look: this host's are checked,
        # the others' keep a network this host's Docker no longer has.
        every = backend.network_endpoints(record)
        in_backend = {ep.id: ep for ep in every if ep.host == host}
        backend_endpoints.update(in_backend)
        for ep in in_backend.values():
            report.records[(net_id, ep.id)] = ep
        elsewhere = _elsewhere(every, host) if docker_net is None else {}
        if elsewhere:
            row['elsewhere'] = elsewhere
            report.findings.append(Finding(
                NETWORK_ELSEWHERE, net_id, detail='endpoints on other '
                'hosts: ' + _on_hosts(elsewhere)))
        elif docker_net is None:
            report.findings.append(Finding(
                NETWORK_LEAKED, net_id, detail='held by objects of others: '
                + '; '.join(theirs) if theirs else ''))
        if docker_net is None:
            for ep in in_backend.values():
                row['endpoints'].append(_endpoint_row(ep, None, ports,
                                                      links=links))
            continue
        in_docker = docker_net['endpoints']
        known_endpoints.update(in_docker)
        for ep_id in sorted(set(in_docker) | set(in_backend)):
            ep, seen = in_backend.get(ep_id), in_docker.get(ep_id)
            ep_row = _endpoint_row(ep, seen, ports, ep_id, links)
            row['endpoints'].append(ep_row)
            _check_endpoint(report, record, ep, seen, ep_row, ports)
    idle = {ep_id: name for name, ep_id, in_container in
            ports.host_interfaces() if not in_container and
            ep_id not in known_endpoints and ep_id not in backend_endpoints}
    # Only interfaces of endpoints the backend holds for this host: on a
    # host shared with other drivers an idle interface of an endpoint
    # unknown here may be another's, half-way through its Join.
    ours = {ep.id for _net, ep in backend.find_endpoints(host, sorted(idle))
            } if idle else set()
    for ep_id, name in sorted(idle.items()):
        if ep_id in ours:
            report.interfaces.append({'name': name, 'endpoint': ep_id})
            report.findings.append(Finding(INTERFACE_STRAY,
                                           endpoint=ep_id, interface=name))
    _check_policies(report, backend)
    for group in backend.orphan_groups():
        if group['network'] in docker_nets:
            continue    # Docker has it: its create is under way here.
        report.records[('group', group['uuid'])] = group
        report.findings.append(Finding(
            GROUP_ORPHAN, group['network'], group=group['uuid'],
            detail='security-group %s (%s)' % (
                group['uuid'], ':'.join(group['fq_name']))))
    return report


def _check_policies(report, backend):
    """Our allow policies whose network is gone (removed on a host that
    did not make the policy, or while the driver that did was down)."""
    report.policies = backend.allow_policies()
    for policy in report.policies:
        if not policy['gone']:
            continue
        report.records[('policy', policy['uuid'])] = policy
        left = [n for n, _uuid in policy['ours']]
        detail = 'network-policy %s (%s) between networks %s' % (
            policy['uuid'], ':'.join(policy['fq_name']),
            ' and '.join(policy['networks']))
        if left:
            detail += '; still referred to by network %s' % ', '.join(left)
        if policy['others']:
            detail += '; held by objects of others: ' + '; '.join(
                policy['others'])
        report.findings.append(Finding(
            POLICY_STALE, policy['gone'][0], policy=policy['uuid'],
            detail=detail))


def _vrouter_state(ep, links):
    """'linked' or 'unlinked' for a joined endpoint when the backend links
    containers to this host's virtual-router; else None."""
    if links is None or ep is None or not ep.vm_uuid:
        return None
    return 'linked' if ep.vm_uuid in links else 'unlinked'


def _endpoint_row(ep, seen, ports, ep_id=None, links=None):
    ep_id = ep.id if ep is not None else ep_id
    seen = seen or {}
    return {'id': ep_id, 'container': seen.get('container'),
            'container_id': seen.get('container_id'),
            'in_docker': bool(seen), 'in_backend': ep is not None,
            'uuid': ep.uuid if ep else None,
            'vm_uuid': ep.vm_uuid if ep else None,
            'ipv4': (ep.ipv4 if ep else None) or seen.get('ipv4'),
            'ipv6': (ep.ipv6 if ep else None) or seen.get('ipv6'),
            'mac': (ep.mac if ep else None) or seen.get('mac'),
            'security_groups': ep.security_groups if ep else None,
            'host_interface': ports.host_interface(ep_id),
            'agent_port': None, 'vrouter': _vrouter_state(ep, links)}


def _check_endpoint(report, record, ep, seen, row, ports):
    net_id = record.id
    if ep is None:
        report.findings.append(Finding(ENDPOINT_MISSING, net_id, row['id'],
                                       detail='container %s' %
                                       row['container']))
        return
    if seen is None:
        report.findings.append(Finding(
            ENDPOINT_LEAKED, net_id, ep.id, row['host_interface'],
            detail='interface uuid %s' % ep.uuid))
        return
    if row['host_interface'] is None:
        report.findings.append(Finding(INTERFACE_MISSING, net_id, ep.id,
                                       detail='container %s' %
                                       row['container']))
        return
    if row['vrouter'] == 'unlinked':
        report.findings.append(Finding(VROUTER_UNLINKED, net_id, ep.id,
                                       detail='virtual-machine %s'
                                       % ep.vm_uuid))
    state = ports.port_state(record, ep)
    row['agent_port'] = state
    if state == 'missing':
        report.findings.append(Finding(PORT_MISSING, net_id, ep.id,
                                       row['host_interface'],
                                       detail='port %s' % ep.uuid))
    elif state == 'unreachable':
        report.findings.append(Finding(AGENT_UNREACHABLE, net_id, ep.id))


# Repairs ------------------------------------------------------------------

class NoClaims:
    """Claims for a process that serves no calls: always granted."""

    def repair(self, *ids):
        return _Granted()

    def busy(self, *ids):
        return False


class _Granted:
    def __enter__(self):
        return True

    def __exit__(self, *exc):
        return False


def repair(report, backend, ports, view, claims=None, confirmed=None):
    """Repair ``report``'s findings; return ``[(finding, action text)]``.

    Only findings in ``confirmed`` (keys seen out of step before) when it
    is given, and only while no call in flight holds their IDs. Raises
    AuditUnsure, having repaired nothing, when the view is doubtful; when
    the calls in flight cannot be read after some repairs, AuditStopped,
    whose ``done`` lists them and leaves the rest.
    """
    reason = report.unsure()
    if reason:
        raise AuditUnsure(reason=reason)
    claims = claims or NoClaims()
    done = []
    for index, finding in enumerate(report.findings):
        if not finding.repairable:
            done.append((finding, 'left: not repairable by the audit'))
            continue
        if confirmed is not None and finding.key not in confirmed:
            done.append((finding, 'left: seen once, checked again on the '
                         'next audit'))
            continue
        try:
            claim = claims.repair(finding.network, finding.endpoint,
                                  *_others(report, finding))
        except AuditUnsure as exc:
            if all(action.startswith('left:') for _f, action in done):
                raise
            left = 'left: %s' % exc.kwargs['reason']
            raise exception.AuditStopped(
                reason=exc.kwargs['reason'],
                done=done + [(f, left) for f in report.findings[index:]])
        with claim as claimed:
            if not claimed:
                done.append((finding, 'left: a Docker call for it is in '
                             'flight'))
                continue
            try:
                action = _REPAIRS[finding.kind](report, finding, backend,
                                                ports, view)
            except exception.OpenContrailNetError as exc:
                action = 'failed: %s' % exc
            except Exception as exc:
                LOG.exception('Repair of %s crashed', finding)
                action = 'failed: %s: %s' % (type(exc).__name__, exc)
        done.append((finding, action))
    return done


def _others(report, finding):
    """The other IDs a repair touches: a policy's other network."""
    if finding.policy is None:
        return ()
    return [n for n in report.records[('policy', finding.policy)][
        'networks'] if n != finding.network]


def _repair_policy(report, finding, backend, ports, view):
    policy = report.records[('policy', finding.policy)]
    if policy['others']:
        return 'left: objects of others refer to it (%s)' % '; '.join(
            policy['others'])
    backend.remove_allow_policy(policy)
    return 'deleted network-policy %s%s' % (
        policy['uuid'], ' and the ref of network %s to it' % ', '.join(
            n for n, _uuid in policy['ours']) if policy['ours'] else '')


def _repair_group(report, finding, backend, ports, view):
    group = report.records[('group', finding.group)]
    backend.remove_orphan_group(group)
    return 'deleted security-group %s (%s)' % (
        group['uuid'], ':'.join(group['fq_name']))


def _repair_network(report, finding, backend, ports, view):
    record = report.records[finding.network]
    # A container still uses it (a live interface in a sandbox): Docker's
    # view is wrong, not the network.
    ours = {ep.id for key, ep in report.records.items()
            if isinstance(key, tuple) and key[0] == finding.network}
    live = sorted(name for name, ep_id, in_container in
                  ports.host_interfaces() if in_container and ep_id in ours)
    if live:
        return 'left: its endpoints have interfaces in running ' \
            'containers (%s)' % ', '.join(live)
    # Endpoints on other hosts since the look: theirs, and the network.
    elsewhere = _elsewhere(backend.network_endpoints(record), report.host)
    if elsewhere:
        return 'left: endpoints on other hosts use it (%s)' % _on_hosts(
            elsewhere)
    for key, ep in list(report.records.items()):
        if isinstance(key, tuple) and key[0] == finding.network:
            ports.unplug(finding.network, ep.id)
    backend.delete_network(finding.network, only_host=report.host)
    ports.network_deleted(finding.network)
    return 'deleted network %s (backend uuid %s) and its endpoints on ' \
        'this host' % (finding.network, record.uuid)


def _elsewhere(endpoints, host):
    """``{other host: [endpoint ID]}`` of ``endpoints`` bound elsewhere."""
    found = {}
    for ep in endpoints:
        if ep.host and ep.host != host:
            found.setdefault(ep.host, []).append(ep.id)
    return {h: sorted(e) for h, e in found.items()}


def _on_hosts(elsewhere):
    """``h2: e1, e2; h3: e4`` of ``{host: [endpoint ID]}``."""
    return '; '.join('%s: %s' % (host, ', '.join(eps))
                     for host, eps in sorted(elsewhere.items()))


def _repair_endpoint(report, finding, backend, ports, view):
    record = report.records[finding.network]
    ep = report.records[(finding.network, finding.endpoint)]
    # As for a network: a container still using it says Docker's view is
    # wrong, not the endpoint.
    live = sorted(name for name, ep_id, in_container in
                  ports.host_interfaces()
                  if in_container and ep_id == finding.endpoint)
    if live:
        return 'left: its interface is in a running container (%s)' % (
            ', '.join(live))
    ports.unplug(finding.network, finding.endpoint)
    backend.delete_endpoint(record, finding.endpoint)
    return 'deleted endpoint %s (interface uuid %s)' % (
        finding.endpoint, ep.uuid)


def _repair_interface(report, finding, backend, ports, view):
    record = report.records[finding.network]
    ep = report.records[(finding.network, finding.endpoint)]
    row = _row(report, finding)
    sandbox_key = view.sandbox_key(row['container_id'])
    if sandbox_key is None:
        return 'left: container %s is not running' % row['container']
    inside = ports.replug(record, ep, sandbox_key)
    return 'plugged endpoint %s into container %s again (%s, %s)' % (
        finding.endpoint, row['container'],
        ports.host_interface(finding.endpoint), inside)


def _repair_port(report, finding, backend, ports, view):
    record = report.records[finding.network]
    ep = report.records[(finding.network, finding.endpoint)]
    ports.reregister(record, ep)
    return 'registered port %s of endpoint %s with the vrouter agent ' \
        'again' % (ep.uuid, finding.endpoint)


def _repair_stray(report, finding, backend, ports, view):
    ports.unplug(None, finding.endpoint)
    return 'removed host interface %s; the endpoint itself is left to ' \
        'its network\'s audit' % finding.interface


def _row(report, finding):
    for net in report.networks:
        if net['id'] == finding.network:
            for row in net['endpoints']:
                if row['id'] == finding.endpoint:
                    return row
    raise KeyError(finding.endpoint)


_REPAIRS = {NETWORK_LEAKED: _repair_network,
            ENDPOINT_LEAKED: _repair_endpoint,
            INTERFACE_MISSING: _repair_interface,
            PORT_MISSING: _repair_port,
            INTERFACE_STRAY: _repair_stray,
            POLICY_STALE: _repair_policy,
            GROUP_ORPHAN: _repair_group}


def docker_view(conf):
    return docker_api.DockerView(conf.docker_url, config.driver_name(conf))


# Inside the driver ---------------------------------------------------------

class PeriodicAudit:
    """The audit every ``audit_interval`` seconds, in a thread.

    A finding is repaired when two audits in a row saw it and no call in
    flight holds its IDs; each repair is logged at WARNING.
    """

    def __init__(self, conf, backend, ports, claims):
        self.conf = conf
        self.backend = backend
        self.ports = ports
        self.claims = claims
        self.view = docker_view(conf)
        self._previous = None
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        """Start the audits unless they are off or already running (also
        after a reload that changed ``audit_interval``)."""
        if self._thread is not None and self._thread.is_alive():
            return
        interval = self.conf.audit_interval
        if not interval:
            LOG.info('Periodic audit off (audit_interval = 0)')
            return
        if not self.conf.docker_url:
            LOG.warning('Periodic audit off: docker_url is not set')
            return
        self._thread = threading.Thread(target=self._loop, name='ocn-audit',
                                        daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()

    def _loop(self):
        # The interval is read anew each round: a reload may change it, or
        # turn the audit off (0).
        while self.conf.audit_interval and not self._stop.wait(
                self.conf.audit_interval):
            if not self.conf.audit_interval:
                break
            try:
                self.run_once()
            except Exception:
                LOG.exception('Audit failed')
        LOG.info('Periodic audit stopped')

    def run_once(self):
        try:
            report = collect(self.conf, self.backend, self.ports, self.view)
        except DockerUnavailable as exc:
            # Never guess what Docker has: skip, and start over.
            LOG.info('Audit skipped: %s', exc)
            self._previous = None
            metrics.AUDIT_RUNS.labels('skipped').inc()
            return None
        except exception.OpenContrailNetError as exc:
            LOG.warning('Audit skipped: %s', exc)
            self._previous = None
            metrics.AUDIT_RUNS.labels('skipped').inc()
            return None
        _count_findings(report)
        confirmed = self._previous or set()
        # What was repaired or left is checked afresh by the next audit.
        self._previous = {f.key for f in report.findings}
        try:
            done = repair(report, self.backend, self.ports, self.view,
                          self.claims, confirmed)
        except AuditUnsure as exc:
            LOG.warning('Audit: %s', exc)
            self._previous = None
            metrics.AUDIT_RUNS.labels('unsure').inc()
            done = getattr(exc, 'done', [])
        else:
            metrics.AUDIT_RUNS.labels('done').inc()
        for finding, action in done:
            metrics.AUDIT_REPAIRS.labels(finding.kind, _outcome(action)).inc()
            if action.startswith('left: seen once'):
                LOG.info('Audit: %s; repaired if still so on the next '
                         'audit', finding)
            elif action.startswith('left:'):
                LOG.warning('Audit: %s; %s', finding, action[6:])
            elif action.startswith('failed'):
                LOG.error('Audit: %s; repair %s', finding, action)
            else:
                LOG.warning('Audit repaired %s: %s', finding, action)
        return report


def _count_findings(report):
    """The latest audit's findings by kind, every kind shown (0 too)."""
    counts = dict.fromkeys(WHY, 0)
    for finding in report.findings:
        counts[finding.kind] = counts.get(finding.kind, 0) + 1
    for kind, count in counts.items():
        metrics.AUDIT_FINDINGS.labels(kind).set(count)


def _outcome(action):
    if action.startswith('left:'):
        return 'left'
    if action.startswith('failed'):
        return 'failed'
    return 'repaired'
