"""The ``contrail`` backend: Docker objects as Contrail config objects.

A Docker network is a virtual-network with a security group, an endpoint
a virtual-machine-interface with one instance-ip per address, a container
a virtual-machine. Every uuid is derived from the full Docker ID, so any
host and any restart finds an object with one GET and the driver keeps no
state of its own. Records are cached in memory only to spare requests:
what is cached never changes once made.

This class is the backend's one face; each concern has a module of its
own, sharing one :class:`~.context.Context`:

- ``networks``: networks of the driver's own, with ``groups`` (their own
  security group), ``routers`` (logical-router joins) and ``allow``
  (allow policies between networks); ``existing``: attached existing
  networks; ``route_targets``: the cluster's rules and a network's
  targets;
- ``endpoints``: interfaces, instance-ips, VMs, the virtual-router link;
  ``delete_queue`` and ``delete_worker``: endpoint deletes done after
  DeleteEndpoint has answered;
- ``port_pool``: interfaces made ahead (``[contrail] port_pool_size``);
- ``ports``: exposed and published ports (security groups of endpoints,
  floating IPs);
- ``pools``: the driver's IPAM (pools, addresses);
- ``inventory``: what start-up, ``status`` and the audit read;
- ``pending``: networks whose delete waits for objects of others;
- ``undo``: what a failed call made, undone; ``cleanup``: every delete.
"""

from oslo_log import log as logging

from opencontrail_net.backends import base
from opencontrail_net.backends.contrail import cleanup
from opencontrail_net.backends.contrail import context
from opencontrail_net.backends.contrail import delete_queue
from opencontrail_net.backends.contrail import delete_worker
from opencontrail_net.backends.contrail import endpoints
from opencontrail_net.backends.contrail import groups
from opencontrail_net.backends.contrail import guard
from opencontrail_net.backends.contrail import inventory
from opencontrail_net.backends.contrail import networks
from opencontrail_net.backends.contrail import options
from opencontrail_net.backends.contrail import pending
from opencontrail_net.backends.contrail import pools
from opencontrail_net.backends.contrail import port_pool
from opencontrail_net.backends.contrail import ports
from opencontrail_net.backends.contrail import route_targets
from opencontrail_net import exception

LOG = logging.getLogger(__name__)


