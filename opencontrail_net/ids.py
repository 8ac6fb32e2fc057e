"""Names and uuids derived from full Docker IDs.

Every host and every restart of the driver derives the same backend keys
from the same Docker object, so an object is found with one lookup and no
local state.
"""

import hashlib
import re
import uuid

# A fixed namespace: changing it orphans every object made before.
_NAMESPACE = uuid.UUID('0b6a5f0e-3f0a-4c43-9c0e-5e6b1f4d7a21')


# What Docker makes (stringid.GenerateRandomID) for every network, endpoint
# and sandbox: 64 lowercase hex characters. Swarm's own network IDs are
# 25 characters of [0-9a-z] (swarmkit's identity.NewID).
_DOCKER_ID = re.compile(r'[0-9a-f]{64}')
_SWARM_NETWORK_ID = re.compile(r'[0-9a-z]{25}')


def is_swarm_network_id(value):
    return isinstance(value, str) and bool(
        _SWARM_NETWORK_ID.fullmatch(value))


def is_docker_id(value, network=False):
    """Whether ``value`` is a full Docker ID.

    Swarm's shorter form is one only where a network ID is expected.
    """
    if not isinstance(value, str):
        return False
    if _DOCKER_ID.fullmatch(value):
        return True
    return network and is_swarm_network_id(value)


def _derive(kind, key):
    return str(uuid.uuid5(_NAMESPACE, '%s:%s' % (kind, key)))


def network_uuid(network_id):
    return _derive('network', network_id)


def endpoint_uuid(endpoint_id):
    return _derive('endpoint', endpoint_id)


def pooled_interface_uuid(network_id, host, slot):
    """A pooled interface of ``host`` in a network: its ``slot``-th."""
    return _derive('pooled-interface', '%s:%s:%d' % (network_id, host, slot))


def pooled_vm_uuid(network_id, host, slot):
    return _derive('pooled-vm', '%s:%s:%d' % (network_id, host, slot))


def instance_ip_uuid(endpoint_id, family):
    return _derive('instance-ip-%s' % family, endpoint_id)


def router_interface_uuid(network_id):
    return _derive('router-interface', network_id)


def router_ip_uuid(network_id, family):
    return _derive('router-ip-%s' % family, network_id)


def vm_uuid(host, sandbox_id):
    return _derive('vm', '%s:%s' % (host, sandbox_id))


def security_group_uuid(network_id):
    return _derive('security-group', network_id)


def rule_uuid(network_id, n):
    return _derive('rule-%d' % n, network_id)


def endpoint_security_group_uuid(endpoint_id):
    return _derive('endpoint-security-group', endpoint_id)


def endpoint_rule_uuid(endpoint_id, n):
    return _derive('endpoint-rule-%d' % n, endpoint_id)


def floating_ip_uuid(endpoint_id):
    return _derive('floating-ip', endpoint_id)


def project_uuid(fq_name):
    return _derive('project', ':'.join(fq_name))


def mac_from_uuid(value):
    """The MAC Contrail gives an interface created without one."""
    raw = uuid.UUID(value).bytes[:5]
    return '02:' + ':'.join('%02x' % b for b in raw)


def link_group(driver_name):
    """The link group (IFLA_GROUP, 1 to 2**31-1) of the host ends a driver
    instance makes: its start-up sweep deletes only pairs of its own, not
    another instance's on the same host. Group 0 is the kernel's default."""
    digest = hashlib.sha256(driver_name.encode('utf-8')).digest()
    return int.from_bytes(digest[:4], 'big') % 0x7fffffff + 1


def short_hash(value, length=8):
    return hashlib.sha256(value.encode()).hexdigest()[:length]


def allow_policy_uuid(network_id, other_id):
    """The policy between two networks (``-o opencontrail.allow``): the
    same whichever of the two asked for it."""
    return _derive('allow-policy', ':'.join(sorted((network_id, other_id))))
