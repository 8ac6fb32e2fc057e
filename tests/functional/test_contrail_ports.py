"""Exposed and published ports on the contrail backend, against the API.

The external network and its floating-ip pool are someone else's: made
with the real vnc_api client straight at the API, and they outlive every
test. What the driver made is read back with vnc_api too.
"""

import ipaddress

import pytest

from opencontrail_net import ids
from tests import contrail_target
from tests.functional import conftest
from tests.functional.conftest import contrail_driver
from tests.functional.test_contrail_backend import (
    counted, counted_apart, ep_body, ids_of, join_body, net_body)
from tests.functional.test_contrail_shared import move_container_end

PROJECT = contrail_target.PROJECT
POOL = ':'.join(PROJECT + ['public', 'pool'])
EXPOSED = 'com.docker.network.endpoint.exposedports'
PORTMAP = 'com.docker.network.portmap'

conftest  # noqa: B018  (fixtures)


@pytest.fixture
def vnc(fake):
    return contrail_target.vnc_client(fake)


@pytest.fixture
def pool(vnc):
    """A router_external network with a floating-ip pool, not ours."""
    vn, fip_pool = contrail_target.external_pool(vnc, 'public')
    yield fip_pool
    vnc.floating_ip_pool_delete(id=fip_pool.uuid)
    vnc.virtual_network_delete(id=vn.uuid)


def ports(exposed=(), published=()):
    """Options of a ProgramExternalConnectivity, as Docker sends them."""
    return {EXPOSED: [{'Proto': 17 if p.endswith('/udp') else 6,
                       'Port': int(p.split('/')[0])}
                      for p in list(exposed) + [c for _h, c in published]],
            PORTMAP: [{'Proto': 17 if c.endswith('/udp') else 6, 'IP': '',
                       'Port': int(c.split('/')[0]), 'HostIP': '',
                       'HostPort': h, 'HostPortEnd': h}
                      for h, c in published]}


def program(drv, ep, **kwargs):
    return drv.call('NetworkDriver.ProgramExternalConnectivity',
                    dict(ids_of(ep), Options=ports(**kwargs)))


def container(fake, drv, namespaces, n, generic=None):
    """A network (with the pool option) and a joined endpoint of it."""
    net = net_body(n, v6=False, generic=dict(
        {'opencontrail.floating_ip_pool': POOL}, **(generic or {})))
    drv.ok('NetworkDriver.CreateNetwork', net)
    ep = ep_body(net, 0, v6=False)
    drv.ok('NetworkDriver.CreateEndpoint', ep)
    move_container_end(drv.ok('NetworkDriver.Join', join_body(ep)),
                       namespaces.add())
    return net, ep


def ours_left(fake, ep):
    """The endpoint's floating IP and ports group, where they stand."""
    eid = ep['EndpointID']
    return [kind for kind, uuid in (
        ('floating-ip', ids.floating_ip_uuid(eid)),
        ('security-group', ids.endpoint_security_group_uuid(eid)))
        if fake.get(kind, uuid) is not None]


def rules_of(sg):
    return sorted(
        (r.ethertype, r.protocol, r.src_addresses[0].subnet.ip_prefix,
         r.dst_addresses[0].security_group, r.dst_ports[0].start_port,
         r.dst_ports[0].end_port)
        for r in sg.get_security_group_entries().get_policy_rule())


