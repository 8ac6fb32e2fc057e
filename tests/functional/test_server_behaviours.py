"""How the config API server behaves, asked of the fake and the real one.

Each row is a behaviour the driver relies on, with what a real Tungsten
Fabric API server answered (``shared/tools/tf-api-server``, noauth). The
fake must answer the same: every row runs against it in every run. With
``OCN_CONTRAIL_API=HOST:PORT`` every row runs against that server too,
and the two must agree. A difference found between them becomes a row.
"""

import collections
import http.client
import json
import time
import uuid

import pytest
import requests
from vnc_api import exceptions as vnc_exc
from vnc_api import vnc_api

from opencontrail_net.backends.contrail import transport
from tests import contrail_target
from tests.fakes import contrail_api

IPAM = ['default-domain', 'default-project', 'default-network-ipam']
DEFAULT_VN = ['default-domain', 'default-project', 'default-virtual-network']


class Probe:
    """One row's access to one server: the stock client, raw HTTP for
    exact answers, names of its own, and a clean-up of what it made."""

    def __init__(self, host, port):
        self.url = 'http://%s:%s' % (host, port)
        self.vnc = vnc_api.VncApi(api_server_host=host,
                                  api_server_port=str(port),
                                  auth_type='noauth')
        self.project = self.vnc.project_read(fq_name=contrail_target.PROJECT)
        self.made = []

    def name(self, what):
        return '%s-%s' % (what, uuid.uuid4().hex[:8])

    def keep(self, kind, obj_uuid):
        self.made.append((kind, obj_uuid))
        return obj_uuid

    def post(self, kind, body):
        res = requests.post('%s/%ss' % (self.url, kind), json={kind: body},
                            timeout=10)
        if res.status_code == 200:
            self.keep(kind, res.json()[kind]['uuid'])
        return res.status_code, res.text

    def put(self, kind, obj_uuid, body):
        res = requests.put('%s/%s/%s' % (self.url, kind, obj_uuid),
                           json={kind: body}, timeout=10)
        return res.status_code, res.text

    def network(self, *subnets):
        vn = vnc_api.VirtualNetwork(self.name('vn'), self.project)
        vn.add_network_ipam(self.vnc.network_ipam_read(fq_name=IPAM),
                            vnc_api.VnSubnetsType(list(subnets)))
        self.vnc.virtual_network_create(vn)
        self.keep('virtual-network', vn.uuid)
        return self.vnc.virtual_network_read(id=vn.uuid)

    def iip(self, vn, address=None):
        iip = vnc_api.InstanceIp(str(uuid.uuid4()),
                                 instance_ip_address=address)
        iip.add_virtual_network(vn)
        self.vnc.instance_ip_create(iip)
        self.keep('instance-ip', iip.uuid)
        return self.vnc.instance_ip_read(id=iip.uuid).instance_ip_address

    def vm(self):
        vm = vnc_api.VirtualMachine(str(uuid.uuid4()))
        self.vnc.virtual_machine_create(vm)
        self.keep('virtual-machine', vm.uuid)
        return vm

    def vrouter(self):
        uuid_ = contrail_target.virtual_router(self.vnc, self.name('host'))
        self.keep('virtual-router', uuid_)
        return self.vnc.virtual_router_read(id=uuid_)

    def cleanup(self):
        for kind, obj_uuid in reversed(self.made):
            if kind == 'virtual-router':
                vr = self.vnc.virtual_router_read(id=obj_uuid)
                for ref in vr.get_virtual_machine_refs() or []:
                    self.vnc.ref_update(kind, obj_uuid, 'virtual-machine',
                                        ref['uuid'], None, 'DELETE')
            try:
                self.vnc._object_delete(kind, id=obj_uuid)
            except vnc_exc.NoIdError:
                pass


def subnet(prefix, plen=24, **kwargs):
    return vnc_api.IpamSubnetType(subnet=vnc_api.SubnetType(prefix, plen),
                                  **kwargs)


def status_of(call):
    """The HTTP status a vnc_api call ends in (200 if it returns)."""
    try:
        call()
    except vnc_exc.HttpError as exc:
        return exc.status_code
    except vnc_exc.BadRequest:
        return 400
    except vnc_exc.NoIdError:
        return 404
    except vnc_exc.RefsExistError:
        return 409
    return 200


