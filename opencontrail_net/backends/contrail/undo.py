"""What one Docker call made in Contrail, undone if the call fails.

Every create path of the backend makes its objects inside ``with
Made(client) as made:`` and notes each one as it is made. When the block
raises, what was made goes again, newest first, in a step of its own
(the share of the timeout the main path left), and the exception goes
on. A step that fails does not stop the others; what could not be undone
is named in one error line, for the audit and the operator.
"""

from oslo_log import log as logging

from opencontrail_net.backends.contrail.client import ignore_missing

LOG = logging.getLogger(__name__)

#: The share of the timeout undo may use: what the main path left.
BUDGET = 1 / 3


class Made:
    """The objects, refs and adopted addresses one call made."""

    def __init__(self, client):
        self._client = client
        self._steps = []

    def __bool__(self):
        return bool(self._steps)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.undo()
        return False

    def object(self, kind, uuid):
        """An object made, by its type (``virtual-network`` or
        ``virtual_network``)."""
        self._steps.append((kind.replace('-', '_'), uuid))

    def ref(self, from_type, from_uuid, to_type, to_uuid):
        """A ref this call added."""
        self._steps.append(('ref', (from_type, from_uuid, to_type, to_uuid)))

    def adopted(self, iip, vmi):
        """An address of the driver's IPAM given to an interface: undone,
        it is the IPAM's again (Docker releases it)."""
        self._steps.append(('adopted', (iip, vmi)))

    def undo(self):
        """Delete, newest first, what was made; log what could not be."""
        if not self._steps:
            return
        left = []
        try:
            with self._client.api(budget=BUDGET) as api:
                for kind, what in reversed(self._steps):
                    try:
                        _undo_one(api, kind, what)
                    except Exception as exc:
                        left.append('%s %s (%s)' % (kind, what, exc))
                        continue
                    LOG.info('Undid %s %s', kind, what)
        except Exception as exc:
            # No client for the step at all: nothing was undone.
            left = ['%s %s' % step for step in reversed(self._steps)]
            LOG.error('Could not undo %s: %s', '; '.join(left), exc)
            return
        if left:
            LOG.error('Could not undo %s', '; '.join(left))


def _undo_one(api, kind, what):
    if kind == 'ref':
        api.ref_update(what[0], what[1], what[2], what[3], None, 'DELETE')
    elif kind == 'adopted':
        iip, vmi = what
        api.ref_update('instance-ip', iip, 'virtual-machine-interface', vmi,
                       None, 'DELETE')
    else:
        ignore_missing(getattr(api, kind + '_delete'), what)
