"""Every delete of the contrail backend, under one rule: only our own.

A Contrail cluster is shared with Nova, Kubernetes and other teams. The
driver deletes an object only when it made it (:func:`objects.is_ours`)
and it belongs to the Docker object being removed; whatever else stands in
the way is named in the error, never touched.
"""

import re

from oslo_log import log as logging
from vnc_api import exceptions as vnc_exc
from vnc_api import vnc_api

from opencontrail_net.backends.contrail import client as client_mod
from opencontrail_net.backends.contrail import objects
from opencontrail_net import exception
from opencontrail_net import ids

LOG = logging.getLogger(__name__)

ignore_missing = client_mod.ignore_missing
# What a virtual-network may hold that is no one's object: its own
# routing-instance, made and removed by the API server with it.
_DERIVED = ('routing_instances',)
# The objects a 409 on delete names ("Delete when resource still
# referred: [hrefs]"), by type and uuid.
_BLOCKER = re.compile(r'/([a-z-]+)/([0-9a-f]{8}-[0-9a-f-]{27})')
VROUTER_PARENT = ['default-global-system-config']


def blockers(exc):
    """What a 409 on delete names, as "type uuid" texts."""
    return ['%s %s' % held for held in _BLOCKER.findall(str(exc))]


def vrouter_fq_name(host):
    """The virtual-router of a host: Contrail names it after the host."""
    return VROUTER_PARENT + [host]


def unlink_vrouter(api, vrouter_uuid, vm_uuid):
    """Remove a virtual-router's link to a container's VM (made at Join)."""
    try:
        api.ref_update('virtual-router', vrouter_uuid, 'virtual-machine',
                       vm_uuid, None, 'DELETE')
    except vnc_exc.NoIdError:
        return
    LOG.info('Unlinked virtual-machine %s from virtual-router %s', vm_uuid,
             vrouter_uuid)


def delete_unlinking(delete, uuid, kind, unlink):
    """Delete ``uuid`` with ``delete``; True if deleted now, False if gone.

    When the server refuses because objects of type ``kind`` alone refer
    to it (it names them in its refusal), ``unlink(their_uuid)`` removes
    each ref and the delete is tried once more. Anything else holding it
    is the server's RefsExistError, for the caller.
    """
    try:
        return ignore_missing(delete, uuid)
    except vnc_exc.RefsExistError as exc:
        held = _BLOCKER.findall(str(exc))
        linked = [u for what, u in held if what == kind]
        if not linked or len(linked) != len(held):
            raise
    for other in linked:
        unlink(other)
    return ignore_missing(delete, uuid)


def delete_vm(api, vm_uuid):
    """Delete a container's VM unless another interface still uses it.

    A virtual-router's link to it (made at Join, for the vrouter agent)
    goes first, once no interface uses the VM: the server names what
    holds the VM in its refusal, so a VM without the link costs one
    request, as before.
    """
    try:
        deleted = delete_unlinking(
            api.virtual_machine_delete, vm_uuid, 'virtual-router',
            lambda vrouter: unlink_vrouter(api, vrouter, vm_uuid))
    except vnc_exc.RefsExistError:
        return  # Another endpoint of the same container still uses it.
    if deleted:
        LOG.info('Deleted virtual-machine %s', vm_uuid)


def endpoint_iips(endpoint_id, families=('v4', 'v6'), adopted=()):
    """uuids of an endpoint's instance-ips: the ones derived from its ID
    (Docker's addresses) and those it adopted from the driver's IPAM."""
    return [ids.instance_ip_uuid(endpoint_id, f)
            for f in sorted(families)] + list(adopted)


def delete_floating_ip(api, endpoint_id):
    """The floating IP of an endpoint's published ports: its uuid derives
    from the endpoint's ID, so no one else's is ever found by it."""
    fip = ids.floating_ip_uuid(endpoint_id)
    if ignore_missing(api.floating_ip_delete, fip):
        LOG.info('Deleted floating-ip %s of endpoint %s', fip, endpoint_id)


def delete_ports_group(api, endpoint_id, unref=False, vmi_uuid=None):
    """The security group of an endpoint's exposed ports (uuid derived from
    the endpoint's ID). ``unref``: the interface (``vmi_uuid``, by default
    the one named after the endpoint) still refers to it."""
    sg = ids.endpoint_security_group_uuid(endpoint_id)
    if unref:
        try:
            api.ref_update('virtual-machine-interface',
                           vmi_uuid or ids.endpoint_uuid(endpoint_id),
                           'security-group', sg, None, 'DELETE')
        except vnc_exc.NoIdError:
            pass
    try:
        if ignore_missing(api.security_group_delete, sg):
            LOG.info('Deleted security-group %s of endpoint %s', sg,
                     endpoint_id)
    except vnc_exc.RefsExistError as exc:
        raise exception.Conflict(
            reason='security group %s of endpoint %s is used by objects '
            'opencontrail-net did not make: %s' % (sg, endpoint_id, exc))