def test_publish_and_revoke(fake, drv, vnc, pool, namespaces):
    net, ep = container(fake, drv, namespaces, 60)
    eid = ep['EndpointID']
    vmi_uuid = ids.endpoint_uuid(eid)
    status, reply = program(drv, ep, exposed=['8080'],
                            published=[(18080, '80')])
    assert status == 200, reply
    fip = vnc.floating_ip_read(id=ids.floating_ip_uuid(eid))
    address = fip.get_floating_ip_address()
    assert ipaddress.ip_address(address) in ipaddress.ip_network(
        '203.0.113.0/24')
    assert fip.get_fq_name() == POOL.split(':') + [eid]
    assert fip.parent_uuid == pool.uuid
    assert [r['uuid'] for r in fip.get_virtual_machine_interface_refs()] \
        == [vmi_uuid]
    assert fip.get_project_refs()[0]['to'] == PROJECT
    assert fip.get_id_perms().creator == 'opencontrail-net'
    assert fip.get_floating_ip_port_mappings_enable() is True
    assert [(m.protocol, m.src_port, m.dst_port) for m in
            fip.get_floating_ip_port_mappings().get_port_mappings()] == [
        ('tcp', 18080, 80)]
    sg = vnc.security_group_read(id=ids.endpoint_security_group_uuid(eid))
    assert sg.get_id_perms().creator == 'opencontrail-net'
    assert rules_of(sg) == [('IPv4', 'tcp', '0.0.0.0', 'local', 80, 80),
                            ('IPv4', 'tcp', '0.0.0.0', 'local', 8080, 8080)]
    vmi = vnc.virtual_machine_interface_read(id=vmi_uuid)
    assert sg.uuid in [r['uuid'] for r in vmi.get_security_group_refs()]
    # The network's own group stays: the ports group is added beside it.
    assert ids.security_group_uuid(net['NetworkID']) in [
        r['uuid'] for r in vmi.get_security_group_refs()]
    info = drv.ok('NetworkDriver.EndpointOperInfo', ids_of(ep))['Value']
    assert info['floating_ip'] == address
    assert info['floating_ip_pool'] == POOL
    assert info[PORTMAP] == [{'Proto': 6, 'IP': '10.0.60.2', 'Port': 80,
                              'HostIP': address, 'HostPort': 18080,
                              'HostPortEnd': 18080}]
    log = drv.log_text()
    assert address in log and fip.uuid in log
    # Docker sends it again (or a retry): the same floating IP.
    assert program(drv, ep, exposed=['8080'],
                   published=[(18080, '80')])[0] == 200
    assert len(fake.objects('floating-ip')) == 1
    assert vnc.floating_ip_read(id=fip.uuid).get_floating_ip_address() == \
        address
    drv.ok('NetworkDriver.RevokeExternalConnectivity', ids_of(ep))
    assert ours_left(fake, ep) == []
    vmi = vnc.virtual_machine_interface_read(id=vmi_uuid)
    assert [r['uuid'] for r in vmi.get_security_group_refs()] == [
        ids.security_group_uuid(net['NetworkID'])]
    info = drv.ok('NetworkDriver.EndpointOperInfo', ids_of(ep))['Value']
    assert 'floating_ip' not in info and PORTMAP not in info
    drv.ok('NetworkDriver.Leave', ids_of(ep))
    drv.ok('NetworkDriver.DeleteEndpoint', ids_of(ep))
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': net['NetworkID']})
    assert fake.objects('security-group') == []
    assert vnc.floating_ip_pool_read(id=pool.uuid)


def test_request_counts(fake, drv, pool, namespaces):
    """No ports: no request for Program and Revoke, none more at delete."""
    net, ep = container(fake, drv, namespaces, 61)
    body = dict(ids_of(ep), Options=ports())
    counts = {'Program': counted(fake, drv, 'ProgramExternalConnectivity',
                                 body),
              'Revoke': counted(fake, drv, 'RevokeExternalConnectivity',
                                ids_of(ep))}
    drv.ok('NetworkDriver.Leave', ids_of(ep))
    # (On the path Docker waits for, after the answer.)
    counts['DeleteEndpoint'] = counted_apart(fake, drv, 'DeleteEndpoint',
                                             ids_of(ep))
    assert counts == {'Program': 0, 'Revoke': 0, 'DeleteEndpoint': (0, 3)}
    # --expose: the group and the interface's ref to it.
    ep = ep_body(net, 1, v6=False)
    drv.ok('NetworkDriver.CreateEndpoint', ep)
    move_container_end(drv.ok('NetworkDriver.Join', join_body(ep, 'ab' * 6)),
                       namespaces.add())
    body = dict(ids_of(ep), Options=ports(exposed=['8080']))
    counts = {'Program': counted(fake, drv, 'ProgramExternalConnectivity',
                                 body),
              'Revoke': counted(fake, drv, 'RevokeExternalConnectivity',
                                ids_of(ep)),
              'Revoke again': counted(fake, drv,
                                      'RevokeExternalConnectivity',
                                      ids_of(ep))}
    # -p: the floating IP and a read of its address too.
    body = dict(ids_of(ep), Options=ports(published=[(18080, '80')]))
    counts['Program -p'] = counted(fake, drv, 'ProgramExternalConnectivity',
                                   body)
    counts['Program -p again'] = counted(
        fake, drv, 'ProgramExternalConnectivity', body)
    counts['Revoke -p'] = counted(fake, drv, 'RevokeExternalConnectivity',
                                  ids_of(ep))
    drv.ok('NetworkDriver.ProgramExternalConnectivity', body)
    drv.ok('NetworkDriver.Leave', ids_of(ep))
    # Without Revoke: the floating IP before the interface, the group
    # after it.
    counts['DeleteEndpoint -p'] = counted_apart(fake, drv, 'DeleteEndpoint',
                                                ids_of(ep))
    # Sent again, both are found and set to what is asked now.
    assert counts == {'Program': 2, 'Revoke': 2, 'Revoke again': 0,
                      'Program -p': 4, 'Revoke -p': 3,
                      'Program -p again': 6, 'DeleteEndpoint -p': (0, 5)}
    assert fake.objects('floating-ip') == []
    assert [s['uuid'] for s in fake.objects('security-group')] == [
        ids.security_group_uuid(net['NetworkID'])]


