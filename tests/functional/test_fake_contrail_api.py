"""The fake Contrail config API against the real client library (vnc_api).

Every test talks HTTP to ``tests.fakes.contrail_api.FakeContrailAPI`` on
127.0.0.1 with an unmodified ``vnc_api.vnc_api.VncApi``, through the
counting, fault-injecting proxy (``tests.fakes.api_proxy``) the contrail
suites put in front of any API server.

The client retries by itself: ``VncApi._request`` sleeps 1 s and retries 30
times on ``requests.exceptions.ConnectionError`` and on 502/503, and
``ApiServerSession.crud`` re-sends a request once at once when the connection
fails.  ``BoundedVncApi`` below lowers the retry count (the ``retry_count``
argument of ``_request``/``_request_server``) so that faults surface at once.
"""

import time
import uuid

import pytest
import requests
from vnc_api import vnc_api
from vnc_api.exceptions import (BadRequest, HttpError, NoIdError,
                                RefsExistError, ServiceUnavailableError)
from vnc_api.gen.resource_client import (FloatingIp, FloatingIpPool,
                                         InstanceIp, Project,
                                         VirtualMachine,
                                         VirtualMachineInterface,
                                         VirtualNetwork)
from vnc_api.gen.resource_xsd import (AllocationPoolType, IpamSubnetType,
                                      KeyValuePair, KeyValuePairs,
                                      MacAddressesType, PortMap,
                                      PortMappings, RouteTargetList,
                                      SubnetType, VnSubnetsType)

from tests import contrail_target
from tests.fakes.api_proxy import ApiProxy
from tests.fakes.contrail_api import FakeContrailAPI

pytestmark = contrail_target.needs_fake

ADMIN = ['default-domain', 'admin']
IPAM = ['default-domain', 'default-project', 'default-network-ipam']


class BoundedVncApi(vnc_api.VncApi):
    """VncApi whose retries are bounded by ``retries`` (default 0).

    ``_request``'s own default (30) is used by the constructor and the
    homepage fetch; ``_request_server`` passes 30 explicitly for all others.
    """

    retries = 0

    def _request(self, op, url, data=None, retry_on_error=True,
                 retry_after_authn=False, retry_count=None):
        if retry_count is None or retry_count == 30:
            retry_count = self.retries
        return vnc_api.VncApi._request(self, op, url, data, retry_on_error,
                                       retry_after_authn, retry_count)

    def _request_server(self, op, url, data=None, retry_on_error=True,
                        retry_after_authn=False, retry_count=None):
        if retry_count is None:
            retry_count = self.retries
        return vnc_api.VncApi._request_server(
            self, op, url, data, retry_on_error, retry_after_authn,
            retry_count)


def connect(fake, cls=BoundedVncApi, timeout=5):
    return cls(api_server_host='127.0.0.1', api_server_port=fake.port,
               auth_type='noauth', timeout=timeout, connection_timeout=2)


@pytest.fixture
def fake():
    """The fake behind the proxy: the fake's state, the proxy's controls."""
    with FakeContrailAPI() as server:
        server.add_project(ADMIN)
        with ApiProxy(server.host, server.port, timeout_hold=5) as proxy:
            yield contrail_target.Target(server, proxy)


@pytest.fixture
def api(fake):
    return connect(fake)


def subnet(prefix, plen, **kwargs):
    return IpamSubnetType(subnet=SubnetType(prefix, plen), **kwargs)


def make_vn(api, name, *subnets, **kwargs):
    project = api.project_read(fq_name=ADMIN)
    ipam = api.network_ipam_read(fq_name=IPAM)
    vn = VirtualNetwork(name, parent_obj=project, **kwargs)
    vn.add_network_ipam(ipam, VnSubnetsType(list(subnets)))
    api.virtual_network_create(vn)
    return api.virtual_network_read(id=vn.uuid)


