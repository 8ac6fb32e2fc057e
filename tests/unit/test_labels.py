"""Route targets from Docker network labels."""

import docker
import pytest

from opencontrail_net.backends import mock
from opencontrail_net import labels
from opencontrail_net import model

NID = '3' * 64


class FakeAPIClient:
    """Docker's API: the network appears after ``misses`` lookups."""

    answers = []

    def __init__(self, base_url, timeout):
        self.base_url = base_url

    def inspect_network(self, network_id):
        answer = self.answers.pop(0)
        if answer is None:
            raise docker.errors.NotFound('no such network')
        return {'Id': network_id, 'Labels': answer}

    def close(self):
        pass


@pytest.fixture
def reader(conf, monkeypatch):
    conf.set_override('docker_url', 'unix:///nowhere.sock')
    monkeypatch.setattr(docker, 'APIClient', FakeAPIClient)
    backend = mock.MockBackend(conf)
    yield labels.LabelReader(conf, backend, wait=1, interval=0.01), backend
    backend.stop()


def create(backend, **fields):
    net = model.Network(id=NID, subnets=[model.Subnet('10.1.0.0/24',
                                                      '10.1.0.1')], **fields)
    return backend.create_network(net)[0]


@pytest.mark.parametrize('answers,fields,expected', [
    ([None, None, {'rt': '64512:1'}], {}, ['target:64512:1']),
    ([{'opencontrail.rt': '64512:1,64512:2'}], {},
     ['target:64512:1', 'target:64512:2']),
    ([{'rt': 'banana'}], {}, []),
    ([{}], {}, []),
    ([{'rt': '64512:1'}], {'route_targets': ['target:64512:9']},
     ['target:64512:9']),
    ([None] * 200, {}, []),
])
def test_labels(reader, answers, fields, expected):
    reader, backend = reader
    FakeAPIClient.answers = list(answers)
    net = create(backend, **fields)
    reader.watch(net).join(5)
    assert backend.get_network(NID).route_targets == expected


def test_import_export_labels(reader):
    reader, backend = reader
    FakeAPIClient.answers = [{'opencontrail.rt.import': '64512:5',
                              'opencontrail.rt.export': '10.0.0.1:6'}]
    reader.watch(create(backend)).join(5)
    net = backend.get_network(NID)
    assert (net.import_targets, net.export_targets) == (
        ['target:64512:5'], ['target:10.0.0.1:6'])


def test_disabled_without_docker_url(conf):
    assert labels.LabelReader(conf, None).watch(None) is None
