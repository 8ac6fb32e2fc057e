"""The contrail backend on a shared cluster: only its own objects go.

Objects "someone else" made are created with the real vnc_api client
straight at the API, as Nova or Kubernetes would.
"""

import copy
import socket
import time

import pytest
from vnc_api import vnc_api

from opencontrail_net import ids
from tests import contrail_target
from tests.contrail_target import needs_fake
from tests.functional import conftest
from tests.netns import sh as conftest_sh
from tests.relay import Relay
from tests.functional.conftest import contrail_driver
from tests.functional.test_contrail_backend import (
    counted, drop_interface, ep_body, ids_of, join_body, net_body)

PROJECT = contrail_target.PROJECT


@pytest.fixture
def vnc(fake):
    return contrail_target.vnc_client(fake)


def run_project():
    """The run's project, as the parent of an object to make."""
    return vnc_api.Project(PROJECT[1], vnc_api.Domain(PROJECT[0]))


def theirs(vnc, cls, *tags):
    """Objects someone else made in the run's project, named TAG-<run>."""
    made = []
    for tag in tags:
        obj = cls('%s-%s' % (tag, contrail_target.RUN), run_project())
        getattr(vnc, obj.object_type + '_create')(obj)
        made.append(obj)
    return made


def foreign_port(vnc, vn_uuid, address, name='nova-port'):
    name += '-' + contrail_target.RUN
    """A VM, interface and instance-ip another team made in a network."""
    vn = vnc.virtual_network_read(id=vn_uuid)
    vm = vnc_api.VirtualMachine(name + '-vm')
    vnc.virtual_machine_create(vm)
    vmi = vnc_api.VirtualMachineInterface(
        name, vnc_api.Project(PROJECT[1], vnc_api.Domain(PROJECT[0])))
    vmi.set_virtual_network(vn)
    vmi.set_virtual_machine(vm)
    vnc.virtual_machine_interface_create(vmi)
    iip = vnc_api.InstanceIp(name + '-ip', instance_ip_address=address)
    iip.set_virtual_network(vn)
    iip.set_virtual_machine_interface(vmi)
    vnc.instance_ip_create(iip)
    return [('virtual-machine', vm.uuid),
            ('virtual-machine-interface', vmi.uuid),
            ('instance-ip', iip.uuid)]


def remove(vnc, objs):
    for kind, uuid in reversed(objs):
        getattr(vnc, kind.replace('-', '_') + '_delete')(id=uuid)


def exists(fake, objs):
    return all(fake.get(kind, uuid) is not None for kind, uuid in objs)


def test_foreign_port_keeps_the_network(fake, driver_factory, vnc):
    drv = contrail_driver(driver_factory, fake)
    drv.options['contrail.retry_interval'] = 1
    drv.write_config()
    drv.start()
    net = net_body(20, v6=False)
    nid = net['NetworkID']
    drv.ok('NetworkDriver.CreateNetwork', net)
    vn_uuid = ids.network_uuid(nid)
    # One endpoint of ours whose DeleteEndpoint Docker swallowed.
    drv.ok('NetworkDriver.CreateEndpoint', ep_body(net, 0, v6=False))
    theirs = foreign_port(vnc, vn_uuid, '10.0.20.100')
    status, reply = drv.call('NetworkDriver.DeleteNetwork',
                             {'NetworkID': nid})
    assert status == 409
    vmi_uuid = theirs[1][1]
    assert vmi_uuid in reply['Err']
    assert '%s:nova-port' % PROJECT[1] in reply['Err']
    assert theirs[2][1] in reply['Err']
    assert exists(fake, theirs)
    assert fake.get('virtual-network', vn_uuid) is not None
    assert fake.get('security-group', ids.security_group_uuid(nid))
    # Our leftover went; theirs stayed.
    assert [o['uuid'] for o in fake.objects('virtual-machine-interface')
            ] == [vmi_uuid]
    remove(vnc, theirs)
    # Docker forgot the network (it swallows DeleteNetwork errors): the
    # driver deletes it by itself once nothing of others holds it.
    deadline = time.monotonic() + 10
    while (fake.get('virtual-network', vn_uuid) or fake.kv()) and \
            time.monotonic() < deadline:
        time.sleep(0.2)
    assert fake.get('virtual-network', vn_uuid) is None
    assert fake.objects('security-group') == []
    assert fake.kv() == {}
    assert 'what held it has gone' in drv.log_text()


def test_resent_delete_after_foreign_port_went(fake, drv, vnc):
    net = net_body(21, v6=False)
    nid = net['NetworkID']
    drv.ok('NetworkDriver.CreateNetwork', net)
    theirs = foreign_port(vnc, ids.network_uuid(nid), '10.0.21.100')
    assert drv.call('NetworkDriver.DeleteNetwork', {'NetworkID': nid})[
        0] == 409
    remove(vnc, theirs)
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': nid})
    for kind in ('virtual-network', 'security-group',
                 'virtual-machine-interface', 'instance-ip',
                 'virtual-machine'):
        assert fake.objects(kind) == [], kind