def vmi_body(p, name, **refs):
    body = {'fq_name': contrail_target.PROJECT + [p.name(name)],
            'parent_type': 'project'}
    body.update(refs)
    return body


# -- the rows ---------------------------------------------------------------

def iip_network_by_fq_name(p):
    """An instance-ip's network is the ref's ``to``: a bare VirtualNetwork
    carrying the right uuid names the default network, whose subnets are
    none (the driver's IPAM failed so)."""
    vn = p.network(subnet('10.71.0.0'))
    bare = vnc_api.VirtualNetwork()
    bare.uuid = vn.uuid
    iip = vnc_api.InstanceIp(str(uuid.uuid4()))
    iip.add_virtual_network(bare)
    try:
        p.vnc.instance_ip_create(iip)
    except vnc_exc.BadRequest as exc:
        return 400, '%s) has exhausted subnet([])' % DEFAULT_VN in str(exc)
    p.keep('instance-ip', iip.uuid)
    return 200, None


def ref_to_wins_over_uuid(p):
    """A ref whose ``to`` and uuid name two networks refers to the one
    ``to`` names."""
    a, b = p.network(subnet('10.72.0.0')), p.network(subnet('10.73.0.0'))
    status, _text = p.post('virtual-machine-interface', vmi_body(
        p, 'port', virtual_network_refs=[{'to': a.get_fq_name(),
                                          'uuid': b.uuid}]))
    vmi = p.vnc.virtual_machine_interface_read(id=p.made[-1][1])
    return status, vmi.get_virtual_network_refs()[0]['uuid'] == a.uuid


def ref_without_to(p):
    vn = p.network(subnet('10.74.0.0'))
    return p.post('virtual-machine-interface', vmi_body(
        p, 'port', virtual_network_refs=[{'uuid': vn.uuid}]))[0]


def ref_to_names_nothing(p):
    vn = p.network(subnet('10.75.0.0'))
    nowhere = contrail_target.PROJECT + [p.name('nowhere')]
    with_uuid = p.post('virtual-machine-interface', vmi_body(
        p, 'port', virtual_network_refs=[{'to': nowhere,
                                          'uuid': vn.uuid}]))[0]
    alone = p.post('virtual-machine-interface', vmi_body(
        p, 'port', virtual_network_refs=[{'to': nowhere}]))[0]
    return with_uuid, alone


def ref_uuid_of_nothing(p):
    vn = p.network(subnet('10.76.0.0'))
    return p.post('virtual-machine-interface', vmi_body(
        p, 'port', virtual_network_refs=[{'to': vn.get_fq_name(),
                                          'uuid': str(uuid.uuid4())}]))[0]


def update_keeps_ref_unchecked(p):
    vn = p.network(subnet('10.77.0.0'))
    vmi = vnc_api.VirtualMachineInterface(p.name('port'), p.project)
    vmi.set_virtual_network(vn)
    p.vnc.virtual_machine_interface_create(vmi)
    p.keep('virtual-machine-interface', vmi.uuid)
    ghost = str(uuid.uuid4())
    return p.put('virtual-machine-interface', vmi.uuid, {
        'virtual_machine_refs': [{'to': ['ghost'], 'uuid': ghost}]})[0]


def allocation_from_the_top(p):
    vn = p.network(subnet('10.78.0.0'))
    sub = vn.get_network_ipam_refs()[0]['attr'].get_ipam_subnets()[0]
    return (sub.default_gateway, sub.dns_server_address,
            p.iip(vn), p.iip(vn))


def allocation_from_start(p):
    vn = p.network(subnet('10.79.0.0', addr_from_start=True))
    sub = vn.get_network_ipam_refs()[0]['attr'].get_ipam_subnets()[0]
    return (sub.default_gateway, sub.dns_server_address,
            p.iip(vn), p.iip(vn))


def gateway_given_dhcp_on(p):
    """An explicit gateway .1 is kept; DHCP on still reserves .253, and
    allocation starts at the top, .254."""
    vn = p.network(subnet('10.80.0.0', default_gateway='10.80.0.1'))
    sub = vn.get_network_ipam_refs()[0]['attr'].get_ipam_subnets()[0]
    return sub.default_gateway, sub.dns_server_address, p.iip(vn)


