"""Contrail objects built from Docker's records, and read back into them.

Every object the driver creates carries its mark: ``id_perms.creator`` is
``opencontrail-net`` (the API server takes the creator only at create, so
nobody's update can move an object in or out of our hands), and its uuid
derives from a Docker ID (:mod:`opencontrail_net.ids`). The annotation
``opencontrail-net`` holds what Contrail has no field for.
"""

import ipaddress
import json
import uuid

from vnc_api import vnc_api

from opencontrail_net import ids
from opencontrail_net import model

CREATOR = 'opencontrail-net'
ANNOTATION = 'opencontrail-net'
KV_PREFIX = 'opencontrail-net:network:'
PORTS = vnc_api.PortType(0, 65535)


def kv(pairs):
    """A KeyValuePairs property as a dict."""
    return {p.key: p.value for p in (pairs.key_value_pair or [])} if pairs \
        else {}


def annotation(obj):
    """Our annotation of ``obj`` (a dict), or {}."""
    text = kv(obj.get_annotations()).get(ANNOTATION)
    return json.loads(text) if text else {}


def is_ours(obj):
    """True if this driver created ``obj``."""
    perms = obj.get_id_perms()
    return bool(perms is not None and perms.creator == CREATOR)


def describe(kind, obj_uuid, fq_name):
    return '%s %s (%s)' % (kind, obj_uuid, ':'.join(fq_name or ()))


def fq(value, domain, size):
    """``value`` as an fq_name of ``size`` parts, ``domain`` filled in."""
    parts = value.split(':') if isinstance(value, str) else list(value)
    if len(parts) == size - 1:
        parts = [domain] + parts
    return parts


def _mark(obj, what, view=None):
    obj.set_id_perms(vnc_api.IdPermsType(enable=True, creator=CREATOR,
                                         description=what))
    if view is not None:
        obj.set_annotations(vnc_api.KeyValuePairs([vnc_api.KeyValuePair(
            ANNOTATION, json.dumps(view, sort_keys=True))]))


def project(fq_name):
    return vnc_api.Project(fq_name[1], vnc_api.Domain(fq_name[0]))


# Networks -----------------------------------------------------------------

def docker_view(network):
    """What Docker asked for: compared when CreateNetwork comes again."""
    return {'id': network.id, 'mtu': network.mtu,
            'enable_ipv6': network.enable_ipv6,
            'internal': network.internal,
            'subnets': [{'cidr': s.cidr, 'gateway': s.gateway}
                        for s in network.subnets],
            'name': network.name, 'project': network.project,
            'ipam': network.ipam,
            'route_targets': network.route_targets,
            'import_targets': network.import_targets,
            'export_targets': network.export_targets,
            'security_groups': network.security_groups,
            'security_group_refs': network.security_group_refs,
            'policies': network.policies,
            'router': network.router,
            'allow': network.allow,
            'own_ipam': network.own_ipam,
            'floating_ip_pool': network.floating_ip_pool}


def subnets(network):
    result = []
    for subnet in network.subnets:
        prefix, length = subnet.cidr.split('/')
        # Docker's own IPAM hands out addresses from the bottom and keeps
        # its gateway: Contrail must reserve that gateway and nothing
        # else, or an address Docker gives collides with Contrail's DNS
        # service address. DNS on Docker's gateway with DHCP off is the
        # one way the API server reserves no other.
        kwargs = {}
        if subnet.gateway:
            kwargs = dict(default_gateway=subnet.gateway,
                          dns_server_address=subnet.gateway,
                          enable_dhcp=False)
        if network.own_ipam:
            # Contrail hands the addresses out: up from the range's start,
            # never an aux address Docker holds.
            kwargs['addr_from_start'] = True
            pools = allocation_pools(subnet)
            if pools:
                kwargs['allocation_pools'] = pools
        result.append(vnc_api.IpamSubnetType(
            subnet=vnc_api.SubnetType(prefix, int(length)),
            subnet_name=subnet.cidr, **kwargs))
    return result


