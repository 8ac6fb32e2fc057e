"""The port driver plugin point: the host's data plane for endpoints."""

import abc
from typing import Dict, List, Literal, Optional, Sequence, Tuple

from opencontrail_net import engine as engine_mod
from opencontrail_net import model
from opencontrail_net import plugin

#: What a data plane's record of a port says (PortDriver.port_state).
PortState = Literal['ready', 'missing', 'unreachable']


class PortDriver(plugin.PluginBase):
    """Plugs endpoints into sandboxes and unplugs them again.

    Port drivers never talk to the config backend: what they need comes in
    the records they are handed.
    """

    @abc.abstractmethod
    def plug(self, network: model.Network, endpoint: model.Endpoint,
             sandbox_key: str) -> model.JoinInfo:
        """Create the host interface for ``endpoint``; return a JoinInfo.

        Idempotent: a repeated call replaces what an earlier one left.
        """

    @abc.abstractmethod
    def unplug(self, network_id: str, endpoint_id: str,
               background: bool = False) -> Optional[str]:
        """Remove what plug made; nothing to remove is not an error.

        With ``background``, what is slow to remove may go after this
        returns; it goes all the same (a crash in between leaves only
        what the driver's start removes). Returns the name of the host
        interface, None when none was left to remove.
        """

    def host_interface(self, endpoint_id: str) -> Optional[str]:
        """The name of the host's interface of ``endpoint_id``, or None.

        A local lookup, cheap enough for every EndpointOperInfo.
        """
        return None

    def publish(self, network: model.Network, endpoint: model.Endpoint,
                bindings: Sequence[model.PortBinding]
                ) -> Optional[List[model.PortBinding]]:
        """Publish ``endpoint``'s ``bindings``.

        Returns the host ports taken (each binding on one host port, see
        ``PortBinding.at``) in the order of ``bindings``; None if this
        driver publishes no ports. Replaces what an earlier call
        published for the endpoint.
        """
        return None

    def unpublish(self, network_id: str, endpoint_id: str) -> None:
        """Withdraw what publish made; nothing there is not an error."""

    def published(self) -> Dict[str, List[model.PortBinding]]:
        """What publish took on this host, by endpoint ID."""
        return {}

    def subnet_holders(self, network: model.Network
                       ) -> Dict[str, List[Tuple[str, str]]]:
        """Other networks whose host state holds a subnet of ``network``.

        ``{network ID: [(subnet, where)]}``: a subnet this host cannot
        carry twice (a bridge with the gateway address, say) that another
        network's state of this driver holds here. Empty where subnets
        are not held on the host.
        """
        return {}

    def engine_known(self, engine: engine_mod.EngineInfo) -> None:
        """The Docker Engine served is known: its version and firewall
        backend. Called once, from another thread, after ``start``."""

    def network_deleted(self, network_id: str) -> None:
        """The network is gone: drop per-network host state."""

    def resync(self, plugged: Sequence[Tuple[model.Network,
                                             model.Endpoint]]) -> None:
        """Re-register ``[(network, endpoint)]`` after a driver restart."""

    def plugged_endpoints(self) -> List[str]:
        """IDs of the endpoints whose host interfaces this host has."""
        return []

    # Inventory and repairs, for the audit -----------------------------

    def host_interfaces(self) -> List[Tuple[str, str, bool]]:
        """``[(name, endpoint ID, in a container)]`` of this host's
        interfaces named by this driver."""
        return []

    def port_state(self, network: model.Network,
                   endpoint: model.Endpoint) -> Optional[PortState]:
        """The data plane's record of the endpoint's port.

        None where this driver keeps no record; else ``'ready'``,
        ``'missing'`` (none, or not ready yet) or ``'unreachable'``.
        """
        return None

    def reregister(self, network: model.Network,
                   endpoint: model.Endpoint) -> None:
        """Register the endpoint's port with the data plane again."""

    def replug(self, network: model.Network, endpoint: model.Endpoint,
               sandbox_key: str) -> str:
        """Give a running container back the interface it lost."""
        raise NotImplementedError()