def test_reclaim_never_takes_a_foreign_address(fake, drv, vnc):
    net = net_body(22, v6=False)
    drv.ok('NetworkDriver.CreateNetwork', net)
    theirs = foreign_port(vnc, ids.network_uuid(net['NetworkID']),
                          '10.0.22.2')
    status, reply = drv.call('NetworkDriver.CreateEndpoint',
                             ep_body(net, 0, v6=False))
    assert status == 409 and '10.0.22.2' in reply['Err']
    assert exists(fake, theirs)
    assert len(fake.objects('virtual-machine-interface')) == 1
    remove(vnc, theirs)


def test_start_up_deletes_only_our_unused_vms(fake, drv, vnc):
    net = net_body(23, v6=False)
    drv.ok('NetworkDriver.CreateNetwork', net)
    ep = ep_body(net, 0, v6=False)
    drv.ok('NetworkDriver.CreateEndpoint', ep)
    drv.ok('NetworkDriver.Join', join_body(ep))
    drv.ok('NetworkDriver.Leave', ids_of(ep))
    ours = fake.objects('virtual-machine')[0]['uuid']
    # Someone else's VMs with no interface, one even named after the host.
    alike = vnc_api.VirtualMachine('someone-' + contrail_target.RUN,
                                   display_name=socket.gethostname())
    vnc.virtual_machine_create(alike)
    other = vnc_api.VirtualMachine('someone-else-' + contrail_target.RUN)
    vnc.virtual_machine_create(other)
    # Its interface gone, unknown to the driver: the VM is unused.
    drop_interface(fake, ep)
    drv.restart()
    left = {o['uuid'] for o in fake.objects('virtual-machine')}
    assert left == {alike.uuid, other.uuid}
    assert ours in drv.log_text()
    for vm in (alike, other):
        vnc.virtual_machine_delete(id=vm.uuid)


def move_container_end(join_reply, netns):
    """Do what Docker does after Join: the container end into its netns."""
    conftest_sh('ip', 'link', 'set', join_reply['InterfaceName']['SrcName'],
                'netns', netns)


@needs_fake
def test_start_up_cost_follows_this_host(fake, driver_factory, namespaces):
    """20,000 foreign interfaces and VMs cost the start-up nothing."""
    drv = contrail_driver(driver_factory, fake).start()
    net = net_body(24, v6=False)
    drv.ok('NetworkDriver.CreateNetwork', net)
    ep = ep_body(net, 0, v6=False)
    drv.ok('NetworkDriver.CreateEndpoint', ep)
    move_container_end(drv.ok('NetworkDriver.Join', join_body(ep)),
                       namespaces.add())

    def start_requests():
        fake.reset_requests()
        drv.restart()
        return sorted(fake.requests)
    few = start_requests()
    fake.populate_foreign(20000)
    many = start_requests()
    assert many == few
    # The homepage, this host's VMs, its held deletes, its one plugged
    # interface and that interface's network.
    assert len(few) == 5, few
    assert 'Resyncing 1 endpoints' in drv.log_text()
    drv.ok('NetworkDriver.Leave', ids_of(ep))


conftest  # noqa: B018  (fixtures)


def test_security_group_with_dockers_semantics(fake, drv, vnc):
    net = net_body(25)
    nid = net['NetworkID']
    drv.ok('NetworkDriver.CreateNetwork', net)
    ep = ep_body(net, 0)
    drv.ok('NetworkDriver.CreateEndpoint', ep)
    sg = vnc.security_group_read(id=ids.security_group_uuid(nid))
    fq = ':'.join(sg.get_fq_name())
    assert sg.get_fq_name()[:2] == PROJECT
    rules = sg.get_security_group_entries().get_policy_rule()

    def side(addrs):
        a = addrs[0]
        return a.security_group or '%s/%s' % (a.subnet.ip_prefix,
                                              a.subnet.ip_prefix_len)
    assert sorted((r.ethertype, side(r.src_addresses), side(r.dst_addresses))
                  for r in rules) == [
        ('IPv4', fq, 'local'), ('IPv4', 'local', '0.0.0.0/0'),
        ('IPv6', fq, 'local'), ('IPv6', 'local', '::/0')]
    assert all(r.protocol == 'any' and r.dst_ports[0].end_port == 65535
               for r in rules)
    vmi = vnc.virtual_machine_interface_read(
        id=ids.endpoint_uuid(ep['EndpointID']))
    assert [r['uuid'] for r in vmi.get_security_group_refs()] == [sg.uuid]
    drv.ok('NetworkDriver.DeleteEndpoint', ids_of(ep))
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': nid})
    assert fake.objects('security-group') == []