def dhcp_off_dns_on_gateway(p):
    """Docker's addresses: with DHCP off and DNS on Docker's gateway,
    every other address of a /28 is free, from the top."""
    vn = p.network(subnet('10.81.0.0', 28, default_gateway='10.81.0.1',
                          dns_server_address='10.81.0.1',
                          enable_dhcp=False))
    got = [p.iip(vn) for _ in range(13)]
    return got[0], got[-1], status_of(lambda: p.iip(vn))


def address_in_use(p):
    vn = p.network(subnet('10.82.0.0'))
    p.iip(vn, '10.82.0.10')
    return status_of(lambda: p.iip(vn, '10.82.0.10'))


def network_without_subnet(p):
    vn = vnc_api.VirtualNetwork(p.name('vn'), p.project)
    p.vnc.virtual_network_create(vn)
    p.keep('virtual-network', vn.uuid)
    try:
        p.iip(vn)
    except vnc_exc.BadRequest as exc:
        return 400, 'has exhausted subnet([])' in str(exc)
    return 200, None


def duplicate_fq_name(p):
    vn = p.network(subnet('10.83.0.0'))
    again = vnc_api.VirtualNetwork(vn.name, p.project)
    return status_of(lambda: p.vnc.virtual_network_create(again))


def delete_names_what_refers(p):
    vn = p.network(subnet('10.84.0.0'))
    vmi = vnc_api.VirtualMachineInterface(p.name('port'), p.project)
    vmi.set_virtual_network(vn)
    p.vnc.virtual_machine_interface_create(vmi)
    p.keep('virtual-machine-interface', vmi.uuid)
    try:
        p.vnc.virtual_network_delete(id=vn.uuid)
    except vnc_exc.RefsExistError as exc:
        return 409, '/virtual-machine-interface/%s' % vmi.uuid in str(exc)
    return 200, None


def vrouter_link_holds_the_vm(p):
    """A virtual-router's ref to a VM keeps the VM (409 naming the
    router), is made once however often it is added, and goes with one
    DELETE."""
    vr, vm = p.vrouter(), p.vm()
    for _ in range(2):
        p.vnc.ref_update('virtual-router', vr.uuid, 'virtual-machine',
                         vm.uuid, None, 'ADD')
    refs = p.vnc.virtual_router_read(id=vr.uuid).get_virtual_machine_refs()
    try:
        p.vnc.virtual_machine_delete(id=vm.uuid)
        named = None
    except vnc_exc.RefsExistError as exc:
        named = '/virtual-router/%s' % vr.uuid in str(exc)
    p.vnc.ref_update('virtual-router', vr.uuid, 'virtual-machine', vm.uuid,
                     None, 'DELETE')
    return len(refs), named, status_of(
        lambda: p.vnc.virtual_machine_delete(id=vm.uuid))


def no_vrouter_link_by_itself(p):
    """An interface bound to a host whose virtual-router exists, with its
    VM: the server does not link the router to the VM (it does for
    SR-IOV ports only), so the driver must."""
    vn, vr, vm = p.network(subnet('10.85.0.0')), p.vrouter(), p.vm()
    vmi = vnc_api.VirtualMachineInterface(p.name('port'), p.project)
    vmi.set_virtual_network(vn)
    vmi.set_virtual_machine(vm)
    vmi.set_virtual_machine_interface_bindings(vnc_api.KeyValuePairs(
        [vnc_api.KeyValuePair('host_id', vr.name)]))
    p.vnc.virtual_machine_interface_create(vmi)
    p.keep('virtual-machine-interface', vmi.uuid)
    return p.vnc.virtual_router_read(
        id=vr.uuid).get_virtual_machine_refs() or []


def vmi_default_mac(p):
    vn = p.network(subnet('10.86.0.0'))
    vmi = vnc_api.VirtualMachineInterface(p.name('port'), p.project)
    vmi.uuid = str(uuid.uuid4())
    vmi.set_virtual_network(vn)
    p.vnc.virtual_machine_interface_create(vmi)
    p.keep('virtual-machine-interface', vmi.uuid)
    mac = p.vnc.virtual_machine_interface_read(
        id=vmi.uuid).get_virtual_machine_interface_mac_addresses()
    want = '02:' + ':'.join(vmi.uuid.replace('-', '')[i:i + 2]
                            for i in range(0, 10, 2))
    return mac.mac_address == [want]


