"""Repairs of an audit's findings.

:func:`repair` fixes what can be fixed, deleting only the driver's own
objects through the backends' ordinary delete paths, which never touch
anyone else's, and leaving whatever a call in flight holds
(:class:`NoClaims` for a process that serves no calls).
"""

from oslo_log import log as logging

from opencontrail_net.audit import compare
from opencontrail_net.audit import findings
from opencontrail_net import exception

LOG = logging.getLogger(__name__)


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
        raise exception.AuditUnsure(reason=reason)
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
        except exception.AuditUnsure as exc:
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
    elsewhere = compare.endpoints_elsewhere(
        backend.network_endpoints(record), report.host)
    if elsewhere:
        return 'left: endpoints on other hosts use it (%s)' % (
            compare.on_hosts(elsewhere))
    for key, ep in list(report.records.items()):
        if isinstance(key, tuple) and key[0] == finding.network:
            ports.unplug(finding.network, ep.id)
    backend.delete_network(finding.network, only_host=report.host)
    ports.network_deleted(finding.network)
    return 'deleted network %s (backend uuid %s) and its endpoints on ' \
        'this host' % (finding.network, record.uuid)


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


def _repair_pool(report, finding, backend, ports, view):
    backend.reclaim_port_pool(finding.network)
    return 'deleted this host\'s free pooled interfaces of network %s' % (
        finding.network)


def _row(report, finding):
    for net in report.networks:
        if net['id'] == finding.network:
            for row in net['endpoints']:
                if row['id'] == finding.endpoint:
                    return row
    raise KeyError(finding.endpoint)


_REPAIRS = {findings.NETWORK_LEAKED: _repair_network,
            findings.ENDPOINT_LEAKED: _repair_endpoint,
            findings.INTERFACE_MISSING: _repair_interface,
            findings.PORT_MISSING: _repair_port,
            findings.INTERFACE_STRAY: _repair_stray,
            findings.POLICY_STALE: _repair_policy,
            findings.GROUP_ORPHAN: _repair_group,
            findings.POOL_STALE: _repair_pool}