def test_existing_security_groups(fake, drv, vnc):
    theirs = vnc_api.SecurityGroup('web', vnc_api.Project(
        PROJECT[1], vnc_api.Domain(PROJECT[0])))
    vnc.security_group_create(theirs)
    net = net_body(26, v6=False, generic={
        'opencontrail.security_groups': 'web'})
    drv.ok('NetworkDriver.CreateNetwork', net)
    ep = ep_body(net, 0, v6=False)
    drv.ok('NetworkDriver.CreateEndpoint', ep)
    vmi = fake.get('virtual-machine-interface',
                   ids.endpoint_uuid(ep['EndpointID']))
    assert [r['uuid'] for r in vmi['security_group_refs']] == [theirs.uuid]
    assert [o['uuid'] for o in fake.objects('security-group')] == [
        theirs.uuid]
    drv.ok('NetworkDriver.DeleteEndpoint', ids_of(ep))
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': net['NetworkID']})
    assert fake.get('security-group', theirs.uuid) is not None
    # A group that does not exist: a clear error, nothing made.
    status, reply = drv.call('NetworkDriver.CreateNetwork', net_body(
        27, generic={'opencontrail.security_groups': 'web,nosuch'}))
    assert status == 400
    assert 'opencontrail.security_groups' in reply['Err']
    assert 'nosuch' in reply['Err']
    assert fake.objects('virtual-network') == []
    assert len(fake.objects('security-group')) == 1


def test_security_groups_of_one_endpoint(fake, drv, vnc):
    """--driver-opt opencontrail.security_groups: that endpoint's
    interface gets those existing groups instead of the network's, shown
    in EndpointOperInfo; a missing one is refused naming it, with nothing
    made; the others keep the network's group."""
    groups = web, db = theirs(vnc, vnc_api.SecurityGroup, 'web', 'db')
    net = net_body(32, v6=False)
    drv.ok('NetworkDriver.CreateNetwork', net)
    own = ids.security_group_uuid(net['NetworkID'])
    locked = dict(ep_body(net, 0, v6=False), Options={
        'opencontrail.security_groups': '%s,%s' % (
            db.name, ':'.join(PROJECT + [web.name]))})
    plain = ep_body(net, 1, v6=False)
    for body in (locked, plain):
        drv.ok('NetworkDriver.CreateEndpoint', body)
    # A real server keeps no order among an interface's groups (they add
    # up, no order needed): compared as sets.
    refs = {body['EndpointID']: {r['uuid'] for r in fake.get(
        'virtual-machine-interface', ids.endpoint_uuid(body['EndpointID']))[
        'security_group_refs']} for body in (locked, plain)}
    assert refs == {locked['EndpointID']: {db.uuid, web.uuid},
                    plain['EndpointID']: {own}}
    # Re-sent as Docker does: the same endpoint.
    drv.ok('NetworkDriver.CreateEndpoint', locked)
    drv.ok('NetworkDriver.Join', join_body(locked))
    try:
        info = drv.ok('NetworkDriver.EndpointOperInfo', ids_of(locked))
        assert info['Value']['security_groups'] == [
            db.name, ':'.join(PROJECT + [web.name])]
    finally:
        drv.ok('NetworkDriver.Leave', ids_of(locked))
    vmis = {o['uuid'] for o in fake.objects('virtual-machine-interface')}
    missing = dict(ep_body(net, 2, v6=False), Options={
        'opencontrail.security_groups': web.name + ',nosuch'})
    status, reply = drv.call('NetworkDriver.CreateEndpoint', missing)
    assert status == 400
    assert 'opencontrail.security_groups' in reply['Err'] and (
        'no security-group %s in Contrail' % ':'.join(
            PROJECT + ['nosuch'])) in reply['Err']
    assert {o['uuid'] for o in
            fake.objects('virtual-machine-interface')} == vmis
    for body in (locked, plain):
        drv.ok('NetworkDriver.DeleteEndpoint', ids_of(body))
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': net['NetworkID']})
    for group in groups:
        assert fake.get('security-group', group.uuid) is not None
        vnc.security_group_delete(id=group.uuid)


def policy_view(fake, uuid):
    """A network-policy as its owner sees it: its refs to others and
    rules, not the refs others hold to it."""
    return {k: v for k, v in fake.get('network-policy', uuid).items()
            if not k.endswith('back_refs') and k != 'id_perms'}


def test_existing_network_policies(fake, drv, vnc):
    """-o opencontrail.policies: existing network-policies, by name in the
    project or by fq_name, in the order given; never changed or deleted;
    a missing one is refused naming it, with nothing made."""
    policies = web, db = theirs(vnc, vnc_api.NetworkPolicy, 'web', 'db')
    before = {p.uuid: policy_view(fake, p.uuid) for p in policies}
    net = net_body(28, v6=False, generic={
        'opencontrail.policies': '%s,%s' % (db.name, ':'.join(
            PROJECT + [web.name]))})
    drv.ok('NetworkDriver.CreateNetwork', net)
    vn = fake.get('virtual-network', ids.network_uuid(net['NetworkID']))
    assert sorted((r['attr']['sequence']['major'], r['uuid'], r['to'])
                  for r in vn['network_policy_refs']) == [
        (0, db.uuid, PROJECT + [db.name]),
        (1, web.uuid, PROJECT + [web.name])]
    # Re-sent as Docker does: the same network; in another order: refused.
    drv.ok('NetworkDriver.CreateNetwork', net)
    other = dict(net, Options={'com.docker.network.generic': {
        'opencontrail.policies': '%s,%s' % (web.name, db.name)}})
    status, reply = drv.call('NetworkDriver.CreateNetwork', other)
    assert status == 409 and 'opencontrail.policies' in reply['Err']
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': net['NetworkID']})
    assert fake.get('virtual-network',
                    ids.network_uuid(net['NetworkID'])) is None
    assert {p.uuid: policy_view(fake, p.uuid) for p in policies} == before

    vns = {o['uuid'] for o in fake.objects('virtual-network')}
    groups = {o['uuid'] for o in fake.objects('security-group')}
    status, reply = drv.call('NetworkDriver.CreateNetwork', net_body(
        29, generic={'opencontrail.policies': web.name + ',nosuch'}))
    assert status == 400
    assert 'opencontrail.policies' in reply['Err'] and (
        'no network-policy %s in Contrail' % ':'.join(
            PROJECT + ['nosuch'])) in reply['Err']
    assert {o['uuid'] for o in fake.objects('virtual-network')} == vns
    assert {o['uuid'] for o in fake.objects('security-group')} == groups
    for policy in policies:
        vnc.network_policy_delete(id=policy.uuid)


