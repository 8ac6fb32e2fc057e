"""This host's record of the endpoint deletes it owes Contrail.

DeleteEndpoint answers once the endpoint is recorded here; the Contrail
deletes follow (see :mod:`delete_worker`). The record is one small JSON
file per endpoint under ``<state_path>/contrail-deletes/``: writing it
costs no request and takes well under a millisecond, and it outlives the
process, so a driver killed before the deletes were done finds them at
its next start. It is this host's alone (``state_path`` is local): no
other host ever reads it, so no other host deletes this host's
endpoints from it.

A file is written whole under a temporary name and renamed into place:
a reader (the worker, ``opencontrail-net-manage status``) sees an entry
whole or not at all.
"""

import json
import os
import time

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

DIRECTORY = 'contrail-deletes'
_SUFFIX = '.json'


def directory(state_path):
    """Where a host with ``state_path`` keeps its queued deletes."""
    return os.path.join(state_path, DIRECTORY)


def entry(endpoint_id, network_id, host, parts=None):
    """A queued delete: the endpoint, its network, the host that owes it,
    when it was queued, and ``parts`` (what to delete, see
    ``Endpoints.parts``; None: read off the interface first)."""
    return {'endpoint': endpoint_id, 'network': network_id, 'host': host,
            'queued': time.time(), 'parts': parts}


class DeleteQueue:
    """The files of the queued deletes, by endpoint ID."""

    def __init__(self, state_path):
        self.path = directory(state_path)

    def _file(self, endpoint_id):
        return os.path.join(self.path, endpoint_id + _SUFFIX)

    def write(self, item):
        """Record ``item`` (an :func:`entry`), replacing any of its
        endpoint."""
        os.makedirs(self.path, mode=0o700, exist_ok=True)
        final = self._file(item['endpoint'])
        tmp = '%s.%d.tmp' % (final, os.getpid())
        with open(tmp, 'w') as f:
            json.dump(item, f, sort_keys=True)
        os.replace(tmp, final)

    def remove(self, endpoint_id):
        try:
            os.unlink(self._file(endpoint_id))
        except FileNotFoundError:
            pass

    def entries(self):
        """Every queued delete, oldest first. An unreadable file is
        logged and left for the operator."""
        try:
            names = os.listdir(self.path)
        except FileNotFoundError:
            return []
        found = []
        for name in names:
            if not name.endswith(_SUFFIX):
                continue
            path = os.path.join(self.path, name)
            try:
                with open(path) as f:
                    item = json.load(f)
            except FileNotFoundError:
                continue    # Done meanwhile.
            except (OSError, ValueError) as exc:
                LOG.error('Queued delete %s cannot be read, left as it '
                          'is: %s', path, exc)
                continue
            if not isinstance(item, dict) or \
                    item.get('endpoint') != name[:-len(_SUFFIX)] or \
                    not isinstance(item.get('network'), str):
                LOG.error('Queued delete %s is not one, left as it is: %r',
                          path, item)
                continue
            found.append(item)
        return sorted(found, key=lambda i: (i.get('queued') or 0,
                                            i['endpoint']))
