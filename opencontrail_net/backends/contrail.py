"""The ``contrail`` backend: Docker objects as Contrail config objects.

A Docker network is a virtual-network, an endpoint a virtual-machine-
interface with one instance-ip per address, a container a virtual-machine.
Every uuid is derived from the full Docker ID (:mod:`opencontrail_net.ids`),
so any host and any restart finds an object with one GET and the driver
keeps no state of its own. Records are cached in memory only to spare
requests: what is cached never changes once made.
"""

import contextlib
import json
import threading
import time

from oslo_config import cfg
from oslo_log import log as logging
import requests
from vnc_api import exceptions as vnc_exc
from vnc_api import vnc_api

from opencontrail_net.backends import base
from opencontrail_net import exception
from opencontrail_net import ids
from opencontrail_net import model

LOG = logging.getLogger(__name__)

DEFAULT_IPAM = ['default-domain', 'default-project', 'default-network-ipam']
# Marks the objects this driver made, and holds what Contrail has no field
# for (MTU, Docker's own view of the network).
ANNOTATION = 'opencontrail-net'
KV_PREFIX = 'opencontrail-net:network:'

CONFIG_OPTS = [
    cfg.ListOpt('api_server', default=['127.0.0.1'],
                help='Contrail config API servers; several give failover.'),
    cfg.PortOpt('api_port', default=8082, help='Config API port.'),
    cfg.BoolOpt('use_ssl', default=False, help='Talk HTTPS to the API.'),
    cfg.StrOpt('cafile', help='CA bundle to verify the API server with.'),
    cfg.BoolOpt('insecure', default=False,
                help='Do not verify the API server\'s certificate.'),
    cfg.StrOpt('auth_type', default='noauth',
               choices=[('noauth', 'the API server runs without auth'),
                        ('keystone', 'authenticate with Keystone')],
               help='How to authenticate to the config API.'),
    cfg.HostAddressOpt('auth_host', default='127.0.0.1',
                       help='Keystone host.'),
    cfg.PortOpt('auth_port', default=5000, help='Keystone port.'),
    cfg.StrOpt('auth_protocol', default='http', choices=['http', 'https'],
               help='Keystone protocol.'),
    cfg.StrOpt('auth_url', default='/v3/auth/tokens',
               help='Keystone token URL path.'),
    cfg.StrOpt('admin_user', default='admin', help='Keystone user.'),
    cfg.StrOpt('admin_password', secret=True, default='',
               help='Keystone password.'),
    cfg.StrOpt('admin_tenant', default='admin', help='Keystone project.'),
    cfg.StrOpt('domain', default='default-domain',
               help='Contrail domain of projects given without one.'),
    cfg.StrOpt('project', default='admin',
               help='Project of new networks, PROJECT or DOMAIN:PROJECT; '
                    '"-o tenant=" overrides it per network.'),
    cfg.StrOpt('network_ipam',
               default=':'.join(DEFAULT_IPAM),
               help='network-ipam of new networks (DOMAIN:PROJECT:NAME); '
                    '"-o opencontrail.ipam=" overrides it per network.'),
    cfg.FloatOpt('timeout', default=10.0, min=1.0,
                 help='Longest time one Docker call may wait for the API '
                      'before it fails with a clear error.'),
]


def _unavailable(why):
    return exception.BackendUnavailable(reason='Contrail API: %s' % why)


class _BoundedVncApi(vnc_api.VncApi):
    """VncApi without its hidden retry loops, bounded by a deadline.

    The stock client sleeps and retries for about 30 s on a dead server:
    Docker must hear of it long before that.
    """

    deadline = None
    request_timeout = 5.0

    def _request(self, op, url, data=None, retry_on_error=True,
                 retry_after_authn=False, retry_count=0):
        session = self._api_server_session
        if self.deadline is not None:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0.05:
                raise _unavailable('no answer in time')
            session.timeout = min(self.request_timeout, remaining)
            session.connection_timeout = min(2.0, remaining)
        try:
            return super()._request(op, url, data=data,
                                    retry_on_error=False,
                                    retry_after_authn=retry_after_authn,
                                    retry_count=0)
        except vnc_exc.ServiceUnavailableError as exc:
            raise _unavailable('service unavailable (%s)' % exc)
        except requests.exceptions.RequestException as exc:
            raise _unavailable('%s at %s' % (
                type(exc).__name__, self._web_host))