def router_view(router):
    """A logical-router as its owner sees it: what it holds, whether or
    not the server lists an empty ref list."""
    return {k: v for k, v in router.items()
            if k != 'id_perms' and not k.endswith('back_refs') and
            v not in ([], None)}


def test_logical_router(fake, drv, vnc):
    """-o opencontrail.router: the network joins an existing
    logical-router through an interface of its own holding the gateway;
    network rm takes the interface away and leaves the router as it was;
    a missing router is refused naming it, with nothing made."""
    [router] = theirs(vnc, vnc_api.LogicalRouter, 'gw')
    before = fake.get('logical-router', router.uuid)
    net = net_body(30, v6=False, generic={'opencontrail.router':
                                          router.name})
    gateway = net['IPv4Data'][0]['Gateway'].split('/')[0]
    drv.ok('NetworkDriver.CreateNetwork', net)
    [ref] = fake.get('logical-router', router.uuid)[
        'virtual_machine_interface_refs']
    assert ref['uuid'] == ids.router_interface_uuid(net['NetworkID'])
    vmi = fake.get('virtual-machine-interface', ref['uuid'])
    assert vmi['virtual_machine_interface_device_owner'] == \
        'network:router_interface'
    assert [r['uuid'] for r in vmi['virtual_network_refs']] == [
        ids.network_uuid(net['NetworkID'])]
    iip = fake.get('instance-ip', ids.router_ip_uuid(net['NetworkID'],
                                                     'v4'))
    assert iip['instance_ip_address'] == gateway
    assert [r['uuid'] for r in iip['virtual_machine_interface_refs']] == [
        vmi['uuid']]
    # Re-sent as Docker does: the same, nothing more.
    drv.ok('NetworkDriver.CreateNetwork', net)
    assert len(fake.get('logical-router', router.uuid)[
        'virtual_machine_interface_refs']) == 1
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': net['NetworkID']})
    assert fake.get('virtual-network',
                    ids.network_uuid(net['NetworkID'])) is None
    assert fake.get('virtual-machine-interface', ref['uuid']) is None
    assert fake.get('instance-ip', iip['uuid']) is None
    after = fake.get('logical-router', router.uuid)
    assert not after.get('virtual_machine_interface_refs')
    assert router_view(after) == router_view(before)

    vns = {o['uuid'] for o in fake.objects('virtual-network')}
    vmis = {o['uuid'] for o in fake.objects('virtual-machine-interface')}
    status, reply = drv.call('NetworkDriver.CreateNetwork', net_body(
        31, generic={'opencontrail.router': 'nosuch'}))
    assert status == 400
    assert 'opencontrail.router' in reply['Err'] and (
        'no logical-router %s in Contrail' % ':'.join(
            PROJECT + ['nosuch'])) in reply['Err']
    assert {o['uuid'] for o in fake.objects('virtual-network')} == vns
    assert {o['uuid'] for o in
            fake.objects('virtual-machine-interface')} == vmis
    vnc.logical_router_delete(id=router.uuid)


def allow_refs(fake, network_id):
    """{policy uuid: sequence} of a network's virtual-network."""
    vn = fake.get('virtual-network', ids.network_uuid(network_id))
    return {r['uuid']: r['attr']['sequence']['major']
            for r in vn.get('network_policy_refs') or []}


