"""Existing virtual-networks attached as Docker networks.

``-o opencontrail.network=UUID|DOMAIN:PROJECT:NAME`` attaches a
virtual-network someone else made: it is recorded in the API server's
key-value store (keyed by the Docker network ID), never changed; only
the network's own security group, if any, is the driver's.
"""

import json

from oslo_log import log as logging
from vnc_api import exceptions as vnc_exc

from opencontrail_net.backends.contrail import context
from opencontrail_net.backends.contrail import objects
from opencontrail_net.backends.contrail import undo
from opencontrail_net import exception

LOG = logging.getLogger(__name__)


class ExistingNetworks:
    """Attach and find existing virtual-networks.

    ``resolve(api, network)`` fills in a network's project, IPAM and
    refs, as for a network of the driver's own.
    """

    def __init__(self, ctx, resolve):
        self.ctx = ctx
        self._resolve = resolve

    @staticmethod
    def check_options(network):
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

    def attach(self, network):
        self.check_options(network)
        ref = network.existing
        with undo.Made(self.ctx.client) as made:
            with self.ctx.api(budget=2 / 3) as api:
                vn = self.ctx.existing_network(api, ref)
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
        LOG.info('Docker network %s uses existing virtual-network %s',
                 network.id, vn.uuid)
        return record, True

    @staticmethod
    def find(api, network_id):
        """The record of an attached network, from the key-value store."""
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
