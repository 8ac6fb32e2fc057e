"""The backend plugin point: where networks, endpoints and VMs live."""

import abc
from typing import (Any, Dict, Iterable, List, Optional, Sequence, Set,
                    Tuple)

from opencontrail_net import model
from opencontrail_net import plugin


class Backend(plugin.PluginBase):
    """Keeps Docker networks and endpoints, keyed by full Docker IDs.

    Every operation is idempotent, and a failing operation leaves nothing
    it made behind. Records are :mod:`opencontrail_net.model` objects.
    """

    @abc.abstractmethod
    def create_network(self, network: model.Network
                       ) -> Tuple[model.Network, bool]:
        """Create ``network``; return ``(network, created)``.

        A network that already exists with the same content is returned
        with ``created`` False; one with other content is a Conflict.
        """

    @abc.abstractmethod
    def get_network(self, network_id: str) -> model.Network:
        """Return the network, or raise NetworkNotFound."""

    @abc.abstractmethod
    def delete_network(self, network_id: str,
                       only_host: Optional[str] = None) -> None:
        """Delete the network and whatever endpoints it still holds.

        With ``only_host`` (the audit's repair), endpoints bound on other
        hosts are not deleted: they keep the network, and a Conflict
        names them.
        """

    @abc.abstractmethod
    def create_endpoint(self, network: model.Network,
                        endpoint: model.Endpoint
                        ) -> Tuple[model.Endpoint, bool]:
        """Create ``endpoint``; return ``(endpoint, created)``.

        The returned endpoint carries its MAC: the one Docker gave, else
        one the backend allocated.
        """

    @abc.abstractmethod
    def get_endpoint(self, network: model.Network,
                     endpoint_id: str) -> model.Endpoint:
        """Return the endpoint, or raise EndpointNotFound."""

    @abc.abstractmethod
    def delete_endpoint(self, network: model.Network,
                        endpoint_id: str) -> None:
        """Delete the endpoint, and its VM when no other endpoint uses it.

        A backend may record the delete and do it after returning
        (:meth:`queued_deletes` shows it until done); it then does it
        before deleting the endpoint's network or creating an endpoint
        of the same ID.
        """

    @abc.abstractmethod
    def attach_endpoint(self, network: model.Network,
                        endpoint: model.Endpoint, sandbox: str
                        ) -> Tuple[model.Endpoint, bool]:
        """Bind the endpoint to the VM of container sandbox ``sandbox``.

        Returns ``(endpoint, attached)``: the endpoint with ``vm_uuid``
        set, and whether this call made the binding.
        """

    @abc.abstractmethod
    def detach_endpoint(self, network: model.Network,
                        endpoint: model.Endpoint) -> None:
        """Undo attach_endpoint: unbind, delete the VM if it is unused."""

    @abc.abstractmethod
    def set_route_targets(
            self, network_id: str,
            route_targets: Optional[List[str]] = None,
            import_targets: Optional[List[str]] = None,
            export_targets: Optional[List[str]] = None) -> None:
        """Replace the given route-target lists of a network."""

    @abc.abstractmethod
    def request_pool(
            self, pool: model.Pool,
            defaults: Sequence[Tuple[model.IPNetwork, int]]) -> model.Pool:
        """Take ``pool``; return it with its CIDR.

        Without a CIDR, the first subnet of ``defaults`` ([(range,
        prefixlen)]) that overlaps no subnet of the project.
        """

    @abc.abstractmethod
    def release_pool(self, pool: model.Pool) -> None:
        """Give the pool back; what it still holds goes with it."""

    @abc.abstractmethod
    def request_address(self, pool: model.Pool, address: Optional[str],
                        gateway: bool = False) -> str:
        """Take ``address`` of the pool, or a free one of its range.

        Returns the plain address; AddressInUse or PoolExhausted, naming
        the address and the pool, otherwise.
        """

    @abc.abstractmethod
    def release_address(self, pool: model.Pool, address: str) -> None:
        """Give ``address`` back to the pool; unknown is not an error."""

    def publish_ports(self, network: model.Network, endpoint_id: str,
                      exposed: Sequence[model.ExposedPort],
                      bindings: Sequence[model.PortBinding]
                      ) -> Optional[model.PublishedPorts]:
        """Open ``exposed`` ports and publish ``bindings`` in the backend.

        Returns what was published (``{}`` when nothing was), or None when
        this backend leaves ports to the port driver. Idempotent.
        """
        return None

    def unpublish_ports(self, network: model.Network,
                        endpoint_id: str) -> None:
        """Undo publish_ports; nothing there is not an error."""

    def published(self, endpoints: Sequence[model.Endpoint]
                  ) -> Dict[str, model.PublishedPorts]:
        """What publish_ports returned for these endpoints, found again
        after a restart, by endpoint ID."""
        return {}

    def find_endpoints(self, host: str, endpoint_ids: Sequence[str]
                       ) -> List[Tuple[model.Network, model.Endpoint]]:
        """Return ``[(network, endpoint)]`` of those IDs bound on ``host``.

        Start-up asks for the endpoints whose interfaces this host has:
        what it costs follows this host, never the whole backend.
        """
        return []

    def queued_deletes(self) -> List[Dict[str, Any]]:
        """Endpoint deletes recorded and not done yet, each with its
        ``endpoint`` and ``network`` IDs (and, where known, ``queued``:
        when, ``attempts``: failed tries, ``error``: the latest's)."""
        return []

    def port_pools(self) -> Dict[str, Tuple[int, int]]:
        """This host's pools of interfaces made ahead: network ID →
        (free, taken)."""
        return {}

    def reclaim_port_pool(self, network_id: str) -> None:
        """Delete this host's free pooled interfaces of ``network_id``."""

    # Inventory, for the audit ----------------------------------------

    def owned_networks(self, networks: Optional[Iterable[str]] = None
                       ) -> List[model.Network]:
        """Return the networks this driver made for this host's Docker.

        Scoped to what this host made, never a scan of the whole backend:
        the audit compares them with this host's Docker networks. With
        ``networks`` (Docker network IDs), only those and the ones this
        host's own record names are looked at; None: every network of
        the audited projects.
        """
        return []

    def network_endpoints(self, network: model.Network,
                          host: Optional[str] = None
                          ) -> List[model.Endpoint]:
        """Return the endpoints of ``network`` bound on ``host``; with
        None, those of every host, each with its ``host`` (the audit
        leaves other hosts' to them)."""
        return []

    def vrouter_links(self) -> Optional[Set[str]]:
        """The VM uuids this host's virtual-router refers to, or None where
        the backend makes no such link."""
        return None

    def foreign_objects(self, network: model.Network) -> List[str]:
        """Describe what others put in ``network`` (texts, for operators).

        The driver never deletes those.
        """
        return []

    def orphan_groups(self, networks: Optional[Iterable[str]] = None
                      ) -> List[model.OrphanGroup]:
        """Security groups the driver made for a network that does not
        exist (a create that failed and could not be undone), in the
        audited projects; with ``networks``, only the groups of those
        Docker networks."""
        return []

    def remove_orphan_group(self, group: model.OrphanGroup) -> None:
        """Delete an orphan group (one of ``orphan_groups``); a group
        something refers to is a Conflict that names it."""
        raise NotImplementedError()

    def allow_policies(self, scoped: bool = False
                       ) -> List[model.AllowPolicy]:
        """The driver's own policies between two networks (``-o
        opencontrail.allow``) in the audited projects, each with the state
        of both, for the audit; ``scoped``: only those this host's own
        record names."""
        return []

    def remove_allow_policy(self, policy: model.AllowPolicy) -> None:
        """Remove ``policy`` (one of :meth:`allow_policies`): the refs of
        its networks that still refer to it, then the policy. Refers to
        by others: Conflict, naming them."""
        raise NotImplementedError

    def route_target_rules(self) -> Tuple[int, bool]:
        """Return ``(global ASN, 4-byte ASNs allowed)`` for route targets."""
        return self.conf.global_asn, False
