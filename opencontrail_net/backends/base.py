"""The backend plugin point: where networks, endpoints and VMs live."""

import abc

from opencontrail_net import plugin


class Backend(plugin.PluginBase):
    """Keeps Docker networks and endpoints, keyed by full Docker IDs.

    Every operation is idempotent, and a failing operation leaves nothing
    it made behind. Records are :mod:`opencontrail_net.model` objects.
    """

    @abc.abstractmethod
    def create_network(self, network):
        """Create ``network``; return ``(network, created)``.

        A network that already exists with the same content is returned
        with ``created`` False; one with other content is a Conflict.
        """

    @abc.abstractmethod
    def get_network(self, network_id):
        """Return the network, or raise NetworkNotFound."""

    @abc.abstractmethod
    def delete_network(self, network_id, only_host=None):
        """Delete the network and whatever endpoints it still holds.

        With ``only_host`` (the audit's repair), endpoints bound on other
        hosts are not deleted: they keep the network, and a Conflict
        names them.
        """

    @abc.abstractmethod
    def create_endpoint(self, network, endpoint):
        """Create ``endpoint``; return ``(endpoint, created)``.

        The returned endpoint carries its MAC: the one Docker gave, else
        one the backend allocated.
        """

    @abc.abstractmethod
    def get_endpoint(self, network, endpoint_id):
        """Return the endpoint, or raise EndpointNotFound."""

    @abc.abstractmethod
    def delete_endpoint(self, network, endpoint_id):
        """Delete the endpoint, and its VM when no other endpoint uses it."""

    @abc.abstractmethod
    def attach_endpoint(self, network, endpoint, sandbox):
        """Bind the endpoint to the VM of container sandbox ``sandbox``.

        Returns ``(endpoint, attached)``: the endpoint with ``vm_uuid``
        set, and whether this call made the binding.
        """

    @abc.abstractmethod
    def detach_endpoint(self, network, endpoint):
        """Undo attach_endpoint: unbind, delete the VM if it is unused."""

    @abc.abstractmethod
    def set_route_targets(self, network_id, route_targets=None,
                          import_targets=None, export_targets=None):
        """Replace the given route-target lists of a network."""

    @abc.abstractmethod
    def request_pool(self, pool, defaults):
        """Take ``pool`` (a model.Pool); return it with its CIDR.

        Without a CIDR, the first subnet of ``defaults`` ([(range,
        prefixlen)]) that overlaps no subnet of the project.
        """

    @abc.abstractmethod
    def release_pool(self, pool):
        """Give the pool back; what it still holds goes with it."""

    @abc.abstractmethod
    def request_address(self, pool, address, gateway=False):
        """Take ``address`` of the pool, or a free one of its range.

        Returns the plain address; AddressInUse or PoolExhausted, naming
        the address and the pool, otherwise.
        """

    @abc.abstractmethod
    def release_address(self, pool, address):
        """Give ``address`` back to the pool; unknown is not an error."""

    def publish_ports(self, network, endpoint_id, exposed, bindings):
        """Open ``exposed`` ports and publish ``bindings`` in the backend.

        ``exposed``: [model.ExposedPort]; ``bindings``: [model.PortBinding].
        Returns a plain record of what was published, or None when this
        backend leaves ports to the port driver; ``{}`` when nothing was.
        The record's ``ports`` ([model.PortBinding], host side on the
        published address) and ``container_ip`` make Docker's portmap in
        EndpointOperInfo; its other keys (``floating_ip``, ...) show there
        as they are. Idempotent.
        """
        return None

    def unpublish_ports(self, network, endpoint_id):
        """Undo publish_ports; nothing there is not an error."""

    def published(self, endpoints):
        """What publish_ports returned for these endpoints (``[model.
        Endpoint]``), found again after a restart: ``{endpoint ID: dict}``.
        """
        return {}

    def find_endpoints(self, host, endpoint_ids):
        """Return ``[(network, endpoint)]`` of those IDs bound on ``host``.

        Start-up asks for the endpoints whose interfaces this host has:
        what it costs follows this host, never the whole backend.
        """
        return []

    # Inventory, for the audit ----------------------------------------

    def owned_networks(self):
        """Return the networks this driver made for this host's Docker.

        Scoped to what this host made, never a scan of the whole backend:
        the audit compares them with this host's Docker networks.
        """
        return []

    def network_endpoints(self, network, host=None):
        """Return the endpoints of ``network`` bound on ``host``; with
        None, those of every host, each with its ``host`` (the audit
        leaves other hosts' to them)."""
        return []

    def vrouter_links(self):
        """The VM uuids this host's virtual-router refers to, or None where
        the backend makes no such link."""
        return None

    def foreign_objects(self, network):
        """Describe what others put in ``network`` (texts, for operators).

        The driver never deletes those.
        """
        return []

    def orphan_groups(self):
        """Security groups the driver made for a network that does not
        exist (a create that failed and could not be undone), in the
        audited projects: dicts of ``uuid``, ``fq_name``, ``network``
        (the Docker network ID it was made for)."""
        return []

    def remove_orphan_group(self, group):
        """Delete an orphan group (one of ``orphan_groups``); a group
        something refers to is a Conflict that names it."""
        raise NotImplementedError()

    def allow_policies(self):
        """The driver's own policies between two networks (``-o
        opencontrail.allow``) in the audited projects, for the audit.

        Each a dict: ``uuid``, ``fq_name``, ``networks`` (the two Docker
        network IDs), ``gone`` (those of the two whose network is gone),
        ``ours`` (``[(network ID, backend uuid)]`` of the two that still
        refer to it) and ``others`` (descriptions of anything else that
        refers to it).
        """
        return []

    def remove_allow_policy(self, policy):
        """Remove ``policy`` (one of :meth:`allow_policies`): the refs of
        its networks that still refer to it, then the policy. Refers to
        by others: Conflict, naming them."""
        raise NotImplementedError

    def route_target_rules(self):
        """Return ``(global ASN, 4-byte ASNs allowed)`` for route targets."""
        return self.conf.global_asn, False
