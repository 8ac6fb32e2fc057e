"""Route targets of a Docker network's virtual-network.

The cluster's ASN and 4-byte setting (what a route target may hold) are
read once per process, never invalidated: changing them is a cluster
upgrade, and the driver is restarted with it.
"""

from oslo_log import log as logging

from opencontrail_net.backends.contrail import objects
from opencontrail_net import exception

LOG = logging.getLogger(__name__)

GLOBAL_SYSTEM_CONFIG = ['default-global-system-config']


class RouteTargets:
    """The cluster's route-target rules; setting a network's targets."""

    def __init__(self, ctx, get_network):
        self.ctx = ctx
        self._get_network = get_network
        self._rules = None

    def rules(self):
        """The cluster's ASN and whether 4-byte ASNs are on, read once."""
        if self._rules is None:
            with self.ctx.api() as api:
                gsc = api.global_system_config_read(
                    fq_name=GLOBAL_SYSTEM_CONFIG)
            self._rules = (gsc.get_autonomous_system(),
                           bool(gsc.get_enable_4byte_as()))
            LOG.info('Contrail global ASN %s, 4-byte ASNs %s', *self._rules)
        return self._rules

    def set(self, network_id, route_targets=None, import_targets=None,
            export_targets=None):
        network = self._get_network(network_id)
        if network.existing:
            raise exception.Conflict(
                reason='network %s is an existing Contrail network: its '
                'route targets are not ours to change' % network_id)
        for key, value in (('rt', route_targets),
                           ('opencontrail.rt.import', import_targets),
                           ('opencontrail.rt.export', export_targets)):
            self.ctx.guard.check_route_targets(value, key)
        vn = objects.network_ref(network)
        for setter, value in (
                (vn.set_route_target_list, route_targets),
                (vn.set_import_route_target_list, import_targets),
                (vn.set_export_route_target_list, export_targets)):
            if value is not None:
                setter(objects.vnc_api.RouteTargetList(value))
        with self.ctx.api() as api:
            api.virtual_network_update(vn)
