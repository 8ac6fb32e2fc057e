"""Allow policies: two Docker networks of the driver's own that may talk.

``-o opencontrail.allow`` names other Docker networks. Each pair gets a
network-policy of ours, referred to by both virtual-networks, and noted
in this host's record (:mod:`pending`); it goes when either network goes,
once no one else's network refers to it.
"""

from oslo_log import log as logging
from vnc_api import exceptions as vnc_exc

from opencontrail_net.backends.contrail import cleanup
from opencontrail_net.backends.contrail import context
from opencontrail_net.backends.contrail import objects
from opencontrail_net import exception
from opencontrail_net import ids

LOG = logging.getLogger(__name__)


class AllowPolicies:
    """Make, refer to and remove the allow policies of networks."""

    def __init__(self, ctx, pending):
        self.ctx = ctx
        self.pending = pending

    def peer(self, api, network, peer_id):
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

    @staticmethod
    def make(api, network, made):
        """Our policy between ``network`` and each network it allows, made
        before ``network``'s virtual-network, whose create refers to it.
        Found as made by an earlier try, it stands."""
        for peer in network.allow_peers:
            context.create_ours(api.network_policy_create,
                                objects.allow_policy_obj(network, peer),
                                'network-policy', made)

    def refer(self, api, network, made):
        """The other end of each allow policy of ``network`` (a ref from
        the other network), then the pairs in this host's record."""
        for peer in network.allow_peers:
            policy = ids.allow_policy_uuid(network.id, peer['id'])
            if peer['referred']:
                continue
            api.ref_update('virtual-network', peer['uuid'], 'network-policy',
                           policy, None, 'ADD',
                           objects.policy_sequence(peer['sequence']))
            made.ref('virtual-network', peer['uuid'], 'network-policy',
                     policy)
            LOG.info('Docker networks %s and %s may talk: network-policy %s',
                     network.id, peer['id'], policy)
        if network.allow_peers:
            self.pending.ensure_loaded(api)
            self.pending.pair(api, network.id,
                              [p['id'] for p in network.allow_peers], True)

    def drop(self, api, network_id):
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

    def remove(self, policy):
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