class ClientPool:
    """vnc_api clients are not thread-safe: each call borrows its own."""

    def __init__(self, factory):
        self._factory = factory
        self._free = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def client(self, deadline):
        with self._lock:
            client = self._free.pop() if self._free else None
        if client is None:
            client = self._factory(deadline)
        client.deadline = deadline
        try:
            yield client
        except exception.BackendUnavailable:
            # Its session may hold a dead connection: let it go.
            raise
        except BaseException:
            self._give_back(client)
            raise
        self._give_back(client)

    def _give_back(self, client):
        client.deadline = None
        with self._lock:
            self._free.append(client)


def _kv(pairs):
    return {p.key: p.value for p in (pairs.key_value_pair or [])} if pairs \
        else {}


def _fq(value, domain, size):
    parts = value.split(':') if isinstance(value, str) else list(value)
    if len(parts) == size - 1:
        parts = [domain] + parts
    return parts


class ContrailBackend(base.Backend):
    """Networks and endpoints in a Contrail cluster, through vnc_api."""

    CONFIG_GROUP = 'contrail'
    CONFIG_OPTS = CONFIG_OPTS

    def __init__(self, conf):
        super().__init__(conf)
        self.opts = conf.contrail
        self.host = conf.host
        self.pool = ClientPool(self._connect)
        self._projects = {}
        self._endpoints = {}
        self._lock = threading.Lock()

    def start(self):
        self.delete_unused_vms()

    def delete_unused_vms(self):
        """Delete this host's container VMs that no interface uses.

        Docker ignores a failed DeleteEndpoint: one that failed after the
        interface was gone leaves its VM behind, found by no Docker ID.
        """
        fields = ['annotations', 'virtual_machine_interface_back_refs']
        try:
            # Briefly: a hung API must not keep Docker from the socket long.
            with self._api(budget=0.2) as api:
                vms = api.virtual_machines_list(detail=True, fields=fields)
                for vm in vms:
                    view = _kv(vm.get_annotations()).get(ANNOTATION)
                    if (not view or json.loads(view).get('host') != self.host
                            or vm.get_virtual_machine_interface_back_refs()):
                        continue
                    LOG.warning('Deleting virtual-machine %s: no interface '
                                'uses it', vm.uuid)
                    self._delete_vm(api, vm.uuid)
        except exception.OpenContrailNetError as exc:
            LOG.warning('Could not look for unused VMs at start: %s', exc)

    # The client -------------------------------------------------------

    def _connect(self, deadline):
        opts = self.opts
        request_timeout = max(1.0, opts.timeout / 3)
        remaining = max(1, int(deadline - time.monotonic()))
        try:
            client = _BoundedVncApi(
                username=opts.admin_user, password=opts.admin_password,
                tenant_name=opts.admin_tenant,
                api_server_host=list(opts.api_server),
                api_server_port=str(opts.api_port),
                api_server_use_ssl=opts.use_ssl, apicafile=opts.cafile,
                apiinsecure=opts.insecure, auth_type=opts.auth_type,
                auth_host=opts.auth_host, auth_port=str(opts.auth_port),
                auth_protocol=opts.auth_protocol, auth_url=opts.auth_url,
                domain_name=opts.domain,
                timeout=min(remaining, int(request_timeout)),
                connection_timeout=2)
        except exception.OpenContrailNetError:
            raise
        except (requests.exceptions.RequestException,
                vnc_exc.VncError) as exc:
            raise _unavailable('cannot connect to %s:%s: %s' % (
                ','.join(opts.api_server), opts.api_port,
                type(exc).__name__))
        if getattr(client, '_srv_root_url', None) is None:
            raise _unavailable('no homepage from %s:%s' % (
                ','.join(opts.api_server), opts.api_port))
        client.request_timeout = request_timeout
        LOG.info('Connected to the Contrail API at %s:%s',
                 ','.join(opts.api_server), opts.api_port)
        return client

    @contextlib.contextmanager
    def _api(self, budget=1.0):
        """A client for one Docker call, and Contrail errors mapped.

        ``budget`` is the share of the timeout this step may use; undo
        steps get what is left after the main path.
        """
        deadline = time.monotonic() + self.opts.timeout * budget
        with self.pool.client(deadline) as client:
            try:
                yield client
            except vnc_exc.PermissionDenied as exc:
                raise exception.BackendError(
                    reason='permission denied: %s' % exc)
            except vnc_exc.AuthFailed as exc:
                raise exception.BackendUnavailable(
                    reason='authentication failed: %s' % exc)
            except vnc_exc.TimeOutError as exc:
                raise _unavailable(str(exc))
            except vnc_exc.NoIdError as exc:
                raise exception.NotFound(kind='Contrail object', id=exc)
            except vnc_exc.RefsExistError as exc:
                raise exception.Conflict(reason='Contrail: %s' % exc)
            except vnc_exc.BadRequest as exc:
                raise exception.InvalidRequest(
                    reason='Contrail refused it: %s' % exc.content)
            except vnc_exc.HttpError as exc:
                raise exception.BackendError(
                    reason='Contrail API answered %s: %s' % (
                        exc.status_code, exc.content))

    # Networks ---------------------------------------------------------

    def _project_fq(self, network):
        if network.project:
            return list(network.project)
        return _fq(self.opts.project, self.opts.domain, 2)

    def _project_uuid(self, api, fq_name):
        key = ':'.join(fq_name)
        uuid = self._projects.get(key)
        if uuid is None:
            try:
                uuid = api.fq_name_to_id('project', fq_name)
            except vnc_exc.NoIdError:
                raise exception.InvalidOption(
                    key='tenant', value=key,
                    reason='no such project in Contrail')
            self._projects[key] = uuid
        return uuid

    @staticmethod
    def _project_obj(fq_name):
        return vnc_api.Project(fq_name[1], vnc_api.Domain(fq_name[0]))

    def _subnets(self, network):
        result = []
        for subnet in network.subnets:
            prefix, length = subnet.cidr.split('/')
            # Docker's own IPAM hands out addresses from the bottom and
            # keeps its gateway: Contrail must reserve that gateway and
            # nothing else, or an address Docker gives collides with
            # Contrail's DNS service address. DNS on Docker's gateway with
            # DHCP off is the one way the API server reserves no other.
            kwargs = {}
            if subnet.gateway:
                kwargs = dict(default_gateway=subnet.gateway,
                              dns_server_address=subnet.gateway,
                              enable_dhcp=False)
            result.append(vnc_api.IpamSubnetType(
                subnet=vnc_api.SubnetType(prefix, int(length)),
                subnet_name=subnet.cidr, **kwargs))
        return result

    def _network_obj(self, network, project_fq):
        vn = vnc_api.VirtualNetwork(network.name or network.id,
                                    self._project_obj(project_fq))
        vn.uuid = ids.network_uuid(network.id)
        vn.set_display_name(network.name or network.id)
        ipam_fq = _fq(network.ipam or self.opts.network_ipam,
                      self.opts.domain, 3)
        ipam = vnc_api.NetworkIpam(ipam_fq[2], self._project_obj(ipam_fq[:2]))
        vn.add_network_ipam(ipam, vnc_api.VnSubnetsType(
            self._subnets(network)))
        if network.route_targets:
            vn.set_route_target_list(vnc_api.RouteTargetList(
                network.route_targets))
        if network.import_targets:
            vn.set_import_route_target_list(vnc_api.RouteTargetList(
                network.import_targets))
        if network.export_targets:
            vn.set_export_route_target_list(vnc_api.RouteTargetList(
                network.export_targets))
        vn.set_annotations(vnc_api.KeyValuePairs([vnc_api.KeyValuePair(
            ANNOTATION, json.dumps(self._docker_view(network)))]))
        vn.set_id_perms(vnc_api.IdPermsType(
            enable=True, description='Docker network %s' % network.id))
        return vn

    @staticmethod
    def _docker_view(network):
        return {'id': network.id, 'mtu': network.mtu,
                'enable_ipv6': network.enable_ipv6,
                'internal': network.internal,
                'subnets': [{'cidr': s.cidr, 'gateway': s.gateway}
                            for s in network.subnets]}

    def _from_vn(self, vn, network_id, existing=None):
        """A Network record from a virtual-network read back."""
        fq = vn.get_fq_name()
        view = {}
        annotations = _kv(vn.get_annotations())
        if ANNOTATION in annotations and not existing:
            view = json.loads(annotations[ANNOTATION])
        subnets = [model.Subnet(**s) for s in view.get('subnets', [])]
        if not subnets:
            for ref in vn.get_network_ipam_refs() or []:
                for s in ref['attr'].get_ipam_subnets() or []:
                    subnets.append(model.Subnet(
                        cidr='%s/%s' % (s.subnet.ip_prefix,
                                        s.subnet.ip_prefix_len),
                        gateway=s.default_gateway))

        def targets(lst):
            return list(lst.route_target) if lst and lst.route_target else []
        return model.Network(
            id=network_id, subnets=subnets, name=fq[2], project=fq[:2],
            route_targets=targets(vn.get_route_target_list()),
            import_targets=targets(vn.get_import_route_target_list()),
            export_targets=targets(vn.get_export_route_target_list()),
            existing=existing, mtu=view.get('mtu'),
            enable_ipv6=view.get('enable_ipv6', False),
            internal=view.get('internal', False), uuid=vn.uuid,
            project_uuid=vn.parent_uuid)

    def create_network(self, network):
        if network.existing:
            return self._attach_existing(network)
        project_fq = self._project_fq(network)
        vn = self._network_obj(network, project_fq)
        with self._api() as api:
            network.project_uuid = self._project_uuid(api, project_fq)
            try:
                api.virtual_network_create(vn)
            except vnc_exc.RefsExistError as exc:
                return self._existing_same(api, network, vn, exc), False
            except vnc_exc.NoIdError as exc:
                raise exception.InvalidRequest(
                    reason='Contrail has no such project or ipam: %s' % exc)
        network.uuid, network.name = vn.uuid, vn.name
        network.project = project_fq
        LOG.info('Created virtual-network %s (%s) for Docker network %s',
                 ':'.join(vn.get_fq_name()), vn.uuid, network.id)
        return network, True

    def _existing_same(self, api, network, vn, exc):
        """A create that hit an existing object: Docker re-sent it?"""
        try:
            old = api.virtual_network_read(id=vn.uuid)
        except vnc_exc.NoIdError:
            raise exception.Conflict(
                reason='a Contrail network named %s already exists: %s'
                % (':'.join(vn.get_fq_name()), exc))
        record = self._from_vn(old, network.id)
        if self._docker_view(record) != self._docker_view(network):
            raise exception.Conflict(
                reason='network %s exists in Contrail with other settings'
                % network.id)
        return record

    def _attach_existing(self, network):
        with self._api() as api:
            ref = network.existing
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
            record = self._from_vn(vn, network.id, existing=vn.uuid)
            theirs = {s.cidr for s in record.subnets}
            missing = [s.cidr for s in network.subnets
                       if s.cidr not in theirs]
            if missing:
                raise exception.InvalidOption(
                    key='opencontrail.network', value=ref,
                    reason='its subnets %s do not hold --subnet %s' % (
                        sorted(theirs), ', '.join(missing)))
            self._check_reserved(vn, network, ref)
            api.kv_store(KV_PREFIX + network.id, vn.uuid)
        record.mtu = network.mtu
        LOG.info('Docker network %s uses existing virtual-network %s',
                 network.id, vn.uuid)
        return record, True

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
                return self._from_vn(vn, network_id)
            except vnc_exc.NoIdError:
                pass
            try:
                vn_uuid = api.kv_retrieve(KV_PREFIX + network_id)
                vn = api.virtual_network_read(id=vn_uuid)
            except vnc_exc.NoIdError:
                raise exception.NetworkNotFound(id=network_id)
            return self._from_vn(vn, network_id, existing=vn.uuid)

    def delete_network(self, network_id):
        vn_uuid = ids.network_uuid(network_id)
        with self._api() as api:
            try:
                api.virtual_network_delete(id=vn_uuid)
            except vnc_exc.NoIdError:
                # Never made by us: an attached network is only forgotten.
                api.kv_delete(KV_PREFIX + network_id)
                return
            except vnc_exc.RefsExistError:
                blocked = True
            else:
                blocked = False
            if blocked:
                self._delete_leftovers(api, vn_uuid)
                api.virtual_network_delete(id=vn_uuid)
        LOG.info('Deleted virtual-network %s of Docker network %s', vn_uuid,
                 network_id)

    def set_route_targets(self, network_id, route_targets=None,
                          import_targets=None, export_targets=None):
        network = self.get_network(network_id)
        if network.existing:
            raise exception.Conflict(
                reason='network %s is an existing Contrail network: its '
                'route targets are not ours to change' % network_id)
        vn = self._network_ref(network)
        for setter, value in (
                (vn.set_route_target_list, route_targets),
                (vn.set_import_route_target_list, import_targets),
                (vn.set_export_route_target_list, export_targets)):
            if value is not None:
                setter(vnc_api.RouteTargetList(value))
        with self._api() as api:
            api.virtual_network_update(vn)

    def _delete_leftovers(self, api, vn_uuid):
        """Endpoints whose delete Docker swallowed keep a network alive."""
        vn = api.virtual_network_read(
            id=vn_uuid, fields=['virtual_machine_interface_back_refs',
                                'instance_ip_back_refs'])
        for ref in vn.get_instance_ip_back_refs() or []:
            self._ignore_missing(api.instance_ip_delete, ref['uuid'])
        for ref in vn.get_virtual_machine_interface_back_refs() or []:
            vmi = api.virtual_machine_interface_read(id=ref['uuid'])
            for iip in vmi.get_instance_ip_back_refs() or []:
                self._ignore_missing(api.instance_ip_delete, iip['uuid'])
            self._ignore_missing(api.virtual_machine_interface_delete,
                                 ref['uuid'])
            for vm in vmi.get_virtual_machine_refs() or []:
                self._delete_vm(api, vm['uuid'])
            LOG.warning('Deleted leftover interface %s of network %s',
                        ref['uuid'], vn_uuid)

    @staticmethod
    def _ignore_missing(func, uuid):
        try:
            func(id=uuid)
        except vnc_exc.NoIdError:
            pass

    @staticmethod
    def _delete_vm(api, vm_uuid):
        try:
            api.virtual_machine_delete(id=vm_uuid)
        except vnc_exc.NoIdError:
            pass
        except vnc_exc.RefsExistError:
            pass  # Another endpoint of the same container still uses it.

    # Endpoints --------------------------------------------------------

    @staticmethod
    def _network_ref(network):
        vn = vnc_api.VirtualNetwork(network.name, vnc_api.Project(
            network.project[1], vnc_api.Domain(network.project[0])))
        vn.uuid = network.uuid
        return vn

    def _vmi_obj(self, network, endpoint):
        vmi = vnc_api.VirtualMachineInterface(
            endpoint.id, self._project_obj(network.project))
        vmi.uuid = endpoint.uuid
        vmi.set_display_name(endpoint.id)
        vmi.set_virtual_network(self._network_ref(network))
        vmi.set_virtual_machine_interface_mac_addresses(
            vnc_api.MacAddressesType([endpoint.mac]))
        vmi.set_virtual_machine_interface_bindings(vnc_api.KeyValuePairs(
            [vnc_api.KeyValuePair('host_id', endpoint.host)]))
        vmi.set_annotations(vnc_api.KeyValuePairs([vnc_api.KeyValuePair(
            ANNOTATION, json.dumps({'network_id': network.id,
                                    'ipv4': endpoint.ipv4,
                                    'ipv6': endpoint.ipv6}))]))
        return vmi

    def _iip_objs(self, network, endpoint, vmi):
        for family, cidr in (('v4', endpoint.ipv4), ('v6', endpoint.ipv6)):
            if not cidr:
                continue
            iip = vnc_api.InstanceIp(ids.instance_ip_uuid(endpoint.id,
                                                          family))
            iip.uuid = iip.name
            iip.set_instance_ip_address(cidr.split('/')[0])
            iip.set_instance_ip_family(family)
            iip.set_virtual_network(self._network_ref(network))
            iip.set_virtual_machine_interface(vmi)
            yield iip

    def create_endpoint(self, network, endpoint):
        endpoint.uuid = ids.endpoint_uuid(endpoint.id)
        endpoint.mac = endpoint.mac or ids.mac_from_uuid(endpoint.uuid)
        endpoint.host = endpoint.host or self.host
        vmi = self._vmi_obj(network, endpoint)
        made = []
        try:
            with self._api(budget=2 / 3) as api:
                try:
                    api.virtual_machine_interface_create(vmi)
                    made.append(('virtual_machine_interface', vmi.uuid))
                except vnc_exc.RefsExistError:
                    try:
                        old = self._read_endpoint(api, network, endpoint.id)
                    except exception.EndpointNotFound:
                        old = None
                    if old is None or (old.ipv4, old.ipv6, old.mac) != (
                            endpoint.ipv4, endpoint.ipv6, endpoint.mac):
                        raise exception.Conflict(
                            reason='endpoint %s exists with other settings'
                            % endpoint.id)
                    endpoint = old
                for iip in self._iip_objs(network, endpoint, vmi):
                    if not self._create_iip(api, iip, made):
                        self._reclaim(api, network, endpoint,
                                      iip.get_instance_ip_address())
                        self._create_iip(api, iip, made, last_try=True)
        except Exception:
            self._undo(made)
            raise
        with self._lock:
            self._endpoints[endpoint.id] = endpoint
        LOG.info('Created interface %s (mac %s, %s) for endpoint %s',
                 endpoint.uuid, endpoint.mac,
                 ', '.join(a for a in (endpoint.ipv4, endpoint.ipv6) if a),
                 endpoint.id)
        return endpoint, bool(made)

    @staticmethod
    def _create_iip(api, iip, made, last_try=False):
        """Create ``iip``; False if another object holds its address."""
        try:
            api.instance_ip_create(iip)
            made.append(('instance_ip', iip.uuid))
        except vnc_exc.RefsExistError as exc:
            if iip.uuid in str(exc):
                return True  # Ours, from an earlier attempt of this call.
            if not last_try:
                return False
            raise exception.AddressInUse(
                address=iip.get_instance_ip_address(),
                pool='Contrail network %s' % iip.get_virtual_network_refs()[
                    0]['uuid'])
        return True

    def _reclaim(self, api, network, endpoint, address):
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
            if iip.get_instance_ip_address() != address:
                continue
            for ref in iip.get_virtual_machine_interface_refs() or []:
                stale = ref['to'][-1]
                if stale == endpoint.id:
                    continue
                try:
                    old = self._read_endpoint(api, network, stale)
                except exception.EndpointNotFound:
                    continue
                LOG.warning('Address %s of endpoint %s is held by stale '
                            'endpoint %s of the same network: deleting it',
                            address, endpoint.id, old.id)
                self._delete_endpoint_objects(
                    api, [ids.instance_ip_uuid(old.id, f)
                          for f in ('v4', 'v6')], old.uuid, old.vm_uuid)

    def _undo(self, made):
        if not made:
            return
        try:
            with self._api(budget=1 / 3) as api:
                for kind, uuid in reversed(made):
                    self._ignore_missing(getattr(api, kind + '_delete'), uuid)
                    LOG.info('Undid %s %s', kind, uuid)
        except exception.OpenContrailNetError as exc:
            LOG.error('Could not undo %s: %s', made, exc)

    def _read_endpoint(self, api, network, endpoint_id):
        try:
            vmi = api.virtual_machine_interface_read(
                id=ids.endpoint_uuid(endpoint_id))
        except vnc_exc.NoIdError:
            raise exception.EndpointNotFound(id=endpoint_id)
        view = json.loads(_kv(vmi.get_annotations()).get(ANNOTATION, '{}'))
        if view.get('network_id') != network.id:
            raise exception.EndpointNotFound(id=endpoint_id)
        macs = vmi.get_virtual_machine_interface_mac_addresses()
        vms = vmi.get_virtual_machine_refs() or []
        ep = model.Endpoint(
            id=endpoint_id, network_id=network.id,
            mac=macs.mac_address[0] if macs and macs.mac_address else None,
            ipv4=view.get('ipv4'), ipv6=view.get('ipv6'),
            host=_kv(vmi.get_virtual_machine_interface_bindings()).get(
                'host_id'),
            uuid=vmi.uuid, vm_uuid=vms[0]['uuid'] if vms else None,
            vm_name=vms[0]['to'][-1] if vms else None)
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
        vm_uuid = ids.vm_uuid(self.host, sandbox)
        if endpoint.vm_uuid == vm_uuid:
            return endpoint, False
        vm = vnc_api.VirtualMachine(vm_uuid)
        vm.uuid = vm_uuid
        vm.set_server_type('container')
        vm.set_display_name(sandbox)
        vm.set_annotations(vnc_api.KeyValuePairs([vnc_api.KeyValuePair(
            ANNOTATION, json.dumps({'host': self.host}))]))
        made = []
        try:
            with self._api(budget=2 / 3) as api:
                try:
                    api.virtual_machine_create(vm)
                    made.append(('virtual_machine', vm_uuid))
                except vnc_exc.RefsExistError:
                    pass  # The container's other endpoint made it.
                api.ref_update('virtual-machine-interface', endpoint.uuid,
                               'virtual-machine', vm_uuid, None, 'ADD')
        except Exception:
            self._undo(made)
            raise
        endpoint.vm_uuid, endpoint.vm_name = vm_uuid, vm_uuid
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
            self._delete_vm(api, vm_uuid)
        endpoint.vm_uuid = endpoint.vm_name = endpoint.sandbox = None

    def delete_endpoint(self, network, endpoint_id):
        # The cached record names the VM; it is dropped only once all is
        # gone, so a retry after a failure part-way still finds the VM.
        ep = self._endpoints.get(endpoint_id)
        vmi_uuid = ids.endpoint_uuid(endpoint_id)
        with self._api() as api:
            if ep is not None:
                families = ['v%d' % s.version for s in network.subnets] or [
                    'v4', 'v6']
                iips = [ids.instance_ip_uuid(endpoint_id, f)
                        for f in sorted(set(families))]
                vm_uuid = ep.vm_uuid
            else:
                # Not made or joined by this process: the interface says
                # which instance-ips and VM it has.
                try:
                    vmi = api.virtual_machine_interface_read(
                        id=vmi_uuid, fields=['virtual_machine_refs',
                                             'instance_ip_back_refs'])
                except vnc_exc.NoIdError:
                    vmi = None
                iips = [r['uuid'] for r in
                        (vmi.get_instance_ip_back_refs() if vmi else None)
                        or []]
                vm_uuid = ((vmi.get_virtual_machine_refs() or [{}])[0].get(
                    'uuid') if vmi else None)
                if vmi is None:
                    # A retry after the interface went: its instance-ips
                    # may still stand.
                    iips = [ids.instance_ip_uuid(endpoint_id, f)
                            for f in ('v4', 'v6')]
            self._delete_endpoint_objects(api, iips, vmi_uuid, vm_uuid)
        with self._lock:
            self._endpoints.pop(endpoint_id, None)
        LOG.info('Deleted interface %s of endpoint %s', vmi_uuid,
                 endpoint_id)

    def _delete_endpoint_objects(self, api, iips, vmi_uuid, vm_uuid):
        """Instance-ips, then the interface, then its VM if unused."""
        for iip in iips:
            self._ignore_missing(api.instance_ip_delete, iip)
        self._ignore_missing(api.virtual_machine_interface_delete, vmi_uuid)
        if vm_uuid:
            self._delete_vm(api, vm_uuid)

    def list_endpoints(self, host):
        with self._api() as api:
            found = api.virtual_machine_interfaces_list(
                detail=True, fields=['annotations',
                                     'virtual_machine_interface_bindings',
                                     'virtual_machine_refs'])
            result = []
            networks = {}
            for vmi in found:
                view = json.loads(_kv(vmi.get_annotations()).get(
                    ANNOTATION, '{}'))
                bound = _kv(vmi.get_virtual_machine_interface_bindings())
                if not view or bound.get('host_id') != host:
                    continue
                if not vmi.get_virtual_machine_refs():
                    continue
                nid = view['network_id']
                if nid not in networks:
                    try:
                        networks[nid] = self.get_network(nid)
                    except exception.NetworkNotFound:
                        continue
                result.append((networks[nid], self._read_endpoint(
                    api, networks[nid], vmi.name)))
        return result
