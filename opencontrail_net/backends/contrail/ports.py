"""Exposed and published ports of endpoints on Contrail.

Exposed ports (``--expose``, and those ``-p`` publishes) open in a
security group of the endpoint's own; published ports (``-p``) are port
mappings of a floating IP of the endpoint's own, from the network's
floating-ip pool.
"""

import threading

from oslo_log import log as logging
from vnc_api import exceptions as vnc_exc

from opencontrail_net.backends.contrail import cleanup
from opencontrail_net.backends.contrail import context
from opencontrail_net.backends.contrail import objects
from opencontrail_net.backends.contrail import undo
from opencontrail_net import exception
from opencontrail_net import ids
from opencontrail_net import model

LOG = logging.getLogger(__name__)


class PortRecords:
    """What of each endpoint's ports stands in Contrail.

    endpoint ID → {'group': its exposed-ports security group,
    'floating_ip', 'sure': seen made or removed by this process (else read
    off its interface)}. Owned here; an entry is set when the endpoint is
    made, its ports published or withdrawn, or its interface read, and
    dropped when the endpoint is deleted.
    """

    def __init__(self):
        self._records = {}
        self._lock = threading.Lock()

    def get(self, endpoint_id):
        return self._records.get(endpoint_id)

    def note(self, endpoint_id, group, floating_ip, sure=True):
        with self._lock:
            self._records[endpoint_id] = {'group': group,
                                          'floating_ip': floating_ip,
                                          'sure': sure}

    def drop(self, endpoint_id):
        with self._lock:
            self._records.pop(endpoint_id, None)

    def of_vmi(self, vmi, exact=False):
        """Note what of an endpoint's ports stands, read off its interface.

        Its exposed-ports group shows in its refs, or may stand unreferred
        if Docker named ports at CreateEndpoint (the driver killed between
        making it and referring to it). A floating IP comes only with that
        group (made after it, removed before it): tried with it, unless
        ``exact`` (the interface was read with its back-refs).
        """
        endpoint_id = objects.annotation(vmi).get('endpoint', vmi.name)
        known = self.get(endpoint_id)
        if known and known['sure']:
            return
        group = ids.endpoint_security_group_uuid(endpoint_id) in {
            r['uuid'] for r in vmi.get_security_group_refs() or []} or bool(
            objects.annotation(vmi).get('ports'))
        fip = group
        if exact:
            fip = ids.floating_ip_uuid(endpoint_id) in {
                r['uuid'] for r in vmi.get_floating_ip_back_refs() or []}
        self.note(endpoint_id, group, fip, sure=False)


