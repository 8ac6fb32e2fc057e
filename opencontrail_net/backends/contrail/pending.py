"""This host's record: networks whose delete waits, and allowed pairs.

A virtual-network that still holds an object the driver did not create
is kept (Docker forgets it all the same). Each host records its kept
networks in the API server's key-value store, so that it, or its next
process, deletes them once what held them has gone.

The same record holds the pairs of networks this host made a policy
between (``-o opencontrail.allow``): a plain delete reads nothing of the
network it deletes, so this is how it knows, at no cost to a network
without one, that a policy of ours goes with it.
"""

import json
import threading

from oslo_log import log as logging

from opencontrail_net.backends.contrail import context
from opencontrail_net import exception

LOG = logging.getLogger(__name__)

PENDING_KEY = 'opencontrail-net:pending-delete:%s'


class PendingDeletes:
    """This host's kept networks, the thread that retries them, and the
    networks it made allow policies between.

    ``ids`` and ``allowed`` are owned here: read from the store at start,
    replaced by ``hold`` and ``pair`` once the store has the new record,
    never otherwise invalidated. Readers take them as they stand; no
    lock guards them.
    """

    def __init__(self, ctx):
        self.ctx = ctx
        self.ids = frozenset()
        # Docker network ID → frozenset of the network IDs it has an
        # allow policy with.
        self.allowed = {}
        # Orders the changes of the record, and so its writes: the store
        # always ends with the latest set. Held by this record's writers
        # alone.
        self._writing = threading.Lock()
        self._stopping = threading.Event()
        self._thread = None

    def load(self, api):
        """Read this host's record (at start)."""
        kept = json.loads(context.kv_get(api, PENDING_KEY % self.ctx.host)
                          or '[]')
        if isinstance(kept, list):
            # Written before allow pairs: held deletes alone.
            kept = {'pending': kept}
        self.ids = frozenset(kept.get('pending') or ())
        self.allowed = {k: frozenset(v)
                        for k, v in (kept.get('allow') or {}).items()}

    def hold(self, api, network_id, held):
        """Remember (``held``) or forget a network whose delete waits."""
        with self._writing:
            pending = set(self.ids)
            (pending.add if held else pending.discard)(network_id)
            self._write(api, pending, self.allowed)

    def pair(self, api, network_id, peers, paired):
        """Record (``paired``) or forget that ``network_id`` has an allow
        policy with each of ``peers``; both ends are recorded."""
        with self._writing:
            allowed = dict(self.allowed)
            for peer in peers:
                for one, other in ((network_id, peer), (peer, network_id)):
                    now = set(allowed.get(one, ()))
                    (now.add if paired else now.discard)(other)
                    if now:
                        allowed[one] = frozenset(now)
                    else:
                        allowed.pop(one, None)
            self._write(api, set(self.ids), allowed)

    def _write(self, api, pending, allowed):
        """Store the record if it changed (under ``_writing``)."""
        if pending == self.ids and allowed == self.allowed:
            return
        key = PENDING_KEY % self.ctx.host
        if allowed:
            api.kv_store(key, json.dumps({
                'pending': sorted(pending),
                'allow': {k: sorted(v) for k, v in sorted(allowed.items())}
            }, sort_keys=True))
        elif pending:
            # As written before allow pairs, for a downgraded driver.
            api.kv_store(key, json.dumps(sorted(pending)))
        else:
            api.kv_delete(key)
        self.ids = frozenset(pending)
        self.allowed = allowed

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
