"""Endpoints as virtual-machine-interfaces, containers as virtual-machines.

An endpoint is a virtual-machine-interface with one instance-ip per
address; Join binds it to the virtual-machine of the container's sandbox
and, with the vrouter port driver, links that VM to this host's
virtual-router (what the vrouter agent subscribes to).
"""

import threading

from oslo_log import log as logging
from vnc_api import exceptions as vnc_exc

from opencontrail_net.backends.contrail import cleanup
from opencontrail_net.backends.contrail import context
from opencontrail_net.backends.contrail import objects
from opencontrail_net.backends.contrail import undo
from opencontrail_net import exception
from opencontrail_net import ids
from opencontrail_net import model

LOG = logging.getLogger(__name__)


class VRouter:
    """This host's virtual-router, when the port driver needs the link.

    Its uuid is owned here: looked up until found (one request), then kept
    for the process (a virtual-router is not re-provisioned under a
    running agent).
    """

    def __init__(self, ctx, enabled):
        self.ctx = ctx
        self.enabled = enabled
        self._uuid = None
        self._said = False

    def uuid(self, api):
        """The virtual-router's uuid; None when not needed or missing."""
        if not self.enabled:
            return None
        if self._uuid is None:
            fq_name = cleanup.vrouter_fq_name(self.ctx.host)
            try:
                self._uuid = api.fq_name_to_id('virtual-router', fq_name)
            except vnc_exc.NoIdError:
                # Said once; looked for again at each Join until found.
                log = LOG.debug if self._said else LOG.error
                self._said = True
                log('No virtual-router %s in Contrail: the vrouter agent of '
                    'this host gets no container port until [DEFAULT] host '
                    '(%s) is exactly the name this host\'s virtual-router '
                    'was provisioned with. Contrail names a virtual-router '
                    'after its host as the agent registers it, usually the '
                    'short name (hostname -s), not the FQDN.',
                    ':'.join(fq_name), self.ctx.host)
                return None
            LOG.info('This host\'s virtual-router is %s (%s)', self._uuid,
                     ':'.join(fq_name))
        return self._uuid