def allocation_pools(subnet):
    """The subnet's range (or all of it) less its aux addresses, as
    Contrail allocation pools; [] when that is the whole subnet."""
    net = ipaddress.ip_network(subnet.cidr)
    rng = ipaddress.ip_network(subnet.ip_range or subnet.cidr)
    first, last = int(rng.network_address), int(rng.broadcast_address)
    first, last = model.usable(net, first, last)
    holes = sorted(int(ipaddress.ip_address(a))
                   for a in subnet.aux_addresses.values())
    if not subnet.ip_range and not holes:
        return []
    pools, start = [], first
    for hole in holes + [last + 1]:
        if hole < start or hole > last + 1:
            continue
        if hole > start:
            pools.append(vnc_api.AllocationPoolType(
                str(model.address(net.version, start)),
                str(model.address(net.version, hole - 1))))
        start = hole + 1
    return pools


def network_obj(network, ipam_fq, host=None):
    vn = vnc_api.VirtualNetwork(network.name or network.id,
                                project(network.project))
    vn.uuid = ids.network_uuid(network.id)
    vn.set_display_name(network.name or network.id)
    ipam = vnc_api.NetworkIpam(ipam_fq[2], project(ipam_fq[:2]))
    vn.add_network_ipam(ipam, vnc_api.VnSubnetsType(subnets(network)))
    for setter, targets in (
            (vn.set_route_target_list, network.route_targets),
            (vn.set_import_route_target_list, network.import_targets),
            (vn.set_export_route_target_list, network.export_targets)):
        if targets:
            setter(vnc_api.RouteTargetList(targets))
    # The order asked is the policies' sequence.
    for n, ref in enumerate(network.policy_refs):
        policy = vnc_api.NetworkPolicy(ref['to'][2], project(ref['to'][:2]))
        policy.uuid = ref['uuid']
        vn.add_network_policy(policy, vnc_api.VirtualNetworkPolicyType(
            sequence=vnc_api.SequenceType(n, 0)))
    # Then the driver's own, between this network and each it allows.
    for n, peer in enumerate(network.allow_peers, len(network.policy_refs)):
        vn.add_network_policy(allow_policy_ref(network, peer),
                              policy_sequence(n))
    view = docker_view(network)
    # The audit of this host finds the networks it made by this.
    view['host'] = host
    _mark(vn, 'Docker network %s' % network.id, view)
    return vn


def policy_sequence(major):
    return vnc_api.VirtualNetworkPolicyType(
        sequence=vnc_api.SequenceType(major, 0))


ALLOW_PREFIX = 'docker-allow-'


def allowed_networks(network_id, policy_refs):
    """The networks the allow policies among ``policy_refs`` pair
    ``network_id`` with (read from their names)."""
    found = []
    for ref in policy_refs:
        name = ref['to'][-1]
        if not name.startswith(ALLOW_PREFIX):
            continue
        pair = name[len(ALLOW_PREFIX):].split('-')
        if len(pair) == 2 and network_id in pair:
            found.append(pair[1] if pair[0] == network_id else pair[0])
    return found


def allow_policy_ref(network, peer):
    """A network-policy that only names the policy between ``network`` and
    ``peer`` (one of ``network.allow_peers``)."""
    a, b = sorted((network.id, peer['id']))
    policy = vnc_api.NetworkPolicy('%s%s-%s' % (ALLOW_PREFIX, a, b),
                                   project(network.project))
    policy.uuid = ids.allow_policy_uuid(a, b)
    return policy


def allow_policy_obj(network, peer):
    """The driver's own policy between two of its networks: any traffic
    passes both ways between their virtual-networks, IPv4 and IPv6. In
    the project of the network that asked for it."""
    policy = allow_policy_ref(network, peer)
    mine = ':'.join(list(network.project) + [network.name or network.id])
    theirs = ':'.join(peer['to'])
    rules = [vnc_api.PolicyRuleType(
        direction='<>', protocol='any', ethertype=ethertype,
        action_list=vnc_api.ActionListType(simple_action='pass'),
        src_addresses=[vnc_api.AddressType(virtual_network=mine)],
        src_ports=[vnc_api.PortType(-1, -1)],
        dst_addresses=[vnc_api.AddressType(virtual_network=theirs)],
        dst_ports=[vnc_api.PortType(-1, -1)])
        for ethertype in ('IPv4', 'IPv6')]
    policy.set_network_policy_entries(vnc_api.PolicyEntriesType(rules))
    _mark(policy, 'Docker networks %s and %s may talk' % (
        network.id, peer['id']),
        {'allow': sorted((network.id, peer['id']))})
    return policy


