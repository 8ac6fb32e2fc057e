"""Docker networks as virtual-networks of the driver's own.

A network of the driver's own is a virtual-network (and, unless the
network names security groups, a security group: :mod:`groups`) whose
uuids derive from the Docker network's ID, with its router join
(:mod:`routers`) and allow policies (:mod:`allow`). An existing
virtual-network is attached instead (:mod:`existing`).
"""

import threading

from oslo_log import log as logging
from vnc_api import exceptions as vnc_exc

from opencontrail_net.backends.contrail import allow as allow_mod
from opencontrail_net.backends.contrail import cleanup
from opencontrail_net.backends.contrail import context
from opencontrail_net.backends.contrail import existing as existing_mod
from opencontrail_net.backends.contrail import groups
from opencontrail_net.backends.contrail import objects
from opencontrail_net.backends.contrail import routers
from opencontrail_net.backends.contrail import undo
from opencontrail_net import exception
from opencontrail_net import ids
from opencontrail_net import model

LOG = logging.getLogger(__name__)


class Networks:
    """Create, find and delete networks."""

    def __init__(self, ctx, pools, pending):
        self.ctx = ctx
        self.pools = pools
        self.pending = pending
        self.allow = allow_mod.AllowPolicies(ctx, pending)
        self.existing = existing_mod.ExistingNetworks(ctx, self._resolve)
        # Networks this process made or deleted since the audit last
        # asked (take_recent): a delete that failed may have left one
        # that Docker no longer lists.
        self._recent = set()
        self._recent_lock = threading.Lock()

    def _note(self, network_id):
        with self._recent_lock:
            self._recent.add(network_id)

    def take_recent(self):
        """The networks made or deleted here since the last call."""
        with self._recent_lock:
            recent, self._recent = self._recent, set()
        return recent

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
        peers = [self.allow.peer(api, network, peer)
                 for peer in network.allow or ()]
        network.allow_peers = [p for p in peers if p]
        missing = [p for p, found in zip(network.allow or (), peers)
                   if not found]
        if missing and not context.network_stands(api, network.id):
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

    def create(self, network):
        if network.existing:
            return self.existing.attach(network)
        self._note(network.id)
        with undo.Made(self.ctx.client) as made:
            with self.ctx.api(budget=2 / 3) as api:
                ipam = self._resolve(api, network)
                owners = (self.pools.ranges(api, network)
                          if network.own_ipam else {})
                vn = objects.network_obj(network, ipam, self.ctx.host)
                if network.security_groups is None:
                    groups.make_own(api, network, made)
                self.allow.make(api, network, made)
                try:
                    api.virtual_network_create(vn)
                except vnc_exc.RefsExistError as exc:
                    found = self._existing_same(api, network, vn, exc)
                    # Docker re-sent it: a first try may have stopped
                    # short of the router or the allowed networks.
                    if network.router_ref:
                        found.router_ref = network.router_ref
                        routers.join(api, found, made)
                    found.allow_peers = network.allow_peers
                    self.allow.refer(api, found, made)
                    return found, False
                made.object('virtual-network', vn.uuid)
                if network.own_ipam:
                    self.pools.bind(api, network, vn, owners)
                network.uuid, network.name = vn.uuid, vn.name
                if network.router_ref:
                    routers.join(api, network, made)
                self.allow.refer(api, network, made)
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

    def get(self, network_id):
        with self.ctx.api() as api:
            try:
                vn = api.virtual_network_read(id=ids.network_uuid(network_id))
                return objects.network_from_vn(vn, network_id)
            except vnc_exc.NoIdError:
                pass
            return self.existing.find(api, network_id)

    def delete(self, network_id, only_host=None):
        self._note(network_id)
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
                foreign = self.allow.drop(api, network_id)
                if foreign:
                    self.pending.hold(api, network_id, True)
                    raise exception.Conflict(
                        reason='network %s is deleted, but not its '
                        'network-policy: %s; it is deleted once they are '
                        'gone' % (network_id, '; '.join(foreign)))
            if network_id in self.pending.ids:
                self.pending.hold(api, network_id, False)
