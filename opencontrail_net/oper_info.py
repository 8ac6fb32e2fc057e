"""What EndpointOperInfo shows of this host's endpoints, kept in memory.

EndpointOperInfo answers with no backend I/O: an endpoint's value is made
when it joins and publishes ports, and after a restart from what the port
driver and the backend report of the endpoints plugged here.
"""

import threading

from opencontrail_net import portopts

# What EndpointOperInfo shows of published ports; Contrail adds its own.
PORT_INFO = (portopts.PORTMAP, 'floating_ip', 'floating_ip_pool')


def portmap(ep, mappings):
    """Published ports as Docker's bridge reports them (PortBinding)."""
    address = ep.ipv4 or ep.ipv6
    return portopts.portmap(address.split('/')[0] if address else '',
                            mappings)


def backend_port_info(record):
    """What EndpointOperInfo shows of ports a backend published.

    ``record``: the backend's plain record (see Backend.publish_ports):
    its ``ports`` (model.PortBinding, host side on the published address)
    and ``container_ip`` become Docker's portmap; the rest shows as is.
    """
    info = {k: v for k, v in record.items()
            if k not in ('ports', 'container_ip')}
    if 'ports' in record:
        info[portopts.PORTMAP] = portopts.portmap(
            record.get('container_ip', ''), record['ports'])
    return info


def _value(ep, host_if):
    value = {'host_if': host_if, 'mac': ep.mac, 'contrail_vmi': ep.uuid,
             'contrail_vm': ep.vm_uuid}
    if ep.security_groups is not None:
        value['security_groups'] = ep.security_groups
    return value


class OperInfo:
    """EndpointOperInfo's value of each endpoint joined on this host."""

    def __init__(self):
        self._values = {}
        self._lock = threading.Lock()

    def __len__(self):
        return len(self._values)

    def get(self, endpoint_id):
        """The value of ``endpoint_id``; empty if it is not joined here."""
        return self._values.get(endpoint_id, {})

    def joined(self, ep, host_if):
        """``ep`` (a model.Endpoint) is plugged into host interface
        ``host_if``."""
        self._values[ep.id] = _value(ep, host_if)

    def restored(self, ep, host_if, mappings, record):
        """``ep`` was plugged before a restart, with the ports the port
        driver published (``mappings``, [model.PortBinding], or None) or
        the backend did (``record``, see backend_port_info, or None)."""
        self._values[ep.id] = _value(ep, host_if)
        if mappings:
            self._values[ep.id][portopts.PORTMAP] = portmap(ep, mappings)
        if record is not None:
            self._values[ep.id].update(backend_port_info(record))

    def published(self, endpoint_id, info):
        """Ports of ``endpoint_id`` were published: ``info`` is what
        EndpointOperInfo shows of them."""
        with self._lock:
            value = self._values.setdefault(endpoint_id, {})
            value.update(info)

    def revoked(self, endpoint_id):
        """The published ports of ``endpoint_id`` are gone."""
        with self._lock:
            value = self._values.get(endpoint_id)
            if value:
                for key in PORT_INFO:
                    value.pop(key, None)

    def forget(self, endpoint_id):
        """``endpoint_id`` is deleted."""
        self._values.pop(endpoint_id, None)
