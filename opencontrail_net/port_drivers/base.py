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
    def unplug(self, network_id, endpoint_id, background=False):
        """Remove what plug made; nothing to remove is not an error.

        With ``background``, what is slow to remove may go after this
        returns; it goes all the same (a crash in between leaves only
        what the driver's start removes).
        """

    def host_interface(self, endpoint_id):
        """The name of the host's interface of ``endpoint_id``, or None.

        A local lookup, cheap enough for every EndpointOperInfo.
        """
        return None

    def publish(self, network, endpoint, bindings):
        """Publish ``endpoint``'s ``bindings`` ([model.PortBinding]).

        Returns the host ports taken, [model.PortBinding] (each on one
        host port, see ``PortBinding.at``) in the order of ``bindings``;
        None if this driver publishes no ports. Replaces what an earlier
        call published for the endpoint.
        """
        return None

    def unpublish(self, network_id, endpoint_id):
        """Withdraw what publish made; nothing there is not an error."""

    def published(self):
        """{endpoint ID: [model.PortBinding]} published on this host."""
        return {}

    def subnet_holders(self, network):
        """Other networks whose host state holds a subnet of ``network``.

        ``{network ID: [(subnet, where)]}``: a subnet this host cannot
        carry twice (a bridge with the gateway address, say) that another
        network's state of this driver holds here. Empty where subnets
        are not held on the host.
        """
        return {}

    def engine_known(self, engine):
        """The Docker Engine served (engine.EngineInfo) is known: its
        version and firewall backend. Called once, from another thread,
        after ``start``."""

    def network_deleted(self, network_id):
        """The network is gone: drop per-network host state."""

    def resync(self, plugged):
        """Re-register ``[(network, endpoint)]`` after a driver restart."""

    def plugged_endpoints(self):
        """IDs of the endpoints whose host interfaces this host has."""
        return []

    # Inventory and repairs, for the audit -----------------------------

    def host_interfaces(self):
        """``[(name, endpoint ID, in a container)]`` of this host's
        interfaces named by this driver."""
        return []

    def port_state(self, network, endpoint):
        """The data plane's record of the endpoint's port.

        None where this driver keeps no record; else ``'ready'``,
        ``'missing'`` (none, or not ready yet) or ``'unreachable'``.
        """
        return None

    def reregister(self, network, endpoint):
        """Register the endpoint's port with the data plane again."""

    def replug(self, network, endpoint, sandbox_key):
        """Give a running container back the interface it lost."""
        raise NotImplementedError()
