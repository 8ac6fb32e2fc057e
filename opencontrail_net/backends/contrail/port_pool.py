"""Interfaces made ahead: ``[contrail] port_pool_size`` per network.

A container start on Contrail waits for its interface, its addresses,
its VM and the VM's links: four requests or more. With a pool, this host
keeps interfaces ready in each network it serves, each with its VM (and,
with the vrouter port driver, the virtual-router's link to it), made in
the background. CreateEndpoint takes one and makes only the instance-ip
of Docker's address (one request); Join makes nothing. The interface's
annotation comes to name its endpoint in the background too, once
Docker has the answer.

A pooled interface is this host's: its uuid derives from the network,
the host and a slot number, and it is bound to this host. Which slots
stand and which endpoint has each is this host's record, one small JSON
file per interface under ``<state_path>/contrail-port-pool/``, written
before any request: an interface is never handed to two endpoints, also
across a restart, and one whose making was cut off is deleted at the
next start. Another host never takes this host's interfaces; their names
say whose they are. A taken interface goes with its endpoint (see
``Endpoints.remove``); the free ones of a network go when Docker deletes
the network here, and with the audit when Docker no longer has it.
"""

import os
import threading
import time

from oslo_log import log as logging
from vnc_api import exceptions as vnc_exc
from vnc_api import vnc_api

from opencontrail_net.backends.contrail import cleanup
from opencontrail_net.backends.contrail import context
from opencontrail_net.backends.contrail import delete_worker
from opencontrail_net.backends.contrail import objects
from opencontrail_net.backends.contrail import record_files
from opencontrail_net.backends.contrail import undo
from opencontrail_net import exception
from opencontrail_net import ids

LOG = logging.getLogger(__name__)

DIRECTORY = 'contrail-port-pool'

MAKING, FREE, TAKEN = 'making', 'free', 'taken'

# Seconds the refill waits after an interface is taken: the rest of that
# container's start (its Join) has the API client to itself.
REFILL_AFTER = 0.5


def records(state_path):
    """The files of this host's pooled interfaces, by interface uuid."""
    return record_files.RecordFiles(os.path.join(state_path, DIRECTORY),
                                    'vmi', 'Pooled-interface record')


def record(network, host, slot):
    """A pooled interface's record, before it is made."""
    vmi = ids.pooled_interface_uuid(network.id, host, slot)
    return {'vmi': vmi, 'vm': ids.pooled_vm_uuid(network.id, host, slot),
            'mac': ids.mac_from_uuid(vmi),
            'fq_name': objects.pooled_vmi_fq_name(network, host, slot),
            'network': network.id, 'host': host, 'slot': slot,
            'state': MAKING, 'endpoint': None}


def serves(network, endpoint=None):
    """Whether a pooled interface can be ``endpoint``'s (or, without one,
    whether ``network`` keeps a pool at all)."""
    if network.own_ipam or network.existing:
        return False
    if endpoint is None:
        return True
    return not endpoint.mac and endpoint.security_groups is None


