"""Networks whose delete waits for objects of others to go.

A virtual-network that still holds an object the driver did not create
is kept (Docker forgets it all the same). Each host records its kept
networks in the API server's key-value store, so that it, or its next
process, deletes them once what held them has gone.
"""

import json
import threading

from oslo_log import log as logging

from opencontrail_net.backends.contrail import context
from opencontrail_net import exception

LOG = logging.getLogger(__name__)

PENDING_KEY = 'opencontrail-net:pending-delete:%s'


class PendingDeletes:
    """This host's kept networks, and the thread that retries them.

    ``ids`` is owned here: read from the store at start, replaced by
    ``hold`` once the store has the new set, never otherwise invalidated.
    Readers take the frozenset as it stands; no lock guards it.
    """

    def __init__(self, ctx):
        self.ctx = ctx
        self.ids = frozenset()
        # Orders the changes of the record, and so its writes: the store
        # always ends with the latest set. Held by this record's writers
        # alone.
        self._writing = threading.Lock()
        self._stopping = threading.Event()
        self._thread = None

    def load(self, api):
        """Read this host's record (at start)."""
        kept = context.kv_get(api, PENDING_KEY % self.ctx.host)
        self.ids = frozenset(json.loads(kept or '[]'))

    def hold(self, api, network_id, held):
        """Remember (``held``) or forget a network whose delete waits."""
        with self._writing:
            pending = set(self.ids)
            (pending.add if held else pending.discard)(network_id)
            if pending == self.ids:
                return
            if pending:
                api.kv_store(PENDING_KEY % self.ctx.host,
                             json.dumps(sorted(pending)))
            else:
                api.kv_delete(PENDING_KEY % self.ctx.host)
            self.ids = frozenset(pending)

    def start(self, delete):
        """Every ``[contrail] retry_interval`` seconds, ``delete`` each
        kept network (0: never)."""
        if not self.ctx.opts.retry_interval:
            return
        self._thread = threading.Thread(
            target=self._loop, args=(delete,), name='contrail-retry',
            daemon=True)
        self._thread.start()

    def stop(self):
        self._stopping.set()

    def _loop(self, delete):
        while not self._stopping.wait(self.ctx.opts.retry_interval):
            self.retry(delete)

    def retry(self, delete):
        """Delete the kept networks whose blockers have gone."""
        for network_id in sorted(self.ids):
            try:
                delete(network_id)
            except exception.OpenContrailNetError as exc:
                LOG.debug('Network %s still kept: %s', network_id, exc)
                continue
            LOG.info('Deleted network %s: what held it has gone',
                     network_id)
