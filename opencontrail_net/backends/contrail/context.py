"""What the parts of the contrail backend share.

The configuration, this host, the API client, and the lookups every part
makes: the uuid of a named object the driver refers to (a project, an
IPAM, a security group, a floating-ip pool), the fq_name of a
virtual-network (the server reads a ref's object by its fq_name), and an
existing virtual-network a user names by uuid or fq_name.
"""

import threading

from oslo_log import log as logging
from vnc_api import exceptions as vnc_exc

from opencontrail_net.backends.contrail import client as client_mod
from opencontrail_net.backends.contrail import guard
from opencontrail_net.backends.contrail import objects
from opencontrail_net import exception
from opencontrail_net import ids

LOG = logging.getLogger(__name__)


class Context:
    """Configuration, client and the shared lookups of one backend.

    Caches, owned here:

    - ``names``: (type, fq_name string) → uuid of objects the driver
      refers to by name. Never invalidated: an object keeps its uuid for
      its life, and a name the user gives is looked up again by the next
      process.
    - ``vn_names``: virtual-network uuid → fq_name. Never invalidated: a
      virtual-network's fq_name never changes, and uuids are not reused.
    """

    def __init__(self, conf):
        self.opts = conf.contrail
        self.host = conf.host
        self.client = client_mod.Client(self.opts)
        # What the operator allows Docker users to reach.
        self.guard = guard.Guard(self.opts)
        self._names = {}
        self._vn_names = {}
        self._lock = threading.Lock()

    def api(self, budget=1.0):
        """A client for one operation, within ``budget`` of its deadline
        (see client.Client.api)."""
        return self.client.api(budget)

    def uuid(self, api, kind, fq_name, option, value):
        """The uuid of the ``kind`` named ``fq_name``: one request the
        first time, none after. Missing: the option ``option`` that
        named it (given as ``value``) is refused."""
        key = (kind, ':'.join(fq_name))
        found = self._names.get(key)
        if found is None:
            try:
                found = api.fq_name_to_id(kind, fq_name)
            except vnc_exc.NoIdError:
                raise exception.InvalidOption(
                    key=option, value=value,
                    reason='no %s %s in Contrail' % (kind, key[1]))
            with self._lock:
                self._names[key] = found
        return found

    def named(self, project, name):
        """The fq_name of ``name``: NAME in ``project``, PROJECT:NAME or
        DOMAIN:PROJECT:NAME."""
        fq_name = name.split(':')
        if len(fq_name) == 1:
            fq_name = list(project) + fq_name
        return objects.fq(fq_name, self.opts.domain, 3)

    def ref(self, api, project, kind, option, name):
        """A ref to the existing ``kind`` ``name`` (see ``named``).
        Missing: ``option`` is refused, naming it."""
        fq_name = self.named(project, name)
        return {'to': fq_name,
                'uuid': self.uuid(api, kind, fq_name, option, name)}

    def remember_vn(self, vn_uuid, fq_name):
        """Note a virtual-network's fq_name, read or made by a caller."""
        with self._lock:
            self._vn_names[vn_uuid] = list(fq_name)

    def vn_fq(self, api, vn_uuid):
        """The fq_name of a virtual-network, asked once per process (a
        pool recorded with it, or a network read or made, costs none)."""
        fq_name = self._vn_names.get(vn_uuid)
        if fq_name is None:
            fq_name = api.id_to_fq_name(vn_uuid)
            self.remember_vn(vn_uuid, fq_name)
        return fq_name

    def existing_network(self, api, ref, option='opencontrail.network'):
        """The existing virtual-network ``ref`` (a uuid or
        DOMAIN:PROJECT:NAME) a user named with ``option``, read whole,
        once the operator's list allows it. Missing: ``option`` is
        refused."""
        try:
            if ref.count(':') == 2:
                vn_uuid = api.fq_name_to_id('virtual-network', ref.split(':'))
            else:
                vn_uuid = ref
            vn = api.virtual_network_read(id=vn_uuid)
        except vnc_exc.NoIdError:
            raise exception.InvalidOption(
                key=option, value=ref,
                reason='no such virtual-network in Contrail')
        self.guard.check('virtual-network', vn.get_fq_name(), option, ref)
        return vn

    def pool_fq(self, value):
        """A floating-ip-pool's fq_name (4 parts), or None if malformed."""
        pool = objects.fq(value, self.opts.domain, 4)
        return pool if len(pool) == 4 and all(pool) else None


def kv_get(api, key):
    """The API server's key-value store at ``key``, or None."""
    try:
        return api.kv_retrieve(key)
    except vnc_exc.NoIdError:
        return None


def network_stands(api, network_id):
    """Whether the Docker network ``network_id`` has its virtual-network
    of ours (Docker re-sends CreateNetwork, and another host's first
    container makes it ask)."""
    try:
        api.virtual_network_read(id=ids.network_uuid(network_id),
                                 fields=['display_name'])
    except vnc_exc.NoIdError:
        return False
    return True


def create_ours(create, obj, kind, made):
    """Create ``obj``; True if made now, False if ours already stood.

    Made now: noted in ``made`` (an :class:`undo.Made`). An object of that
    name that is not ours (another uuid) is a Conflict.
    """
    try:
        create(obj)
    except vnc_exc.RefsExistError as exc:
        if obj.uuid in str(exc):
            return False
        raise exception.Conflict(
            reason='a Contrail %s named %s already exists and is not '
            'ours: %s' % (kind, ':'.join(obj.get_fq_name()), exc))
    made.object(kind, obj.uuid)
    LOG.info('Created %s %s (%s)', kind, obj.uuid,
             ':'.join(obj.get_fq_name()))
    return True
