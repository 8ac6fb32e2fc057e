"""Docker networks as virtual-networks, with their security groups.

A network of the driver's own is a virtual-network (and, unless the
network names security groups, a security group) whose uuids derive from
the Docker network's ID. An existing virtual-network is attached instead
(``-o opencontrail.network``): recorded in the key-value store, never
changed.

Two networks of the driver's own may talk through a network-policy of
ours (``-o opencontrail.allow``), referred to by both virtual-networks;
it goes when either network goes.
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
        guard = self.ctx.guard
        guard.check('project', network.project, 'tenant',
                    ':'.join(network.project))
        guard.check_route_targets(network.route_targets)
        guard.check_route_targets(network.import_targets,
                                  'opencontrail.rt.import')
        guard.check_route_targets(network.export_targets,
                                  'opencontrail.rt.export')
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
            guard.check('floating-ip-pool', pool or [],
                        'opencontrail.floating_ip_pool',
                        network.floating_ip_pool)
            self.ctx.uuid(api, 'floating-ip-pool', pool,
                          'opencontrail.floating_ip_pool',
                          network.floating_ip_pool)
            network.floating_ip_pool = ':'.join(pool)
        if network.security_groups is None:
            network.security_group_refs = [
                objects.own_security_group_ref(network)]
        else:
            network.security_group_refs = [
                self._allowed(api, network, 'security-group',
                              'opencontrail.security_groups', name)
                for name in network.security_groups]
        network.policy_refs = [
            self._allowed(api, network, 'network-policy',
                          'opencontrail.policies', name)
            for name in network.policies or ()]
        if network.router:
            network.router_ref = self._allowed(
                api, network, 'logical-router', 'opencontrail.router',
                network.router)
        peers = [self._peer(api, network, peer)
                 for peer in network.allow or ()]
        network.allow_peers = [p for p in peers if p]
        missing = [p for p, found in zip(network.allow or (), peers)
                   if not found]
        if missing and not self._made(api, network):
            raise exception.InvalidOption(
                key='opencontrail.allow', value=','.join(network.allow),
                reason='network %s has no virtual-network of this driver '
                'in Contrail (a network attached with opencontrail.network '
                'is not the driver\'s to change)' % ', '.join(missing))
        return ipam

    def _allowed(self, api, network, kind, option, name):
        """A named object's ref, once the operator's list allows it
        (checked by name first: a refused name costs no request)."""
        self.ctx.guard.check(kind, self.ctx.named(network.project, name),
                             option, name)
        return self.ctx.ref(api, network.project, kind, option, name)

    @staticmethod
    def _made(api, network):
        """Whether ``network``'s virtual-network stands (Docker re-sends
        CreateNetwork, and another host's first container makes it ask)."""
        try:
            api.virtual_network_read(id=ids.network_uuid(network.id),
                                     fields=['display_name'])
        except vnc_exc.NoIdError:
            return False
        return True

    def _peer(self, api, network, peer_id):
        """A network ``network`` allows: its virtual-network (one of ours)
        and the sequence our policy takes there (its own if the policy
        is there already, else after every other); None if it has
        none."""
        option = 'opencontrail.allow'
        if peer_id == network.id:
            raise exception.InvalidOption(
                key=option, value=','.join(network.allow),
                reason='a network talks to itself without a policy')
        try:
            vn = api.virtual_network_read(
                id=ids.network_uuid(peer_id),
                fields=['network_policy_refs'])
        except vnc_exc.NoIdError:
            # Refused, unless the network stands already: a network it
            # allowed has gone since.
            return None
        self.ctx.remember_vn(vn.uuid, vn.get_fq_name())
        policy = ids.allow_policy_uuid(network.id, peer_id)
        refs = vn.get_network_policy_refs() or []
        majors = [r['attr'].sequence.major for r in refs
                  if r.get('attr') and r['attr'].sequence]
        sequence = next((r['attr'].sequence.major for r in refs
                         if r['uuid'] == policy and r.get('attr') and
                         r['attr'].sequence), max(majors, default=-1) + 1)
        return {'id': peer_id, 'to': vn.get_fq_name(), 'uuid': vn.uuid,
                'sequence': sequence,
                'referred': any(r['uuid'] == policy for r in refs)}

    def _allow(self, api, network, made):
        """Our policy between ``network`` and each network it allows, made
        before ``network``'s virtual-network, whose create refers to it.
        Found as made by an earlier try, it stands."""
        for peer in network.allow_peers:
            context.create_ours(api.network_policy_create,
                                objects.allow_policy_obj(network, peer),
                                'network-policy', made)

    def _allow_peers(self, api, network, made):
        """The other end of each allow policy of ``network`` (a ref from
        the other network), then the pairs in this host's record."""
        for peer in network.allow_peers:
            policy = ids.allow_policy_uuid(network.id, peer['id'])
            if peer['referred']:
                continue
            api.ref_update('virtual-network', peer['uuid'], 'network-policy',
                           policy, None, 'ADD',
                           objects.policy_sequence(peer['sequence']))
            made.append(('ref', ('virtual-network', peer['uuid'],
                                 'network-policy', policy)))
            LOG.info('Docker networks %s and %s may talk: network-policy %s',
                     network.id, peer['id'], policy)
        if network.allow_peers:
            self.pending.ensure_loaded(api)
            self.pending.pair(api, network.id,
                              [p['id'] for p in network.allow_peers], True)

    def _drop_allowed(self, api, network_id):
        """After ``network_id``'s virtual-network went: our policy with
        each network it allowed, or that allowed it, goes too, once no
        one else's network refers to it. Returns what is someone else's
        and keeps a policy."""
        foreign, done = [], []
        for peer in sorted(self.pending.allowed.get(network_id, ())):
            policy = ids.allow_policy_uuid(network_id, peer)
            held = cleanup.delete_allow_policy(
                api, policy, (network_id, peer), [ids.network_uuid(peer)])
            if held:
                foreign.append('network-policy %s between networks %s and '
                               '%s, referred to by %s' % (
                                   policy, network_id, peer,
                                   ', '.join(held)))
            else:
                done.append(peer)
        self.pending.pair(api, network_id, done, False)
        return foreign

    def remove_allow_policy(self, policy):
        """The audit's repair of an allow policy whose network is gone:
        the refs of our networks of the pair, then the policy."""
        a, b = policy['networks']
        with self.ctx.api() as api:
            self.pending.ensure_loaded(api)
            held = cleanup.delete_allow_policy(
                api, policy['uuid'], (a, b),
                [vn_uuid for _network, vn_uuid in policy['ours']])
            if held:
                raise exception.Conflict(
                    reason='network-policy %s is referred to by objects '
                    'opencontrail-net did not make: %s' % (
                        policy['uuid'], ', '.join(held)))
            if b in self.pending.allowed.get(a, ()):
                self.pending.pair(api, a, [b], False)

    @staticmethod
    def _check_existing(network):
        """An existing virtual-network is not the driver's to change."""
        for option, value, what in (
                ('opencontrail.policies', network.policies,
                 'attach policies to it'),
                ('opencontrail.allow', network.allow,
                 'attach a policy to it'),
                ('opencontrail.router', network.router,
                 'add it to a logical-router')):
            if value is not None:
                raise exception.InvalidOption(
                    key=option, value=value if isinstance(value, str)
                    else ','.join(value),
                    reason='virtual-network %s exists already and is not '
                    'the driver\'s to change: %s in Contrail' % (
                        network.existing, what))

    def _own_group(self, api, network, made):
        """The network's own group. One of the driver's own by that name,
        left by a create of another network that failed and could not be
        undone (its network has no virtual-network), is replaced."""
        group = objects.security_group_obj(network)
        try:
            context.create_ours(api.security_group_create, group,
                                'security-group', made)
            return
        except exception.Conflict:
            try:
                found = api.security_group_read(
                    fq_name=group.get_fq_name(), fields=['id_perms'])
            except vnc_exc.NoIdError:
                raise exception.Conflict(
                    reason='security-group %s was there a moment ago' %
                    ':'.join(group.get_fq_name()))
            other = objects.group_network(found) if objects.is_ours(
                found) else None
            if other is None or self._made(api, model.Network(id=other)):
                raise
            # Referred to by something: a Conflict (RefsExistError).
            api.security_group_delete(id=found.uuid)
        LOG.warning('Replaced security-group %s (%s): the driver\'s, of '
                    'Docker network %s, whose create failed and could not '
                    'be undone', found.uuid, ':'.join(group.get_fq_name()),
                    other)
        context.create_ours(api.security_group_create, group,
                            'security-group', made)

    def remove_orphan_group(self, group):
        """The audit's repair of an orphan group: checked again, then
        deleted; one something refers to is a Conflict naming it."""
        with self.ctx.api() as api:
            if self._made(api, model.Network(id=group['network'])):
                raise exception.Conflict(
                    reason='network %s has a virtual-network now' %
                    group['network'])
            try:
                cleanup.ignore_missing(api.security_group_delete,
                                       group['uuid'])
            except vnc_exc.RefsExistError as exc:
                raise exception.Conflict(
                    reason='security-group %s is referred to: %s' % (
                        group['uuid'], exc))

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
                owners = (self.pools.ranges(api, network)
                          if network.own_ipam else {})
                vn = objects.network_obj(network, ipam, self.ctx.host)
                if network.security_groups is None:
                    self._own_group(api, network, made)
                self._allow(api, network, made)
                try:
                    api.virtual_network_create(vn)
                except vnc_exc.RefsExistError as exc:
                    found = self._existing_same(api, network, vn, exc)
                    # Docker re-sent it: a first try may have stopped
                    # short of the router or the allowed networks.
                    if network.router_ref:
                        found.router_ref = network.router_ref
                        self._join_router(api, found, made)
                    found.allow_peers = network.allow_peers
                    self._allow_peers(api, found, made)
                    return found, False
                made.append(('virtual_network', vn.uuid))
                if network.own_ipam:
                    self.pools.bind(api, network, vn, owners)
                network.uuid, network.name = vn.uuid, vn.name
                if network.router_ref:
                    self._join_router(api, network, made)
                self._allow_peers(api, network, made)
        except Exception:
            cleanup.undo(self.ctx.client, made)
            raise
        network.uuid, network.name = vn.uuid, vn.name
        network.allowed = [p['id'] for p in network.allow_peers]
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
                self.ctx.guard.check('virtual-network', vn.get_fq_name(),
                                     'opencontrail.network', ref)
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

    def delete(self, network_id, only_host=None):
        vn_uuid = ids.network_uuid(network_id)
        with self.ctx.api() as api:
            # Whether a policy or a held delete of ours goes with it.
            self.pending.ensure_loaded(api)
            try:
                api.virtual_network_delete(id=vn_uuid)
            except vnc_exc.NoIdError:
                # Never made by us (an attached network is only
                # forgotten), or deleted by another host.
                api.kv_delete(objects.KV_PREFIX + network_id)
            except vnc_exc.RefsExistError:
                foreign, elsewhere = cleanup.clear_network(
                    api, network_id, vn_uuid, only_host)
                if elsewhere:
                    # Not held: a retry would not leave them alone.
                    raise exception.Conflict(
                        reason='network %s (virtual-network %s) has '
                        'endpoints on other hosts: %s; left to them' % (
                            network_id, vn_uuid, ', '.join(elsewhere)))
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
            self.pools.unbind(api, network_id)
            if network_id in self.pending.allowed:
                foreign = self._drop_allowed(api, network_id)
                if foreign:
                    self.pending.hold(api, network_id, True)
                    raise exception.Conflict(
                        reason='network %s is deleted, but not its '
                        'network-policy: %s; it is deleted once they are '
                        'gone' % (network_id, '; '.join(foreign)))
            if network_id in self.pending.ids:
                self.pending.hold(api, network_id, False)

    def set_route_targets(self, network_id, route_targets=None,
                          import_targets=None, export_targets=None):
        network = self.get(network_id)
        if network.existing:
            raise exception.Conflict(
                reason='network %s is an existing Contrail network: its '
                'route targets are not ours to change' % network_id)
        for key, value in (('rt', route_targets),
                           ('opencontrail.rt.import', import_targets),
                           ('opencontrail.rt.export', export_targets)):
            self.ctx.guard.check_route_targets(value, key)
        vn = objects.network_ref(network)
        for setter, value in (
                (vn.set_route_target_list, route_targets),
                (vn.set_import_route_target_list, import_targets),
                (vn.set_export_route_target_list, export_targets)):
            if value is not None:
                setter(objects.vnc_api.RouteTargetList(value))
        with self.ctx.api() as api:
            api.virtual_network_update(vn)