def make_vmi(api, vn, name='port', vm=None, **kwargs):
    project = api.project_read(fq_name=ADMIN)
    vmi = VirtualMachineInterface(name, parent_obj=project, **kwargs)
    vmi.add_virtual_network(vn)
    if vm is not None:
        vmi.add_virtual_machine(vm)
    api.virtual_machine_interface_create(vmi)
    return vmi


def make_iip(api, vn, name=None, vmi=None, **kwargs):
    iip = InstanceIp(name or str(uuid.uuid4()), **kwargs)
    iip.add_virtual_network(vn)
    if vmi is not None:
        iip.add_virtual_machine_interface(vmi)
    api.instance_ip_create(iip)
    return api.instance_ip_read(id=iip.uuid)


def subnets_of(vn):
    return vn.get_network_ipam_refs()[0]['attr'].get_ipam_subnets()


# --------------------------------------------------------------------------
# basics

def test_prepopulated_objects(fake, api):
    for fq_name in (ADMIN, ['default-domain', 'default-project']):
        project = api.project_read(fq_name=fq_name)
        assert project.uuid and project.get_fq_name() == fq_name
    assert api.network_ipam_read(fq_name=IPAM).uuid
    assert api.domain_read(fq_name=['default-domain']).uuid
    gsc = api.global_system_config_read(
        fq_name=['default-global-system-config'])
    assert gsc.get_autonomous_system() == 64512
    # objects() leaves out what a fresh server holds: the test's project
    # is all there is.
    assert [p['fq_name'] for p in fake.objects('project')] == [ADMIN]
    assert [':'.join(api.id_to_fq_name(api.fq_name_to_id(
        'virtual-network', ['default-domain', 'default-project', name])))
        for name in ('default-virtual-network', 'ip-fabric',
                     '__link_local__')]
    assert fake.get('domain', api.fq_name_to_id(
        'domain', ['default-domain']))['fq_name'] == ['default-domain']
    assert api.id_to_fq_name(api.fq_name_to_id('project', ADMIN)) == ADMIN


def test_vn_crud_v4_v6_route_targets(fake, api):
    vn = make_vn(api, 'net1', subnet('10.10.0.0', 24),
                 subnet('fd00:10::', 64),
                 route_target_list=RouteTargetList(['target:64512:100']))
    assert vn.get_fq_name() == ADMIN + ['net1']
    assert vn.get_display_name() == 'net1'
    assert isinstance(vn.get_virtual_network_network_id(), int)
    assert vn.get_id_perms().created and vn.get_id_perms().last_modified
    assert vn.get_perms2() is not None
    assert vn.get_route_target_list().route_target == ['target:64512:100']
    v4, v6 = subnets_of(vn)
    assert (v4.default_gateway, v4.dns_server_address) == (
        '10.10.0.254', '10.10.0.253')
    # IPv6: the same rule, last address of the prefix - 1 (and - 2)
    assert (v6.default_gateway, v6.dns_server_address) == (
        'fd00:10::ffff:ffff:ffff:fffe', 'fd00:10::ffff:ffff:ffff:fffd')
    assert uuid.UUID(v4.subnet_uuid) and uuid.UUID(v6.subnet_uuid)
    ri = api.virtual_network_read(id=vn.uuid, fields=['routing_instances'])
    [ri_ref] = ri.get_routing_instances()
    assert ri_ref['to'] == ADMIN + ['net1', 'net1']

    vn.set_display_name('renamed')
    vn.set_route_target_list(RouteTargetList(['target:64512:200',
                                              'target:10.0.0.1:5']))
    api.virtual_network_update(vn)
    again = api.virtual_network_read(fq_name=ADMIN + ['net1'])
    assert again.get_display_name() == 'renamed'
    assert again.get_route_target_list().route_target == [
        'target:64512:200', 'target:10.0.0.1:5']
    assert subnets_of(again)[0].subnet_uuid == v4.subnet_uuid

    api.virtual_network_delete(id=vn.uuid)
    with pytest.raises(NoIdError):
        api.virtual_network_read(id=vn.uuid)
    assert fake.objects('routing-instance') == []
    assert fake.objects('virtual-network') == []


