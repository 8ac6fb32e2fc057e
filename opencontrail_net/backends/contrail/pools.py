"""The driver's IPAM on Contrail: pools and the addresses given from them.

A pool is a record in the API server's key-value store, by project and
subnet: its ``--ip-range``, and the virtual-network once Docker has made
the network. An address is an instance-ip of that network, made by
RequestAddress and handed to the endpoint's interface at CreateEndpoint.
"""

import ipaddress
import json
import threading
import time

from oslo_log import log as logging
from vnc_api import exceptions as vnc_exc

from opencontrail_net.backends.contrail import cleanup
from opencontrail_net.backends.contrail import context
from opencontrail_net.backends.contrail import objects
from opencontrail_net.backends.contrail import undo
from opencontrail_net import exception
from opencontrail_net import ids
from opencontrail_net import model
from opencontrail_net import subnets

LOG = logging.getLogger(__name__)

POOL_KEY = 'opencontrail-net:pool:%s'


class Pools:
    """Pools and addresses of the driver's IPAM.

    Caches, owned here:

    - ``pools``: pool key → its record, kept once the record names its
      virtual-network. Dropped when the pool is released or its network
      deleted (by this process; another host's release is seen by the
      next process here: records are looked up by key, never scanned).
    - ``iips``: (virtual-network uuid, address) → the instance-ip
      RequestAddress made. Dropped at ReleaseAddress.
    """

    def __init__(self, ctx):
        self.ctx = ctx
        self._pools = {}
        self._iips = {}
        self._lock = threading.Lock()
        # A check and the write that takes a pool, one at a time.
        self._taking = threading.Lock()

    def _record(self, api, key):
        record = self._pools.get(key)
        if record is None:
            kept = context.kv_get(api, POOL_KEY % key)
            record = json.loads(kept) if kept else None
            if record is not None and record.get('vn'):
                with self._lock:
                    self._pools[key] = record
                if record.get('fq'):
                    self.ctx.remember_vn(record['vn'], record['fq'])
        return record

    # For the network's life ---------------------------------------------

    def ranges(self, api, network):
        """Set the --ip-range of each subnet of ``network``, from its pool;
        return ``{pool key: the request that owns it}``, for ``bind``.

        A pool another virtual-network uses is a Conflict.
        """
        owners = {}
        for subnet in network.subnets:
            key = model.Pool(cidr=subnet.cidr, project=network.project).key
            record = self._record(api, key) or {}
            if record.get('vn') and record['vn'] != ids.network_uuid(
                    network.id):
                raise exception.Conflict(
                    reason='pool %s is in use by virtual-network %s' % (
                        subnet.cidr, record['vn']))
            subnet.ip_range = record.get('range')
            owners[key] = record.get('owner')
        return owners

    def bind(self, api, network, vn, owners):
        """Record ``vn`` as the network of the pools of its subnets, each
        still its owner's (``ranges``)."""
        vn_uuid = vn.uuid
        self.ctx.remember_vn(vn_uuid, vn.get_fq_name())
        for subnet in network.subnets:
            key = model.Pool(cidr=subnet.cidr, project=network.project).key
            record = {'range': subnet.ip_range, 'vn': vn_uuid,
                      'fq': vn.get_fq_name(), 'network_id': network.id,
                      'owner': owners.get(key)}
            api.kv_store(POOL_KEY % key, json.dumps(record))
            with self._lock:
                self._pools[key] = record

    def unbind(self, api, network_id):
        """Drop the pool records of a deleted network."""
        for key, record in list(self._pools.items()):
            if record.get('network_id') == network_id:
                api.kv_delete(POOL_KEY % key)
                with self._lock:
                    self._pools.pop(key, None)

    # RequestPool and ReleasePool ----------------------------------------

    def request_pool(self, pool, defaults):
        with self.ctx.api() as api:
            if pool.network:
                return self._existing_pool(api, pool)
            pool.project = objects.fq(pool.project or self.ctx.opts.project,
                                      self.ctx.opts.domain, 2)
            self.ctx.guard.check('project', pool.project, 'tenant',
                                 ':'.join(pool.project))
            self.ctx.uuid(api, 'project', pool.project, 'tenant',
                          ':'.join(pool.project))
            with self._taking:
                if pool.cidr is None:
                    pool.cidr = subnets.free_subnet(
                        defaults, self._project_subnets(api, pool.project))
                else:
                    self._check_free(api, pool)
                api.kv_store(POOL_KEY % pool.key, json.dumps(
                    {'range': pool.range, 'vn': None, 'owner': pool.owner,
                     'taken': time.time()}))
        LOG.info('Pool %s of project %s taken', pool.cidr,
                 ':'.join(pool.project))
        return pool

    def _check_free(self, api, pool):
        """A pool in use by a network, or taken a moment ago by another
        request, is a Conflict; one taken long ago and never made a
        network is a leftover, taken over."""
        record = self._record(api, pool.key) or {}
        if record.get('vn'):
            raise exception.Conflict(
                reason='pool %s is in use by Docker network %s' % (
                    pool.cidr, record.get('network_id')))
        subnets.check_taker(pool, record.get('owner'), record.get('taken'))

    def _project_subnets(self, api, project):
        """Subnets of the project's networks, and pools taken but not yet
        made networks: what a default pool must not overlap."""
        project_uuid = self.ctx.uuid(api, 'project', project, 'tenant',
                                     ':'.join(project))
        taken = []
        for vn in api.virtual_networks_list(parent_id=project_uuid,
                                            detail=True):
            for ref in vn.get_network_ipam_refs() or []:
                for sub in ref['attr'].get_ipam_subnets() or []:
                    taken.append(ipaddress.ip_network('%s/%s' % (
                        sub.subnet.ip_prefix, sub.subnet.ip_prefix_len)))
        prefix = POOL_KEY % (':'.join(project) + '/')
        for pair in api.kv_retrieve() or []:
            # An empty store lists one pair of key None.
            key = pair.get('key') if isinstance(pair, dict) else None
            if isinstance(key, str) and key.startswith(prefix):
                taken.append(ipaddress.ip_network(key[len(prefix):]))
        return taken

    def _existing_pool(self, api, pool):
        vn = self.ctx.existing_network(api, pool.network)
        version = 6 if pool.v6 else 4
        for vn_ref in vn.get_network_ipam_refs() or []:
            for sub in vn_ref['attr'].get_ipam_subnets() or []:
                cidr = '%s/%s' % (sub.subnet.ip_prefix,
                                  sub.subnet.ip_prefix_len)
                net = ipaddress.ip_network(cidr)
                if net.version == version and pool.cidr in (None, cidr):
                    pool.cidr, pool.gateway = cidr, sub.default_gateway
                    pool.network, pool.project = vn.uuid, vn.get_fq_name()[:2]
                    self.ctx.remember_vn(vn.uuid, vn.get_fq_name())
                    return pool
        raise exception.InvalidOption(
            key='opencontrail.network', value=pool.network,
            reason='it has no IPv%d subnet%s' % (
                version, ' %s' % pool.cidr if pool.cidr else ''))

    def release_pool(self, pool):
        if pool.network:
            return
        # Docker releases a pool once it is done with it: network rm, or a
        # create that failed. Only the request that took it gives it up:
        # a create that lost the pool to another must not free theirs.
        with self.ctx.api() as api:
            kept = context.kv_get(api, POOL_KEY % pool.key)
            record = json.loads(kept) if kept else None
            if record is not None and record.get('owner') != pool.owner:
                LOG.warning('ReleasePool of pool %s by a request that does '
                            'not hold it (it is %s): left as it is',
                            pool.cidr, 'Docker network %s\'s' % record.get(
                                'network_id') if record.get('vn') else
                            'taken by another network create')
                return
            if record is not None:
                api.kv_delete(POOL_KEY % pool.key)
        with self._lock:
            self._pools.pop(pool.key, None)

    # RequestAddress and ReleaseAddress ----------------------------------

    def _pool_vn(self, api, pool):
        if pool.network:
            return pool.network
        return (self._record(api, pool.key) or {}).get('vn')

    def request_address(self, pool, address, gateway=False):
        if gateway:
            return address or pool.gateway or str(next(
                ipaddress.ip_network(pool.cidr).hosts()))
        with undo.Made(self.ctx.client) as made:
            with self.ctx.api(budget=2 / 3) as api:
                vn_uuid = self._pool_vn(api, pool)
                if vn_uuid is None:
                    if address is None:
                        raise exception.InvalidRequest(
                            reason='pool %s has no network yet' % pool.cidr)
                    return address   # An aux address: kept off at create.
                iip = self._allocate(api, pool, vn_uuid, address, made)
                if address is None:
                    address = api.instance_ip_read(
                        id=iip.uuid, fields=['instance_ip_address']
                    ).get_instance_ip_address()
        with self._lock:
            self._iips[(vn_uuid, address)] = iip.uuid
        LOG.info('Created instance-ip %s (%s) in pool %s', iip.uuid, address,
                 pool.cidr)
        return address

    def _allocate(self, api, pool, vn_uuid, address, made):
        """An instance-ip of the pool's network; Contrail picks its
        address unless ``address`` is asked, or the pool's range lies in
        a network that is not ours to give allocation pools."""
        tries = [address]
        if address is None and pool.network and pool.range:
            tries = [str(a) for a in ipaddress.ip_network(pool.range).hosts()]
        vn_fq = self.ctx.vn_fq(api, vn_uuid)
        for asked in tries[:64]:
            iip = objects.ipam_iip(pool, vn_fq, vn_uuid, asked)
            try:
                api.instance_ip_create(iip)
            except vnc_exc.RefsExistError:
                if len(tries) > 1:
                    continue
                raise exception.AddressInUse(address=asked,
                                             pool='pool %s' % pool.cidr)
            except vnc_exc.BadRequest as exc:
                if 'exhausted' in str(exc.content):
                    break
                raise
            made.object('instance-ip', iip.uuid)
            return iip
        raise exception.PoolExhausted(pool='pool %s%s' % (
            pool.cidr, ' (range %s)' % pool.range if pool.range else ''))

    def find_iip(self, api, vn_uuid, address):
        """The instance-ip RequestAddress made for ``address``."""
        found = self._iips.get((vn_uuid, address))
        if found:
            return found
        for iip in api.instance_ips_list(
                back_ref_id=[vn_uuid], detail=True,
                filters={'instance_ip_address': address}):
            if objects.is_ours(iip):
                return iip.uuid
        raise exception.InvalidRequest(
            reason='address %s was not given by this driver\'s IPAM'
            % address)

    def release_address(self, pool, address):
        with self.ctx.api() as api:
            vn_uuid = self._pool_vn(api, pool)
            if vn_uuid is None:
                return
            iip = self._iips.get((vn_uuid, address))
            if iip is None:
                try:
                    iip = self.find_iip(api, vn_uuid, address)
                except exception.InvalidRequest:
                    return   # The gateway or an aux address: no object.
            if cleanup.ignore_missing(api.instance_ip_delete, iip):
                LOG.info('Deleted instance-ip %s (%s)', iip, address)
        with self._lock:
            self._iips.pop((vn_uuid, address), None)