def test_restart_between_program_and_revoke(fake, drv, vnc, pool,
                                            namespaces):
    """The driver dies (kill -9) with ports published: Revoke after its
    restart still removes them, found on the interface at start."""
    net, ep = container(fake, drv, namespaces, 62)
    assert program(drv, ep, published=[(18080, '80')])[0] == 200
    shown = drv.ok('NetworkDriver.EndpointOperInfo', ids_of(ep))['Value']
    assert shown['floating_ip'] and shown[PORTMAP][0]['HostPort'] == 18080
    drv.restart()
    # Shown after the restart as before, from what start read.
    assert drv.ok('NetworkDriver.EndpointOperInfo',
                  ids_of(ep)) == {'Value': shown}
    fake.reset_requests()
    drv.ok('NetworkDriver.RevokeExternalConnectivity', ids_of(ep))
    assert ours_left(fake, ep) == []
    # The floating IP, the interface's ref, the group.
    assert fake.count() == 3
    drv.ok('NetworkDriver.Leave', ids_of(ep))
    drv.ok('NetworkDriver.DeleteEndpoint', ids_of(ep))
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': net['NetworkID']})


def test_delete_endpoint_without_revoke_after_restart(fake, drv, pool,
                                                      namespaces):
    """kill -9 between Program and Revoke, and Docker never revokes (its
    own restart): DeleteEndpoint removes them."""
    net, ep = container(fake, drv, namespaces, 63)
    assert program(drv, ep, exposed=['9000/udp'],
                   published=[(18080, '80')])[0] == 200
    drv.kill()
    drv.start()
    drv.ok('NetworkDriver.Leave', ids_of(ep))
    drv.ok('NetworkDriver.DeleteEndpoint', ids_of(ep))
    conftest.drained(drv)
    assert ours_left(fake, ep) == []
    assert fake.objects('virtual-machine-interface') == []
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': net['NetworkID']})


def test_group_made_but_not_referred_to(fake, drv, vnc, pool, namespaces):
    """kill -9 between making the ports group and adding the interface's
    ref to it: CreateEndpoint had named the ports, and that is enough for
    DeleteEndpoint after the restart to remove the group."""
    net = net_body(65, v6=False, generic={
        'opencontrail.floating_ip_pool': POOL})
    drv.ok('NetworkDriver.CreateNetwork', net)
    ep = dict(ep_body(net, 0, v6=False), Options=ports(exposed=['8080']))
    drv.ok('NetworkDriver.CreateEndpoint', ep)
    move_container_end(drv.ok('NetworkDriver.Join', join_body(ep)),
                       namespaces.add())
    assert program(drv, ep, exposed=['8080'])[0] == 200
    group = ids.endpoint_security_group_uuid(ep['EndpointID'])
    # What the kill leaves: the group, and no ref to it.
    vnc.ref_update('virtual-machine-interface',
                   ids.endpoint_uuid(ep['EndpointID']), 'security-group',
                   group, None, 'DELETE')
    drv.kill()
    drv.start()
    drv.ok('NetworkDriver.Leave', ids_of(ep))
    drv.ok('NetworkDriver.DeleteEndpoint', ids_of(ep))
    conftest.drained(drv)
    assert ours_left(fake, ep) == []
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': net['NetworkID']})


