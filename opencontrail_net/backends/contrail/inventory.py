"""What start-up, ``status`` and the audit read of Contrail.

Each read is scoped to this host or to one network (parent- or
back-ref-scoped lists), never a scan of the cluster. The audit's
periodic rounds read only this host's networks, by their derived uuids
(those Docker lists, those this host's record names, those made or
deleted here since): what they cost does not grow with the networks of
other hosts. Its full rounds list the audited projects (see
``audit.periodic``).
"""

from oslo_log import log as logging
from vnc_api import exceptions as vnc_exc

from opencontrail_net.backends.contrail import cleanup
from opencontrail_net.backends.contrail import objects
from opencontrail_net import exception
from opencontrail_net import ids

LOG = logging.getLogger(__name__)


class Inventory:
    """This host's endpoints and networks, as Contrail holds them."""

    def __init__(self, ctx, networks, records, vrouter, pending,
                 vmi_uuid, pooled):
        self.ctx = ctx
        # Endpoint ID → its interface's uuid; interface uuid → the
        # endpoint this host's record says has that pooled interface.
        self.vmi_uuid = vmi_uuid
        self.pooled = pooled
        self.networks = networks
        self.records = records
        self.vrouter = vrouter
        self.pending = pending

    def find_endpoints(self, host, endpoint_ids):
        if not endpoint_ids:
            return []
        with self.ctx.api() as api:
            found = api.virtual_machine_interfaces_list(
                obj_uuids=[self.vmi_uuid(e) for e in endpoint_ids],
                detail=True)
        result, networks = [], {}
        for vmi in found:
            bound = objects.kv(vmi.get_virtual_machine_interface_bindings())
            view = objects.annotation(vmi)
            if (not objects.is_ours(vmi) or bound.get('host_id') != host or
                    not vmi.get_virtual_machine_refs()):
                continue
            taken = self.pooled(vmi.uuid) if view.get('pool_of') else None
            if taken is not None:
                # Joined, and killed before its interface named it.
                nid = taken.network_id
            else:
                nid = view.get('network_id')
            if nid not in networks:
                try:
                    networks[nid] = self.networks.get(nid)
                except exception.NetworkNotFound:
                    continue
            result.append((networks[nid], taken or
                           objects.endpoint_from_vmi(vmi, nid)))
            self.records.of_vmi(vmi)
        return result

    def owned_networks(self, networks=None):
        """Our virtual-networks made by this host, in the audited projects.

        None: one parent-scoped list per project, never a cluster-wide
        scan. With ``networks`` (Docker network IDs): those, the ones
        this host's record names and the ones made or deleted here since
        the last look, in one read by uuid (none if there are none).
        Networks made before the host was recorded are not listed.
        """
        found = []
        with self.ctx.api() as api:
            if networks is None:
                vns = [vn for parent in self._audited_projects(api)
                       for vn in api.virtual_networks_list(
                           parent_id=parent, detail=True)]
            else:
                self.pending.ensure_loaded(api)
                wanted = (set(networks) | self.pending.ids |
                          set(self.pending.allowed) |
                          self.networks.take_recent())
                vns = api.virtual_networks_list(
                    obj_uuids=sorted(ids.network_uuid(n) for n in wanted),
                    detail=True) if wanted else []
            for vn in vns:
                view = objects.annotation(vn)
                if (objects.is_ours(vn) and view.get('id') and
                        view.get('host') == self.ctx.host):
                    found.append(objects.network_from_vn(vn, view['id']))
        return found

    def _audited_projects(self, api):
        """uuids of the audited projects (a missing one is logged)."""
        opts = self.ctx.opts
        for name in opts.audit_projects or [opts.project]:
            fq_name = objects.fq(name, self.ctx.opts.domain, 2)
            try:
                yield api.fq_name_to_id('project', fq_name)
            except vnc_exc.NoIdError:
                LOG.warning('Audit: no project %s in Contrail',
                            ':'.join(fq_name))

    def allow_policies(self, scoped=False):
        """Our allow policies in the audited projects, each with the
        state of its two networks (see Backend.allow_policies).

        One list per project, or (``scoped``) one read by uuid of the
        pairs this host's record names (none without a pair); a network
        of the pair that no longer refers to its policy costs one read,
        to tell whether it is gone.
        """
        fields = ['virtual_network_back_refs', 'annotations']
        found = []
        with self.ctx.api() as api:
            if scoped:
                self.pending.ensure_loaded(api)
                uuids = sorted({ids.allow_policy_uuid(one, other)
                                for one, others in self.pending.allowed.items()
                                for other in others})
                policies = api.network_policys_list(
                    obj_uuids=uuids, detail=True, fields=fields
                ) if uuids else []
            else:
                policies = [p for parent in self._audited_projects(api)
                            for p in api.network_policys_list(
                                parent_id=parent, detail=True,
                                fields=fields)]
            for policy in policies:
                pair = objects.annotation(policy).get('allow')
                if not objects.is_ours(policy) or not pair:
                    continue
                found.append(self._allow_state(api, policy, pair))
        return found

    def orphan_groups(self, networks=None):
        """Our network groups, in the audited projects, whose network has
        no virtual-network: two lists per project; with ``networks``
        (Docker network IDs), the groups of those only: two reads by uuid
        (none without a network, one without a group)."""
        found = []
        with self.ctx.api() as api:
            if networks is None:
                parents = [{'parent_id': p}
                           for p in self._audited_projects(api)]
            else:
                wanted = sorted(ids.security_group_uuid(n) for n in networks)
                parents = [{'obj_uuids': wanted}] if wanted else []
            for scope in parents:
                groups = [g for g in api.security_groups_list(
                    detail=True, fields=['id_perms'], **scope)
                    if objects.is_ours(g)]
                if not groups:
                    continue
                vns = self._standing(api, scope, [
                    objects.group_network(g) for g in groups])
                for group in groups:
                    network_id = objects.group_network(group)
                    if network_id and ids.network_uuid(network_id) not in \
                            vns:
                        found.append({'uuid': group.uuid,
                                      'fq_name': group.get_fq_name(),
                                      'network': network_id})
        return found

    @staticmethod
    def _standing(api, scope, network_ids):
        """uuids of the virtual-networks that stand: of the project in
        ``scope``, or of those Docker networks."""
        if 'parent_id' in scope:
            listed = api.virtual_networks_list(parent_id=scope['parent_id'])
        else:
            uuids = sorted(ids.network_uuid(n) for n in network_ids if n)
            if not uuids:
                return set()
            listed = api.virtual_networks_list(obj_uuids=uuids)
        return {vn['uuid'] for vn in listed['virtual-networks']}

    @staticmethod
    def _allow_state(api, policy, pair):
        vns = {ids.network_uuid(n): n for n in pair}
        ours, others, gone = [], [], []
        for ref in policy.get_virtual_network_back_refs() or []:
            if ref['uuid'] in vns:
                ours.append((vns.pop(ref['uuid']), ref['uuid']))
            else:
                others.append(objects.describe('virtual-network',
                                               ref['uuid'], ref['to']))
        for vn_uuid, network_id in sorted(vns.items()):
            try:
                api.virtual_network_read(id=vn_uuid, fields=['display_name'])
            except vnc_exc.NoIdError:
                gone.append(network_id)
        return {'uuid': policy.uuid, 'fq_name': policy.get_fq_name(),
                'networks': list(pair), 'gone': sorted(gone),
                'ours': sorted(ours), 'others': others}

    def network_endpoints(self, network, host=None):
        with self.ctx.api() as api:
            vmis = api.virtual_machine_interfaces_list(
                back_ref_id=[network.uuid], detail=True)
        found = []
        for vmi in vmis:
            bound = objects.kv(vmi.get_virtual_machine_interface_bindings())
            if not objects.is_ours(vmi) or host not in (
                    None, bound.get('host_id')):
                continue
            ep = objects.endpoint_from_vmi(vmi, network.id)
            if ep is not None:
                found.append(ep)
        return found

    def vrouter_links(self):
        if not self.vrouter.enabled:
            return None
        with self.ctx.api() as api:
            vrouter = self.vrouter.uuid(api)
            if vrouter is None:
                return set()
            vr = api.virtual_router_read(id=vrouter,
                                         fields=['virtual_machine_refs'])
        return {r['uuid'] for r in vr.get_virtual_machine_refs() or []}

    def foreign_objects(self, network):
        with self.ctx.api() as api:
            try:
                return cleanup.survey(api, network.id, network.uuid)[1]
            except vnc_exc.NoIdError:
                return []