def route_target_number_after_address(p):
    """The number after an IPv4 address is not checked (BGP carries 16
    bits there: the driver refuses more, see test_contrail_shared)."""
    vn = vnc_api.VirtualNetwork(p.name('vn'), p.project)
    vn.set_route_target_list(vnc_api.RouteTargetList(
        ['target:1.2.3.4:70000']))
    status = status_of(lambda: p.vnc.virtual_network_create(vn))
    if status == 200:
        p.keep('virtual-network', vn.uuid)
    return status


def whole_url_target(p):
    """A request whose target is a whole URL, as a client sends it to a
    forward proxy, is not taken: only a proxy may be sent one."""
    host, port = p.url.split('//', 1)[1].rsplit(':', 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request('GET', 'http://contrail-api.invalid:%s/virtual-networks'
                     % port)
        res = conn.getresponse()
        res.read()
        return res.status
    finally:
        conn.close()


def answer_body_waits_for_the_ack(p):
    """An answer's headers and body are written apart, with Nagle's
    algorithm on: on a kept-alive connection, a client that acknowledges
    late (Linux waits 40 ms at least) gets the body of each answer after
    the first that much later; one that acknowledges the headers at once
    (``TCP_QUICKACK`` once the request is sent, as the driver's transport
    does) does not. (Of five answers, 35 ms late or more: at least four,
    at most one; a slow machine may delay one answer of the quick
    client.)"""
    host, port = p.url.split('//', 1)[1].rsplit(':', 1)

    def late_answers(quick):
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        waits = []
        try:
            for _ in range(6):
                vm_uuid = str(uuid.uuid4())
                body = json.dumps({'virtual-machine': {
                    'fq_name': [p.name('vm')], 'uuid': vm_uuid}}).encode()
                start = time.monotonic()
                conn.request('POST', '/virtual-machines', body=body,
                             headers={'Content-Type': 'application/json'})
                if quick:
                    transport.acknowledge_now(conn.sock)
                res = conn.getresponse()
                res.read()
                waits.append(time.monotonic() - start)
                if res.status == 200:
                    p.keep('virtual-machine', vm_uuid)
        finally:
            conn.close()
        return sum(w >= 0.035 for w in waits[1:])
    return late_answers(False) >= 4, late_answers(True) <= 1


Row = collections.namedtuple('Row', 'probe expected')
ROWS = [
    Row(iip_network_by_fq_name, (400, True)),
    Row(ref_to_wins_over_uuid, (200, True)),
    Row(ref_without_to, 500),
    Row(ref_to_names_nothing, (500, 400)),
    Row(ref_uuid_of_nothing, 404),
    Row(update_keeps_ref_unchecked, 200),
    Row(allocation_from_the_top, ('10.78.0.254', '10.78.0.253',
                                  '10.78.0.252', '10.78.0.251')),
    Row(allocation_from_start, ('10.79.0.1', '10.79.0.2', '10.79.0.3',
                                '10.79.0.4')),
    Row(gateway_given_dhcp_on, ('10.80.0.1', '10.80.0.253',
                                '10.80.0.254')),
    Row(dhcp_off_dns_on_gateway, ('10.81.0.14', '10.81.0.2', 400)),
    Row(address_in_use, 409),
    Row(network_without_subnet, (400, True)),
    Row(duplicate_fq_name, 409),
    Row(delete_names_what_refers, (409, True)),
    Row(vrouter_link_holds_the_vm, (1, True, 200)),
    Row(no_vrouter_link_by_itself, []),
    Row(vmi_default_mac, True),
    Row(route_target_number_after_address, 200),
    Row(whole_url_target, 404),
    Row(answer_body_waits_for_the_ack, (True, True)),
]


@pytest.fixture(scope='module')
def servers():
    """The fake always; the real server too when the environment names
    one."""
    fake = contrail_api.FakeContrailAPI().start()
    fake.add_project(contrail_target.PROJECT)
    found = [('fake', fake.host, fake.port)]
    if contrail_target.REAL:
        real = contrail_target.start()
        # The server itself, not the counting proxy in front of it.
        found.append(('real', real.server.host, real.server.port))
    yield found
    fake.stop()
    if contrail_target.REAL:
        real.stop()


@pytest.mark.parametrize('row', ROWS, ids=[r.probe.__name__ for r in ROWS])
def test_server_behaves_so(servers, row):
    answers = {}
    for which, host, port in servers:
        probe = Probe(host, port)
        try:
            answers[which] = row.probe(probe)
        finally:
            probe.cleanup()
    assert answers == {which: row.expected for which, _h, _p in servers}
