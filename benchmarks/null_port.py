"""A port driver that makes no interfaces, for driver benchmarks.

``NullPortDriver`` answers Join as the veth driver does (a container-side
name, the network's gateways) but creates, moves and deletes nothing on
the host: a benchmark of many driver processes on one machine measures
the driver and its backend, not the kernel's veth pairs.

It is not part of the product: no ``opencontrail_net.port_drivers``
entry point of the project names it. :func:`entry_point_dir` writes a
minimal distribution record (a ``.dist-info`` directory with the entry
point ``null``) into a directory of the caller's; a driver process with
that directory and the repository on its ``PYTHONPATH`` loads it by name
through stevedore like any other port driver (``port_driver = null``).
"""

import os

from opencontrail_net import model
from opencontrail_net.port_drivers import base

NAME = 'null'
DIST = 'ocn_bench_null_port'


class NullPortDriver(base.PortDriver):
    """Plug and unplug keep only a record; no interface is made."""

    def __init__(self, conf):
        super().__init__(conf)
        # endpoint ID -> the name Join told Docker.
        self._plugged = {}

    def plug(self, network, endpoint, sandbox_key):
        name = 'nul%sc0' % endpoint.id[:10]
        self._plugged[endpoint.id] = name
        return model.JoinInfo(
            src_name=name,
            gateway=None if network.internal else network.gateway(4),
            gateway_ipv6=None if network.internal else network.gateway(6),
            disable_gateway_service=True)

    def unplug(self, network_id, endpoint_id, background=False):
        return self._plugged.pop(endpoint_id, None)

    def plugged_endpoints(self):
        return list(self._plugged)


def entry_point_dir(path):
    """Write the distribution record that names this driver ``null`` in
    ``opencontrail_net.port_drivers`` under ``path``; returns ``path``.
    """
    info = os.path.join(path, '%s-0.dist-info' % DIST)
    os.makedirs(info, exist_ok=True)
    with open(os.path.join(info, 'METADATA'), 'w') as f:
        f.write('Metadata-Version: 2.1\nName: %s\nVersion: 0\n' % DIST)
    with open(os.path.join(info, 'entry_points.txt'), 'w') as f:
        f.write('[opencontrail_net.port_drivers]\n%s = %s:%s\n' % (
            NAME, 'benchmarks.null_port', NullPortDriver.__name__))
    return path