class PortPool:
    """This host's pools and the thread that fills them.

    Owned here, under ``_cond``: ``_free`` (network ID → free records,
    oldest first), ``_taken`` (endpoint ID → record), ``_wanted``
    (network ID → the network whose pool is kept full), ``_slots``
    (network ID → the next slot number), ``_notes`` (endpoint IDs whose
    interface's annotation is to be set).
    """

    def __init__(self, ctx, size, state_path, vrouter):
        self.ctx = ctx
        self.size = size
        self.vrouter = vrouter
        self.records = records(state_path)
        self._free = {}
        self._taken = {}
        self._wanted = {}
        self._slots = {}
        self._notes = {}
        self._cut_off = []
        self._failures = 0
        self._cond = threading.Condition()
        self._stopping = False
        self._quiet_until = 0.0
        self._loaded = False
        self._thread = None
        # A network's pool emptied: its making waits for this.
        self._filling = threading.Lock()

    # Start and stop -----------------------------------------------------

    def start(self):
        """Take up this host's records; fill pools from now on."""
        self._load()
        if not (self.size or self._cut_off or self._free or self._notes):
            return
        self._thread = threading.Thread(target=self._loop,
                                        name='contrail-port-pool',
                                        daemon=True)
        self._thread.start()

    def _load(self):
        """This host's records, read once (also without :meth:`start`:
        ``opencontrail-net-manage``)."""
        with self._cond:
            if self._loaded:
                return
            self._loaded = True
        for _vmi, rec in self.records.entries():
            if rec.get('host') != self.ctx.host:
                continue
            net = rec['network']
            self._slots[net] = max(self._slots.get(net, 0), rec['slot'] + 1)
            if rec['state'] == FREE:
                self._free.setdefault(net, []).append(rec)
            elif rec['state'] == TAKEN and rec.get('endpoint'):
                self._taken[rec['endpoint']] = rec
                if rec.get('view') and not rec.get('noted'):
                    self._notes[rec['endpoint']] = rec
            else:
                self._cut_off.append(rec)

    def stop(self):
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    # What the endpoints ask -------------------------------------------

    def want(self, network):
        """Keep ``network``'s pool full on this host (no request)."""
        if not self.size or not serves(network):
            return
        with self._cond:
            if network.id not in self._wanted:
                self._wanted[network.id] = network
                self._cond.notify_all()

    def take(self, network, endpoint):
        """A free interface of ``network`` for ``endpoint`` (its record,
        noted as taken before it is returned), or None. The one it took
        already, if Docker sends CreateEndpoint again."""
        with self._cond:
            rec = self._taken.get(endpoint.id)
            if rec is not None:
                return rec
            if not self.size or not serves(network, endpoint):
                return None
            free = self._free.get(network.id)
            if not free:
                return None
            rec = dict(free.pop(0), state=TAKEN, endpoint=endpoint.id)
            try:
                self.records.write(rec)
            except OSError as exc:
                LOG.error('Cannot record a pooled interface as taken under '
                          '[DEFAULT] state_path: %s', exc)
                free.insert(0, rec)
                return None
            self._taken[endpoint.id] = rec
            self._quiet_until = time.monotonic() + REFILL_AFTER
            self._cond.notify_all()
        LOG.debug('Endpoint %s takes pooled interface %s', endpoint.id,
                  rec['vmi'])
        return rec

    def give_back(self, endpoint_id):
        """The interface ``endpoint_id`` took is free again (its
        CreateEndpoint failed)."""
        with self._cond:
            rec = self._taken.pop(endpoint_id, None)
            if rec is None:
                return
            rec = dict(rec, state=FREE, endpoint=None)
            self._write(rec)
            self._free.setdefault(rec['network'], []).insert(0, rec)

    def taken(self, endpoint_id):
        """The record of the interface ``endpoint_id`` took, or None."""
        return self._taken.get(endpoint_id)

    def taken_interface(self, vmi_uuid):
        """The record of the taken interface ``vmi_uuid``, or None."""
        self._load()
        with self._cond:
            for rec in self._taken.values():
                if rec['vmi'] == vmi_uuid:
                    return rec
        return None

    def joined(self, endpoint, sandbox):
        """Name the endpoint (and its sandbox) on its interface and VM,
        after Docker has its answer."""
        with self._cond:
            rec = self._taken.get(endpoint.id)
            if rec is None:
                return
            rec.update(sandbox=sandbox, view=objects.taken_vmi_view(
                endpoint, endpoint.network_id), noted=False)
            self._write(rec)
            self._notes[endpoint.id] = rec
            self._cond.notify_all()

    def discard(self, endpoint_id):
        """The interface ``endpoint_id`` took is gone (deleted by someone
        else): forgotten."""
        with self._cond:
            rec = self._taken.pop(endpoint_id, None)
        if rec is not None:
            LOG.warning('Pooled interface %s of network %s is gone from '
                        'Contrail: not used again', rec['vmi'],
                        rec['network'])
            self.records.remove(rec['vmi'])

    def released(self, endpoint_id):
        """The endpoint's objects are deleted: so is its record."""
        with self._cond:
            rec = self._taken.pop(endpoint_id, None)
            self._notes.pop(endpoint_id, None)
        if rec is not None:
            self.records.remove(rec['vmi'])

    def forget(self, network_id):
        """Docker deleted ``network_id`` here: its free interfaces go now.
        Raised: the first that could not go; it and the ones after it
        stay free (the network's delete then fails on them, and they are
        tried again with it)."""
        self._load()
        with self._cond:
            self._wanted.pop(network_id, None)
        with self._filling:
            with self._cond:
                free = self._free.pop(network_id, [])
            for n, rec in enumerate(free):
                try:
                    self._delete(rec)
                except Exception:
                    with self._cond:
                        self._free.setdefault(network_id, [])[:0] = free[n:]
                    raise

    def state(self):
        """This host's pools, for ``status``: network ID → (free, taken)."""
        self._load()
        with self._cond:
            nets = set(self._free) | {r['network']
                                      for r in self._taken.values()}
            return {n: (len(self._free.get(n, ())),
                        sum(1 for r in self._taken.values()
                            if r['network'] == n)) for n in sorted(nets)}

    # The thread ---------------------------------------------------------

    def _loop(self):
        for rec in list(self._cut_off):
            self._attempt(self._delete, rec)
        while True:
            with self._cond:
                work = self._next()
                while not isinstance(work, tuple) and not self._stopping:
                    self._cond.wait(work)
                    work = self._next()
                if self._stopping:
                    return
            kind, arg = work
            if self._attempt(kind, arg):
                self._failures = 0
            else:
                self._failures += 1
                with self._cond:
                    self._cond.wait(delete_worker.backoff(self._failures))

    def _next(self):
        """What to do next, under ``_cond``: a note, then one making; or
        the seconds to wait (None: until woken)."""
        if self._notes:
            endpoint_id = next(iter(self._notes))
            return self._note, self._notes.pop(endpoint_id)
        for network_id, network in self._wanted.items():
            if len(self._free.get(network_id, ())) < self.size:
                quiet = self._quiet_until - time.monotonic()
                if quiet > 0:
                    return quiet
                return self._make, network
        return None

    def _attempt(self, step, arg):
        try:
            step(arg)
        except Exception as exc:
            log = LOG.warning if self._failures % 10 == 0 else LOG.debug
            log('Port pool: %s failed: %s', step.__name__.strip('_'), exc)
            if step == self._note:
                with self._cond:
                    if arg['endpoint'] in self._taken:
                        self._notes.setdefault(arg['endpoint'], arg)
            return False
        return True

    def _make(self, network):
        with self._filling:
            with self._cond:
                if network.id not in self._wanted:
                    return
                slot = self._slots.get(network.id, 0)
                self._slots[network.id] = slot + 1
            rec = record(network, self.ctx.host, slot)
            self.records.write(rec)
            try:
                with undo.Made(self.ctx.client) as made:
                    with self.ctx.api() as api:
                        vm = objects.pooled_vm_obj(network, self.ctx.host,
                                                   slot)
                        context.create_ours(api.virtual_machine_create, vm,
                                            'virtual-machine', made)
                        vmi = objects.pooled_vmi_obj(network, self.ctx.host,
                                                     slot, vm)
                        context.create_ours(
                            api.virtual_machine_interface_create, vmi,
                            'virtual-machine-interface', made)
                        vrouter = self.vrouter.uuid(api)
                        if vrouter:
                            api.ref_update('virtual-router', vrouter,
                                           'virtual-machine', vm.uuid, None,
                                           'ADD')
                            made.ref('virtual-router', vrouter,
                                     'virtual-machine', vm.uuid)
            except exception.NotFound as exc:
                self._forget_record(rec)
                # Its network is gone (deleted on another host): no pool.
                LOG.info('Port pool of network %s: not filled, %s',
                         network.id, exc)
                with self._cond:
                    self._wanted.pop(network.id, None)
                    free = self._free.pop(network.id, [])
                for old in free:
                    self._forget_record(old)
                return
            except Exception:
                self._forget_record(rec)
                raise
            rec['state'] = FREE
            self.records.write(rec)
            with self._cond:
                if network.id in self._wanted:
                    self._free.setdefault(network.id, []).append(rec)
                    return
            # Docker deleted the network meanwhile: its delete waits.
            self._delete(rec)

    def _forget_record(self, rec):
        try:
            self.records.remove(rec['vmi'])
        except OSError:
            pass

    def _delete(self, rec):
        """A pooled interface and its VM, gone; then its record."""
        with self.ctx.api() as api:
            try:
                cleanup.ignore_missing(api.virtual_machine_interface_delete,
                                       rec['vmi'])
            except vnc_exc.RefsExistError as exc:
                raise exception.Conflict(
                    reason='pooled interface %s is held by objects '
                    'opencontrail-net did not make: %s' % (rec['vmi'], exc))
            cleanup.delete_vm(api, rec['vm'])
        self.records.remove(rec['vmi'])
        LOG.info('Deleted pooled interface %s of network %s', rec['vmi'],
                 rec['network'])

    def _note(self, rec):
        """Name its endpoint on a taken interface, and its sandbox on the
        VM."""
        with self.ctx.api() as api:
            vmi = vnc_api.VirtualMachineInterface(
                rec['fq_name'][-1], objects.project(rec['fq_name'][:2]))
            vmi.uuid = rec['vmi']
            vmi.set_display_name(rec['endpoint'])
            objects.annotate(vmi, rec['view'])
            api.virtual_machine_interface_update(vmi)
            vm = vnc_api.VirtualMachine(rec['vm'])
            vm.uuid = rec['vm']
            objects.annotate(vm, {'host': self.ctx.host,
                                  'sandbox': rec.get('sandbox'),
                                  'pool_of': rec['network']})
            api.virtual_machine_update(vm)
        with self._cond:
            if self._taken.get(rec['endpoint']) is rec:
                rec['noted'] = True
                self._write(rec)

    def _write(self, rec):
        try:
            self.records.write(rec)
        except OSError as exc:
            LOG.error('Record of pooled interface %s under [DEFAULT] '
                      'state_path not updated: %s', rec['vmi'], exc)