def test_allow_between_two_networks(fake, driver_factory, vnc):
    """-o opencontrail.allow: a policy of the driver's own lets two of its
    networks talk both ways; it goes when either network goes, after a
    restart too; someone else's network referring to it keeps it."""
    drv = contrail_driver(driver_factory, fake).start()
    [users] = theirs(vnc, vnc_api.NetworkPolicy, 'web')
    web, db, cache = (net_body(n, v6=False) for n in (60, 61, 62))
    drv.ok('NetworkDriver.CreateNetwork', web)
    drv.ok('NetworkDriver.CreateNetwork', cache)
    db['Options']['com.docker.network.generic'] = {
        'opencontrail.policies': users.name,
        'opencontrail.allow': '%s,%s' % (web['NetworkID'],
                                         cache['NetworkID'])}
    drv.ok('NetworkDriver.CreateNetwork', db)
    to_web = ids.allow_policy_uuid(db['NetworkID'], web['NetworkID'])
    to_cache = ids.allow_policy_uuid(cache['NetworkID'], db['NetworkID'])
    # After the policy asked by name, in the order given; one on each
    # peer.
    assert allow_refs(fake, db['NetworkID']) == {
        users.uuid: 0, to_web: 1, to_cache: 2}
    assert allow_refs(fake, web['NetworkID']) == {to_web: 0}
    assert allow_refs(fake, cache['NetworkID']) == {to_cache: 0}
    policy = vnc.network_policy_read(id=to_web)
    vn_names = {n['NetworkID']: ':'.join(PROJECT + [n['NetworkID']])
                for n in (web, db)}
    assert sorted((r.direction, r.ethertype, r.action_list.simple_action,
                   r.protocol, r.src_addresses[0].virtual_network,
                   r.dst_addresses[0].virtual_network)
                  for r in policy.get_network_policy_entries().policy_rule
                  ) == [('<>', e, 'pass', 'any', vn_names[db['NetworkID']],
                         vn_names[web['NetworkID']])
                        for e in ('IPv4', 'IPv6')]
    assert policy.get_fq_name()[:2] == PROJECT
    # Re-sent as Docker does: the same, nothing more; with another list:
    # refused.
    drv.ok('NetworkDriver.CreateNetwork', db)
    assert allow_refs(fake, web['NetworkID']) == {to_web: 0}
    other = copy.deepcopy(db)
    other['Options']['com.docker.network.generic'][
        'opencontrail.allow'] = web['NetworkID']
    status, reply = drv.call('NetworkDriver.CreateNetwork', other)
    assert status == 409 and 'opencontrail.allow' in reply['Err']

    # web goes: its policy goes, db keeps the rest.
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': web['NetworkID']})
    assert fake.get('network-policy', to_web) is None
    assert allow_refs(fake, db['NetworkID']) == {users.uuid: 0,
                                                 to_cache: 2}
    # After a restart, db goes: its policy with cache goes, cache stays,
    # and the policy named by the user stays.
    drv.restart()
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': db['NetworkID']})
    assert fake.get('network-policy', to_cache) is None
    assert allow_refs(fake, cache['NetworkID']) == {}
    assert fake.get('network-policy', users.uuid) is not None

    # Someone else's network refers to the policy: it stays, named.
    db['Options']['com.docker.network.generic'] = {
        'opencontrail.allow': cache['NetworkID']}
    drv.ok('NetworkDriver.CreateNetwork', db)
    nova = vnc_api.VirtualNetwork('nova-' + contrail_target.RUN,
                                  run_project())
    nova.add_network_policy(
        vnc.network_policy_read(id=to_cache),
        vnc_api.VirtualNetworkPolicyType(sequence=vnc_api.SequenceType(0, 0)))
    vnc.virtual_network_create(nova)
    status, reply = drv.call('NetworkDriver.DeleteNetwork',
                             {'NetworkID': cache['NetworkID']})
    assert status == 409 and nova.uuid in reply['Err'], reply
    assert fake.get('virtual-network',
                    ids.network_uuid(cache['NetworkID'])) is None
    assert fake.get('network-policy', to_cache) is not None
    assert allow_refs(fake, db['NetworkID']) == {}
    # Theirs gone, Docker's next DeleteNetwork (or the retry) takes it.
    vnc.virtual_network_delete(id=nova.uuid)
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': cache['NetworkID']})
    assert fake.get('network-policy', to_cache) is None
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': db['NetworkID']})
    vnc.network_policy_delete(id=users.uuid)


def test_allow_across_projects(fake, drv, vnc):
    """The other network in another project: the policy is in the asking
    network's project, and the other network refers to it all the same."""
    other = vnc_api.Project(contrail_target.PROJECT_NAME + '-b',
                            vnc_api.Domain(PROJECT[0]))
    vnc.project_create(other)
    try:
        web, db = (net_body(n, v6=False) for n in (76, 77))
        web['Options']['com.docker.network.generic'] = {
            'tenant': other.name}
        db['Options']['com.docker.network.generic'] = {
            'opencontrail.allow': web['NetworkID']}
        drv.ok('NetworkDriver.CreateNetwork', web)
        drv.ok('NetworkDriver.CreateNetwork', db)
        policy = ids.allow_policy_uuid(web['NetworkID'], db['NetworkID'])
        assert allow_refs(fake, web['NetworkID']) == {policy: 0}
        assert allow_refs(fake, db['NetworkID']) == {policy: 0}
        read = vnc.network_policy_read(id=policy)
        assert read.get_fq_name()[:2] == PROJECT
        assert {r.dst_addresses[0].virtual_network for r in
                read.get_network_policy_entries().get_policy_rule()} == {
            ':'.join(other.get_fq_name() + [web['NetworkID']])}
        drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': web['NetworkID']})
        assert fake.get('network-policy', policy) is None
        assert allow_refs(fake, db['NetworkID']) == {}
        drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': db['NetworkID']})
    finally:
        vnc.project_delete(id=other.uuid)


