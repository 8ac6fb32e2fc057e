"""What a failed call of the contrail backend made goes again."""

import contextlib
import logging

import pytest
from vnc_api import exceptions as vnc_exc

from opencontrail_net.backends.contrail import undo
from opencontrail_net import exception


class Api:
    """Records every request; ``fail`` maps a uuid to the error its
    delete (or ref removal) raises."""

    def __init__(self, fail=None):
        self.calls = []
        self.fail = fail or {}

    def _go(self, call, uuid):
        self.calls.append(call)
        if uuid in self.fail:
            raise self.fail[uuid]

    def virtual_network_delete(self, id):
        self._go(('delete', 'virtual-network', id), id)

    def instance_ip_delete(self, id):
        self._go(('delete', 'instance-ip', id), id)

    def ref_update(self, kind, uuid, to_kind, to_uuid, attr, op):
        self._go(('ref', kind, uuid, to_kind, to_uuid, op), to_uuid)


class Client:
    def __init__(self, api, down=None):
        self.api_obj, self.down, self.budgets = api, down, []

    @contextlib.contextmanager
    def api(self, budget=1.0):
        self.budgets.append(budget)
        if self.down:
            raise self.down
        yield self.api_obj


def fails(made, client):
    with pytest.raises(RuntimeError):
        with made:
            made.object('virtual-network', 'vn-1')
            made.ref('virtual-network', 'vn-1', 'network-policy', 'np-1')
            made.adopted('iip-1', 'vmi-1')
            made.object('instance_ip', 'iip-2')
            raise RuntimeError('the call failed')


def test_undone_newest_first_in_a_step_of_its_own(caplog):
    caplog.set_level(logging.INFO)
    api = Api()
    client = Client(api)
    fails(undo.Made(client), client)
    assert api.calls == [
        ('delete', 'instance-ip', 'iip-2'),
        ('ref', 'instance-ip', 'iip-1', 'virtual-machine-interface',
         'vmi-1', 'DELETE'),
        ('ref', 'virtual-network', 'vn-1', 'network-policy', 'np-1',
         'DELETE'),
        ('delete', 'virtual-network', 'vn-1'),
    ]
    assert client.budgets == [undo.BUDGET]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_call_that_succeeds_undoes_nothing():
    api = Api()
    client = Client(api)
    with undo.Made(client) as made:
        made.object('virtual-network', 'vn-1')
    assert made and api.calls == [] and client.budgets == []


def test_gone_already_is_undone():
    api = Api(fail={'iip-2': vnc_exc.NoIdError('iip-2')})
    client = Client(api)
    fails(undo.Made(client), client)
    assert len(api.calls) == 4


def test_what_could_not_be_undone_is_named_and_the_rest_goes(caplog):
    api = Api(fail={'np-1': vnc_exc.HttpError(503, 'busy')})
    client = Client(api)
    fails(undo.Made(client), client)
    # The failed step did not stop the virtual-network's delete.
    assert api.calls[-1] == ('delete', 'virtual-network', 'vn-1')
    errors = [r.getMessage() for r in caplog.records
              if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert 'Could not undo ref' in errors[0] and 'np-1' in errors[0]
    assert 'vn-1' in errors[0] and 'iip-2' not in errors[0]


def test_no_client_for_the_undo_names_everything(caplog):
    client = Client(Api(), down=exception.BackendUnavailable(
        reason='api gone'))
    fails(undo.Made(client), client)
    errors = [r.getMessage() for r in caplog.records
              if r.levelno == logging.ERROR]
    assert len(errors) == 1 and 'api gone' in errors[0]
    for uuid in ('vn-1', 'np-1', 'iip-1', 'iip-2'):
        assert uuid in errors[0]