def router_interface_obj(network):
    """The network's interface on its logical-router (Neutron's
    router_interface), in the network's project."""
    vmi = vnc_api.VirtualMachineInterface('router-interface-' + network.id,
                                          project(network.project))
    vmi.uuid = ids.router_interface_uuid(network.id)
    vmi.set_virtual_network(network_ref(network))
    vmi.set_virtual_machine_interface_device_owner(
        'network:router_interface')
    _mark(vmi, 'Docker network %s on logical-router %s' % (
        network.id, ':'.join(network.router_ref['to'])),
        {'router_of': network.id})
    return vmi


def router_iips(network, vmi):
    """The router interface's addresses: each subnet's gateway."""
    for subnet in network.subnets:
        if not subnet.gateway:
            continue
        family = 'v%d' % subnet.version
        iip = vnc_api.InstanceIp(ids.router_ip_uuid(network.id, family))
        iip.uuid = iip.name
        iip.set_instance_ip_address(subnet.gateway)
        iip.set_instance_ip_family(family)
        iip.set_virtual_network(network_ref(network))
        iip.set_virtual_machine_interface(vmi)
        _mark(iip, 'Docker network %s router interface' % network.id)
        yield iip


def vn_ref(fq_name, vn_uuid):
    """A virtual-network that only names one (for refs, updates).

    The API server takes a ref's object from its ``to``, the fq_name, not
    from its uuid: a ref must carry the real fq_name.
    """
    vn = vnc_api.VirtualNetwork(fq_name[2], project(fq_name[:2]))
    vn.uuid = vn_uuid
    return vn


def network_ref(network):
    """A virtual-network that only names ``network``."""
    return vn_ref(list(network.project) + [network.name], network.uuid)


def _targets(lst):
    return list(lst.route_target) if lst and lst.route_target else []


def network_from_vn(vn, network_id, existing=None):
    """A Network record from a virtual-network read back."""
    fq_name = vn.get_fq_name()
    view = {} if existing else annotation(vn)
    subnets = [model.Subnet(**s) for s in view.get('subnets', [])]
    if not subnets:
        for ref in vn.get_network_ipam_refs() or []:
            for s in ref['attr'].get_ipam_subnets() or []:
                subnets.append(model.Subnet(
                    cidr='%s/%s' % (s.subnet.ip_prefix,
                                    s.subnet.ip_prefix_len),
                    gateway=s.default_gateway))
    return model.Network(
        id=network_id, subnets=subnets, name=fq_name[2],
        project=fq_name[:2],
        route_targets=_targets(vn.get_route_target_list()),
        import_targets=_targets(vn.get_import_route_target_list()),
        export_targets=_targets(vn.get_export_route_target_list()),
        existing=existing, mtu=view.get('mtu'),
        enable_ipv6=view.get('enable_ipv6', False),
        internal=view.get('internal', False), uuid=vn.uuid,
        project_uuid=vn.parent_uuid, ipam=view.get('ipam'),
        security_groups=view.get('security_groups'),
        security_group_refs=view.get('security_group_refs') or [],
        own_ipam=view.get('own_ipam', False),
        floating_ip_pool=view.get('floating_ip_pool'),
        policies=view.get('policies'), router=view.get('router'),
        allow=view.get('allow'),
        allowed=allowed_networks(network_id,
                                 vn.get_network_policy_refs() or []),
        policy_refs=[{'to': r['to'], 'uuid': r['uuid']}
                     for r in vn.get_network_policy_refs() or []])


# Security groups --------------------------------------------------------