@pytest.mark.noauth_only
def test_allow_request_budget(fake, drv):
    """What -o opencontrail.allow costs beyond a plain network: one read
    of the network allowed, the policy, the other end's ref and this
    host's record at create; the other end's ref, the policy and the
    record at delete."""
    web, db, cache = (net_body(n, v6=False) for n in (68, 69, 70))
    # The first network also looks up the project and the cluster's ASN.
    drv.ok('NetworkDriver.CreateNetwork', cache)
    plain = counted(fake, drv, 'CreateNetwork', web)
    db['Options']['com.docker.network.generic'] = {
        'opencontrail.allow': web['NetworkID']}
    allowed = counted(fake, drv, 'CreateNetwork', db)
    assert (plain, allowed) == (2, 6)
    assert counted(fake, drv, 'DeleteNetwork',
                   {'NetworkID': db['NetworkID']}) == 2 + 3
    assert counted(fake, drv, 'DeleteNetwork',
                   {'NetworkID': web['NetworkID']}) == 2
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': cache['NetworkID']})


def allow_state(fake, *nets):
    """What -o opencontrail.allow touches: the networks, their policy
    refs, the policies, this run's records in the key-value store."""
    return ({o['uuid'] for o in fake.objects('virtual-network')},
            {n['NetworkID']: allow_refs(fake, n['NetworkID'])
             for n in nets if fake.get('virtual-network', ids.network_uuid(
                 n['NetworkID']))},
            {o['uuid'] for o in fake.objects('network-policy')},
            fake.kv())


@pytest.mark.noauth_only
def test_allow_fault_at_every_request(fake, drv):
    """A create or delete with -o opencontrail.allow failing at any request
    leaves what stood before (create) or part of what it removes
    (delete); Docker's re-send completes it."""
    web, db = net_body(71, v6=False), net_body(72, v6=False)
    db['Options']['com.docker.network.generic'] = {
        'opencontrail.allow': web['NetworkID']}
    drv.ok('NetworkDriver.CreateNetwork', web)
    before = allow_state(fake, web, db)
    create = counted(fake, drv, 'CreateNetwork', db)
    made = allow_state(fake, web, db)
    delete = counted(fake, drv, 'DeleteNetwork',
                     {'NetworkID': db['NetworkID']})
    assert allow_state(fake, web, db) == before
    for k in range(1, create + 1):
        fake.reset_requests()
        fake.fail_request(k, '500')
        status, reply = drv.call('NetworkDriver.CreateNetwork', db)
        fake.clear_faults()
        assert status >= 500 and reply['Err'], k
        assert allow_state(fake, web, db) == before, k
        drv.ok('NetworkDriver.CreateNetwork', db)
        assert allow_state(fake, web, db) == made, k
        drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': db['NetworkID']})
    drv.ok('NetworkDriver.CreateNetwork', db)
    for k in range(1, delete + 1):
        fake.reset_requests()
        fake.fail_request(k, '500')
        status, reply = drv.call('NetworkDriver.DeleteNetwork',
                                 {'NetworkID': db['NetworkID']})
        fake.clear_faults()
        assert status >= 500 and reply['Err'], k
        drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': db['NetworkID']})
        assert allow_state(fake, web, db) == before, k
        drv.ok('NetworkDriver.CreateNetwork', db)
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': db['NetworkID']})
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': web['NetworkID']})


def plug(drv, namespaces, host, net, m):
    """CreateEndpoint, Join, then what Docker does: the container end into
    a sandbox of its own, with its address and the gateway's route."""
    ep = ep_body(net, m, v6=False)
    drv.ok('NetworkDriver.CreateEndpoint', ep)
    sandbox = namespaces.add()
    join = drv.ok('NetworkDriver.Join', dict(
        ids_of(ep), SandboxKey='/run/netns/' + sandbox))
    src = join['InterfaceName']['SrcName']
    conftest_sh('ip', '-n', host, 'link', 'set', src, 'netns', sandbox)
    for cmd in (('ip', 'link', 'set', src, 'name', 'eth0'),
                ('ip', 'addr', 'add', ep['Interface']['Address'], 'dev',
                 'eth0'),
                ('ip', 'link', 'set', 'eth0', 'up'),
                ('ip', 'route', 'add', 'default', 'via', join['Gateway'])):
        namespaces.run(sandbox, *cmd)
    return sandbox, ep['Interface']['Address'].split('/')[0]


def pings(namespaces, sandbox, address, tries=10):
    for _ in range(tries):
        if namespaces.run(sandbox, 'busybox', 'ping', '-c', '1', '-W', '1',
                          address, check=False).returncode == 0:
            return True
        time.sleep(0.2)
    return False


@pytest.mark.noauth_only
def test_allow_with_bridge_ports(fake, namespaces, driver_factory):
    """With the bridge port driver, two networks with an allow policy talk
    on this host, also when the first bridge was made before a restart;
    a third network stays apart from both."""
    host = namespaces.add()
    relay = Relay(host, fake.host, fake.port)
    try:
        _allow_with_bridge_ports(fake, namespaces, driver_factory, host,
                                 dict(contrail_target.driver_options(fake),
                                      **{'contrail.api_server': '127.0.0.1',
                                         'contrail.api_port': relay.port}))
    finally:
        relay.close()


