"""The ``contrail`` backend: Docker objects as Contrail config objects.

A Docker network is a virtual-network with a security group, an endpoint
a virtual-machine-interface with one instance-ip per address, a container
a virtual-machine. Every uuid is derived from the full Docker ID, so any
host and any restart finds an object with one GET and the driver keeps no
state of its own. Records are cached in memory only to spare requests:
what is cached never changes once made.
"""

import ipaddress
import json
import threading

from oslo_log import log as logging
from vnc_api import exceptions as vnc_exc

from opencontrail_net.backends import base
from opencontrail_net.backends.contrail import cleanup
from opencontrail_net.backends.contrail import client as client_mod
from opencontrail_net.backends.contrail import objects
from opencontrail_net import exception
from opencontrail_net import ids
from opencontrail_net import ipam
from opencontrail_net import model
from opencontrail_net import netopts

LOG = logging.getLogger(__name__)

GLOBAL_SYSTEM_CONFIG = ['default-global-system-config']
PENDING_KEY = 'opencontrail-net:pending-delete:%s'
# A pool of the driver's IPAM, by project and subnet: its range, and the
# virtual-network once Docker has made the network.
POOL_KEY = 'opencontrail-net:pool:%s'


class ContrailBackend(base.Backend):
    """Networks and endpoints in a Contrail cluster, through vnc_api."""

    CONFIG_GROUP = 'contrail'
    CONFIG_OPTS = client_mod.CONFIG_OPTS

    def __init__(self, conf):
        super().__init__(conf)
        self.opts = conf.contrail
        self.host = conf.host
        # With the vrouter port driver, this host's virtual-router must
        # refer to each container's VM, or its agent never gets the port.
        self._link_vrouter = conf.port_driver == 'vrouter'
        self._vrouter = None    # its uuid, once found
        self._vrouter_said = False
        self.client = client_mod.Client(self.opts)
        self._names = {}        # (type, fq string) -> uuid
        # virtual-network uuid -> fq_name, for refs (the server reads a
        # ref's fq_name): a network's fq_name never changes while it lives.
        self._vn_names = {}
        self._endpoints = {}
        self._pools = {}        # pool key -> {'range', 'vn'}
        self._iips = {}         # (vn uuid, address) -> instance-ip uuid
        # endpoint ID -> what of its ports stands in Contrail: {'group':
        # its exposed-ports security group, 'floating_ip', 'sure': seen
        # made or removed by this process (else read off its interface)}.
        self._ports = {}
        self._fip_pool = None
        if self.opts.floating_ip_pool:
            self._fip_pool = self._pool_fq(self.opts.floating_ip_pool)
            if self._fip_pool is None:
                raise exception.InvalidConfig(
                    option='[contrail] floating_ip_pool',
                    value=self.opts.floating_ip_pool,
                    reason='expected DOMAIN:PROJECT:NETWORK:POOL')
        self._rt_rules = None
        self._pending = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._retrier = None

    def _api(self, budget=1.0):
        return self.client.api(budget)

    # Start and stop ---------------------------------------------------

    def start(self):
        try:
            # Briefly: a hung API must not keep Docker from the socket.
            with self._api(budget=0.2) as api:
                cleanup.delete_unused_vms(api, self.host)
                self._pending = set(json.loads(
                    self._kv_get(api, PENDING_KEY % self.host) or '[]'))
                if self._link_vrouter:
                    self._vrouter_uuid(api)
        except exception.OpenContrailNetError as exc:
            LOG.warning('Could not look for unused VMs and pending deletes '
                        'at start: %s', exc)
        if self.opts.retry_interval:
            self._retrier = threading.Thread(
                target=self._retry_loop, name='contrail-retry', daemon=True)
            self._retrier.start()

    def stop(self):
        self._stopping.set()

    @staticmethod
    def _kv_get(api, key):
        try:
            return api.kv_retrieve(key)
        except vnc_exc.NoIdError:
            return None

    def _vrouter_uuid(self, api):
        """This host's virtual-router, looked up until found (one request;
        none once found)."""
        if self._vrouter is None:
            fq_name = cleanup.vrouter_fq_name(self.host)
            try:
                self._vrouter = api.fq_name_to_id('virtual-router', fq_name)
            except vnc_exc.NoIdError:
                # Said once; looked for again at each Join until found.
                log = LOG.debug if self._vrouter_said else LOG.error
                self._vrouter_said = True
                log('No virtual-router %s in Contrail: the vrouter agent of '
                    'this host gets no container port until [DEFAULT] host '
                    '(%s) is exactly the name this host\'s virtual-router '
                    'was provisioned with. Contrail names a virtual-router '
                    'after its host as the agent registers it, usually the '
                    'short name (hostname -s), not the FQDN.',
                    ':'.join(fq_name), self.host)
                return None
            LOG.info('This host\'s virtual-router is %s (%s)', self._vrouter,
                     ':'.join(fq_name))
        return self._vrouter

    # Lookups, cached: names never move to another uuid while in use --

    def _uuid(self, api, kind, fq_name, option, value):
        key = (kind, ':'.join(fq_name))
        found = self._names.get(key)
        if found is None:
            try:
                found = api.fq_name_to_id(kind, fq_name)
            except vnc_exc.NoIdError:
                raise exception.InvalidOption(
                    key=option, value=value,
                    reason='no %s %s in Contrail' % (kind, key[1]))
            self._names[key] = found
        return found

    def route_target_rules(self):
        """The cluster's ASN and whether 4-byte ASNs are on, read once."""
        if self._rt_rules is None:
            with self._api() as api:
                gsc = api.global_system_config_read(
                    fq_name=GLOBAL_SYSTEM_CONFIG)
            self._rt_rules = (gsc.get_autonomous_system(),
                              bool(gsc.get_enable_4byte_as()))
            LOG.info('Contrail global ASN %s, 4-byte ASNs %s',
                     *self._rt_rules)
        return self._rt_rules

    # Networks ---------------------------------------------------------

    def _resolve(self, api, network):
        """Fill in the project, ipam and security groups of ``network``."""
        domain = self.opts.domain
        network.project = objects.fq(network.project or self.opts.project,
                                     domain, 2)
        network.project_uuid = self._uuid(
            api, 'project', network.project, 'tenant',
            ':'.join(network.project))
        if network.ipam:
            ipam = network.ipam.split(':')
            if len(ipam) == 1:
                ipam = network.project + ipam
            ipam = objects.fq(ipam, domain, 3)
            self._uuid(api, 'network-ipam', ipam, 'opencontrail.ipam',
                       network.ipam)
        else:
            ipam = objects.fq(self.opts.network_ipam, domain, 3)
        network.ipam = ':'.join(ipam)
        if network.floating_ip_pool:
            pool = self._pool_fq(network.floating_ip_pool)
            self._uuid(api, 'floating-ip-pool', pool,
                       'opencontrail.floating_ip_pool',
                       network.floating_ip_pool)
            network.floating_ip_pool = ':'.join(pool)
        if network.security_groups is None:
            network.security_group_refs = [
                objects.own_security_group_ref(network)]
        else:
            network.security_group_refs = []
            for name in network.security_groups:
                sg = name.split(':')
                if len(sg) == 1:
                    sg = network.project + sg
                sg = objects.fq(sg, domain, 3)
                network.security_group_refs.append({
                    'to': sg, 'uuid': self._uuid(
                        api, 'security-group', sg,
                        'opencontrail.security_groups', name)})
        return ipam

    @staticmethod
    def _create_ours(create, obj, kind, made):
        """Create ``obj``; True if made now, False if ours already stood."""
        try:
            create(obj)
        except vnc_exc.RefsExistError as exc:
            if obj.uuid in str(exc):
                return False
            raise exception.Conflict(
                reason='a Contrail %s named %s already exists and is not '
                'ours: %s' % (kind, ':'.join(obj.get_fq_name()), exc))
        made.append((kind.replace('-', '_'), obj.uuid))
        LOG.info('Created %s %s (%s)', kind, obj.uuid,
                 ':'.join(obj.get_fq_name()))
        return True

    def create_network(self, network):
        if network.existing:
            return self._attach_existing(network)
        made = []
        try:
            with self._api(budget=2 / 3) as api:
                ipam = self._resolve(api, network)
                if network.own_ipam:
                    self._pool_ranges(api, network)
                vn = objects.network_obj(network, ipam, self.host)
                if network.security_groups is None:
                    self._create_ours(api.security_group_create,
                                      objects.security_group_obj(network),
                                      'security-group', made)
                try:
                    api.virtual_network_create(vn)
                except vnc_exc.RefsExistError as exc:
                    return self._existing_same(api, network, vn, exc), False
                made.append(('virtual_network', vn.uuid))
                if network.own_ipam:
                    self._bind_pools(api, network, vn)
        except Exception:
            cleanup.undo(self.client, made)
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
            with self._api(budget=2 / 3) as api:
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
                    self._create_ours(api.security_group_create,
                                      objects.security_group_obj(network),
                                      'security-group', made)
                api.kv_store(objects.KV_PREFIX + network.id, json.dumps(
                    {'uuid': vn.uuid, 'mtu': network.mtu,
                     'security_groups': network.security_groups,
                     'security_group_refs': network.security_group_refs,
                     'floating_ip_pool': network.floating_ip_pool}))
        except Exception:
            cleanup.undo(self.client, made)
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

    def get_network(self, network_id):
        with self._api() as api:
            try:
                vn = api.virtual_network_read(id=ids.network_uuid(network_id))
                return objects.network_from_vn(vn, network_id)
            except vnc_exc.NoIdError:
                pass
            try:
                kept = self._kv_get(api, objects.KV_PREFIX + network_id)
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

    def delete_network(self, network_id):
        vn_uuid = ids.network_uuid(network_id)
        with self._api() as api:
            try:
                api.virtual_network_delete(id=vn_uuid)
            except vnc_exc.NoIdError:
                # Never made by us: an attached network is only forgotten.
                api.kv_delete(objects.KV_PREFIX + network_id)
            except vnc_exc.RefsExistError:
                foreign = cleanup.clear_network(api, network_id, vn_uuid)
                if foreign:
                    self._hold(api, network_id, True)
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
                self._hold(api, network_id, True)
                raise exception.Conflict(
                    reason='security group %s of network %s is used by '
                    'objects opencontrail-net did not create: %s' % (
                        sg_uuid, network_id, exc))
            if network_id in self._pending:
                self._hold(api, network_id, False)
            self._unbind_pools(api, network_id)

    def _hold(self, api, network_id, held):
        """Remember (or forget) a network whose delete waits for others."""
        with self._lock:
            pending = set(self._pending)
            (pending.add if held else pending.discard)(network_id)
            if pending == self._pending:
                return
            if pending:
                api.kv_store(PENDING_KEY % self.host,
                             json.dumps(sorted(pending)))
            else:
                api.kv_delete(PENDING_KEY % self.host)
            self._pending = pending

    def _retry_loop(self):
        while not self._stopping.wait(self.opts.retry_interval):
            self.retry_pending()

    def retry_pending(self):
        """Delete the held networks whose blockers have gone."""
        for network_id in sorted(self._pending):
            try:
                self.delete_network(network_id)
            except exception.OpenContrailNetError as exc:
                LOG.debug('Network %s still kept: %s', network_id, exc)
                continue
            LOG.info('Deleted network %s: what held it has gone',
                     network_id)

    def set_route_targets(self, network_id, route_targets=None,
                          import_targets=None, export_targets=None):
        network = self.get_network(network_id)
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
        with self._api() as api:
            api.virtual_network_update(vn)

    # Endpoints --------------------------------------------------------

    def create_endpoint(self, network, endpoint):
        endpoint.uuid = ids.endpoint_uuid(endpoint.id)
        endpoint.mac = endpoint.mac or ids.mac_from_uuid(endpoint.uuid)
        endpoint.host = endpoint.host or self.host
        made = []
        try:
            with self._api(budget=2 / 3) as api:
                if network.own_ipam:
                    endpoint.instance_ips = [
                        self._find_iip(api, network.uuid, a.split('/')[0])
                        for a in (endpoint.ipv4, endpoint.ipv6) if a]
                vmi = objects.vmi_obj(network, endpoint)
                try:
                    api.virtual_machine_interface_create(vmi)
                    made.append(('virtual_machine_interface', vmi.uuid))
                    self._note_ports(endpoint.id, False, False)
                except vnc_exc.RefsExistError:
                    endpoint = self._same_endpoint(api, network, endpoint)
                if network.own_ipam:
                    self._adopt(api, endpoint, made)
                for iip in objects.iip_objs(network, endpoint, vmi):
                    if not self._create_iip(api, iip, made):
                        cleanup.reclaim(api, network, endpoint,
                                        iip.get_instance_ip_address())
                        self._create_iip(api, iip, made, last_try=True)
        except Exception:
            cleanup.undo(self.client, made)
            raise
        with self._lock:
            self._endpoints[endpoint.id] = endpoint
        LOG.info('Created virtual-machine-interface %s (mac %s) for endpoint '
                 '%s', endpoint.uuid, endpoint.mac, endpoint.id)
        return endpoint, bool(made)

    def _adopt(self, api, endpoint, made):
        """The instance-ips RequestAddress made go to the interface."""
        for iip in endpoint.instance_ips:
            api.ref_update('instance-ip', iip, 'virtual-machine-interface',
                           endpoint.uuid, None, 'ADD')
            made.append(('adopted', (iip, endpoint.uuid)))
            LOG.info('Instance-ip %s now belongs to endpoint %s', iip,
                     endpoint.id)

    def _same_endpoint(self, api, network, endpoint):
        try:
            old = self._read_endpoint(api, network, endpoint.id)
        except exception.EndpointNotFound:
            old = None
        if old is None or (old.ipv4, old.ipv6, old.mac) != (
                endpoint.ipv4, endpoint.ipv6, endpoint.mac):
            raise exception.Conflict(
                reason='endpoint %s exists with other settings' % endpoint.id)
        return old

    @staticmethod
    def _create_iip(api, iip, made, last_try=False):
        """Create ``iip``; False if another object holds its address."""
        try:
            api.instance_ip_create(iip)
        except vnc_exc.RefsExistError as exc:
            if iip.uuid in str(exc):
                return True  # Ours, from an earlier attempt of this call.
            if not last_try:
                return False
            raise exception.AddressInUse(
                address=iip.get_instance_ip_address(),
                pool='Contrail network %s' % iip.get_virtual_network_refs()[
                    0]['uuid'])
        made.append(('instance_ip', iip.uuid))
        LOG.info('Created instance-ip %s (%s)', iip.uuid,
                 iip.get_instance_ip_address())
        return True

    def _read_endpoint(self, api, network, endpoint_id):
        try:
            vmi = api.virtual_machine_interface_read(
                id=ids.endpoint_uuid(endpoint_id))
        except vnc_exc.NoIdError:
            raise exception.EndpointNotFound(id=endpoint_id)
        ep = objects.endpoint_from_vmi(vmi, network.id)
        if ep is None or not objects.is_ours(vmi):
            raise exception.EndpointNotFound(id=endpoint_id)
        self._ports_of_vmi(vmi)
        return ep

    def get_endpoint(self, network, endpoint_id):
        ep = self._endpoints.get(endpoint_id)
        if ep is not None and ep.network_id == network.id:
            return ep
        with self._api() as api:
            ep = self._read_endpoint(api, network, endpoint_id)
        with self._lock:
            self._endpoints[endpoint_id] = ep
        return ep

    def attach_endpoint(self, network, endpoint, sandbox):
        vm = objects.vm_obj(self.host, sandbox)
        if endpoint.vm_uuid == vm.uuid:
            return endpoint, False
        made = []
        try:
            with self._api(budget=2 / 3) as api:
                # Made already: the container's other endpoint made it.
                new_vm = self._create_ours(api.virtual_machine_create, vm,
                                           'virtual-machine', made)
                api.ref_update('virtual-machine-interface', endpoint.uuid,
                               'virtual-machine', vm.uuid, None, 'ADD')
                vrouter = self._link_vrouter and self._vrouter_uuid(api)
                if vrouter:
                    made.append(('ref', ('virtual-machine-interface',
                                         endpoint.uuid, 'virtual-machine',
                                         vm.uuid)))
                    # What the agent subscribes to: the server links a VM
                    # to a virtual-router by itself only for SR-IOV ports.
                    api.ref_update('virtual-router', vrouter,
                                   'virtual-machine', vm.uuid, None, 'ADD')
                    if new_vm:
                        made.append(('ref', ('virtual-router', vrouter,
                                             'virtual-machine', vm.uuid)))
        except Exception:
            cleanup.undo(self.client, made)
            raise
        endpoint.vm_uuid, endpoint.vm_name = vm.uuid, vm.uuid
        endpoint.sandbox = sandbox
        with self._lock:
            self._endpoints[endpoint.id] = endpoint
        return endpoint, True

    def detach_endpoint(self, network, endpoint):
        vm_uuid = endpoint.vm_uuid
        if not vm_uuid:
            return
        with self._api(budget=1 / 3) as api:
            try:
                api.ref_update('virtual-machine-interface', endpoint.uuid,
                               'virtual-machine', vm_uuid, None, 'DELETE')
            except vnc_exc.NoIdError:
                pass
            cleanup.delete_vm(api, vm_uuid)
        endpoint.vm_uuid = endpoint.vm_name = endpoint.sandbox = None

    def delete_endpoint(self, network, endpoint_id):
        # The cached record names the VM; it is dropped only once all is
        # gone, so a retry after a failure part-way still finds the VM.
        ep = self._endpoints.get(endpoint_id)
        with self._api() as api:
            if ep is not None:
                vm_uuid = ep.vm_uuid
                families = () if ep.instance_ips else (
                    {'v%d' % s.version for s in network.subnets} or
                    ('v4', 'v6'))
                iips = cleanup.endpoint_iips(endpoint_id, families,
                                             ep.instance_ips)
            else:
                vm_uuid, iips = self._endpoint_parts(api, endpoint_id)
            # Unknown (never seen here): its derived uuids are tried.
            ports = self._ports.get(endpoint_id) or {
                'group': True, 'floating_ip': True}
            cleanup.delete_endpoint_objects(
                api, endpoint_id, vm_uuid, iips,
                floating_ip=ports['floating_ip'],
                ports_group=ports['group'])
        with self._lock:
            self._endpoints.pop(endpoint_id, None)
            self._ports.pop(endpoint_id, None)
        LOG.info('Deleted virtual-machine-interface %s of endpoint %s',
                 ids.endpoint_uuid(endpoint_id), endpoint_id)

    def _endpoint_parts(self, api, endpoint_id):
        """(VM uuid, instance-ip uuids) of an endpoint, from its interface.

        For an endpoint this process did not make or join; what of its
        ports stands is noted from it too. Gone already: its derived
        instance-ips may still stand, of either family.
        """
        try:
            vmi = api.virtual_machine_interface_read(
                id=ids.endpoint_uuid(endpoint_id),
                fields=['virtual_machine_refs', 'instance_ip_back_refs',
                        'annotations', 'security_group_refs',
                        'floating_ip_back_refs'])
        except vnc_exc.NoIdError:
            return None, cleanup.endpoint_iips(endpoint_id)
        self._ports_of_vmi(vmi, exact=True)
        held = {r['uuid'] for r in vmi.get_instance_ip_back_refs() or []}
        mine = cleanup.endpoint_iips(
            endpoint_id, adopted=objects.annotation(vmi).get('iips', ()))
        vm = (vmi.get_virtual_machine_refs() or [{}])[0].get('uuid')
        return vm, [u for u in mine if u in held]

    # Exposed and published ports -------------------------------------

    def _pool_fq(self, value):
        """A floating-ip-pool's fq_name (4 parts), or None if malformed."""
        pool = objects.fq(value, self.opts.domain, 4)
        return pool if len(pool) == 4 and all(pool) else None

    def _note_ports(self, endpoint_id, group, floating_ip, sure=True):
        with self._lock:
            self._ports[endpoint_id] = {'group': group,
                                        'floating_ip': floating_ip,
                                        'sure': sure}

    def _ports_of_vmi(self, vmi, exact=False):
        """What of an endpoint's ports stands, read off its interface.

        Its exposed-ports group shows in its refs, or may stand unreferred
        if Docker named ports at CreateEndpoint (the driver killed between
        making it and referring to it). A floating IP comes only with that
        group (made after it, removed before it): tried with it, unless
        ``exact`` (the interface was read with its back-refs).
        """
        known = self._ports.get(vmi.name)
        if known and known['sure']:
            return
        group = ids.endpoint_security_group_uuid(vmi.name) in {
            r['uuid'] for r in vmi.get_security_group_refs() or []} or bool(
            objects.annotation(vmi).get('ports'))
        fip = group
        if exact:
            fip = ids.floating_ip_uuid(vmi.name) in {
                r['uuid'] for r in vmi.get_floating_ip_back_refs() or []}
        self._note_ports(vmi.name, group, fip, sure=False)

    @staticmethod
    def _port_ranges(exposed):
        """Exposed ports as (proto, first, last) runs, one rule each."""
        runs = []
        for port in sorted(exposed, key=lambda p: (p.proto, p.port)):
            if runs and runs[-1][0] == port.proto and \
                    runs[-1][2] + 1 == port.port:
                runs[-1][2] = port.port
            else:
                runs.append([port.proto, port.port, port.port])
        return [tuple(r) for r in runs]

    @staticmethod
    def _port_mappings(bindings, pool):
        """(proto, port on the floating IP, container port) of each -p.

        The floating IP is the container's own: no other container holds
        its ports, so a host port range takes its first port, and no host
        port (-p 80) the container's own.
        """
        mappings, seen = [], {}
        for b in bindings:
            if b.host_ip:
                raise exception.CannotPublish(
                    reason='-p %s:%d:%d: on Contrail a container\'s ports '
                    'are published on its own floating IP from pool %s, '
                    'not on a host address; publish without one (-p '
                    '%d:%d)' % (b.host_ip, b.host_port, b.port, pool,
                                b.host_port or b.port, b.port))
            if b.proto not in ('tcp', 'udp'):
                raise exception.CannotPublish(
                    reason='-p %d/%s: Contrail maps only tcp and udp '
                    'ports of a floating IP' % (b.port, b.proto))
            src = b.host_port or b.port
            if seen.get((b.proto, src), b.port) != b.port:
                raise exception.CannotPublish(
                    reason='host port %d/%s is published twice, to '
                    'container ports %d and %d' % (
                        src, b.proto, seen[(b.proto, src)], b.port))
            if (b.proto, src) not in seen:
                seen[(b.proto, src)] = b.port
                mappings.append((b.proto, src, b.port))
        return mappings

    def publish_ports(self, network, endpoint_id, exposed, bindings):
        """Exposed ports: a security group of the endpoint's own that lets
        them in from anywhere. Published ports (-p): a floating IP of the
        network's pool with one port mapping each.

        Retried, the same objects are found (uuids derived from the
        endpoint's ID) and set to what is asked now; a failure part-way
        undoes what this call made.
        """
        exposed = list(exposed)
        for b in bindings:
            if model.ExposedPort(b.proto, b.port) not in exposed:
                exposed.append(model.ExposedPort(b.proto, b.port))
        if not exposed:
            return {}
        pool = self._pool_fq(network.floating_ip_pool) if \
            network.floating_ip_pool else self._fip_pool
        if bindings and pool is None:
            raise exception.CannotPublish(
                reason='network %s has no floating-ip pool to publish -p '
                'on: set [contrail] floating_ip_pool = '
                'DOMAIN:PROJECT:NETWORK:POOL in the driver\'s configuration, '
                'or create the network with -o '
                'opencontrail.floating_ip_pool=DOMAIN:PROJECT:NETWORK:POOL; '
                'without -p the container is reached at its Contrail '
                'address' % network.id)
        mappings = self._port_mappings(bindings, ':'.join(pool or ()))
        versions = sorted({s.version for s in network.subnets}) or [4, 6]
        vmi_uuid = ids.endpoint_uuid(endpoint_id)
        made = []
        address = None
        try:
            with self._api(budget=2 / 3) as api:
                sg = objects.ports_security_group_obj(
                    network, endpoint_id, self._port_ranges(exposed),
                    versions)
                if self._create_ours(api.security_group_create, sg,
                                     'security-group', made):
                    api.ref_update('virtual-machine-interface', vmi_uuid,
                                   'security-group', sg.uuid, None, 'ADD')
                    made.append(('ref', ('virtual-machine-interface',
                                         vmi_uuid, 'security-group',
                                         sg.uuid)))
                else:
                    api.security_group_update(sg)
                    api.ref_update('virtual-machine-interface', vmi_uuid,
                                   'security-group', sg.uuid, None, 'ADD')
                if mappings:
                    address = self._floating_ip(api, network, endpoint_id,
                                                pool, mappings, made)
        except Exception:
            cleanup.undo(self.client, made)
            # What an earlier call left is unknown now: tried at delete.
            self._note_ports(endpoint_id, True, True, sure=False)
            raise
        self._note_ports(endpoint_id, True, bool(mappings))
        LOG.info('Opened exposed ports %s of endpoint %s (security-group '
                 '%s)', ', '.join('%d/%s' % (p.port, p.proto)
                                  for p in exposed), endpoint_id, sg.uuid)
        if not mappings:
            return {}
        LOG.info('Published ports of endpoint %s on floating IP %s (pool '
                 '%s): %s', endpoint_id, address, ':'.join(pool),
                 ', '.join('%s:%d->%d/%s' % (address, src, dst, proto)
                           for proto, src, dst in mappings))
        return self._published_info(self._endpoints.get(endpoint_id),
                                    address, pool, mappings)

    @staticmethod
    def _published_info(ep, address, pool, mappings):
        """What EndpointOperInfo shows of a floating IP's ports."""
        shown = [model.PortBinding(proto, dst, address, src, src)
                 for proto, src, dst in mappings]
        return {'floating_ip': address, 'floating_ip_pool': ':'.join(pool),
                netopts.PORTMAP: netopts.portmap(
                    ep.ipv4.split('/')[0] if ep and ep.ipv4 else '', shown)}

    def published(self, endpoints):
        """The floating IPs of these endpoints, for EndpointOperInfo after
        a restart: one list request, and only for endpoints whose
        interface shows published ports."""
        wanted = {ep.id: ep for ep in endpoints
                  if (self._ports.get(ep.id) or {}).get('floating_ip')}
        if not wanted:
            return {}
        with self._api() as api:
            found = api.floating_ips_list(
                obj_uuids=[ids.floating_ip_uuid(e) for e in wanted],
                detail=True)
        info = {}
        for fip in found:
            ep = wanted.get(fip.name)
            if ep is None or not objects.is_ours(fip):
                continue
            maps = fip.get_floating_ip_port_mappings()
            mappings = [(m.protocol, m.src_port, m.dst_port)
                        for m in (maps.get_port_mappings() if maps else [])]
            info[ep.id] = self._published_info(
                ep, fip.get_floating_ip_address(), fip.get_fq_name()[:4],
                mappings)
        return info

    def _floating_ip(self, api, network, endpoint_id, pool, mappings, made):
        """Make (or find, and set) the endpoint's floating IP; its address.
        """
        fip = objects.floating_ip_obj(network, endpoint_id, pool, mappings)
        where = ':'.join(pool)
        try:
            if not self._create_ours(api.floating_ip_create, fip,
                                     'floating-ip', made):
                api.floating_ip_update(fip)
        except vnc_exc.NoIdError:
            raise exception.CannotPublish(
                reason='no floating-ip-pool %s in Contrail (%s)' % (
                    where, 'opencontrail.floating_ip_pool of network %s'
                    % network.id if network.floating_ip_pool else
                    '[contrail] floating_ip_pool'))
        except (vnc_exc.HttpError, vnc_exc.BadRequest) as exc:
            if 'exhausted' in str(getattr(exc, 'content', exc)):
                raise exception.PoolExhausted(
                    pool='floating-ip-pool %s' % where)
            raise
        return api.floating_ip_read(
            id=fip.uuid, fields=['floating_ip_address']
        ).get_floating_ip_address()

    def unpublish_ports(self, network, endpoint_id):
        """Remove the floating IP and the exposed-ports group, if any.

        Nothing published (known from Program, or read off the interface
        at start or Join): no request. An endpoint this process never saw
        is left to DeleteEndpoint, which tries both.
        """
        ports = self._ports.get(endpoint_id)
        if not ports or not (ports['group'] or ports['floating_ip']):
            return
        with self._api() as api:
            if ports['floating_ip']:
                cleanup.delete_floating_ip(api, endpoint_id)
            if ports['group']:
                cleanup.delete_ports_group(api, endpoint_id, unref=True)
        self._note_ports(endpoint_id, False, False)

    def find_endpoints(self, host, endpoint_ids):
        if not endpoint_ids:
            return []
        with self._api() as api:
            found = api.virtual_machine_interfaces_list(
                obj_uuids=[ids.endpoint_uuid(e) for e in endpoint_ids],
                detail=True)
        result, networks = [], {}
        for vmi in found:
            bound = objects.kv(vmi.get_virtual_machine_interface_bindings())
            view = objects.annotation(vmi)
            if (not objects.is_ours(vmi) or bound.get('host_id') != host or
                    not vmi.get_virtual_machine_refs()):
                continue
            nid = view.get('network_id')
            if nid not in networks:
                try:
                    networks[nid] = self.get_network(nid)
                except exception.NetworkNotFound:
                    continue
            result.append((networks[nid],
                           objects.endpoint_from_vmi(vmi, nid)))
            self._ports_of_vmi(vmi)
        return result

    # Inventory, for the audit ----------------------------------------

    def owned_networks(self):
        """Our virtual-networks made by this host, in the audited projects.

        One parent-scoped list per project, never a cluster-wide scan.
        Networks made before the host was recorded are not listed.
        """
        found = []
        with self._api() as api:
            for name in self.opts.audit_projects or [self.opts.project]:
                fq_name = objects.fq(name, self.opts.domain, 2)
                try:
                    parent = api.fq_name_to_id('project', fq_name)
                except vnc_exc.NoIdError:
                    LOG.warning('Audit: no project %s in Contrail',
                                ':'.join(fq_name))
                    continue
                for vn in api.virtual_networks_list(parent_id=parent,
                                                    detail=True):
                    view = objects.annotation(vn)
                    if (objects.is_ours(vn) and view.get('id') and
                            view.get('host') == self.host):
                        found.append(objects.network_from_vn(vn,
                                                             view['id']))
        return found

    def network_endpoints(self, network, host):
        with self._api() as api:
            vmis = api.virtual_machine_interfaces_list(
                back_ref_id=[network.uuid], detail=True)
        found = []
        for vmi in vmis:
            bound = objects.kv(vmi.get_virtual_machine_interface_bindings())
            if not objects.is_ours(vmi) or bound.get('host_id') != host:
                continue
            ep = objects.endpoint_from_vmi(vmi, network.id)
            if ep is not None:
                found.append(ep)
        return found

    def vrouter_links(self):
        if not self._link_vrouter:
            return None
        with self._api() as api:
            vrouter = self._vrouter_uuid(api)
            if vrouter is None:
                return set()
            vr = api.virtual_router_read(id=vrouter,
                                         fields=['virtual_machine_refs'])
        return {r['uuid'] for r in vr.get_virtual_machine_refs() or []}

    def foreign_objects(self, network):
        with self._api() as api:
            try:
                return cleanup.survey(api, network.id, network.uuid)[1]
            except vnc_exc.NoIdError:
                return []

    # IPAM -------------------------------------------------------------

    def _pool_record(self, api, key):
        record = self._pools.get(key)
        if record is None:
            kept = self._kv_get(api, POOL_KEY % key)
            record = json.loads(kept) if kept else None
            if record is not None and record.get('vn'):
                self._pools[key] = record
                if record.get('fq'):
                    self._vn_names[record['vn']] = record['fq']
        return record

    def _vn_fq(self, api, vn_uuid):
        """The fq_name of a virtual-network, asked once per process (a
        pool recorded with it, or an existing network read, costs none)."""
        fq_name = self._vn_names.get(vn_uuid)
        if fq_name is None:
            fq_name = api.id_to_fq_name(vn_uuid)
            self._vn_names[vn_uuid] = fq_name
        return fq_name

    def _pool_ranges(self, api, network):
        """The --ip-range of each subnet, from its pool."""
        for subnet in network.subnets:
            key = model.Pool(cidr=subnet.cidr, project=network.project).key
            record = self._pool_record(api, key) or {}
            if record.get('vn') and record['vn'] != ids.network_uuid(
                    network.id):
                raise exception.Conflict(
                    reason='pool %s is in use by virtual-network %s' % (
                        subnet.cidr, record['vn']))
            subnet.ip_range = record.get('range')

    def _bind_pools(self, api, network, vn):
        vn_uuid = vn.uuid
        self._vn_names[vn_uuid] = vn.get_fq_name()
        for subnet in network.subnets:
            key = model.Pool(cidr=subnet.cidr, project=network.project).key
            record = {'range': subnet.ip_range, 'vn': vn_uuid,
                      'fq': vn.get_fq_name(), 'network_id': network.id}
            api.kv_store(POOL_KEY % key, json.dumps(record))
            self._pools[key] = record

    def _unbind_pools(self, api, network_id):
        for key, record in list(self._pools.items()):
            if record.get('network_id') == network_id:
                api.kv_delete(POOL_KEY % key)
                self._pools.pop(key, None)

    def request_pool(self, pool, defaults):
        with self._api() as api:
            if pool.network:
                return self._existing_pool(api, pool)
            pool.project = objects.fq(pool.project or self.opts.project,
                                      self.opts.domain, 2)
            self._uuid(api, 'project', pool.project, 'tenant',
                       ':'.join(pool.project))
            if pool.cidr is None:
                pool.cidr = ipam.free_subnet(
                    defaults, self._project_subnets(api, pool.project))
            else:
                record = self._pool_record(api, pool.key) or {}
                if record.get('vn'):
                    raise exception.Conflict(
                        reason='pool %s is in use by Docker network %s' % (
                            pool.cidr, record.get('network_id')))
            api.kv_store(POOL_KEY % pool.key, json.dumps(
                {'range': pool.range, 'vn': None}))
        LOG.info('Pool %s of project %s taken', pool.cidr,
                 ':'.join(pool.project))
        return pool

    def _project_subnets(self, api, project):
        """Subnets of the project's networks, and pools taken but not yet
        made networks: what a default pool must not overlap."""
        project_uuid = self._uuid(api, 'project', project, 'tenant',
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
            if isinstance(pair, dict) and pair.get('key', '').startswith(
                    prefix):
                taken.append(ipaddress.ip_network(pair['key'][len(prefix):]))
        return taken

    def _existing_pool(self, api, pool):
        ref = pool.network
        try:
            if ref.count(':') == 2:
                ref = api.fq_name_to_id('virtual-network', ref.split(':'))
            vn = api.virtual_network_read(id=ref)
        except vnc_exc.NoIdError:
            raise exception.InvalidOption(
                key='opencontrail.network', value=pool.network,
                reason='no such virtual-network in Contrail')
        version = 6 if pool.v6 else 4
        for vn_ref in vn.get_network_ipam_refs() or []:
            for sub in vn_ref['attr'].get_ipam_subnets() or []:
                cidr = '%s/%s' % (sub.subnet.ip_prefix,
                                  sub.subnet.ip_prefix_len)
                net = ipaddress.ip_network(cidr)
                if net.version == version and pool.cidr in (None, cidr):
                    pool.cidr, pool.gateway = cidr, sub.default_gateway
                    pool.network, pool.project = vn.uuid, vn.get_fq_name()[:2]
                    self._vn_names[vn.uuid] = vn.get_fq_name()
                    return pool
        raise exception.InvalidOption(
            key='opencontrail.network', value=pool.network,
            reason='it has no IPv%d subnet%s' % (
                version, ' %s' % pool.cidr if pool.cidr else ''))

    def release_pool(self, pool):
        if pool.network:
            return
        # Docker releases a pool once it is done with it: network rm, or a
        # create that failed.
        with self._api() as api:
            api.kv_delete(POOL_KEY % pool.key)
        self._pools.pop(pool.key, None)

    def _pool_vn(self, api, pool):
        if pool.network:
            return pool.network
        return (self._pool_record(api, pool.key) or {}).get('vn')

    def request_address(self, pool, address, gateway=False):
        if gateway:
            return address or pool.gateway or str(next(
                ipaddress.ip_network(pool.cidr).hosts()))
        made = []
        try:
            with self._api(budget=2 / 3) as api:
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
        except Exception:
            cleanup.undo(self.client, made)
            raise
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
        vn_fq = self._vn_fq(api, vn_uuid)
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
            made.append(('instance_ip', iip.uuid))
            return iip
        raise exception.PoolExhausted(pool='pool %s%s' % (
            pool.cidr, ' (range %s)' % pool.range if pool.range else ''))

    def _find_iip(self, api, vn_uuid, address):
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
        with self._api() as api:
            vn_uuid = self._pool_vn(api, pool)
            if vn_uuid is None:
                return
            iip = self._iips.get((vn_uuid, address))
            if iip is None:
                try:
                    iip = self._find_iip(api, vn_uuid, address)
                except exception.InvalidRequest:
                    return   # The gateway or an aux address: no object.
            if cleanup.ignore_missing(api.instance_ip_delete, iip):
                LOG.info('Deleted instance-ip %s (%s)', iip, address)
        with self._lock:
            self._iips.pop((vn_uuid, address), None)