def test_route_target_in_contrail_range_is_refused(api):
    with pytest.raises(BadRequest):
        make_vn(api, 'bad-rt', subnet('10.11.0.0', 24),
                route_target_list=RouteTargetList(['target:64512:8000001']))
    with pytest.raises(BadRequest):
        make_vn(api, 'bad-rt2', route_target_list=RouteTargetList(['x:1']))


def test_caller_uuid_and_duplicates(fake, api):
    project = api.project_read(fq_name=ADMIN)
    mine = str(uuid.uuid4())
    vn = VirtualNetwork('dup', parent_obj=project)
    vn.uuid = mine
    assert api.virtual_network_create(vn) == mine
    assert fake.get('virtual-network', mine)['fq_name'] == ADMIN + ['dup']

    with pytest.raises(RefsExistError) as err:
        api.virtual_network_create(VirtualNetwork('dup', parent_obj=project))
    assert 'already exists with uuid: %s' % mine in str(err.value)

    other = VirtualNetwork('other', parent_obj=project)
    other.uuid = mine
    with pytest.raises(RefsExistError):
        api.virtual_network_create(other)
    with pytest.raises(BadRequest):
        bad = VirtualNetwork('bad-uuid', parent_obj=project)
        bad.uuid = 'not-a-uuid'
        api.virtual_network_create(bad)


def test_missing_objects(api):
    with pytest.raises(NoIdError):
        api.virtual_network_read(id=str(uuid.uuid4()))
    project_uuid = api.fq_name_to_id('project', ADMIN)
    with pytest.raises(NoIdError):   # a uuid of another type
        api.virtual_network_read(id=project_uuid)
    with pytest.raises(NoIdError):
        api.fq_name_to_id('virtual-network', ADMIN + ['nope'])
    with pytest.raises(NoIdError):
        api.virtual_network_delete(id=str(uuid.uuid4()))
    with pytest.raises(NoIdError):   # missing parent
        api.virtual_network_create(VirtualNetwork(
            'x', parent_obj=Project('no-such-project')))


def test_unknown_ref(api):
    """As the real server answers (see test_server_behaviours)."""
    vn = make_vn(api, 'net', subnet('10.12.0.0', 24))
    ghost = VirtualMachine('ghost')
    ghost.uuid = str(uuid.uuid4())
    with pytest.raises(HttpError) as err:
        make_vmi(api, vn, vm=ghost)
    assert err.value.status_code == 500
    no_uuid = VirtualMachine('ghost')
    with pytest.raises(BadRequest):
        make_vmi(api, vn, name='port2', vm=no_uuid)
    vmi = make_vmi(api, vn)
    vmi.set_virtual_machine(ghost)
    # An update keeps a ref by uuid as it comes, unchecked.
    api.virtual_machine_interface_update(vmi)
    assert api.virtual_machine_interface_read(
        id=vmi.uuid).get_virtual_machine_refs()[0]['uuid'] == ghost.uuid


def test_vmi_without_network_ref_is_500(api):
    project = api.project_read(fq_name=ADMIN)
    with pytest.raises(HttpError) as err:
        api.virtual_machine_interface_create(
            VirtualMachineInterface('lonely', parent_obj=project))
    assert err.value.status_code == 500


def test_delete_blocked_by_refs_and_children(api):
    vn = make_vn(api, 'busy', subnet('10.13.0.0', 24))
    vm = VirtualMachine('c1', server_type='container')
    api.virtual_machine_create(vm)
    vmi = make_vmi(api, vn, vm=vm)
    iip = make_iip(api, vn, vmi=vmi)

    with pytest.raises(RefsExistError) as err:
        api.virtual_network_delete(id=vn.uuid)
    assert 'still referred' in str(err.value)
    assert vmi.uuid in str(err.value) and iip.uuid in str(err.value)
    with pytest.raises(RefsExistError):
        api.virtual_machine_delete(id=vm.uuid)
    with pytest.raises(RefsExistError) as err:
        api.project_delete(fq_name=ADMIN)
    assert 'children' in str(err.value)

    for delete, uid in ((api.instance_ip_delete, iip.uuid),
                        (api.virtual_machine_interface_delete, vmi.uuid),
                        (api.virtual_machine_delete, vm.uuid),
                        (api.virtual_network_delete, vn.uuid)):
        delete(id=uid)


