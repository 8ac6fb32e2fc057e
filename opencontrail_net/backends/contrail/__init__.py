"""The ``contrail`` backend (entry point ``contrail``).

``client``: the bounded vnc_api clients and their errors; ``objects``:
Contrail objects built from Docker's records and read back; ``cleanup``:
every delete, under the rule that only the driver's own objects go;
``backend``: the operations.
"""

from opencontrail_net.backends.contrail.backend import ContrailBackend

CONFIG_OPTS = ContrailBackend.CONFIG_OPTS

__all__ = ['ContrailBackend', 'CONFIG_OPTS']