def security_group_name(network):
    return 'docker-%s' % (network.name or network.id)


def group_network(group):
    """The Docker network ID a group of ours was made for (its own group,
    its uuid derived from that ID), or None for any other group."""
    perms = group.get_id_perms()
    words = (perms.description or '').split() if perms else []
    if len(words) == 3 and words[:2] == ['Docker', 'network'] and \
            group.uuid == ids.security_group_uuid(words[2]):
        return words[2]
    return None


def own_security_group_ref(network):
    """The ref of the group the driver makes for ``network``."""
    return {'to': list(network.project) + [security_group_name(network)],
            'uuid': ids.security_group_uuid(network.id)}


def _rule(network, n, ethertype, src, dst):
    return vnc_api.PolicyRuleType(
        rule_uuid=ids.rule_uuid(network.id, n), direction='>',
        protocol='any', ethertype=ethertype,
        src_addresses=[src], src_ports=[PORTS],
        dst_addresses=[dst], dst_ports=[PORTS])


def security_group_obj(network):
    """Docker's semantics: the network's members reach each other, nothing
    else gets in; everything may go out. IPv4 and IPv6 alike."""
    ref = own_security_group_ref(network)
    sg = vnc_api.SecurityGroup(ref['to'][-1], project(network.project))
    sg.uuid = ref['uuid']
    members = vnc_api.AddressType(security_group=':'.join(ref['to']))
    local = vnc_api.AddressType(security_group='local')
    rules = []
    for ethertype, anywhere in (('IPv4', '0.0.0.0'), ('IPv6', '::')):
        rules.append(_rule(network, len(rules), ethertype, members, local))
        rules.append(_rule(network, len(rules), ethertype, local,
                           vnc_api.AddressType(subnet=vnc_api.SubnetType(
                               anywhere, 0))))
    sg.set_security_group_entries(vnc_api.PolicyEntriesType(rules))
    _mark(sg, 'Docker network %s' % network.id)
    return sg


# Exposed and published ports ---------------------------------------------

# Protocols as security-group rules name them (sctp by number).
RULE_PROTOCOLS = {'tcp': 'tcp', 'udp': 'udp', 'sctp': '132'}
ANYWHERE = {4: ('IPv4', '0.0.0.0'), 6: ('IPv6', '::')}


def ports_security_group_ref(network, endpoint_id):
    """The ref of the group that opens one endpoint's exposed ports."""
    return {'to': list(network.project) + ['docker-ports-%s' % endpoint_id],
            'uuid': ids.endpoint_security_group_uuid(endpoint_id)}


def ports_security_group_obj(network, endpoint_id, runs, versions):
    """Ingress from anywhere to the exposed ports ``runs`` ([(proto,
    first, last)]) on this endpoint's interface alone: a group of its own,
    as a group's rules apply to every interface that refers to it."""
    ref = ports_security_group_ref(network, endpoint_id)
    sg = vnc_api.SecurityGroup(ref['to'][-1], project(network.project))
    sg.uuid = ref['uuid']
    local = vnc_api.AddressType(security_group='local')
    rules = []
    for proto, first, last in runs:
        for version in versions:
            ethertype, anywhere = ANYWHERE[version]
            rules.append(vnc_api.PolicyRuleType(
                rule_uuid=ids.endpoint_rule_uuid(endpoint_id, len(rules)),
                direction='>', protocol=RULE_PROTOCOLS[proto],
                ethertype=ethertype,
                src_addresses=[vnc_api.AddressType(
                    subnet=vnc_api.SubnetType(anywhere, 0))],
                src_ports=[PORTS], dst_addresses=[local],
                dst_ports=[vnc_api.PortType(first, last)]))
    sg.set_security_group_entries(vnc_api.PolicyEntriesType(rules))
    _mark(sg, 'Docker endpoint %s' % endpoint_id,
          {'endpoint_id': endpoint_id, 'network_id': network.id})
    return sg