def test_vmi_mac_default_and_given(api):
    vn = make_vn(api, 'macs', subnet('10.14.0.0', 24))
    project = api.project_read(fq_name=ADMIN)
    vmi = VirtualMachineInterface('m1', parent_obj=project)
    vmi.uuid = 'a4cda3d9-1b2c-4d5e-8f90-123456789abc'
    vmi.add_virtual_network(vn)
    api.virtual_machine_interface_create(vmi)
    got = api.virtual_machine_interface_read(id=vmi.uuid)
    assert got.get_virtual_machine_interface_mac_addresses().mac_address == [
        '02:a4:cd:a3:d9:1b']
    given = make_vmi(api, vn, 'm2',
                     virtual_machine_interface_mac_addresses=MacAddressesType(
                         ['02-11-22-33-44-55']))
    got = api.virtual_machine_interface_read(id=given.uuid)
    assert got.get_virtual_machine_interface_mac_addresses().mac_address == [
        '02:11:22:33:44:55']


# --------------------------------------------------------------------------
# address allocation

def test_iip_allocation_default_order(api):
    vn = make_vn(api, 'alloc', subnet('10.20.0.0', 24),
                 subnet('fd00:20::', 64))
    v4, v6 = subnets_of(vn)
    vm = VirtualMachine('c-alloc')
    api.virtual_machine_create(vm)
    vmi = make_vmi(api, vn, vm=vm)

    first = make_iip(api, vn, vmi=vmi)
    assert first.instance_ip_address == '10.20.0.252'
    assert first.subnet_uuid == v4.subnet_uuid
    assert make_iip(api, vn).instance_ip_address == '10.20.0.251'

    with pytest.raises(RefsExistError) as err:   # the DNS service address
        make_iip(api, vn, instance_ip_address='10.20.0.253')
    assert 'in use' in str(err.value)
    with pytest.raises(RefsExistError):          # taken by ``first``
        make_iip(api, vn, instance_ip_address='10.20.0.252')
    with pytest.raises(BadRequest):              # gateway on a VM port
        make_iip(api, vn, vmi=vmi, instance_ip_address='10.20.0.254')
    with pytest.raises(BadRequest):              # outside every subnet
        make_iip(api, vn, instance_ip_address='192.168.1.1')
    assert make_iip(api, vn, instance_ip_address='10.20.0.7'
                    ).instance_ip_address == '10.20.0.7'

    api.instance_ip_delete(id=first.uuid)        # freed -> reused
    assert make_iip(api, vn).instance_ip_address == '10.20.0.252'

    six = make_iip(api, vn, instance_ip_family='v6')
    assert six.instance_ip_address == 'fd00:20::ffff:ffff:ffff:fffc'
    assert six.subnet_uuid == v6.subnet_uuid
    by_subnet = make_iip(api, vn, subnet_uuid=v6.subnet_uuid)
    assert by_subnet.instance_ip_address == 'fd00:20::ffff:ffff:ffff:fffb'


def test_iip_allocation_addr_from_start(api):
    vn = make_vn(api, 'start', subnet('10.21.0.0', 24, addr_from_start=True))
    [sn] = subnets_of(vn)
    assert (sn.default_gateway, sn.dns_server_address) == (
        '10.21.0.1', '10.21.0.2')
    assert [make_iip(api, vn).instance_ip_address for _i in range(2)] == [
        '10.21.0.3', '10.21.0.4']
    with pytest.raises(RefsExistError):
        make_iip(api, vn, instance_ip_address='10.21.0.2')


