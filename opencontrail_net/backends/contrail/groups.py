"""A Docker network's own security group.

Unless a network names security groups (``-o
opencontrail.security_groups``), it gets a group of the driver's own,
whose uuid derives from the Docker network's ID.
"""

from oslo_log import log as logging
from vnc_api import exceptions as vnc_exc

from opencontrail_net.backends.contrail import cleanup
from opencontrail_net.backends.contrail import context
from opencontrail_net.backends.contrail import objects
from opencontrail_net import exception

LOG = logging.getLogger(__name__)


def make_own(api, network, made):
    """The network's own group. One of the driver's own by that name,
    left by a create of another network that failed and could not be
    undone (its network has no virtual-network), is replaced."""
    group = objects.security_group_obj(network)
    try:
        context.create_ours(api.security_group_create, group,
                            'security-group', made)
        return
    except exception.Conflict:
        try:
            found = api.security_group_read(
                fq_name=group.get_fq_name(), fields=['id_perms'])
        except vnc_exc.NoIdError:
            raise exception.Conflict(
                reason='security-group %s was there a moment ago' %
                ':'.join(group.get_fq_name()))
        other = objects.group_network(found) if objects.is_ours(
            found) else None
        if other is None or context.network_stands(api, other):
            raise
        # Referred to by something: a Conflict (RefsExistError).
        api.security_group_delete(id=found.uuid)
    LOG.warning('Replaced security-group %s (%s): the driver\'s, of '
                'Docker network %s, whose create failed and could not '
                'be undone', found.uuid, ':'.join(group.get_fq_name()),
                other)
    context.create_ours(api.security_group_create, group,
                        'security-group', made)


def remove_orphan(ctx, group):
    """The audit's repair of an orphan group: checked again, then
    deleted; one something refers to is a Conflict naming it."""
    with ctx.api() as api:
        if context.network_stands(api, group['network']):
            raise exception.Conflict(
                reason='network %s has a virtual-network now' %
                group['network'])
        try:
            cleanup.ignore_missing(api.security_group_delete,
                                   group['uuid'])
        except vnc_exc.RefsExistError as exc:
            raise exception.Conflict(
                reason='security-group %s is referred to: %s' % (
                    group['uuid'], exc))