def floating_ip_obj(network, endpoint_id, pool_fq, mappings):
    """The floating IP of one endpoint in pool ``pool_fq``, with one port
    mapping per ``(proto, src_port, dst_port)``: src_port on the floating
    IP, dst_port on the container."""
    vn = vnc_api.VirtualNetwork(pool_fq[2], project(pool_fq[:2]))
    fip = vnc_api.FloatingIp(endpoint_id,
                             vnc_api.FloatingIpPool(pool_fq[3], vn))
    fip.uuid = ids.floating_ip_uuid(endpoint_id)
    owner = project(network.project)
    owner.uuid = network.project_uuid
    fip.set_project(owner)
    vmi = vnc_api.VirtualMachineInterface(endpoint_id,
                                          project(network.project))
    vmi.uuid = ids.endpoint_uuid(endpoint_id)
    fip.set_virtual_machine_interface(vmi)
    fip.set_floating_ip_port_mappings_enable(True)
    fip.set_floating_ip_port_mappings(vnc_api.PortMappings(
        [vnc_api.PortMap(proto, src, dst) for proto, src, dst in mappings]))
    _mark(fip, 'Docker endpoint %s' % endpoint_id,
          {'endpoint_id': endpoint_id, 'network_id': network.id})
    return fip


# Endpoints, containers ----------------------------------------------------

def vmi_obj(network, endpoint):
    vmi = vnc_api.VirtualMachineInterface(endpoint.id,
                                          project(network.project))
    vmi.uuid = endpoint.uuid
    vmi.set_display_name(endpoint.id)
    vmi.set_virtual_network(network_ref(network))
    vmi.set_virtual_machine_interface_mac_addresses(
        vnc_api.MacAddressesType([endpoint.mac]))
    vmi.set_virtual_machine_interface_bindings(vnc_api.KeyValuePairs(
        [vnc_api.KeyValuePair('host_id', endpoint.host)]))
    refs = (network.security_group_refs if endpoint.security_groups is None
            else endpoint.security_group_refs)
    for ref in refs:
        sg = vnc_api.SecurityGroup(ref['to'][-1], project(ref['to'][:2]))
        sg.uuid = ref['uuid']
        vmi.add_security_group(sg)
    view = {'network_id': network.id, 'ipv4': endpoint.ipv4,
            'ipv6': endpoint.ipv6}
    if endpoint.security_groups is not None:
        view['security_groups'] = endpoint.security_groups
    if endpoint.instance_ips:
        view['iips'] = endpoint.instance_ips
    if endpoint.ports:
        # Its ports group and floating IP may stand even where no ref
        # shows them (a driver killed between making and referring).
        view['ports'] = True
    _mark(vmi, 'Docker endpoint %s' % endpoint.id, view)
    return vmi


def pooled_vm_obj(network, host, slot):
    """The VM of a pooled interface: a container's once the interface
    is taken (its sandbox then joins the annotation)."""
    vm_uuid = ids.pooled_vm_uuid(network.id, host, slot)
    vm = vnc_api.VirtualMachine(vm_uuid)
    vm.uuid = vm_uuid
    vm.set_server_type('container')
    vm.set_display_name(host)
    _mark(vm, 'pooled interface %d of Docker network %s on %s' % (
        slot, network.id, host), {'host': host, 'pool_of': network.id})
    return vm


def pooled_vmi_fq_name(network, host, slot):
    return list(network.project) + ['pool-%s-%d-%s' % (host, slot,
                                                       network.id)]


def pooled_vmi_obj(network, host, slot, vm):
    """A pooled interface: made ahead, with its VM, in ``network``'s
    own security group; named after the network, the host and its slot.
    """
    vmi_uuid = ids.pooled_interface_uuid(network.id, host, slot)
    vmi = vnc_api.VirtualMachineInterface(
        pooled_vmi_fq_name(network, host, slot)[-1], project(network.project))
    vmi.uuid = vmi_uuid
    vmi.set_display_name(vmi.name)
    vmi.set_virtual_network(network_ref(network))
    vmi.set_virtual_machine_interface_mac_addresses(
        vnc_api.MacAddressesType([ids.mac_from_uuid(vmi_uuid)]))
    vmi.set_virtual_machine_interface_bindings(vnc_api.KeyValuePairs(
        [vnc_api.KeyValuePair('host_id', host)]))
    vmi.set_virtual_machine(vm)
    for ref in network.security_group_refs:
        sg = vnc_api.SecurityGroup(ref['to'][-1], project(ref['to'][:2]))
        sg.uuid = ref['uuid']
        vmi.add_security_group(sg)
    _mark(vmi, 'pooled interface %d of Docker network %s on %s' % (
        slot, network.id, host), {'pool_of': network.id, 'host': host})
    return vmi