def test_slash28_docker_gateway_with_dhcp_off(api):
    vn = make_vn(api, 'docker28', subnet(
        '10.30.0.0', 28, default_gateway='10.30.0.1',
        dns_server_address='10.30.0.1', enable_dhcp=False))
    [sn] = subnets_of(vn)
    assert (sn.default_gateway, sn.dns_server_address) == (
        '10.30.0.1', '10.30.0.1')
    for host in range(2, 15):           # what Docker's IPAM hands out
        make_iip(api, vn, instance_ip_address='10.30.0.%d' % host)
    with pytest.raises(BadRequest) as err:
        make_iip(api, vn)
    assert 'exhausted' in str(err.value)


def test_slash28_dns_reserved_while_dhcp_on(api):
    vn = make_vn(api, 'dhcp28', subnet(
        '10.31.0.0', 28, default_gateway='10.31.0.1',
        dns_server_address='10.31.0.1'))
    [sn] = subnets_of(vn)
    # the given DNS address is not honoured: re-defaulted and reserved
    assert (sn.default_gateway, sn.dns_server_address) == (
        '10.31.0.1', '10.31.0.13')
    with pytest.raises(RefsExistError):
        make_iip(api, vn, instance_ip_address='10.31.0.13')
    got = [make_iip(api, vn).instance_ip_address for _i in range(12)]
    assert got[:3] == ['10.31.0.14', '10.31.0.12', '10.31.0.11']
    assert '10.31.0.13' not in got and '10.31.0.1' not in got
    with pytest.raises(BadRequest):
        make_iip(api, vn)


def test_allocation_pools(api):
    vn = make_vn(api, 'pools', subnet(
        '10.32.0.0', 24, allocation_pools=[
            AllocationPoolType('10.32.0.10', '10.32.0.12')]))
    got = [make_iip(api, vn).instance_ip_address for _i in range(3)]
    assert got == ['10.32.0.12', '10.32.0.11', '10.32.0.10']
    with pytest.raises(BadRequest):
        make_iip(api, vn)


def test_floating_ips(fake, api):
    """A pool in an external network; floating IPs take its addresses as
    instance-ips do, hold the interface they point at, and go with no
    trace."""
    ext = make_vn(api, 'public', subnet('198.51.100.0', 29),
                  router_external=True)
    pool = FloatingIpPool('pub', parent_obj=ext)
    api.floating_ip_pool_create(pool)
    inner = make_vn(api, 'inner', subnet('10.30.0.0', 24))
    vm = VirtualMachine('c-fip')
    api.virtual_machine_create(vm)
    vmi = make_vmi(api, inner, vm=vm)
    project = api.project_read(fq_name=ADMIN)

    fip = FloatingIp('one', parent_obj=pool)
    fip.set_project(project)
    fip.set_virtual_machine_interface(vmi)
    fip.set_floating_ip_port_mappings_enable(True)
    fip.set_floating_ip_port_mappings(PortMappings(
        [PortMap('tcp', 18080, 80)]))
    api.floating_ip_create(fip)
    got = api.floating_ip_read(id=fip.uuid)
    # Down from below the gateway (.6) and DNS address (.5).
    assert got.get_floating_ip_address() == '198.51.100.4'
    assert got.get_fq_name() == ADMIN + ['public', 'pub', 'one']
    assert got.get_project_refs()[0]['uuid'] == project.uuid
    assert got.get_virtual_machine_interface_refs()[0]['uuid'] == vmi.uuid
    assert got.get_floating_ip_port_mappings_enable() is True
    [pm] = got.get_floating_ip_port_mappings().get_port_mappings()
    assert (pm.protocol, pm.src_port, pm.dst_port) == ('tcp', 18080, 80)
    read = api.virtual_machine_interface_read(
        id=vmi.uuid, fields=['floating_ip_back_refs'])
    assert [r['uuid'] for r in read.get_floating_ip_back_refs()] == [
        fip.uuid]

    # Instance-ips and floating IPs share the network's addresses.
    assert make_iip(api, ext).instance_ip_address == '198.51.100.3'
    fill = [FloatingIp('fill-%d' % n, parent_obj=pool) for n in range(2)]
    for extra in fill:
        api.floating_ip_create(extra)
    other = FloatingIp('two', parent_obj=pool)
    with pytest.raises(HttpError) as err:       # the pool's net is full
        api.floating_ip_create(other)
    assert err.value.status_code == 500
    assert 'exhausted' in str(err.value)
    for extra in fill:
        api.floating_ip_delete(id=extra.uuid)
    # A taken address asked for.
    with pytest.raises(RefsExistError):
        api.floating_ip_create(FloatingIp(
            'three', parent_obj=pool, floating_ip_address='198.51.100.4'))
    # The interface is held; the pool and its network too.
    with pytest.raises(RefsExistError):
        api.virtual_machine_interface_delete(id=vmi.uuid)
    with pytest.raises(RefsExistError):
        api.floating_ip_pool_delete(id=pool.uuid)
    with pytest.raises(RefsExistError):
        api.virtual_network_delete(id=ext.uuid)
    # The address is kept on update; freed on delete.
    got.set_floating_ip_port_mappings(PortMappings(
        [PortMap('udp', 53, 53)]))
    api.floating_ip_update(got)
    assert api.floating_ip_read(
        id=fip.uuid).get_floating_ip_address() == '198.51.100.4'
    api.floating_ip_delete(id=fip.uuid)
    # Without a project ref: the project of its fq_name.
    api.floating_ip_create(other)
    again = api.floating_ip_read(id=other.uuid)
    assert again.get_floating_ip_address() == '198.51.100.4'
    assert again.get_project_refs()[0]['to'] == ADMIN
    # A missing pool: 404.
    with pytest.raises(NoIdError):
        api.floating_ip_create(FloatingIp('four', parent_obj=FloatingIpPool(
            'nosuch', parent_obj=ext)))
    api.floating_ip_delete(id=other.uuid)
    api.virtual_machine_interface_delete(id=vmi.uuid)
    api.floating_ip_pool_delete(id=pool.uuid)
    for iip in fake.objects('instance-ip'):
        api.instance_ip_delete(id=iip['uuid'])
    api.virtual_network_delete(id=ext.uuid)


