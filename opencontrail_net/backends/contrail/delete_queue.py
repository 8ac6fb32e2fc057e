"""This host's record of the endpoint deletes it owes Contrail.

DeleteEndpoint answers once the endpoint is recorded here; the Contrail
deletes follow (see :mod:`delete_worker`). The record is one small JSON
file per endpoint under ``<state_path>/contrail-deletes/``: writing it
costs no request and takes well under a millisecond, and it outlives the
process, so a driver killed before the deletes were done finds them at
its next start. It is this host's alone (``state_path`` is local): no
other host ever reads it, so no other host deletes this host's
endpoints from it.

The files are :class:`~.record_files.RecordFiles`: a reader (the
worker, ``opencontrail-net-manage status``) sees an entry whole or not
at all.
"""

import os
import time

from oslo_log import log as logging

from opencontrail_net.backends.contrail import record_files

LOG = logging.getLogger(__name__)

DIRECTORY = 'contrail-deletes'


def directory(state_path):
    """Where a host with ``state_path`` keeps its queued deletes."""
    return os.path.join(state_path, DIRECTORY)


def entry(endpoint_id, network_id, host, parts=None):
    """A queued delete: the endpoint, its network, the host that owes it,
    when it was queued, and ``parts`` (what to delete, see
    ``Endpoints.parts``; None: read off the interface first)."""
    return {'endpoint': endpoint_id, 'network': network_id, 'host': host,
            'queued': time.time(), 'parts': parts}


class DeleteQueue(record_files.RecordFiles):
    """The files of the queued deletes, by endpoint ID."""

    def __init__(self, state_path):
        super().__init__(directory(state_path), 'endpoint', 'Queued delete')

    def entries(self):
        """Every queued delete, oldest first. An unreadable file is
        logged and left for the operator."""
        found = []
        for endpoint_id, item in super().entries():
            if not isinstance(item, dict) or \
                    item.get('endpoint') != endpoint_id or \
                    not isinstance(item.get('network'), str):
                LOG.error('Queued delete %s is not one, left as it is: %r',
                          self._file(endpoint_id), item)
                continue
            found.append(item)
        return sorted(found, key=lambda i: (i.get('queued') or 0,
                                            i['endpoint']))
