"""Docker networks as virtual-networks, with their security groups.

A network of the driver's own is a virtual-network (and, unless the
network names security groups, a security group) whose uuids derive from
the Docker network's ID. An existing virtual-network is attached instead
(``-o opencontrail.network``): recorded in the key-value store, never
changed.
"""

import json

from oslo_log import log as logging
from vnc_api import exceptions as vnc_exc

from opencontrail_net.backends.contrail import cleanup
from opencontrail_net.backends.contrail import context
from opencontrail_net.backends.contrail import objects
from opencontrail_net import exception
from opencontrail_net import ids
from opencontrail_net import model

LOG = logging.getLogger(__name__)

GLOBAL_SYSTEM_CONFIG = ['default-global-system-config']


class Networks:
    """Create, find and delete networks; their route targets.

    ``rt_rules`` (the cluster's ASN and 4-byte setting) is owned here:
    read once per process, never invalidated (changing them is a cluster
    upgrade; the driver is restarted with it).
    """

    def __init__(self, ctx, pools, pending):
        self.ctx = ctx
        self.pools = pools
        self.pending = pending
        self._rt_rules = None

    def route_target_rules(self):
        """The cluster's ASN and whether 4-byte ASNs are on, read once."""
        if self._rt_rules is None:
            with self.ctx.api() as api:
                gsc = api.global_system_config_read(
                    fq_name=GLOBAL_SYSTEM_CONFIG)
            self._rt_rules = (gsc.get_autonomous_system(),
                              bool(gsc.get_enable_4byte_as()))
            LOG.info('Contrail global ASN %s, 4-byte ASNs %s',
                     *self._rt_rules)
        return self._rt_rules

    def _resolve(self, api, network):
        """Fill in the project, ipam and security groups of ``network``."""
        domain = self.ctx.opts.domain
        network.project = objects.fq(network.project or self.ctx.opts.project,
                                     domain, 2)
        network.project_uuid = self.ctx.uuid(
            api, 'project', network.project, 'tenant',
            ':'.join(network.project))
        if network.ipam:
            ipam = self.ctx.ref(api, network.project, 'network-ipam',
                                'opencontrail.ipam', network.ipam)['to']
        else:
            ipam = objects.fq(self.ctx.opts.network_ipam, domain, 3)
        network.ipam = ':'.join(ipam)
        if network.floating_ip_pool:
            pool = self.ctx.pool_fq(network.floating_ip_pool)
            self.ctx.uuid(api, 'floating-ip-pool', pool,
                          'opencontrail.floating_ip_pool',
                          network.floating_ip_pool)
            network.floating_ip_pool = ':'.join(pool)
        if network.security_groups is None:
            network.security_group_refs = [
                objects.own_security_group_ref(network)]
        else:
            network.security_group_refs = [
                self.ctx.ref(api, network.project, 'security-group',
                             'opencontrail.security_groups', name)
                for name in network.security_groups]
        network.policy_refs = [
            self.ctx.ref(api, network.project, 'network-policy',
                         'opencontrail.policies', name)
            for name in network.policies or ()]
        if network.router:
            network.router_ref = self.ctx.ref(
                api, network.project, 'logical-router', 'opencontrail.router',
                network.router)
        return ipam

    @staticmethod
    def _check_existing(network):
        """An existing virtual-network is not the driver's to change."""
        for option, value, what in (
                ('opencontrail.policies', network.policies,
                 'attach policies to it'),
                ('opencontrail.router', network.router,
                 'add it to a logical-router')):
            if value is not None:
                raise exception.InvalidOption(
                    key=option, value=value if isinstance(value, str)
                    else ','.join(value),
                    reason='virtual-network %s exists already and is not '
                    'the driver\'s to change: %s in Contrail' % (
                        network.existing, what))

    def _join_router(self, api, network, made):
        """The network's interface on its logical-router: an interface
        with each subnet's gateway address, referred to by the router.
        Found as made by an earlier try, it is completed."""
        router = network.router_ref['uuid']
        vmi = objects.router_interface_obj(network)
        context.create_ours(api.virtual_machine_interface_create, vmi,
                            'virtual-machine-interface', made)
        for iip in objects.router_iips(network, vmi):
            try:
                context.create_ours(api.instance_ip_create, iip,
                                    'instance-ip', made)
            except exception.Conflict:
                raise exception.AddressInUse(
                    address=iip.get_instance_ip_address(),
                    pool='Contrail network %s (the gateway the router '
                    'interface takes)' % network.uuid)
        api.ref_update('logical-router', router, 'virtual-machine-interface',
                       vmi.uuid, None, 'ADD')
        made.append(('ref', ('logical-router', router,
                             'virtual-machine-interface', vmi.uuid)))
        LOG.info('Docker network %s joined logical-router %s (%s) through '
                 'interface %s', network.id, router,
                 ':'.join(network.router_ref['to']), vmi.uuid)

    def create(self, network):
        if network.existing:
            self._check_existing(network)
            return self._attach_existing(network)
        made = []
        try:
            with self.ctx.api(budget=2 / 3) as api:
                ipam = self._resolve(api, network)
                if network.own_ipam:
                    self.pools.ranges(api, network)
                vn = objects.network_obj(network, ipam, self.ctx.host)
                if network.security_groups is None:
                    context.create_ours(api.security_group_create,
                                        objects.security_group_obj(network),
                                        'security-group', made)
                try:
                    api.virtual_network_create(vn)
                except vnc_exc.RefsExistError as exc:
                    found = self._existing_same(api, network, vn, exc)
                    if network.router_ref:
                        # Docker re-sent it: a first try may have stopped
                        # short of the router.
                        found.router_ref = network.router_ref
                        self._join_router(api, found, made)
                    return found, False
                made.append(('virtual_network', vn.uuid))
                if network.own_ipam:
                    self.pools.bind(api, network, vn)
                if network.router_ref:
                    network.uuid, network.name = vn.uuid, vn.name
                    self._join_router(api, network, made)
        except Exception:
            cleanup.undo(self.ctx.client, made)
            raise
        network.uuid, network.name = vn.uuid, vn.name
        LOG.info('Created virtual-network %s (%s) for Docker network %s',
                 vn.uuid, ':'.join(vn.get_fq_name()), network.id)
        return network, True

    def _existing_same(self, api, network, vn, exc):
        """A create that hit an existing object: Docker re-sent it?"""
        try:
            old = api.virtual_network_read(id=vn.uuid)
        except vnc_exc.NoIdError:
            raise exception.Conflict(
                reason='a Contrail network named %s already exists and is '
                'not ours: %s' % (':'.join(vn.get_fq_name()), exc))
        changed = model.option_differences(
            objects.annotation(old), objects.docker_view(network))
        if changed:
            raise exception.Conflict(
                reason='network %s exists with other settings: %s'
                % (network.id, '; '.join(changed)))
        return objects.network_from_vn(old, network.id)

    def _attach_existing(self, network):
        made = []
        ref = network.existing
        try:
            with self.ctx.api(budget=2 / 3) as api:
                try:
                    if ref.count(':') == 2:
                        vn_uuid = api.fq_name_to_id('virtual-network',
                                                    ref.split(':'))
                    else:
                        vn_uuid = ref
                    vn = api.virtual_network_read(id=vn_uuid)
                except vnc_exc.NoIdError:
                    raise exception.InvalidOption(
                        key='opencontrail.network', value=ref,
                        reason='no such virtual-network in Contrail')
                record = objects.network_from_vn(vn, network.id,
                                                 existing=vn.uuid)
                self._check_subnets(vn, record, network, ref)
                network.project = record.project
                record.own_ipam = network.own_ipam
                self._resolve(api, network)
                record.security_groups = network.security_groups
                record.security_group_refs = network.security_group_refs
                record.mtu = network.mtu
                record.floating_ip_pool = network.floating_ip_pool
                if network.security_groups is None:
                    context.create_ours(api.security_group_create,
                                        objects.security_group_obj(network),
                                        'security-group', made)
                api.kv_store(objects.KV_PREFIX + network.id, json.dumps(
                    {'uuid': vn.uuid, 'mtu': network.mtu,
                     'security_groups': network.security_groups,
                     'security_group_refs': network.security_group_refs,
                     'floating_ip_pool': network.floating_ip_pool}))
        except Exception:
            cleanup.undo(self.ctx.client, made)
            raise
        LOG.info('Docker network %s uses existing virtual-network %s',
                 network.id, vn.uuid)
        return record, True

    @classmethod
    def _check_subnets(cls, vn, record, network, ref):
        theirs = {s.cidr for s in record.subnets}
        missing = [s.cidr for s in network.subnets if s.cidr not in theirs]
        if missing:
            raise exception.InvalidOption(
                key='opencontrail.network', value=ref,
                reason='its subnets %s do not hold --subnet %s' % (
                    sorted(theirs), ', '.join(missing)))
        if not network.own_ipam:
            # Contrail allocates with the driver's IPAM: nothing to keep
            # Docker's IPAM off.
            cls._check_reserved(vn, network, ref)

    @staticmethod
    def _check_reserved(vn, network, ref):
        """Docker's IPAM must keep off what Contrail reserved.

        In a network Contrail made, its gateway and DNS service address
        are taken: Docker must use the same gateway and hold the DNS
        address as an aux address, or it hands them to containers.
        """
        mine = {s.cidr: s for s in network.subnets}
        for vn_ref in vn.get_network_ipam_refs() or []:
            for sub in vn_ref['attr'].get_ipam_subnets() or []:
                cidr = '%s/%s' % (sub.subnet.ip_prefix,
                                  sub.subnet.ip_prefix_len)
                docker = mine.get(cidr)
                if docker is None:
                    continue
                reserved, need = [], []
                if sub.default_gateway and (
                        docker.gateway != sub.default_gateway):
                    reserved.append('gateway %s' % sub.default_gateway)
                    need.append('--gateway %s' % sub.default_gateway)
                dns = sub.dns_server_address
                if dns and dns != sub.default_gateway and (
                        dns not in docker.aux_addresses.values()):
                    reserved.append('DNS address %s' % dns)
                    need.append('--aux-address contrail-dns=%s' % dns)
                if need:
                    raise exception.InvalidOption(
                        key='opencontrail.network', value=ref,
                        reason='Contrail reserves %s in %s: create the '
                        'Docker network with %s' % (
                            ' and '.join(reserved), cidr, ' '.join(need)))

    def get(self, network_id):
        with self.ctx.api() as api:
            try:
                vn = api.virtual_network_read(id=ids.network_uuid(network_id))
                return objects.network_from_vn(vn, network_id)
            except vnc_exc.NoIdError:
                pass
            try:
                kept = context.kv_get(api, objects.KV_PREFIX + network_id)
                if kept is None:
                    raise vnc_exc.NoIdError(network_id)
                kept = json.loads(kept) if kept.startswith('{') else {
                    'uuid': kept}
                vn = api.virtual_network_read(id=kept['uuid'])
            except vnc_exc.NoIdError:
                raise exception.NetworkNotFound(id=network_id)
        record = objects.network_from_vn(vn, network_id, existing=vn.uuid)
        record.mtu = kept.get('mtu')
        record.security_groups = kept.get('security_groups')
        record.security_group_refs = kept.get('security_group_refs') or []
        record.floating_ip_pool = kept.get('floating_ip_pool')
        return record

    def delete(self, network_id):
        vn_uuid = ids.network_uuid(network_id)
        with self.ctx.api() as api:
            try:
                api.virtual_network_delete(id=vn_uuid)
            except vnc_exc.NoIdError:
                # Never made by us: an attached network is only forgotten.
                api.kv_delete(objects.KV_PREFIX + network_id)
            except vnc_exc.RefsExistError:
                foreign = cleanup.clear_network(api, network_id, vn_uuid)
                if foreign:
                    self.pending.hold(api, network_id, True)
                    raise exception.Conflict(
                        reason='network %s (virtual-network %s) still holds '
                        'objects opencontrail-net did not create: %s; it is '
                        'kept, and deleted once they are gone' % (
                            network_id, vn_uuid, ', '.join(foreign)))
                api.virtual_network_delete(id=vn_uuid)
            else:
                LOG.info('Deleted virtual-network %s of Docker network %s',
                         vn_uuid, network_id)
            sg_uuid = ids.security_group_uuid(network_id)
            try:
                if cleanup.ignore_missing(api.security_group_delete,
                                          sg_uuid):
                    LOG.info('Deleted security-group %s of Docker network '
                             '%s', sg_uuid, network_id)
            except vnc_exc.RefsExistError as exc:
                self.pending.hold(api, network_id, True)
                raise exception.Conflict(
                    reason='security group %s of network %s is used by '
                    'objects opencontrail-net did not create: %s' % (
                        sg_uuid, network_id, exc))
            if network_id in self.pending.ids:
                self.pending.hold(api, network_id, False)
            self.pools.unbind(api, network_id)

    def set_route_targets(self, network_id, route_targets=None,
                          import_targets=None, export_targets=None):
        network = self.get(network_id)
        if network.existing:
            raise exception.Conflict(
                reason='network %s is an existing Contrail network: its '
                'route targets are not ours to change' % network_id)
        vn = objects.network_ref(network)
        for setter, value in (
                (vn.set_route_target_list, route_targets),
                (vn.set_import_route_target_list, import_targets),
                (vn.set_export_route_target_list, export_targets)):
            if value is not None:
                setter(objects.vnc_api.RouteTargetList(value))
        with self.ctx.api() as api:
            api.virtual_network_update(vn)