def test_vn_subnet_update_keeps_allocations(api):
    ipam = api.network_ipam_read(fq_name=IPAM)
    vn = make_vn(api, 'grow', subnet('10.40.0.0', 24))
    [old] = subnets_of(vn)
    iip = make_iip(api, vn)

    vn.set_network_ipam(ipam, VnSubnetsType([
        subnet('10.40.0.0', 24), subnet('10.41.0.0', 24)]))
    api.virtual_network_update(vn)
    vn = api.virtual_network_read(id=vn.uuid)
    kept, added = subnets_of(vn)
    assert kept.subnet_uuid == old.subnet_uuid
    assert added.default_gateway == '10.41.0.254' and added.subnet_uuid

    vn.set_network_ipam(ipam, VnSubnetsType([subnet('10.41.0.0', 24)]))
    with pytest.raises(RefsExistError) as err:
        api.virtual_network_update(vn)
    assert 'Cannot Delete IP Block' in str(err.value)

    vn.set_network_ipam(ipam, VnSubnetsType([
        subnet('10.40.0.0', 24, default_gateway='10.40.0.1')]))
    with pytest.raises(BadRequest):        # gateway change
        api.virtual_network_update(vn)

    api.instance_ip_delete(id=iip.uuid)
    vn.set_network_ipam(ipam, VnSubnetsType([subnet('10.41.0.0', 24)]))
    api.virtual_network_update(vn)
    assert [s.subnet.ip_prefix for s in subnets_of(
        api.virtual_network_read(id=vn.uuid))] == ['10.41.0.0']


# --------------------------------------------------------------------------
# reads, lists, refs, key-value store