class Endpoints:
    """Create, bind, unbind and delete endpoints.

    ``endpoints`` (endpoint ID → record) is owned here: set when this
    process makes, reads or binds an endpoint, dropped once it is deleted;
    a record is replaced, never changed in place by others.
    """

    def __init__(self, ctx, pools, records, vrouter, port_pool):
        self.ctx = ctx
        self.pools = pools
        self.records = records
        self.vrouter = vrouter
        self.port_pool = port_pool
        self._endpoints = {}
        self._lock = threading.Lock()

    def cached(self, endpoint_id):
        """The record of an endpoint this process holds, or None."""
        return self._endpoints.get(endpoint_id)

    def vmi_uuid(self, endpoint_id):
        """The endpoint's interface: a pooled one it took, or the one
        named after it."""
        taken = self.port_pool.taken(endpoint_id)
        return taken['vmi'] if taken else ids.endpoint_uuid(endpoint_id)

    def create(self, network, endpoint):
        self.port_pool.want(network)
        taken = self.port_pool.take(network, endpoint)
        while taken is not None:
            try:
                return self._create_pooled(network, endpoint, taken)
            except exception.NotFound:
                # Its interface was deleted under it: the next one.
                self.port_pool.discard(endpoint.id)
                taken = self.port_pool.take(network, endpoint)
            except Exception:
                self.port_pool.give_back(endpoint.id)
                raise
        endpoint.uuid = ids.endpoint_uuid(endpoint.id)
        endpoint.mac = endpoint.mac or ids.mac_from_uuid(endpoint.uuid)
        endpoint.host = endpoint.host or self.ctx.host
        with undo.Made(self.ctx.client) as made:
            with self.ctx.api(budget=2 / 3) as api:
                if network.own_ipam:
                    endpoint.instance_ips = [
                        self.pools.find_iip(api, network.uuid, a.split('/')[0])
                        for a in (endpoint.ipv4, endpoint.ipv6) if a]
                # Groups of its own (--driver-opt): looked up before
                # anything is made.
                endpoint.security_group_refs = [
                    self.ctx.ref(api, network.project, 'security-group',
                                 'opencontrail.security_groups', name)
                    for name in endpoint.security_groups or ()]
                vmi = objects.vmi_obj(network, endpoint)
                try:
                    api.virtual_machine_interface_create(vmi)
                    made.object('virtual-machine-interface', vmi.uuid)
                    self.records.note(endpoint.id, False, False)
                except vnc_exc.RefsExistError:
                    endpoint = self._same_endpoint(api, network, endpoint)
                if network.own_ipam:
                    self._adopt(api, endpoint, made)
                for iip in objects.iip_objs(network, endpoint, vmi):
                    if not self._create_iip(api, iip, made):
                        cleanup.reclaim(api, network, endpoint,
                                        iip.get_instance_ip_address())
                        self._create_iip(api, iip, made, last_try=True)
        with self._lock:
            self._endpoints[endpoint.id] = endpoint
        LOG.info('Created virtual-machine-interface %s (mac %s) for endpoint '
                 '%s', endpoint.uuid, endpoint.mac, endpoint.id)
        return endpoint, bool(made)

    def _create_pooled(self, network, endpoint, taken):
        """An endpoint on a pooled interface: only the instance-ips of
        its addresses are made (one request each)."""
        endpoint.uuid, endpoint.mac = taken['vmi'], taken['mac']
        endpoint.host = endpoint.host or self.ctx.host
        vmi = objects.vnc_api.VirtualMachineInterface(
            taken['fq_name'][-1], objects.project(taken['fq_name'][:2]))
        vmi.uuid = taken['vmi']
        with undo.Made(self.ctx.client) as made:
            with self.ctx.api(budget=2 / 3) as api:
                for iip in objects.iip_objs(network, endpoint, vmi):
                    if not self._create_iip(api, iip, made):
                        cleanup.reclaim(api, network, endpoint,
                                        iip.get_instance_ip_address())
                        self._create_iip(api, iip, made, last_try=True)
        self.records.note(endpoint.id, False, False)
        with self._lock:
            self._endpoints[endpoint.id] = endpoint
        LOG.info('Endpoint %s has pooled virtual-machine-interface %s (mac '
                 '%s)', endpoint.id, endpoint.uuid, endpoint.mac)
        return endpoint, bool(made)

    def _adopt(self, api, endpoint, made):
        """The instance-ips RequestAddress made go to the interface."""
        for iip in endpoint.instance_ips:
            api.ref_update('instance-ip', iip, 'virtual-machine-interface',
                           endpoint.uuid, None, 'ADD')
            made.adopted(iip, endpoint.uuid)
            LOG.info('Instance-ip %s now belongs to endpoint %s', iip,
                     endpoint.id)

    def _same_endpoint(self, api, network, endpoint):
        try:
            old = self.read(api, network, endpoint.id)
        except exception.EndpointNotFound:
            old = None
        if old is None or (old.ipv4, old.ipv6, old.mac,
                           old.security_groups) != (
                endpoint.ipv4, endpoint.ipv6, endpoint.mac,
                endpoint.security_groups):
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
        made.object('instance-ip', iip.uuid)
        LOG.info('Created instance-ip %s (%s)', iip.uuid,
                 iip.get_instance_ip_address())
        return True

    def read(self, api, network, endpoint_id):
        taken = self.port_pool.taken(endpoint_id)
        if taken is not None and not taken.get('noted'):
            # Its interface does not name it yet: this host's record does.
            return self._pooled_endpoint(network.id, endpoint_id, taken)
        try:
            vmi = api.virtual_machine_interface_read(
                id=self.vmi_uuid(endpoint_id))
        except vnc_exc.NoIdError:
            raise exception.EndpointNotFound(id=endpoint_id)
        ep = objects.endpoint_from_vmi(vmi, network.id)
        if ep is None or not objects.is_ours(vmi):
            raise exception.EndpointNotFound(id=endpoint_id)
        self.records.of_vmi(vmi)
        return ep

    def pooled(self, vmi_uuid):
        """The joined endpoint this host's record says has the pooled
        interface ``vmi_uuid``, or None."""
        taken = self.port_pool.taken_interface(vmi_uuid)
        if taken is None or not taken.get('sandbox'):
            return None
        return self._pooled_endpoint(taken['network'], taken['endpoint'],
                                     taken)

    @staticmethod
    def _pooled_endpoint(network_id, endpoint_id, taken):
        view = taken.get('view') or {}
        joined = taken.get('sandbox')
        return model.Endpoint(
            id=endpoint_id, network_id=network_id, mac=taken['mac'],
            ipv4=view.get('ipv4'), ipv6=view.get('ipv6'),
            ports=bool(view.get('ports')), host=taken['host'],
            uuid=taken['vmi'], sandbox=joined,
            vm_uuid=taken['vm'] if joined else None,
            vm_name=taken['vm'] if joined else None)

    def get(self, network, endpoint_id):
        ep = self._endpoints.get(endpoint_id)
        if ep is not None and ep.network_id == network.id:
            return ep
        with self.ctx.api() as api:
            ep = self.read(api, network, endpoint_id)
        with self._lock:
            self._endpoints[endpoint_id] = ep
        return ep

    def attach(self, network, endpoint, sandbox):
        taken = self.port_pool.taken(endpoint.id)
        if taken is not None:
            # Its VM, and the VM's link to this host's virtual-router,
            # were made with it: nothing to make, nothing to undo.
            endpoint.vm_uuid = endpoint.vm_name = taken['vm']
            endpoint.sandbox = sandbox
            with self._lock:
                self._endpoints[endpoint.id] = endpoint
            self.port_pool.joined(endpoint, sandbox)
            return endpoint, False
        vm = objects.vm_obj(self.ctx.host, sandbox)
        if endpoint.vm_uuid == vm.uuid:
            return endpoint, False
        with undo.Made(self.ctx.client) as made:
            with self.ctx.api(budget=2 / 3) as api:
                # Made already: the container's other endpoint made it.
                new_vm = context.create_ours(api.virtual_machine_create,
                                             vm, 'virtual-machine', made)
                api.ref_update('virtual-machine-interface', endpoint.uuid,
                               'virtual-machine', vm.uuid, None, 'ADD')
                vrouter = self.vrouter.uuid(api)
                if vrouter:
                    made.ref('virtual-machine-interface', endpoint.uuid,
                             'virtual-machine', vm.uuid)
                    # What the agent subscribes to: the server links a VM
                    # to a virtual-router by itself only for SR-IOV ports.
                    api.ref_update('virtual-router', vrouter,
                                   'virtual-machine', vm.uuid, None, 'ADD')
                    if new_vm:
                        made.ref('virtual-router', vrouter, 'virtual-machine',
                                 vm.uuid)
        endpoint.vm_uuid, endpoint.vm_name = vm.uuid, vm.uuid
        endpoint.sandbox = sandbox
        with self._lock:
            self._endpoints[endpoint.id] = endpoint
        return endpoint, True

    def detach(self, network, endpoint):
        vm_uuid = endpoint.vm_uuid
        if not vm_uuid:
            return
        with self.ctx.api(budget=1 / 3) as api:
            try:
                api.ref_update('virtual-machine-interface', endpoint.uuid,
                               'virtual-machine', vm_uuid, None, 'DELETE')
            except vnc_exc.NoIdError:
                pass
            cleanup.delete_vm(api, vm_uuid)
        endpoint.vm_uuid = endpoint.vm_name = endpoint.sandbox = None

    def parts(self, network, endpoint_id):
        """What deleting an endpoint takes, from what this process holds,
        without a request: ``{'vm', 'iips', 'floating_ip', 'group'}``, or
        None when it holds no record of it (its interface is read at the
        delete). The record is dropped: the endpoint is on its way out.
        """
        with self._lock:
            ep = self._endpoints.pop(endpoint_id, None)
        if ep is None or ep.host not in (None, self.ctx.host):
            return None
        families = () if ep.instance_ips else (
            {'v%d' % s.version for s in network.subnets} or ('v4', 'v6'))
        taken = self.port_pool.taken(endpoint_id)
        return self._with_ports(
            endpoint_id, taken['vm'] if taken else ep.vm_uuid,
            cleanup.endpoint_iips(endpoint_id, families, ep.instance_ips),
            vmi=ep.uuid)

    def delete(self, network, endpoint_id):
        """Delete an endpoint now (see :meth:`remove`)."""
        self.remove({'endpoint': endpoint_id,
                     'parts': self.parts(network, endpoint_id)})

    def remove(self, item):
        """Delete the Contrail objects of a queued delete (``item``, see
        delete_queue.entry). Parts not known yet are read off the
        interface first and kept in ``item``, so that a retry after a
        failure part-way still finds the VM. An interface bound on
        another host is that host's: left alone.
        """
        endpoint_id = item['endpoint']
        with self.ctx.api() as api:
            if item.get('parts') is None:
                parts = self._endpoint_parts(api, endpoint_id)
                if parts is None:
                    self.records.drop(endpoint_id)
                    return
                item['parts'] = parts
            parts = item['parts']
            cleanup.delete_endpoint_objects(
                api, endpoint_id, parts['vm'], parts['iips'],
                floating_ip=parts['floating_ip'],
                ports_group=parts['group'], vmi_uuid=parts.get('vmi'))
        self.records.drop(endpoint_id)
        self.port_pool.released(endpoint_id)
        LOG.info('Deleted virtual-machine-interface %s of endpoint %s',
                 parts.get('vmi') or ids.endpoint_uuid(endpoint_id),
                 endpoint_id)

    def _endpoint_parts(self, api, endpoint_id):
        """The parts (see :meth:`parts`) of an endpoint, from its
        interface; None if it is bound on another host.

        For an endpoint this process did not make or join; what of its
        ports stands is noted from it too. Gone already: its derived
        instance-ips may still stand, of either family.
        """
        taken = self.port_pool.taken(endpoint_id)
        try:
            vmi = api.virtual_machine_interface_read(
                id=self.vmi_uuid(endpoint_id),
                fields=['virtual_machine_refs', 'instance_ip_back_refs',
                        'annotations', 'security_group_refs',
                        'floating_ip_back_refs',
                        'virtual_machine_interface_bindings'])
        except vnc_exc.NoIdError:
            return self._with_ports(endpoint_id,
                                    taken['vm'] if taken else None,
                                    cleanup.endpoint_iips(endpoint_id),
                                    vmi=self.vmi_uuid(endpoint_id))
        bound = objects.kv(vmi.get_virtual_machine_interface_bindings()
                           ).get('host_id')
        if bound and bound != self.ctx.host:
            LOG.warning('Endpoint %s is bound on host %s, not this one '
                        '(%s): its objects are that host\'s to delete',
                        endpoint_id, bound, self.ctx.host)
            return None
        self.records.of_vmi(vmi, exact=True)
        held = {r['uuid'] for r in vmi.get_instance_ip_back_refs() or []}
        mine = cleanup.endpoint_iips(
            endpoint_id, adopted=objects.annotation(vmi).get('iips', ()))
        vm = (vmi.get_virtual_machine_refs() or [{}])[0].get('uuid')
        return self._with_ports(endpoint_id, vm,
                                [u for u in mine if u in held], vmi=vmi.uuid)

    def _with_ports(self, endpoint_id, vm_uuid, iips, vmi=None):
        # Unknown (never seen here): its derived uuids are tried.
        ports = self.records.get(endpoint_id) or {
            'group': True, 'floating_ip': True}
        return {'vm': vm_uuid, 'iips': iips, 'vmi': vmi,
                'floating_ip': ports['floating_ip'], 'group': ports['group']}