def delete_endpoint_objects(api, endpoint_id, vm_uuid, iips,
                            floating_ip=True, ports_group=True,
                            vmi_uuid=None):
    """An endpoint's floating IP, instance-ips, interface (``vmi_uuid``,
    by default the one named after the endpoint), its exposed-ports
    group, then its VM if unused.

    Only the uuids the endpoint knows as its own: an address someone else
    added to the interface is theirs, and stops the delete with a clear
    conflict. ``floating_ip``, ``ports_group``: whether those may stand
    (False when the caller knows they do not: no request for them).
    """
    if floating_ip:
        # It refers to the interface: it goes first.
        delete_floating_ip(api, endpoint_id)
    for iip in iips:
        ignore_missing(api.instance_ip_delete, iip)
    vmi_uuid = vmi_uuid or ids.endpoint_uuid(endpoint_id)
    try:
        ignore_missing(api.virtual_machine_interface_delete, vmi_uuid)
    except vnc_exc.RefsExistError as exc:
        raise exception.Conflict(
            reason='interface %s of endpoint %s is held by objects '
            'opencontrail-net did not make: %s' % (vmi_uuid, endpoint_id,
                                                   exc))
    if ports_group:
        # The interface referred to it: it goes after.
        delete_ports_group(api, endpoint_id)
    if vm_uuid:
        delete_vm(api, vm_uuid)


def _foreign_refs(vn):
    """What refers to or lives in ``vn`` besides interfaces and addresses."""
    found = []
    fields = (vnc_api.VirtualNetwork.backref_fields |
              vnc_api.VirtualNetwork.children_fields)
    for field in sorted(fields):
        if field in _DERIVED or field in (
                'virtual_machine_interface_back_refs',
                'instance_ip_back_refs'):
            continue
        kind = field.replace('_back_refs', '').rstrip('s').replace('_', '-')
        for ref in getattr(vn, field, None) or []:
            found.append(objects.describe(kind, ref['uuid'], ref['to']))
    return found


def survey(api, network_id, vn_uuid, only_host=None):
    """Our interfaces of a Docker network's virtual-network, a
    description of every object in it that is someone else's, and, with
    ``only_host``, of our interfaces bound on another host (that host's
    to delete)."""
    fields = sorted(vnc_api.VirtualNetwork.backref_fields |
                    vnc_api.VirtualNetwork.children_fields)
    vn = api.virtual_network_read(id=vn_uuid, fields=fields)
    foreign = _foreign_refs(vn)
    vmis = api.virtual_machine_interfaces_list(
        back_ref_id=[vn_uuid], detail=True)
    iips = api.instance_ips_list(back_ref_id=[vn_uuid], detail=True)
    mine, elsewhere = [], []
    for vmi in vmis:
        view = objects.annotation(vmi)
        bound = objects.kv(vmi.get_virtual_machine_interface_bindings()
                           ).get('host_id')
        if objects.is_ours(vmi) and only_host is not None and bound and \
                bound != only_host and network_id in (
                    view.get('network_id'), view.get('pool_of')):
            elsewhere.append('virtual-machine-interface %s of %s on host %s'
                             % (vmi.uuid, 'its port pool' if view.get(
                                 'pool_of') else 'endpoint %s' % view.get(
                                 'endpoint', vmi.name), bound))
        elif objects.is_ours(vmi) and network_id in (
                view.get('network_id'), view.get('router_of'),
                view.get('pool_of')):
            mine.append(vmi)
        else:
            foreign.append(objects.describe(
                'virtual-machine-interface', vmi.uuid, vmi.get_fq_name()))
    mine_uuids = {vmi.uuid for vmi in mine}
    for iip in iips:
        held = {r['uuid'] for r in
                iip.get_virtual_machine_interface_refs() or []}
        if objects.is_ours(iip) and elsewhere and not held <= mine_uuids:
            continue    # Another host's endpoint's: named with it.
        if not objects.is_ours(iip) or not held <= mine_uuids:
            foreign.append(objects.describe(
                'instance-ip', iip.uuid, [iip.get_instance_ip_address() or
                                          iip.name]))
    return mine, foreign, elsewhere