def test_fields_back_refs_children_and_lists(fake, api):
    vn = make_vn(api, 'reads', subnet('10.50.0.0', 24),
                 route_target_list=RouteTargetList(['target:64512:7']))
    vm = VirtualMachine('c-reads')
    api.virtual_machine_create(vm)
    vmi = make_vmi(api, vn, vm=vm)
    iip = make_iip(api, vn, vmi=vmi)
    url = '%s/virtual-network/%s' % (fake.url, vn.uuid)

    quiet = requests.get(url, params={'exclude_back_refs': True,
                                      'exclude_children': True},
                         timeout=5).json()['virtual-network']
    assert 'virtual_machine_interface_back_refs' not in quiet
    assert 'routing_instances' not in quiet
    assert quiet['network_ipam_refs'][0]['to'] == IPAM
    full = requests.get(url, timeout=5).json()['virtual-network']
    [back] = full['virtual_machine_interface_back_refs']
    assert (back['uuid'], back['to']) == (vmi.uuid, ADMIN + ['port'])
    assert 'attr' in back and full['routing_instances']
    some = requests.get(url, params={'fields': 'display_name'},
                        timeout=5).json()['virtual-network']
    assert some['display_name'] == 'reads'
    assert 'route_target_list' not in some and 'network_ipam_refs' not in some

    read = api.virtual_network_read(id=vn.uuid, fields=[
        'virtual_machine_interface_back_refs', 'instance_ip_back_refs'])
    assert [r['uuid'] for r in read.get_instance_ip_back_refs()] == [
        iip.uuid]
    vm_read = api.virtual_machine_read(
        id=vm.uuid, fields=['virtual_machine_interface_back_refs'])
    assert [r['uuid'] for r in
            vm_read.get_virtual_machine_interface_back_refs()] == [vmi.uuid]

    project_uuid = api.fq_name_to_id('project', ADMIN)
    listed = api.virtual_networks_list(parent_id=project_uuid)
    assert [v['uuid'] for v in listed['virtual-networks']] == [vn.uuid]
    [detail] = api.virtual_networks_list(parent_id=project_uuid, detail=True)
    assert detail.get_route_target_list().route_target == ['target:64512:7']
    by_ref = api.virtual_machine_interfaces_list(back_ref_id=vm.uuid)
    assert [v['uuid'] for v in by_ref['virtual-machine-interfaces']] == [
        vmi.uuid]
    assert api.instance_ips_list(back_ref_id=[vmi.uuid], count=True) == {
        'instance-ips': {'count': 1}}


def test_ref_update_and_prop_map(api):
    vn = make_vn(api, 'refs', subnet('10.51.0.0', 24))
    vmi = make_vmi(api, vn)
    vm = VirtualMachine('c-refs')
    api.virtual_machine_create(vm)

    api.ref_update('virtual-machine-interface', vmi.uuid, 'virtual-machine',
                   vm.uuid, None, 'ADD')
    got = api.virtual_machine_interface_read(id=vmi.uuid)
    assert [r['uuid'] for r in got.get_virtual_machine_refs()] == [vm.uuid]
    with pytest.raises(RefsExistError):
        api.virtual_machine_delete(id=vm.uuid)
    api.ref_update('virtual-machine-interface', vmi.uuid, 'virtual-machine',
                   vm.uuid, None, 'DELETE')
    api.virtual_machine_delete(id=vm.uuid)

    got.set_virtual_machine_interface_bindings(
        KeyValuePairs([KeyValuePair('host_id', 'node1')]))
    api.virtual_machine_interface_update(got)
    got = api.virtual_machine_interface_read(id=vmi.uuid)
    got.add_annotations(KeyValuePair('docker', 'ep1'))
    api.virtual_machine_interface_update(got)
    got = api.virtual_machine_interface_read(id=vmi.uuid)
    bindings = got.get_virtual_machine_interface_bindings().key_value_pair
    assert [(b.key, b.value) for b in bindings] == [('host_id', 'node1')]
    assert [(a.key, a.value) for a in
            got.get_annotations().key_value_pair] == [('docker', 'ep1')]


