"""Reading the mock backend's state from tests."""

import contextlib
import sqlite3

_TABLES = ('networks', 'endpoints', 'vms')


def counts(backend):
    """Return how many networks, endpoints and VMs a MockBackend holds.

    Read from its database file through a connection of the test's own:
    the backend commits every call before it answers, so this sees all it
    acknowledged, and the backend's own connection and lock stay its own.
    """
    with contextlib.closing(sqlite3.connect(backend.path)) as db:
        return {table: db.execute('SELECT COUNT(*) FROM %s' % table)
                .fetchone()[0] for table in _TABLES}