class ContrailBackend(base.Backend):
    """Networks and endpoints in a Contrail cluster, through vnc_api."""

    CONFIG_GROUP = 'contrail'
    CONFIG_OPTS = tuple(options.CONFIG_OPTS) + tuple(guard.CONFIG_OPTS)

    def __init__(self, conf):
        super().__init__(conf)
        self.ctx = context.Context(conf)
        self.client = self.ctx.client
        # With the vrouter port driver, this host's virtual-router must
        # refer to each container's VM, or its agent never gets the port.
        self.vrouter = endpoints.VRouter(self.ctx,
                                         conf.port_driver == 'vrouter')
        self.pending = pending.PendingDeletes(self.ctx)
        self.pools = pools.Pools(self.ctx)
        self.networks = networks.Networks(self.ctx, self.pools, self.pending)
        self.route_targets = route_targets.RouteTargets(self.ctx,
                                                        self.networks.get)
        records = ports.PortRecords()
        # Interfaces made ahead, per network this host serves.
        self.port_pool = port_pool.PortPool(
            self.ctx, self.ctx.opts.port_pool_size, conf.state_path,
            self.vrouter)
        self.endpoints = endpoints.Endpoints(self.ctx, self.pools, records,
                                             self.vrouter, self.port_pool)
        self.ports = ports.Ports(self.ctx, records, self.endpoints.cached,
                                 self.endpoints.vmi_uuid)
        # DeleteEndpoint records the delete (a file of this host's) and
        # answers; the worker sends the requests after.
        self.deletes = delete_worker.DeleteWorker(
            delete_queue.DeleteQueue(conf.state_path), self.endpoints.remove,
            self.ctx.host)
        self.inventory = inventory.Inventory(self.ctx, self.networks,
                                             records, self.vrouter,
                                             self.pending,
                                             self.endpoints.vmi_uuid,
                                             self.endpoints.pooled)

    # Start and stop ---------------------------------------------------

    def start(self):
        try:
            # Briefly: a hung API must not keep Docker from the socket.
            with self.ctx.api(budget=0.2) as api:
                cleanup.delete_unused_vms(api, self.ctx.host)
                self.pending.load(api)
                self.vrouter.uuid(api)
        except exception.OpenContrailNetError as exc:
            LOG.warning('Could not look for unused VMs and pending deletes '
                        'at start: %s', exc)
        # Until the record is read, it is read again every few seconds
        # (and before any call that needs it): never carried on without.
        self.pending.start(self.networks.delete, self.ctx.api)
        self.deletes.start()
        self.port_pool.start()

    def stop(self):
        self.pending.stop()
        self.deletes.stop()
        self.port_pool.stop()

    # Networks ---------------------------------------------------------

    def route_target_rules(self):
        return self.route_targets.rules()

    def create_network(self, network):
        network, created = self.networks.create(network)
        self.port_pool.want(network)
        return network, created

    def get_network(self, network_id):
        return self.networks.get(network_id)

    def delete_network(self, network_id, only_host=None):
        # Contrail refuses to delete a network its endpoints still hold.
        self.deletes.run_now(self.deletes.queued(network_id))
        self.port_pool.forget(network_id)
        return self.networks.delete(network_id, only_host)

    def set_route_targets(self, network_id, route_targets=None,
                          import_targets=None, export_targets=None):
        return self.route_targets.set(
            network_id, route_targets, import_targets, export_targets)

    # Endpoints --------------------------------------------------------

    def create_endpoint(self, network, endpoint):
        # The same endpoint ID again while its delete waits: the old one
        # goes first.
        self.deletes.run_now([endpoint.id])
        return self.endpoints.create(network, endpoint)

    def get_endpoint(self, network, endpoint_id):
        return self.endpoints.get(network, endpoint_id)

    def attach_endpoint(self, network, endpoint, sandbox):
        return self.endpoints.attach(network, endpoint, sandbox)

    def detach_endpoint(self, network, endpoint):
        return self.endpoints.detach(network, endpoint)

    def delete_endpoint(self, network, endpoint_id):
        if not self.deletes.running:
            # Not serving (opencontrail-net-manage's repairs): at once.
            return self.endpoints.delete(network, endpoint_id)
        item = delete_queue.entry(endpoint_id, network.id, self.ctx.host,
                                  self.endpoints.parts(network, endpoint_id))
        try:
            if self.deletes.submit(item):
                LOG.debug('Delete of endpoint %s queued', endpoint_id)
        except OSError as exc:
            # Not recorded, so not left for later: done now.
            LOG.error('Cannot record the delete of endpoint %s under '
                      '[DEFAULT] state_path, deleting it now: %s',
                      endpoint_id, exc)
            self.endpoints.remove(item)

    def port_pools(self):
        return self.port_pool.state()

    def reclaim_port_pool(self, network_id):
        self.port_pool.forget(network_id)

    def queued_deletes(self):
        if self.deletes.running:
            return self.deletes.state()
        return self.deletes.queue.entries()

    # Exposed and published ports -------------------------------------

    def publish_ports(self, network, endpoint_id, exposed, bindings):
        return self.ports.publish(network, endpoint_id, exposed, bindings)

    def unpublish_ports(self, network, endpoint_id):
        return self.ports.unpublish(network, endpoint_id)

    def published(self, endpoints):
        return self.ports.published(endpoints)

    # Inventory ----------------------------------------------------------

    def find_endpoints(self, host, endpoint_ids):
        return self.inventory.find_endpoints(host, endpoint_ids)

    def owned_networks(self, networks=None):
        return self.inventory.owned_networks(networks)

    def network_endpoints(self, network, host=None):
        return self.inventory.network_endpoints(network, host)

    def vrouter_links(self):
        return self.inventory.vrouter_links()

    def foreign_objects(self, network):
        return self.inventory.foreign_objects(network)

    def allow_policies(self, scoped=False):
        return self.inventory.allow_policies(scoped)

    def orphan_groups(self, networks=None):
        return self.inventory.orphan_groups(networks)

    def remove_orphan_group(self, group):
        return groups.remove_orphan(self.ctx, group)

    def remove_allow_policy(self, policy):
        return self.networks.allow.remove(policy)

    # IPAM -------------------------------------------------------------

    def request_pool(self, pool, defaults):
        return self.pools.request_pool(pool, defaults)

    def release_pool(self, pool):
        return self.pools.release_pool(pool)

    def request_address(self, pool, address, gateway=False):
        return self.pools.request_address(pool, address, gateway)

    def release_address(self, pool, address):
        return self.pools.release_address(pool, address)