class Ports:
    """Publish and withdraw an endpoint's ports; find them after a
    restart. ``cached_endpoint(endpoint ID)`` gives an endpoint this
    process holds, or None."""

    def __init__(self, ctx, records, cached_endpoint, vmi_uuid):
        self.ctx = ctx
        self.records = records
        self.cached_endpoint = cached_endpoint
        self.vmi_uuid = vmi_uuid
        self.fip_pool = None
        if ctx.opts.floating_ip_pool:
            self.fip_pool = ctx.pool_fq(ctx.opts.floating_ip_pool)
            if self.fip_pool is None:
                raise exception.InvalidConfig(
                    option='[contrail] floating_ip_pool',
                    value=ctx.opts.floating_ip_pool,
                    reason='expected DOMAIN:PROJECT:NETWORK:POOL')

    @staticmethod
    def _port_ranges(exposed):
        """Exposed ports as (proto, first, last) runs, one rule each."""
        runs = []
        for port in sorted(exposed, key=lambda p: (p.proto, p.port)):
            if runs and runs[-1][0] == port.proto and \
                    runs[-1][2] + 1 == port.port:
                runs[-1][2] = port.port
            else:
                runs.append([port.proto, port.port, port.port])
        return [tuple(r) for r in runs]

    @staticmethod
    def _port_mappings(bindings, pool):
        """(proto, port on the floating IP, container port) of each -p.

        The floating IP is the container's own: no other container holds
        its ports, so a host port range takes its first port, and no host
        port (-p 80) the container's own.
        """
        mappings, seen = [], {}
        for b in bindings:
            if b.host_ip:
                raise exception.CannotPublish(
                    reason='-p %s:%d:%d: on Contrail a container\'s ports '
                    'are published on its own floating IP from pool %s, '
                    'not on a host address; publish without one (-p '
                    '%d:%d)' % (b.host_ip, b.host_port, b.port, pool,
                                b.host_port or b.port, b.port))
            if b.proto not in ('tcp', 'udp'):
                raise exception.CannotPublish(
                    reason='-p %d/%s: Contrail maps only tcp and udp '
                    'ports of a floating IP' % (b.port, b.proto))
            src = b.host_port or b.port
            if seen.get((b.proto, src), b.port) != b.port:
                raise exception.CannotPublish(
                    reason='host port %d/%s is published twice, to '
                    'container ports %d and %d' % (
                        src, b.proto, seen[(b.proto, src)], b.port))
            if (b.proto, src) not in seen:
                seen[(b.proto, src)] = b.port
                mappings.append((b.proto, src, b.port))
        return mappings

    def publish(self, network, endpoint_id, exposed, bindings):
        """Exposed ports: a security group of the endpoint's own that lets
        them in from anywhere. Published ports (-p): a floating IP of the
        network's pool with one port mapping each.

        Retried, the same objects are found (uuids derived from the
        endpoint's ID) and set to what is asked now; a failure part-way
        undoes what this call made.
        """
        exposed = list(exposed)
        for b in bindings:
            if model.ExposedPort(b.proto, b.port) not in exposed:
                exposed.append(model.ExposedPort(b.proto, b.port))
        if not exposed:
            return {}
        pool = self.ctx.pool_fq(network.floating_ip_pool) if \
            network.floating_ip_pool else self.fip_pool
        if bindings and pool is None:
            raise exception.CannotPublish(
                reason='network %s has no floating-ip pool to publish -p '
                'on: set [contrail] floating_ip_pool = '
                'DOMAIN:PROJECT:NETWORK:POOL in the driver\'s configuration, '
                'or create the network with -o '
                'opencontrail.floating_ip_pool=DOMAIN:PROJECT:NETWORK:POOL; '
                'without -p the container is reached at its Contrail '
                'address' % network.id)
        mappings = self._port_mappings(bindings, ':'.join(pool or ()))
        versions = sorted({s.version for s in network.subnets}) or [4, 6]
        vmi_uuid = self.vmi_uuid(endpoint_id)
        address = None
        try:
            with undo.Made(self.ctx.client) as made:
                with self.ctx.api(budget=2 / 3) as api:
                    sg = objects.ports_security_group_obj(
                        network, endpoint_id, self._port_ranges(exposed),
                        versions)
                    if context.create_ours(api.security_group_create, sg,
                                           'security-group', made):
                        api.ref_update('virtual-machine-interface', vmi_uuid,
                                       'security-group', sg.uuid, None, 'ADD')
                        made.ref('virtual-machine-interface', vmi_uuid,
                                 'security-group', sg.uuid)
                    else:
                        api.security_group_update(sg)
                        api.ref_update('virtual-machine-interface', vmi_uuid,
                                       'security-group', sg.uuid, None, 'ADD')
                    if mappings:
                        address = self._floating_ip(api, network, endpoint_id,
                                                    pool, mappings, made)
        except Exception:
            # What an earlier call left is unknown now: tried at delete.
            self.records.note(endpoint_id, True, True, sure=False)
            raise
        self.records.note(endpoint_id, True, bool(mappings))
        LOG.info('Opened exposed ports %s of endpoint %s (security-group '
                 '%s)', ', '.join('%d/%s' % (p.port, p.proto)
                                  for p in exposed), endpoint_id, sg.uuid)
        if not mappings:
            return {}
        LOG.info('Published ports of endpoint %s on floating IP %s (pool '
                 '%s): %s', endpoint_id, address, ':'.join(pool),
                 ', '.join('%s:%d->%d/%s' % (address, src, dst, proto)
                           for proto, src, dst in mappings))
        return self._published_info(self.cached_endpoint(endpoint_id),
                                    address, pool, mappings)

    @staticmethod
    def _published_info(ep, address, pool, mappings):
        """What EndpointOperInfo shows of a floating IP's ports, as a
        plain record: the container's address on its network, and the
        ports published on the floating IP."""
        return {'floating_ip': address, 'floating_ip_pool': ':'.join(pool),
                'container_ip': (ep.ipv4.split('/')[0]
                                 if ep and ep.ipv4 else ''),
                'ports': [model.PortBinding(proto, dst, address, src, src)
                          for proto, src, dst in mappings]}

    def published(self, endpoints):
        """The floating IPs of these endpoints, for EndpointOperInfo after
        a restart: one list request, and only for endpoints whose
        interface shows published ports."""
        wanted = {ep.id: ep for ep in endpoints
                  if (self.records.get(ep.id) or {}).get('floating_ip')}
        if not wanted:
            return {}
        with self.ctx.api() as api:
            found = api.floating_ips_list(
                obj_uuids=[ids.floating_ip_uuid(e) for e in wanted],
                detail=True)
        info = {}
        for fip in found:
            ep = wanted.get(fip.name)
            if ep is None or not objects.is_ours(fip):
                continue
            maps = fip.get_floating_ip_port_mappings()
            mappings = [(m.protocol, m.src_port, m.dst_port)
                        for m in (maps.get_port_mappings() if maps else [])]
            info[ep.id] = self._published_info(
                ep, fip.get_floating_ip_address(), fip.get_fq_name()[:4],
                mappings)
        return info

    def _floating_ip(self, api, network, endpoint_id, pool, mappings, made):
        """Make (or find, and set) the endpoint's floating IP; its address.
        """
        fip = objects.floating_ip_obj(network, endpoint_id, pool, mappings)
        where = ':'.join(pool)
        try:
            if not context.create_ours(api.floating_ip_create, fip,
                                       'floating-ip', made):
                api.floating_ip_update(fip)
        except vnc_exc.NoIdError:
            raise exception.CannotPublish(
                reason='no floating-ip-pool %s in Contrail (%s)' % (
                    where, 'opencontrail.floating_ip_pool of network %s'
                    % network.id if network.floating_ip_pool else
                    '[contrail] floating_ip_pool'))
        except (vnc_exc.HttpError, vnc_exc.BadRequest) as exc:
            if 'exhausted' in str(getattr(exc, 'content', exc)):
                raise exception.PoolExhausted(
                    pool='floating-ip-pool %s' % where)
            raise
        return api.floating_ip_read(
            id=fip.uuid, fields=['floating_ip_address']
        ).get_floating_ip_address()

    def unpublish(self, network, endpoint_id):
        """Remove the floating IP and the exposed-ports group, if any.

        Nothing published (known from Program, or read off the interface
        at start or Join): no request. An endpoint this process never saw
        is left to DeleteEndpoint, which tries both.
        """
        ports = self.records.get(endpoint_id)
        if not ports or not (ports['group'] or ports['floating_ip']):
            return
        with self.ctx.api() as api:
            if ports['floating_ip']:
                cleanup.delete_floating_ip(api, endpoint_id)
            if ports['group']:
                cleanup.delete_ports_group(api, endpoint_id, unref=True,
                                           vmi_uuid=self.vmi_uuid(
                                               endpoint_id))
        self.records.note(endpoint_id, False, False)
