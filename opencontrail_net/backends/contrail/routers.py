"""A Docker network on a logical-router (``-o opencontrail.router``).

The network joins through an interface of the driver's own holding each
subnet's gateway address, referred to by the router: the one change the
driver makes to a router. Leaving is :func:`cleanup.leave_router`.
"""

from oslo_log import log as logging

from opencontrail_net.backends.contrail import context
from opencontrail_net.backends.contrail import objects
from opencontrail_net import exception

LOG = logging.getLogger(__name__)


def join(api, network, made):
    """The network's interface on its logical-router: an interface
    with each subnet's gateway address, referred to by the router.
    Found as made by an earlier try, it is completed."""
    router = network.router_ref['uuid']
    vmi = objects.router_interface_obj(network)
    context.create_ours(api.virtual_machine_interface_create, vmi,
                        'virtual-machine-interface', made)
    for iip in objects.router_iips(network, vmi):
        try:
            context.create_ours(api.instance_ip_create, iip,
                                'instance-ip', made)
        except exception.Conflict:
            raise exception.AddressInUse(
                address=iip.get_instance_ip_address(),
                pool='Contrail network %s (the gateway the router '
                'interface takes)' % network.uuid)
    api.ref_update('logical-router', router, 'virtual-machine-interface',
                   vmi.uuid, None, 'ADD')
    made.ref('logical-router', router, 'virtual-machine-interface', vmi.uuid)
    LOG.info('Docker network %s joined logical-router %s (%s) through '
             'interface %s', network.id, router,
             ':'.join(network.router_ref['to']), vmi.uuid)