def test_kv_store(fake, api):
    api.kv_store('net:abc', '{"vn": "x"}')
    assert api.kv_retrieve('net:abc') == '{"vn": "x"}'
    assert fake.kv() == {'net:abc': '{"vn": "x"}'}
    api.kv_delete('net:abc')
    with pytest.raises(NoIdError):
        api.kv_retrieve('net:abc')
    api.kv_delete('net:abc')   # deleting a missing key is no error


# --------------------------------------------------------------------------
# faults and outages

def test_request_log(fake, api):
    fake.reset_requests()
    api.project_read(fq_name=ADMIN)
    assert fake.requests[0] == ('POST', '/fqname-to-id')
    assert fake.requests[1][0] == 'GET'
    assert fake.requests[1][1].startswith('/project/')
    assert fake.count() == 2 and fake.count('post') == 1


def test_fault_500_has_no_effect(fake, api):
    project = api.project_read(fq_name=ADMIN)
    fake.fail_request(1, '500')
    with pytest.raises(HttpError) as err:
        api.virtual_network_create(VirtualNetwork('f500', parent_obj=project))
    assert err.value.status_code == 500
    assert fake.objects('virtual-network') == []
    api.virtual_network_create(VirtualNetwork('f500', parent_obj=project))
    assert len(fake.objects('virtual-network')) == 1


def test_fault_503(fake, api):
    fake.fail_request(1, '503')
    with pytest.raises(ServiceUnavailableError):
        api.project_read(id=api.fq_name_to_id('project', ADMIN))
    # the stock client sleeps 1 s and retries (up to 30 times)
    stock = connect(fake, cls=vnc_api.VncApi)
    project_uuid = stock.fq_name_to_id('project', ADMIN)
    fake.reset_requests()
    fake.fail_request(1, '503')
    started = time.monotonic()
    assert stock.project_read(id=project_uuid).uuid == project_uuid
    assert time.monotonic() - started >= 0.9
    assert fake.count('GET') == 2


def test_fault_drop(fake, api):
    project = api.project_read(fq_name=ADMIN)
    # ApiServerSession.crud re-sends once at once: two drops to see it
    fake.fail_request(1, 'drop')
    fake.fail_request(2, 'drop')
    with pytest.raises(requests.exceptions.ConnectionError):
        api.virtual_network_create(VirtualNetwork('drop', parent_obj=project))
    assert fake.objects('virtual-network') == []
    fake.reset_requests()
    fake.fail_request(1, 'drop')   # one drop: re-sent and created
    api.virtual_network_create(VirtualNetwork('drop', parent_obj=project))
    assert fake.count('POST', '/virtual-networks') == 2
    assert len(fake.objects('virtual-network')) == 1


def test_fault_timeout(fake):
    fake.timeout_hold = 3
    api = connect(fake, timeout=1)
    project = api.project_read(fq_name=ADMIN)
    fake.fail_request(1, 'timeout')
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        api.virtual_network_create(VirtualNetwork('slow', parent_obj=project))
    assert time.monotonic() - started < 2.5
    assert fake.objects('virtual-network') == []
    api.virtual_network_create(VirtualNetwork('slow', parent_obj=project))


def test_set_down_and_up(fake, api):
    port = fake.port
    fake.set_down(True)
    assert fake.is_down
    with pytest.raises(requests.exceptions.ConnectionError):
        connect(fake)                       # the constructor connects
    with pytest.raises(requests.exceptions.ConnectionError):
        api.project_read(fq_name=ADMIN)     # and so does every call
    fake.set_down(False)
    assert fake.port == port
    assert api.project_read(fq_name=ADMIN).get_fq_name() == ADMIN
    assert connect(fake).fq_name_to_id('project', ADMIN)


def test_reset_and_plain_use():
    server = FakeContrailAPI().start()
    try:
        api = connect(server)
        server.add_project(ADMIN)
        make_vn(api, 'gone', subnet('10.60.0.0', 24))
        server.reset()
        assert server.objects('virtual-network') == []
        assert api.network_ipam_read(fq_name=IPAM).get_fq_name() == IPAM
    finally:
        server.stop()
    with pytest.raises(requests.exceptions.ConnectionError):
        connect(server)