def test_delete_network_takes_our_leftovers(fake, drv, pool, namespaces):
    """Docker swallowed a failed DeleteEndpoint: the floating IP and group
    left do not keep the network."""
    net, ep = container(fake, drv, namespaces, 64)
    assert program(drv, ep, published=[(18080, '80')])[0] == 200
    drv.ok('NetworkDriver.Leave', ids_of(ep))
    drv.restart()
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': net['NetworkID']})
    assert ours_left(fake, ep) == []
    assert fake.objects('virtual-machine-interface') == []
    assert fake.get('virtual-network',
                    ids.network_uuid(net['NetworkID'])) is None
    assert fake.get('floating-ip-pool', pool.uuid) is not None


def test_pool_option_is_checked(fake, drv, pool):
    for value, why in ((POOL[:-len('pool')] + 'nosuch',
                        'no floating-ip-pool'),
                       (PROJECT[1] + ':nosuch:pool', 'no floating-ip-pool'),
                       ('pool', 'DOMAIN:PROJECT:NETWORK:POOL')):
        status, reply = drv.call('NetworkDriver.CreateNetwork', net_body(
            65, generic={'opencontrail.floating_ip_pool': value}))
        assert status == 400, reply
        assert 'opencontrail.floating_ip_pool' in reply['Err']
        assert value in reply['Err'] and why in reply['Err'], reply
    assert [v['fq_name'] for v in fake.objects('virtual-network')] == [
        PROJECT + ['public']]
    assert fake.objects('security-group') == []
    # PROJECT:NETWORK:POOL takes the configured domain; a re-sent
    # CreateNetwork with another pool is a conflict naming it.
    net = net_body(66, generic={
        'opencontrail.floating_ip_pool': PROJECT[1] + ':public:pool'})
    drv.ok('NetworkDriver.CreateNetwork', net)
    drv.ok('NetworkDriver.CreateNetwork', dict(net, Options={
        'com.docker.network.generic': {
            'opencontrail.floating_ip_pool': POOL}}))
    status, reply = drv.call('NetworkDriver.CreateNetwork', net_body(66))
    assert status == 409
    assert 'opencontrail.floating_ip_pool is %s' % POOL in reply['Err']
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': net['NetworkID']})


def test_without_a_pool(fake, drv, vnc, namespaces):
    """-p is refused, saying how to configure a pool; --expose works."""
    net = net_body(67, v6=False)
    drv.ok('NetworkDriver.CreateNetwork', net)
    ep = ep_body(net, 0, v6=False)
    drv.ok('NetworkDriver.CreateEndpoint', ep)
    status, reply = program(drv, ep, published=[(18080, '80')])
    assert status == 400
    assert '[contrail] floating_ip_pool' in reply['Err']
    assert '-o opencontrail.floating_ip_pool=' in reply['Err']
    assert ours_left(fake, ep) == []
    assert program(drv, ep, exposed=['8080'])[0] == 200
    assert ours_left(fake, ep) == ['security-group']
    drv.ok('NetworkDriver.DeleteEndpoint', ids_of(ep))
    conftest.drained(drv)
    assert ours_left(fake, ep) == []
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': net['NetworkID']})