def _allow_with_bridge_ports(fake, namespaces, driver_factory, host,
                             options):
    drv = driver_factory(netns=host, name='br', backend='contrail',
                         port_driver='bridge', **options).start()
    web, db, other = (net_body(n, v6=False) for n in (73, 74, 75))
    db['Options']['com.docker.network.generic'] = {
        'opencontrail.allow': web['NetworkID']}
    for net in (web, db, other):
        drv.ok('NetworkDriver.CreateNetwork', net)
    in_db, db_ip = plug(drv, namespaces, host, db, 0)
    # The driver forgets all: web's bridge must learn of db from Contrail.
    drv.restart()
    in_web, web_ip = plug(drv, namespaces, host, web, 0)
    in_other, _other_ip = plug(drv, namespaces, host, other, 0)
    assert pings(namespaces, in_db, web_ip)
    assert pings(namespaces, in_web, db_ip)
    assert pings(namespaces, in_other, '10.0.75.1')
    assert not pings(namespaces, in_other, web_ip, tries=2)
    assert not pings(namespaces, in_other, db_ip, tries=2)
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': web['NetworkID']})
    assert 'allow ' not in namespaces.run(
        host, 'nft', 'list', 'table', 'inet', 'opencontrail_net').stdout
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': db['NetworkID']})
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': other['NetworkID']})


def test_allow_refused(fake, drv, vnc):
    """A network to allow that has no virtual-network of the driver's, an
    attached existing network, or the network itself: refused naming
    it, with nothing made."""
    web = net_body(63, v6=False)
    drv.ok('NetworkDriver.CreateNetwork', web)
    [existing] = theirs(vnc, vnc_api.VirtualNetwork, 'nova')
    attached = net_body(64, v6=False, generic={
        'opencontrail.network': existing.uuid})
    attached['IPv4Data'] = []
    drv.ok('NetworkDriver.CreateNetwork', attached)
    vns = {o['uuid'] for o in fake.objects('virtual-network')}
    policies = {o['uuid'] for o in fake.objects('network-policy')}
    gone = contrail_target.docker_id(65)
    me = net_body(66, v6=False)
    for value, why in (
            ('%s,%s' % (web['NetworkID'], gone),
             'network %s has no virtual-network of this driver' % gone),
            (attached['NetworkID'], 'network %s has no virtual-network of '
             'this driver' % attached['NetworkID']),
            (me['NetworkID'], 'a network talks to itself'),
            ('web', 'Docker cannot be asked')):
        me['Options']['com.docker.network.generic'] = {
            'opencontrail.allow': value}
        status, reply = drv.call('NetworkDriver.CreateNetwork', me)
        assert status == 400, reply
        assert 'opencontrail.allow' in reply['Err'] and why in reply['Err']
        assert {o['uuid'] for o in fake.objects('virtual-network')} == vns
        assert {o['uuid'] for o in
                fake.objects('network-policy')} == policies
    # An existing network gets no policy of ours either.
    status, reply = drv.call('NetworkDriver.CreateNetwork', net_body(
        67, generic={'opencontrail.network': existing.uuid,
                     'opencontrail.allow': web['NetworkID']}))
    assert status == 400 and 'not the driver\'s to change' in reply['Err']
    for net in (attached, web):
        drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': net['NetworkID']})
    vnc.virtual_network_delete(id=existing.uuid)


# (value, accepted by the API server with its defaults, by the driver),
# as a real Tungsten Fabric server answered (contrail.md). The driver
# refuses one value the server takes: after an IPv4 address a route
# target has 16 bits for its number (BGP's type-1 extended community), so
# the server keeps a target no BGP speaker can carry.
RT_TABLE = [
    ('64512:7999999', True, True), ('64512:8000000', False, False),
    ('64512:8000001', False, False), ('64512:16777216', False, False),
    ('64512:16777217', True, True), ('70000:5', False, False),
    ('1.2.3.4:5', True, True), ('64513:4294967295', True, True),
    ('65000:8000000', True, True), ('1.2.3.4:70000', True, False),
]


@pytest.mark.parametrize('four_byte', [False, True])
def test_route_targets_as_the_server_rules(fake, drv, vnc, four_byte):
    gsc = vnc.global_system_config_read(
        fq_name=['default-global-system-config'])
    if not fake.is_fake and (
            gsc.get_autonomous_system() != 64512 or
            bool(gsc.get_enable_4byte_as()) != four_byte):
        pytest.skip('the table is for global ASN 64512; not changing a '
                    'real cluster\'s global-system-config')
    gsc.set_enable_4byte_as(four_byte)
    vnc.global_system_config_update(gsc)
    drv.restart()
    for n, (value, server_takes, driver_takes) in enumerate(RT_TABLE):
        if four_byte and value == '70000:5':
            server_takes = driver_takes = True
        vn = vnc_api.VirtualNetwork(
            'probe-%d-%s' % (n, contrail_target.RUN),
            vnc_api.Project(PROJECT[1], vnc_api.Domain(PROJECT[0])))
        vn.set_route_target_list(vnc_api.RouteTargetList(['target:' +
                                                          value]))
        try:
            vnc.virtual_network_create(vn)
            server = True
            vnc.virtual_network_delete(id=vn.uuid)
        except vnc_api.BadRequest:
            server = False
        assert server == server_takes, value
        status, reply = drv.call('NetworkDriver.CreateNetwork', net_body(
            30 + n, v6=False, generic={'rt': value}))
        assert (status == 200) == driver_takes, (value, reply)
        if not driver_takes:
            assert status == 400 and value in reply['Err'], reply
            assert 'option rt' in reply['Err']