def taken_vmi_view(endpoint, network_id):
    """A pooled interface's annotation once an endpoint has it: the
    endpoint's, as :func:`vmi_obj` gives, naming the endpoint."""
    view = {'network_id': network_id, 'ipv4': endpoint.ipv4,
            'ipv6': endpoint.ipv6, 'endpoint': endpoint.id,
            'pooled': True}
    if endpoint.ports:
        view['ports'] = True
    return view


def annotate(obj, view):
    """Set ``obj``'s annotation to ``view`` (for an update)."""
    obj.set_annotations(vnc_api.KeyValuePairs([vnc_api.KeyValuePair(
        ANNOTATION, json.dumps(view, sort_keys=True))]))


def iip_objs(network, endpoint, vmi):
    """The instance-ips of Docker's own addresses (none with our IPAM)."""
    if network.own_ipam:
        return
    for family, cidr in (('v4', endpoint.ipv4), ('v6', endpoint.ipv6)):
        if not cidr:
            continue
        iip = vnc_api.InstanceIp(ids.instance_ip_uuid(endpoint.id, family))
        iip.uuid = iip.name
        iip.set_instance_ip_address(cidr.split('/')[0])
        iip.set_instance_ip_family(family)
        iip.set_virtual_network(network_ref(network))
        iip.set_virtual_machine_interface(vmi)
        _mark(iip, 'Docker endpoint %s' % endpoint.id)
        yield iip


def ipam_iip(pool, vn_fq, vn_uuid, address=None):
    """An address of the driver's IPAM: Contrail picks it unless asked."""
    iip = vnc_api.InstanceIp(str(uuid.uuid4()))
    iip.uuid = iip.name
    iip.set_instance_ip_family('v6' if pool.v6 else 'v4')
    if address:
        iip.set_instance_ip_address(address)
    iip.add_virtual_network(vn_ref(vn_fq, vn_uuid))
    _mark(iip, 'Docker IPAM pool %s' % pool.cidr, {'pool': pool.key})
    return iip


def vm_obj(host, sandbox):
    """The container: its display name is the host, which start-up finds
    this host's containers by; the sandbox is in the annotation."""
    vm_uuid = ids.vm_uuid(host, sandbox)
    vm = vnc_api.VirtualMachine(vm_uuid)
    vm.uuid = vm_uuid
    vm.set_server_type('container')
    vm.set_display_name(host)
    _mark(vm, 'Docker sandbox %s on %s' % (sandbox, host),
          {'host': host, 'sandbox': sandbox})
    return vm


def endpoint_from_vmi(vmi, network_id):
    """An Endpoint record from an interface read back, or None."""
    view = annotation(vmi)
    if view.get('network_id') != network_id:
        return None
    macs = vmi.get_virtual_machine_interface_mac_addresses()
    vms = vmi.get_virtual_machine_refs() or []
    return model.Endpoint(
        id=view.get('endpoint', vmi.name), network_id=network_id,
        mac=macs.mac_address[0] if macs and macs.mac_address else None,
        ipv4=view.get('ipv4'), ipv6=view.get('ipv6'),
        instance_ips=view.get('iips', []), ports=bool(view.get('ports')),
        security_groups=view.get('security_groups'),
        host=kv(vmi.get_virtual_machine_interface_bindings()).get('host_id'),
        uuid=vmi.uuid, vm_uuid=vms[0]['uuid'] if vms else None,
        vm_name=vms[0]['to'][-1] if vms else None)
