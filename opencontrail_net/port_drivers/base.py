"""The port driver plugin point: the host's data plane for endpoints."""

import abc

from opencontrail_net import plugin


class PortDriver(plugin.PluginBase):
    """Plugs endpoints into sandboxes and unplugs them again.

    Port drivers never talk to the config backend: what they need comes in
    the records they are handed.
    """

    @abc.abstractmethod
    def plug(self, network, endpoint, sandbox_key):
        """Create the host interface for ``endpoint``; return a JoinInfo.

        Idempotent: a repeated call replaces what an earlier one left.
        """

    @abc.abstractmethod
    def unplug(self, network_id, endpoint_id):
        """Remove what plug made; nothing to remove is not an error."""

    def host_interface(self, endpoint_id):
        """The name of the host's interface of ``endpoint_id``, or None.

        A local lookup, cheap enough for every EndpointOperInfo.
        """
        return None

    def network_deleted(self, network_id):
        """The network is gone: drop per-network host state."""

    def resync(self, plugged):
        """Re-register ``[(network, endpoint)]`` after a driver restart."""

    def plugged_endpoints(self):
        """IDs of the endpoints whose host interfaces this host has."""
        return []
