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
from vnc_api import exceptions as vnc_exc

from opencontrail_net import exception
from opencontrail_net import jitter

LOG = logging.getLogger(__name__)

# The record as one value, before per-entry keys: read once, migrated.
PENDING_KEY = 'opencontrail-net:pending-delete:%s'
# One key per entry, so that no writer (the driver, its next process,
# opencontrail-net-manage) ever stores over another's entries.
HOST_PREFIX = 'opencontrail-net:host:%s:'
HELD_KEY = HOST_PREFIX + 'held:%s'
ALLOW_KEY = HOST_PREFIX + 'allow:%s:%s'
# Start-up reads the record briefly; until it has, it tries again so
# often (seconds), and every call that needs it reads it first.
LOAD_RETRY = 2.0


class PendingDeletes:
    """This host's kept networks, the thread that retries them, and the
    networks it made allow policies between.

    The store holds one key per entry (``HELD_KEY``, ``ALLOW_KEY``): a
    write adds or removes its own entry and never stores what it
    believes the others to be, so no writer loses another's entries,
    whatever it has read. ``ids`` and ``allowed`` are what this process
    knows: read from the store by ``load`` (at start, retried until it
    succeeds; ``ensure_loaded`` before a decision that needs them),
    then changed with each write.
    """

    def __init__(self, ctx):
        self.ctx = ctx
        self.ids = frozenset()
        # Docker network ID → frozenset of the network IDs it has an
        # allow policy with.
        self.allowed = {}
        self.loaded = False
        # Guards the two sets above while they are replaced; never held
        # across a request.
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = None

    # Reading ----------------------------------------------------------

    def load(self, api):
        """Read this host's entries (one listing of the store), moving a
        record of the former one-value form to per-entry keys."""
        host = self.ctx.host
        prefix = HOST_PREFIX % host
        held, pairs, legacy = set(), set(), None
        for item in api.kv_retrieve() or []:
            # An empty store lists one pair of key None.
            key = item.get('key') if isinstance(item, dict) else None
            if not isinstance(key, str):
                continue
            if key == PENDING_KEY % host:
                legacy = item.get('value')
            elif key.startswith(prefix):
                kind, _, rest = key[len(prefix):].partition(':')
                if kind == 'held' and rest:
                    held.add(rest)
                elif kind == 'allow' and rest.count(':') == 1:
                    pairs.add(tuple(rest.split(':')))
        if legacy is not None:
            self._migrate(api, legacy, held, pairs)
        allowed = {}
        for a, b in pairs:
            allowed.setdefault(a, set()).add(b)
            allowed.setdefault(b, set()).add(a)
        with self._lock:
            self.ids = frozenset(held)
            self.allowed = {k: frozenset(v) for k, v in allowed.items()}
            self.loaded = True

    def _migrate(self, api, legacy, held, pairs):
        """Entries of the one-value record, each to a key of its own;
        then the record goes."""
        try:
            kept = json.loads(legacy or '[]')
        except ValueError:
            LOG.warning('Host record %s is not JSON; left as it is: %r',
                        PENDING_KEY % self.ctx.host, legacy)
            return
        if isinstance(kept, list):
            kept = {'pending': kept}
        for network_id in kept.get('pending') or ():
            if network_id not in held:
                api.kv_store(HELD_KEY % (self.ctx.host, network_id), '1')
                held.add(network_id)
        for one, others in (kept.get('allow') or {}).items():
            for other in others:
                pair = tuple(sorted((one, other)))
                if pair not in pairs:
                    api.kv_store(ALLOW_KEY % ((self.ctx.host,) + pair), '1')
                    pairs.add(pair)
        api.kv_delete(PENDING_KEY % self.ctx.host)
        LOG.info('Host record %s moved to one key per entry (%s...)',
                 PENDING_KEY % self.ctx.host, HOST_PREFIX % self.ctx.host)

    def ensure_loaded(self, api):
        """Read the entries now if start-up could not."""
        if not self.loaded:
            self.load(api)

    # Writing ----------------------------------------------------------

    def hold(self, api, network_id, held):
        """Remember (``held``) or forget a network whose delete waits."""
        key = HELD_KEY % (self.ctx.host, network_id)
        if held:
            if network_id in self.ids:
                return
            api.kv_store(key, '1')
        else:
            if self.loaded and network_id not in self.ids:
                return
            _delete(api, key)
        with self._lock:
            now = set(self.ids)
            (now.add if held else now.discard)(network_id)
            self.ids = frozenset(now)

    def pair(self, api, network_id, peers, paired):
        """Record (``paired``) or forget that ``network_id`` has an allow
        policy with each of ``peers``: one key per pair, both ends known
        from it."""
        for peer in peers:
            known = peer in self.allowed.get(network_id, ())
            key = ALLOW_KEY % ((self.ctx.host,) +
                               tuple(sorted((network_id, peer))))
            if paired:
                if known:
                    continue
                api.kv_store(key, '1')
            else:
                if self.loaded and not known:
                    continue
                _delete(api, key)
            with self._lock:
                allowed = dict(self.allowed)
                for one, other in ((network_id, peer), (peer, network_id)):
                    now = set(allowed.get(one, ()))
                    (now.add if paired else now.discard)(other)
                    if now:
                        allowed[one] = frozenset(now)
                    else:
                        allowed.pop(one, None)
                self.allowed = allowed

    # Retrying ---------------------------------------------------------

    def start(self, delete, api_factory=None):
        """Every ``[contrail] retry_interval`` seconds, ``delete`` each
        kept network (0: never); first, until it succeeds, ``load`` with
        a client of ``api_factory`` every LOAD_RETRY seconds. Each wait
        is spread (:mod:`opencontrail_net.jitter`): the first retry
        within the interval, the next ones 0.8-1.2 x it apart."""
        if self.loaded and not self.ctx.opts.retry_interval:
            return
        self._thread = threading.Thread(
            target=self._loop, args=(delete, api_factory),
            name='contrail-retry', daemon=True)
        self._thread.start()

    def stop(self):
        self._stopping.set()

    def _loop(self, delete, api_factory):
        while not self.loaded and api_factory is not None:
            if self._stopping.wait(jitter.between(LOAD_RETRY)):
                return
            try:
                with api_factory() as api:
                    self.load(api)
            except exception.OpenContrailNetError as exc:
                LOG.warning('This host\'s record of kept networks and '
                            'allow pairs is not read yet: %s', exc)
            else:
                LOG.info('Read this host\'s record of kept networks and '
                         'allow pairs: %d kept, %d allow pairs',
                         len(self.ids), sum(map(len,
                                                self.allowed.values())) // 2)
        interval = self.ctx.opts.retry_interval
        if not interval:
            return
        wait = jitter.first(interval)
        while not self._stopping.wait(wait):
            self.retry(delete)
            wait = jitter.between(interval)

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


def _delete(api, key):
    try:
        api.kv_delete(key)
    except vnc_exc.NoIdError:
        pass