def test_configured_pool_and_bindings(fake, driver_factory, vnc, pool,
                                      namespaces):
    """[contrail] floating_ip_pool; dual stack; host ranges, HostIP."""
    drv = contrail_driver(driver_factory, fake)
    drv.options['contrail.floating_ip_pool'] = PROJECT[1] + ':public:pool'
    drv.write_config()
    drv.start()
    net = net_body(68)
    drv.ok('NetworkDriver.CreateNetwork', net)
    ep = ep_body(net, 0)
    drv.ok('NetworkDriver.CreateEndpoint', ep)
    # A host address: refused, naming it; nothing made.
    body = ports(published=[(18080, '80')])
    body[PORTMAP][0]['HostIP'] = '127.0.0.1'
    status, reply = drv.call('NetworkDriver.ProgramExternalConnectivity',
                             dict(ids_of(ep), Options=body))
    assert status == 400 and '127.0.0.1' in reply['Err'], reply
    assert ours_left(fake, ep) == []
    # A host port range takes its first port; -p 53/udp (no host port)
    # the container's.
    body = ports(published=[(18080, '80'), (0, '53/udp')])
    body[PORTMAP][0]['HostPortEnd'] = 18090
    drv.ok('NetworkDriver.ProgramExternalConnectivity',
           dict(ids_of(ep), Options=body))
    fip = vnc.floating_ip_read(id=ids.floating_ip_uuid(ep['EndpointID']))
    assert sorted((m.protocol, m.src_port, m.dst_port) for m in
                  fip.get_floating_ip_port_mappings().get_port_mappings()) \
        == [('tcp', 18080, 80), ('udp', 53, 53)]
    sg = vnc.security_group_read(
        id=ids.endpoint_security_group_uuid(ep['EndpointID']))
    assert rules_of(sg) == [('IPv4', 'tcp', '0.0.0.0', 'local', 80, 80),
                            ('IPv4', 'udp', '0.0.0.0', 'local', 53, 53),
                            ('IPv6', 'tcp', '::', 'local', 80, 80),
                            ('IPv6', 'udp', '::', 'local', 53, 53)]
    drv.ok('NetworkDriver.DeleteEndpoint', ids_of(ep))
    conftest.drained(drv)
    assert ours_left(fake, ep) == []
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': net['NetworkID']})


def test_failure_part_way_undoes(fake, drv, pool, namespaces):
    net, ep = container(fake, drv, namespaces, 69)
    fake.reset_requests()
    fake.fail_request(3, '500')     # the floating IP's create
    status, _reply = program(drv, ep, published=[(18080, '80')])
    assert status == 500
    assert ours_left(fake, ep) == []
    vmi = fake.get('virtual-machine-interface',
                   ids.endpoint_uuid(ep['EndpointID']))
    assert [r['uuid'] for r in vmi['security_group_refs']] == [
        ids.security_group_uuid(net['NetworkID'])]
    drv.ok('NetworkDriver.Leave', ids_of(ep))
    drv.ok('NetworkDriver.DeleteEndpoint', ids_of(ep))
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': net['NetworkID']})


def test_docker29_call_order(fake, drv, vnc, pool, namespaces):
    """Docker 29 sends ProgramExternalConnectivity again with no Revoke
    between (another endpoint was the gateway meanwhile) and Revoke after
    Leave, and may revoke an endpoint the driver never saw: each harmless,
    and nothing of the driver's is left."""
    net, ep = container(fake, drv, namespaces, 61)
    eid = ep['EndpointID']
    assert program(drv, ep, published=[(18080, '80')])[0] == 200
    address = vnc.floating_ip_read(
        id=ids.floating_ip_uuid(eid)).get_floating_ip_address()
    # Again, other ports, no Revoke between: the new set replaces the old.
    assert program(drv, ep, published=[(18081, '81')])[0] == 200
    fip = vnc.floating_ip_read(id=ids.floating_ip_uuid(eid))
    assert fip.get_floating_ip_address() == address
    assert [(m.protocol, m.src_port, m.dst_port) for m in
            fip.get_floating_ip_port_mappings().get_port_mappings()] == [
        ('tcp', 18081, 81)]
    sg = vnc.security_group_read(id=ids.endpoint_security_group_uuid(eid))
    assert rules_of(sg) == [('IPv4', 'tcp', '0.0.0.0', 'local', 81, 81)]
    assert len(fake.objects('floating-ip')) == 1
    # Leave first, then Revoke.
    drv.ok('NetworkDriver.Leave', ids_of(ep))
    assert drv.ok('NetworkDriver.RevokeExternalConnectivity',
                  ids_of(ep)) == {}
    assert ours_left(fake, ep) == []
    # A Revoke of an endpoint never seen, on a network never seen.
    assert drv.ok('NetworkDriver.RevokeExternalConnectivity', {
        'NetworkID': 'ab' * 32, 'EndpointID': 'cd' * 32}) == {}
    drv.ok('NetworkDriver.DeleteEndpoint', ids_of(ep))
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': net['NetworkID']})
    assert fake.objects('security-group') == []
    assert fake.objects('floating-ip') == []
