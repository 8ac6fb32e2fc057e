"""A complete embedded backend that needs no Contrail.

State lives in one SQLite database under ``state_path``, committed before
any call is answered, so a driver killed at any moment loses nothing it
acknowledged. (WAL with synchronous=NORMAL: a commit is in the kernel
before the answer; only a power loss of the host can lose the newest.)
"""

import contextlib
import dataclasses
import ipaddress
import json
import os
import sqlite3
import threading
import time

from oslo_log import log as logging

from opencontrail_net.backends import base
from opencontrail_net import exception
from opencontrail_net import ids
from opencontrail_net import model
from opencontrail_net import subnets

LOG = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS networks (
    id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS endpoints (
    id TEXT PRIMARY KEY, network_id TEXT NOT NULL, host TEXT,
    vm_uuid TEXT, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS endpoints_network ON endpoints (network_id);
CREATE INDEX IF NOT EXISTS endpoints_vm ON endpoints (vm_uuid);
CREATE TABLE IF NOT EXISTS vms (
    uuid TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS endpoint_addresses (
    network_id TEXT NOT NULL, address TEXT NOT NULL,
    endpoint_id TEXT NOT NULL, PRIMARY KEY (network_id, address));
CREATE TABLE IF NOT EXISTS pools (
    key TEXT PRIMARY KEY, data TEXT NOT NULL,
    next INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS pool_addresses (
    pool TEXT NOT NULL, address TEXT NOT NULL, PRIMARY KEY (pool, address));
"""

DEFAULT_PROJECT = ['default-domain', 'default-project']


class MockBackend(base.Backend):
    """Networks, endpoints and VMs in a local SQLite database."""

    def __init__(self, conf):
        super().__init__(conf)
        self._lock = threading.Lock()
        os.makedirs(conf.state_path, mode=0o700, exist_ok=True)
        self.path = os.path.join(conf.state_path, 'mock-backend.sqlite')
        self._db = sqlite3.connect(self.path, check_same_thread=False,
                                   isolation_level=None)
        self._db.execute('PRAGMA journal_mode=WAL')
        self._db.execute('PRAGMA synchronous=NORMAL')
        self._db.executescript(_SCHEMA)
        self._index_addresses()
        self.host = conf.host

    def stop(self):
        with self._lock:
            self._db.close()

    def _index_addresses(self):
        """Fill the address index of a database made before it existed."""
        with self._txn() as db:
            if db.execute('SELECT 1 FROM endpoint_addresses LIMIT 1'
                          ).fetchone():
                return
            for (data,) in db.execute('SELECT data FROM endpoints'
                                      ).fetchall():
                ep = model.Endpoint.from_dict(json.loads(data))
                self._index_endpoint(db, ep)

    @contextlib.contextmanager
    def _txn(self):
        with self._lock:
            self._db.execute('BEGIN IMMEDIATE')
            try:
                yield self._db
            except BaseException:
                self._db.execute('ROLLBACK')
                raise
            self._db.execute('COMMIT')

    @staticmethod
    def _network(db, network_id):
        row = db.execute('SELECT data FROM networks WHERE id = ?',
                         (network_id,)).fetchone()
        if row is None:
            raise exception.NetworkNotFound(id=network_id)
        return model.Network.from_dict(json.loads(row[0]))

    @staticmethod
    def _endpoint(db, endpoint_id):
        row = db.execute('SELECT data FROM endpoints WHERE id = ?',
                         (endpoint_id,)).fetchone()
        if row is None:
            raise exception.EndpointNotFound(id=endpoint_id)
        return model.Endpoint.from_dict(json.loads(row[0]))

    @staticmethod
    def _save_endpoint(db, ep):
        db.execute('INSERT OR REPLACE INTO endpoints VALUES (?, ?, ?, ?, ?)',
                   (ep.id, ep.network_id, ep.host, ep.vm_uuid,
                    json.dumps(ep.to_dict())))

    def create_network(self, network):
        if network.existing:
            raise exception.InvalidOption(
                key='opencontrail.network', value=network.existing,
                reason='the mock backend holds no pre-existing networks')
        if network.security_groups is not None:
            raise exception.InvalidOption(
                key='opencontrail.security_groups',
                value=','.join(network.security_groups),
                reason='the mock backend holds no security groups')
        if network.policies is not None:
            raise exception.InvalidOption(
                key='opencontrail.policies', value=','.join(network.policies),
                reason='the mock backend holds no network-policies')
        if network.router is not None:
            raise exception.InvalidOption(
                key='opencontrail.router', value=network.router,
                reason='the mock backend holds no logical-routers')
        if network.floating_ip_pool is not None:
            raise exception.InvalidOption(
                key='opencontrail.floating_ip_pool',
                value=network.floating_ip_pool,
                reason='the mock backend has no floating IPs: -p publishes '
                'on the host through the bridge port driver')
        network.project = network.project or DEFAULT_PROJECT
        if len(network.project) == 1:
            network.project = DEFAULT_PROJECT[:1] + network.project
        network.name = network.name or network.id
        network.uuid = ids.network_uuid(network.id)
        network.project_uuid = ids.project_uuid(network.project)
        with self._txn() as db:
            try:
                old = self._network(db, network.id)
            except exception.NetworkNotFound:
                self._check_allow(db, network)
                network.allowed = list(network.allow or ())
                db.execute('INSERT INTO networks VALUES (?, ?)',
                           (network.id, json.dumps(network.to_dict())))
                LOG.info('Created network %s (%s)', network.id, network.name)
                return network, True
            old.allowed = self._allowed(db, old)
        changed = model.option_differences(old.to_dict(), network.to_dict())
        if changed:
            raise exception.Conflict(
                reason='network %s exists with other settings: %s'
                % (network.id, '; '.join(changed)))
        return old, False

    @classmethod
    def _check_allow(cls, db, network):
        """The networks of ``-o opencontrail.allow`` are of this backend."""
        for peer in network.allow or ():
            reason = None
            if peer == network.id:
                reason = 'a network talks to itself without being allowed'
            else:
                try:
                    cls._network(db, peer)
                except exception.NetworkNotFound:
                    reason = 'network %s is not a network of this driver' \
                        % peer
            if reason:
                raise exception.InvalidOption(
                    key='opencontrail.allow', value=','.join(network.allow),
                    reason=reason)

    @staticmethod
    def _allowed(db, network):
        """Those ``network`` allows, and those that allow it."""
        found = list(network.allow or ())
        for other_id, data in db.execute(
                'SELECT id, data FROM networks WHERE data LIKE ?',
                ('%%"%s"%%' % network.id,)):
            if network.id in (json.loads(data).get('allow') or ()) and (
                    other_id not in found):
                found.append(other_id)
        return found

    def get_network(self, network_id):
        with self._lock:
            net = self._network(self._db, network_id)
            net.allowed = self._allowed(self._db, net)
            return net

    def delete_network(self, network_id, only_host=None):
        with self._txn() as db:
            if only_host is not None:
                elsewhere = self._elsewhere(db, network_id, only_host)
                if elsewhere:
                    raise exception.Conflict(
                        reason='network %s has endpoints on other hosts '
                        '(%s): left to them' % (
                            network_id, _hosts(elsewhere)))
            vms = [r[0] for r in db.execute(
                'SELECT DISTINCT vm_uuid FROM endpoints WHERE network_id = ?'
                ' AND vm_uuid IS NOT NULL', (network_id,))]
            gone = db.execute('DELETE FROM endpoints WHERE network_id = ?',
                              (network_id,)).rowcount
            db.execute('DELETE FROM endpoint_addresses WHERE network_id = ?',
                       (network_id,))
            for vm in vms:
                self._drop_vm_if_unused(db, vm)
            deleted = db.execute('DELETE FROM networks WHERE id = ?',
                                 (network_id,)).rowcount
        if gone:
            LOG.warning('Network %s still had %d endpoints; deleted them',
                        network_id, gone)
        if deleted:
            LOG.info('Deleted network %s', network_id)

    def set_route_targets(self, network_id, route_targets=None,
                          import_targets=None, export_targets=None):
        with self._txn() as db:
            net = self._network(db, network_id)
            for field, value in (('route_targets', route_targets),
                                 ('import_targets', import_targets),
                                 ('export_targets', export_targets)):
                if value is not None:
                    setattr(net, field, value)
            db.execute('UPDATE networks SET data = ? WHERE id = ?',
                       (json.dumps(net.to_dict()), network_id))

    def create_endpoint(self, network, endpoint):
        if endpoint.security_groups is not None:
            raise exception.InvalidOption(
                key='opencontrail.security_groups',
                value=','.join(endpoint.security_groups),
                reason='the mock backend holds no security groups')
        endpoint.uuid = ids.endpoint_uuid(endpoint.id)
        endpoint.mac = endpoint.mac or ids.mac_from_uuid(endpoint.uuid)
        endpoint.host = endpoint.host or self.host
        with self._txn() as db:
            self._network(db, network.id)
            try:
                old = self._endpoint(db, endpoint.id)
            except exception.EndpointNotFound:
                old = None
            if old is not None:
                if (old.network_id, old.ipv4, old.ipv6, old.mac) != (
                        endpoint.network_id, endpoint.ipv4, endpoint.ipv6,
                        endpoint.mac):
                    raise exception.Conflict(
                        reason='endpoint %s exists with other settings'
                        % endpoint.id)
                return old, False
            self._index_endpoint(db, endpoint)
            self._save_endpoint(db, endpoint)
        LOG.info('Created endpoint %s on network %s (mac %s)',
                 endpoint.id, network.id, endpoint.mac)
        return endpoint, True

    @staticmethod
    def _index_endpoint(db, endpoint):
        """Claim the endpoint's addresses in its network: one indexed
        insert each, however many endpoints the network holds."""
        for cidr in (endpoint.ipv4, endpoint.ipv6):
            if not cidr:
                continue
            try:
                db.execute('INSERT INTO endpoint_addresses VALUES (?, ?, ?)',
                           (endpoint.network_id, cidr.split('/')[0],
                            endpoint.id))
            except sqlite3.IntegrityError:
                raise exception.AddressInUse(address=cidr,
                                             pool=endpoint.network_id)

    def get_endpoint(self, network, endpoint_id):
        with self._lock:
            ep = self._endpoint(self._db, endpoint_id)
        if ep.network_id != network.id:
            raise exception.EndpointNotFound(id=endpoint_id)
        return ep

    def delete_endpoint(self, network, endpoint_id):
        with self._txn() as db:
            row = db.execute('SELECT vm_uuid FROM endpoints WHERE id = ?',
                             (endpoint_id,)).fetchone()
            if row is None:
                return
            db.execute('DELETE FROM endpoints WHERE id = ?', (endpoint_id,))
            db.execute('DELETE FROM endpoint_addresses WHERE endpoint_id = ?',
                       (endpoint_id,))
            if row[0]:
                self._drop_vm_if_unused(db, row[0])
        LOG.info('Deleted endpoint %s', endpoint_id)

    @staticmethod
    def _drop_vm_if_unused(db, vm_uuid):
        used = db.execute('SELECT 1 FROM endpoints WHERE vm_uuid = ? LIMIT 1',
                          (vm_uuid,)).fetchone()
        if not used:
            db.execute('DELETE FROM vms WHERE uuid = ?', (vm_uuid,))

    def attach_endpoint(self, network, endpoint, sandbox):
        vm_uuid = ids.vm_uuid(self.host, sandbox)
        with self._txn() as db:
            ep = self._endpoint(db, endpoint.id)
            if ep.vm_uuid == vm_uuid:
                return ep, False
            ep.sandbox, ep.vm_uuid, ep.vm_name = sandbox, vm_uuid, sandbox
            ep.host = self.host
            db.execute('INSERT OR IGNORE INTO vms VALUES (?, ?)',
                       (vm_uuid, json.dumps({'name': sandbox,
                                             'host': self.host})))
            self._save_endpoint(db, ep)
        return ep, True

    def detach_endpoint(self, network, endpoint):
        with self._txn() as db:
            try:
                ep = self._endpoint(db, endpoint.id)
            except exception.EndpointNotFound:
                return
            vm = ep.vm_uuid
            ep.sandbox = ep.vm_uuid = ep.vm_name = None
            self._save_endpoint(db, ep)
            if vm:
                self._drop_vm_if_unused(db, vm)

    def find_endpoints(self, host, endpoint_ids):
        endpoint_ids = list(endpoint_ids)
        rows = []
        # In slices: SQLite bounds the parameters of one statement.
        for start in range(0, len(endpoint_ids), 500):
            chunk = endpoint_ids[start:start + 500]
            with self._lock:
                rows += self._db.execute(
                    'SELECT n.data, e.data FROM endpoints e JOIN networks n'
                    ' ON n.id = e.network_id WHERE e.host = ?'
                    ' AND e.vm_uuid IS NOT NULL AND e.id IN (%s)'
                    % ','.join('?' * len(chunk)), [host] + chunk).fetchall()
        return [(model.Network.from_dict(json.loads(n)),
                 model.Endpoint.from_dict(json.loads(e))) for n, e in rows]

    def owned_networks(self, networks=None):
        # A local store: reading all of it costs nothing to share.
        with self._lock:
            rows = self._db.execute('SELECT data FROM networks').fetchall()
        return [model.Network.from_dict(json.loads(r[0])) for r in rows]

    @staticmethod
    def _elsewhere(db, network_id, host):
        found = {}
        for other, ep_id in db.execute(
                'SELECT host, id FROM endpoints WHERE network_id = ? AND '
                'host IS NOT NULL AND host != ?', (network_id, host)):
            found.setdefault(other, []).append(ep_id)
        return {h: sorted(e) for h, e in found.items()}

    def network_endpoints(self, network, host=None):
        with self._lock:
            if host is None:
                rows = self._db.execute(
                    'SELECT data FROM endpoints WHERE network_id = ?',
                    (network.id,)).fetchall()
            else:
                rows = self._db.execute(
                    'SELECT data FROM endpoints WHERE network_id = ? AND '
                    'host = ?', (network.id, host)).fetchall()
        return [model.Endpoint.from_dict(json.loads(r[0])) for r in rows]

    # IPAM -------------------------------------------------------------

    def request_pool(self, pool, defaults):
        if pool.network:
            raise exception.InvalidOption(
                key='opencontrail.network', value=pool.network,
                reason='the mock backend holds no pre-existing networks')
        pool.project = pool.project or DEFAULT_PROJECT
        if len(pool.project) == 1:
            pool.project = DEFAULT_PROJECT[:1] + pool.project
        with self._txn() as db:
            held = self._held_pools(db, pool.project)
            if pool.cidr is None:
                pool.cidr = subnets.free_subnet(defaults, held)
            else:
                self._check_free(db, pool)
            db.execute('INSERT OR REPLACE INTO pools (key, data) '
                       'VALUES (?, ?)', (pool.key, json.dumps(dict(
                           dataclasses.asdict(pool), taken=time.time()))))
        return pool

    @staticmethod
    def _held_pools(db, project):
        nets = []
        for (data,) in db.execute('SELECT data FROM pools'):
            other = json.loads(data)
            if other['project'] == project:
                nets.append(ipaddress.ip_network(other['cidr']))
        for (data,) in db.execute('SELECT data FROM networks'):
            net = model.Network.from_dict(json.loads(data))
            if net.project == project:
                nets.extend(ipaddress.ip_network(s.cidr)
                            for s in net.subnets)
        return nets

    @staticmethod
    def _check_free(db, pool):
        for (data,) in db.execute('SELECT data FROM networks'):
            net = model.Network.from_dict(json.loads(data))
            if net.own_ipam and net.project == pool.project and any(
                    s.cidr == pool.cidr for s in net.subnets):
                raise exception.Conflict(reason='pool %s is in use by '
                                         'network %s' % (pool.cidr, net.id))
        for (data,) in db.execute('SELECT data FROM pools WHERE key = ?',
                                  (pool.key,)):
            other = json.loads(data)
            subnets.check_taker(pool, other.get('owner'), other.get('taken'))

    def release_pool(self, pool):
        # Only the request that took the pool gives it up (and its
        # addresses): a create that lost it to another frees nothing.
        with self._txn() as db:
            for (data,) in db.execute('SELECT data FROM pools WHERE key = ?',
                                      (pool.key,)):
                if json.loads(data).get('owner') != pool.owner:
                    LOG.warning('ReleasePool of pool %s by a request that '
                                'does not hold it: left as it is', pool.cidr)
                    return
            db.execute('DELETE FROM pools WHERE key = ?', (pool.key,))
            db.execute('DELETE FROM pool_addresses WHERE pool = ?',
                       (pool.key,))

    def request_address(self, pool, address, gateway=False):
        net = ipaddress.ip_network(pool.cidr)
        if gateway and address is None:
            address = str(next(net.hosts()))
        with self._txn() as db:
            if address is None:
                address = self._allocate(db, pool, net)
            else:
                try:
                    db.execute('INSERT INTO pool_addresses VALUES (?, ?)',
                               (pool.key, address))
                except sqlite3.IntegrityError:
                    if not gateway:
                        raise exception.AddressInUse(
                            address=address, pool='pool %s' % pool.cidr)
        return address

    @staticmethod
    def _allocate(db, pool, net):
        """The next free address of the range, from where the last one
        was taken: indexed look-ups, a few per address."""
        rng = ipaddress.ip_network(pool.range) if pool.range else net
        first, last = int(rng.network_address), int(rng.broadcast_address)
        first, last = model.usable(net, first, last)
        size = last - first + 1
        row = db.execute('SELECT next FROM pools WHERE key = ?',
                         (pool.key,)).fetchone()
        # Kept as text: an IPv6 offset outgrows SQLite's integers.
        start = int(row[0]) % size if row else 0
        for n in range(min(size, 1 << 20)):
            value = first + (start + n) % size
            candidate = str(model.address(net.version, value))
            if db.execute('SELECT 1 FROM pool_addresses WHERE pool = ? AND '
                          'address = ?', (pool.key, candidate)).fetchone():
                continue
            db.execute('INSERT INTO pool_addresses VALUES (?, ?)',
                       (pool.key, candidate))
            db.execute('UPDATE pools SET next = ? WHERE key = ?',
                       (str(value - first + 1), pool.key))
            return candidate
        raise exception.PoolExhausted(pool='pool %s%s' % (
            pool.cidr, ' (range %s)' % pool.range if pool.range else ''))

    def release_address(self, pool, address):
        with self._txn() as db:
            db.execute('DELETE FROM pool_addresses WHERE pool = ? AND '
                       'address = ?', (pool.key, address))


def _hosts(elsewhere):
    """``h2: e1, e2; h3: e4`` of ``{host: [endpoint ID]}``."""
    return '; '.join('%s: %s' % (host, ', '.join(eps))
                     for host, eps in sorted(elsewhere.items()))