def clear_network(api, network_id, vn_uuid, only_host=None):
    """Delete our leftovers in a network; name what is someone else's.

    Docker swallows a failed DeleteEndpoint, so endpoints of ours may
    still hold the network when Docker deletes it. Returns the foreign
    objects (described) that keep the network alive, and, with
    ``only_host``, our interfaces on other hosts, which are left.
    """
    mine, foreign, elsewhere = survey(api, network_id, vn_uuid, only_host)
    for vmi in mine:
        if objects.annotation(vmi).get('router_of') == network_id:
            try:
                leave_router(api, network_id, vmi.uuid)
            except exception.Conflict as exc:
                foreign.append(str(exc))
            continue
        vm = (vmi.get_virtual_machine_refs() or [{}])[0].get('uuid')
        view = objects.annotation(vmi)
        endpoint_id = view.get('endpoint', vmi.name)
        try:
            if view.get('pool_of'):
                # A free pooled interface: no address, no ports of its own.
                delete_endpoint_objects(api, endpoint_id, vm, [],
                                        floating_ip=False, ports_group=False,
                                        vmi_uuid=vmi.uuid)
            else:
                delete_endpoint_objects(
                    api, endpoint_id, vm, endpoint_iips(
                        endpoint_id, adopted=view.get('iips', ())),
                    vmi_uuid=vmi.uuid)
        except exception.Conflict as exc:
            foreign.append(str(exc))
            continue
        LOG.warning('Deleted leftover interface %s of %s in network %s',
                    vmi.uuid, 'the port pool of host %s' % view.get('host')
                    if view.get('pool_of') else 'endpoint %s' % endpoint_id,
                    network_id)
    return foreign, elsewhere


def leave_router(api, network_id, vmi_uuid):
    """Delete a network's interface on its logical-router: its addresses,
    the router's ref to it (the one change the driver makes to a router),
    then the interface. The server names the router in its refusal."""
    for family in ('v4', 'v6'):
        ignore_missing(api.instance_ip_delete,
                       ids.router_ip_uuid(network_id, family))

    def unlink(router):
        api.ref_update('logical-router', router, 'virtual-machine-interface',
                       vmi_uuid, None, 'DELETE')
        LOG.info('Network %s left logical-router %s', network_id, router)

    try:
        delete_unlinking(api.virtual_machine_interface_delete, vmi_uuid,
                         'logical-router', unlink)
    except vnc_exc.RefsExistError as exc:
        raise exception.Conflict(
            reason='router interface %s of network %s is held by objects '
            'opencontrail-net did not make: %s' % (vmi_uuid, network_id,
                                                   exc))
    LOG.info('Deleted router interface %s of network %s', vmi_uuid,
             network_id)


def delete_allow_policy(api, policy, pair, vn_uuids):
    """The allow policy ``policy`` between the Docker networks ``pair``:
    the refs to it of our virtual-networks ``vn_uuids`` (one gone is
    skipped), then the policy. Returns what else refers to it ("type
    uuid" texts), which keeps it; [] once it is gone."""
    for vn_uuid in vn_uuids:
        try:
            api.ref_update('virtual-network', vn_uuid, 'network-policy',
                           policy, None, 'DELETE')
        except vnc_exc.NoIdError:
            pass
    try:
        gone = ignore_missing(api.network_policy_delete, policy)
    except vnc_exc.RefsExistError as exc:
        return blockers(exc)
    if gone:
        LOG.info('Deleted network-policy %s between Docker networks %s and '
                 '%s', policy, *pair)
    return []


def reclaim(api, network, endpoint, address):
    """Free ``address`` if a stale endpoint of this network holds it.

    Docker swallows a failed DeleteEndpoint (say, the API was down), and
    then hands the freed address out again: an address Docker gives is
    proof that its old endpoint is gone. Only our own endpoints of the
    same Docker network are reclaimed, never anyone else's object.
    """
    holders = api.instance_ips_list(
        back_ref_id=[network.uuid], detail=True,
        fields=['instance_ip_address', 'virtual_machine_interface_refs'])
    for iip in holders:
        if iip.get_instance_ip_address() != address or \
                not objects.is_ours(iip):
            continue
        for ref in iip.get_virtual_machine_interface_refs() or []:
            stale = ref['to'][-1]
            if stale == endpoint.id:
                continue
            try:
                vmi = api.virtual_machine_interface_read(id=ref['uuid'])
            except vnc_exc.NoIdError:
                continue
            if not objects.is_ours(vmi) or objects.endpoint_from_vmi(
                    vmi, network.id) is None:
                continue
            LOG.warning('Address %s of endpoint %s is held by stale '
                        'endpoint %s of the same network: deleting it',
                        address, endpoint.id, stale)
            vm = (vmi.get_virtual_machine_refs() or [{}])[0].get('uuid')
            delete_endpoint_objects(api, stale, vm, endpoint_iips(
                stale, adopted=objects.annotation(vmi).get('iips', ())))


def delete_unused_vms(api, host):
    """Delete this host's container VMs that no interface uses.

    Docker ignores a failed DeleteEndpoint: one that failed after the
    interface was gone leaves its VM behind, found by no Docker ID. The
    query asks only for VMs named after this host.
    """
    vms = api.virtual_machines_list(
        detail=True, filters={'display_name': host},
        fields=['virtual_machine_interface_back_refs'])
    for vm in vms:
        if (not objects.is_ours(vm) or
                objects.annotation(vm).get('host') != host or
                vm.get_virtual_machine_interface_back_refs()):
            continue
        LOG.warning('Deleting virtual-machine %s of sandbox %s: no '
                    'interface uses it', vm.uuid,
                    objects.annotation(vm).get('sandbox'))
        delete_vm(api, vm.uuid)
