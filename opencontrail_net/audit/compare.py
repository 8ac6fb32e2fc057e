"""Docker against the backend and the host: an audit's look.

:func:`collect` compares Docker's networks of this driver (from the
Docker Engine API) and their endpoints on this host with the backend's
records and the host's interfaces, and returns a
:class:`~opencontrail_net.audit.findings.Report`. Docker being
unreachable is an error here, never an empty view: the audit then skips
rather than guess.
"""

from opencontrail_net.audit import findings
from opencontrail_net import config
from opencontrail_net import docker_api
from opencontrail_net import exception


def docker_view(conf):
    """What Docker has of this driver, read from its Engine API."""
    return docker_api.DockerView(conf.docker_url, config.driver_name(conf))


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


def collect(conf, backend, ports, view, known=None):
    """Compare Docker, the backend and this host; return a Report.

    ``known`` None: the backend's networks of this host are listed in the
    audited projects (a full look). A set of network IDs: only those,
    Docker's, and those the backend's record of this host names are
    read (what it costs follows this host alone).
    """
    host = conf.host
    docker_nets = view.networks()
    report = findings.Report(host=host, driver=view.driver_name)
    if known is None:
        owned = {n.id: n for n in backend.owned_networks()}
    else:
        known = set(known) | set(docker_nets)
        owned = {n.id: n for n in backend.owned_networks(known)}
    report.docker_networks, report.backend_networks = (len(docker_nets),
                                                       len(owned))
    links = backend.vrouter_links()
    report.queued_deletes = backend.queued_deletes()
    report.port_pools = backend.port_pools()
    for net_id, (free, _taken) in sorted(report.port_pools.items()):
        if free and net_id not in docker_nets:
            report.findings.append(findings.Finding(
                findings.POOL_STALE, net_id,
                detail='%d free pooled interfaces' % free))
    # On their way out: not leaked.
    deleting = {q['endpoint'] for q in report.queued_deletes}
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
            report.findings.append(findings.Finding(
                findings.NETWORK_MISSING, net_id))
            known_endpoints.update(docker_net['endpoints'])
            continue
        report.records[net_id] = record
        theirs = backend.foreign_objects(record)
        row = _network_row(net_id, docker_net, record, theirs)
        report.networks.append(row)
        # Every host's endpoints, in one look: this host's are checked,
        # the others' keep a network this host's Docker no longer has.
        every = backend.network_endpoints(record)
        in_backend = {ep.id: ep for ep in every
                      if ep.host == host and ep.id not in deleting}
        backend_endpoints.update(in_backend)
        for ep in in_backend.values():
            report.records[(net_id, ep.id)] = ep
        elsewhere = (endpoints_elsewhere(every, host) if docker_net is None
                     else {})
        if elsewhere:
            row['elsewhere'] = elsewhere
            report.findings.append(findings.Finding(
                findings.NETWORK_ELSEWHERE, net_id, detail='endpoints on '
                'other hosts: ' + on_hosts(elsewhere)))
        elif docker_net is None:
            report.findings.append(findings.Finding(
                findings.NETWORK_LEAKED, net_id, detail='held by objects of '
                'others: ' + '; '.join(theirs) if theirs else ''))
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
            report.findings.append(findings.Finding(
                findings.INTERFACE_STRAY, endpoint=ep_id, interface=name))
    _check_policies(report, backend, known is not None)
    if known is None:
        groups = backend.orphan_groups()
    else:
        # A network that stands has no orphan group: only the others'.
        groups = backend.orphan_groups(sorted(
            known - set(docker_nets) - set(owned)))
    for group in groups:
        if group['network'] in docker_nets:
            continue    # Docker has it: its create is under way here.
        report.records[('group', group['uuid'])] = group
        report.findings.append(findings.Finding(
            findings.GROUP_ORPHAN, group['network'], group=group['uuid'],
            detail='security-group %s (%s)' % (
                group['uuid'], ':'.join(group['fq_name']))))
    return report


def _check_policies(report, backend, scoped=False):
    """Our allow policies whose network is gone (removed on a host that
    did not make the policy, or while the driver that did was down)."""
    report.policies = (backend.allow_policies(scoped=True) if scoped
                       else backend.allow_policies())
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
        report.findings.append(findings.Finding(
            findings.POLICY_STALE, policy['gone'][0], policy=policy['uuid'],
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
        report.findings.append(findings.Finding(
            findings.ENDPOINT_MISSING, net_id, row['id'],
            detail='container %s' % row['container']))
        return
    if seen is None:
        report.findings.append(findings.Finding(
            findings.ENDPOINT_LEAKED, net_id, ep.id, row['host_interface'],
            detail='interface uuid %s' % ep.uuid))
        return
    if row['host_interface'] is None:
        report.findings.append(findings.Finding(
            findings.INTERFACE_MISSING, net_id, ep.id,
            detail='container %s' % row['container']))
        return
    if row['vrouter'] == 'unlinked':
        report.findings.append(findings.Finding(
            findings.VROUTER_UNLINKED, net_id, ep.id,
            detail='virtual-machine %s' % ep.vm_uuid))
    state = ports.port_state(record, ep)
    row['agent_port'] = state
    if state == 'missing':
        report.findings.append(findings.Finding(
            findings.PORT_MISSING, net_id, ep.id, row['host_interface'],
            detail='port %s' % ep.uuid))
    elif state == 'unreachable':
        report.findings.append(findings.Finding(
            findings.AGENT_UNREACHABLE, net_id, ep.id))


def endpoints_elsewhere(endpoints, host):
    """``{other host: [endpoint ID]}`` of ``endpoints`` bound elsewhere."""
    found = {}
    for ep in endpoints:
        if ep.host and ep.host != host:
            found.setdefault(ep.host, []).append(ep.id)
    return {h: sorted(e) for h, e in found.items()}


def on_hosts(elsewhere):
    """``h2: e1, e2; h3: e4`` of ``{host: [endpoint ID]}``."""
    return '; '.join('%s: %s' % (host, ', '.join(eps))
                     for host, eps in sorted(elsewhere.items()))