def test_options_are_checked(fake, drv, vnc):
    # A bare ipam name is one of the network's project.
    ipam = vnc_api.NetworkIpam('mine', vnc_api.Project(
        PROJECT[1], vnc_api.Domain(PROJECT[0])))
    vnc.network_ipam_create(ipam)
    net = net_body(40, v6=False, generic={'opencontrail.ipam': 'mine'})
    drv.ok('NetworkDriver.CreateNetwork', net)
    vn = fake.get('virtual-network', ids.network_uuid(net['NetworkID']))
    assert vn['network_ipam_refs'][0]['uuid'] == ipam.uuid
    status, reply = drv.call('NetworkDriver.CreateNetwork', net_body(
        41, generic={'opencontrail.ipam': 'nosuch'}))
    assert status == 400 and 'opencontrail.ipam' in reply['Err']
    # Docker re-sends CreateNetwork: the same options are fine, others are
    # a conflict naming what differs.
    drv.ok('NetworkDriver.CreateNetwork', net)
    for generic, word in (({'opencontrail.ipam': 'mine', 'rt': '64512:9'},
                           'rt is'),
                          ({'opencontrail.ipam': 'mine', 'name': 'x'},
                           'name is'),
                          ({'opencontrail.ipam': ':'.join(PROJECT + ['mine']),
                            'tenant': 'default-project'}, 'tenant is')):
        status, reply = drv.call('NetworkDriver.CreateNetwork', dict(
            net, Options={'com.docker.network.generic': generic}))
        assert status == 409 and word in reply['Err'], reply
    assert len(fake.objects('virtual-network')) == 1


def test_tenant_takes_the_configured_domain(fake, driver_factory, vnc):
    corp = 'corp-' + contrail_target.RUN
    domain = vnc_api.Domain(corp)
    vnc.domain_create(domain)
    team = vnc_api.Project('team', domain)
    vnc.project_create(team)
    ipam = vnc_api.NetworkIpam('default-network-ipam', team)
    vnc.network_ipam_create(ipam)
    drv = contrail_driver(driver_factory, fake)
    drv.options['contrail.domain'] = corp
    drv.options['contrail.network_ipam'] = 'team:default-network-ipam'
    drv.write_config()
    drv.start()
    net = net_body(42, v6=False, generic={'tenant': 'team'})
    drv.ok('NetworkDriver.CreateNetwork', net)
    vn = fake.get('virtual-network', ids.network_uuid(net['NetworkID']))
    assert vn['fq_name'][:2] == [corp, 'team']
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': net['NetworkID']})
    vnc.network_ipam_delete(id=ipam.uuid)
    vnc.project_delete(id=team.uuid)
    vnc.domain_delete(id=domain.uuid)


def test_every_uuid_made_is_logged(fake, drv):
    net = net_body(43)
    drv.ok('NetworkDriver.CreateNetwork', net)
    ep = ep_body(net, 0)
    drv.ok('NetworkDriver.CreateEndpoint', ep)
    drv.ok('NetworkDriver.Join', join_body(ep))
    log = drv.log_text()
    for kind in ('virtual-network', 'security-group',
                 'virtual-machine-interface', 'instance-ip',
                 'virtual-machine'):
        for obj in fake.objects(kind):
            if obj['fq_name'][:2] == ['default-domain', 'default-project']:
                continue
            assert obj['uuid'] in log, kind
    # Each is marked as ours.
    for kind in ('virtual-network', 'security-group',
                 'virtual-machine-interface', 'instance-ip',
                 'virtual-machine'):
        assert {o['id_perms']['creator'] for o in fake.objects(kind)} == {
            'opencontrail-net'}, kind
    drv.ok('NetworkDriver.Leave', ids_of(ep))


def test_start_checks_the_hosts_virtual_router(fake, driver_factory, vnc,
                                               workdir):
    """With the vrouter port driver the agent gets a port only through a
    virtual-router named [DEFAULT] host: start says so when there is
    none, and names it when there is."""
    options = {'host': contrail_target.HOST,
               'vrouter.agent_url': 'http://127.0.0.1:9',
               'vrouter.ports_dir': workdir}
    drv = contrail_driver(driver_factory, fake, name='vr1', **options)
    drv.options['port_driver'] = 'vrouter'
    drv.write_config()
    drv.start()
    log = drv.log_text()
    assert 'ERROR' in log and 'No virtual-router default-global-system-' \
        'config:%s' % contrail_target.HOST in log
    assert 'hostname -s' in log
    vrouter = contrail_target.virtual_router(vnc)
    fake.reset_requests()
    drv.restart()
    assert 'This host\'s virtual-router is %s' % vrouter in drv.log_text()
    # One request for it at start.
    assert fake.count('POST', '/fqname-to-id') == 1
    vnc.virtual_router_delete(id=vrouter)
