"""A directory of this host's records, one small JSON file each.

What the backend owes Contrail after a call has answered (queued
deletes, pooled interfaces) is kept here: writing a file costs no
request, and it outlives the process. A file is written whole under a
temporary name and renamed into place, so a reader sees a record whole
or not at all.
"""

import json
import os

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

SUFFIX = '.json'


class RecordFiles:
    """The records under ``path``, each in the file named after its
    ``key`` field. ``what`` names a record in log lines."""

    def __init__(self, path, key, what):
        self.path = path
        self.key = key
        self.what = what

    def _file(self, key):
        return os.path.join(self.path, key + SUFFIX)

    def write(self, record):
        """Record ``record``, replacing any of its key."""
        os.makedirs(self.path, mode=0o700, exist_ok=True)
        final = self._file(record[self.key])
        tmp = '%s.%d.tmp' % (final, os.getpid())
        with open(tmp, 'w') as f:
            json.dump(record, f, sort_keys=True)
        os.replace(tmp, final)

    def remove(self, key):
        try:
            os.unlink(self._file(key))
        except FileNotFoundError:
            pass

    def entries(self):
        """``[(key its file names, record)]``, by file name. An unreadable
        file is logged and left for the operator."""
        try:
            names = sorted(os.listdir(self.path))
        except FileNotFoundError:
            return []
        found = []
        for name in names:
            if not name.endswith(SUFFIX):
                continue
            path = os.path.join(self.path, name)
            try:
                with open(path) as f:
                    found.append((name[:-len(SUFFIX)], json.load(f)))
            except FileNotFoundError:
                continue    # Removed meanwhile.
            except (OSError, ValueError) as exc:
                LOG.error('%s %s cannot be read, left as it is: %s',
                          self.what, path, exc)
        return found
