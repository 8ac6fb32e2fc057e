"""Subnets a new network needs that a leaked network still holds on this host.

A network Docker removed while the driver was down leaks (Docker swallows
the failed DeleteNetwork); its bridge still has the gateway address a new
network of the same subnet needs. :func:`free` removes such a network
when the Docker Engine API says Docker no longer has it, and refuses the
new network otherwise.
"""

from oslo_log import log as logging

from opencontrail_net import exception

LOG = logging.getLogger(__name__)


def free(net, ports, docker, backend, forget):
    """Remove what a leaked network of this driver holds of ``net``'s
    subnets on this host, or refuse ``net`` naming it.

    Only a network Docker no longer has and the backend has (so of this
    driver) goes: through ``backend``, then ``forget(network ID)`` drops
    what the caller and ``ports`` (the port driver) keep of it.
    ``docker`` is a docker_api.DockerView.
    """
    holders = ports.subnet_holders(net)
    for holder_id, held in sorted(holders.items()):
        what = '; '.join(sorted({h[1] for h in held}))
        subnets = ', '.join(sorted({h[0] for h in held}))
        try:
            in_docker = docker.has_network(holder_id)
        except exception.DockerUnavailable as exc:
            raise exception.Conflict(reason=(
                'subnet %s is held on this host by network %s of this '
                'driver (%s), and Docker cannot say whether it still '
                'has that network (%s); if it does not, '
                '"opencontrail-net-manage audit --fix" removes it'
                % (subnets, holder_id, what, exc)))
        if in_docker:
            raise exception.Conflict(reason=(
                'subnet %s is held on this host by Docker network %s '
                '(%s): remove that network first'
                % (subnets, holder_id, what)))
        try:
            backend.get_network(holder_id)
        except exception.NetworkNotFound:
            raise exception.Conflict(reason=(
                'subnet %s is held on this host by %s, for network %s, '
                'which neither Docker nor this driver\'s backend has: '
                'left as it is, remove it by hand if nothing uses it'
                % (subnets, what, holder_id)))
        LOG.warning('Network %s holds subnet %s on this host (%s) and '
                    'Docker no longer has it (removed while the driver '
                    'was down): removing it for network %s',
                    holder_id, subnets, what, net.id)
        try:
            backend.delete_network(holder_id)
        except exception.OpenContrailNetError as exc:
            raise exception.Conflict(reason=(
                'subnet %s is held on this host by network %s of this '
                'driver, which Docker no longer has, and removing it '
                'failed: %s' % (subnets, holder_id, exc)))
        forget(holder_id)
