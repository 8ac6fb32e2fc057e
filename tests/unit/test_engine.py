"""What the driver makes of the Docker Engine it serves."""

import threading

import pytest

from opencontrail_net import engine
from opencontrail_net import exception


@pytest.mark.parametrize('info,version,firewall,race', [
    ({'ServerVersion': '20.10.24+dfsg1'}, (20, 10, 24), '', True),
    ({'ServerVersion': '28.0.4'}, (28, 0, 4), '', True),
    ({'ServerVersion': '28.1.0', 'FirewallBackend': {'Driver': 'iptables'}},
     (28, 1, 0), 'iptables', False),
    ({'ServerVersion': '28.5.2+dfsg4',
      'FirewallBackend': {'Driver': 'iptables+firewalld'}},
     (28, 5, 2), 'iptables+firewalld', False),
    ({'ServerVersion': '29.1.0',
      'FirewallBackend': {'Driver': 'nftables', 'Info': [['x', 'y']]}},
     (29, 1, 0), 'nftables', False),
])
def test_engine_from_info(info, version, firewall, race):
    found = engine.EngineInfo.from_info(info)
    assert found.version == version
    assert found.firewall == firewall
    assert found.has_delete_race is race
    assert found.nftables is (firewall == 'nftables')


def test_engine_without_version_is_refused():
    with pytest.raises(ValueError):
        engine.EngineInfo.from_info({'ServerVersion': 'dev'})


@pytest.mark.parametrize('configured,version,expected', [
    (None, None, 50),               # not known (yet): spaced
    (None, (20, 10, 24), 50),
    (None, (28, 0, 4), 50),
    (None, (28, 1, 0), 0),          # moby#49736 fixed
    (None, (29, 0, 0), 0),
    (0, (20, 10, 24), 0),           # the option wins, both ways
    (80, (28, 5, 2), 80),
])
def test_delete_spacing(configured, version, expected):
    info = engine.EngineInfo(version) if version else None
    assert engine.delete_spacing_ms(configured, info) == expected


class _View:
    url = 'unix:///run/docker.sock'

    def __init__(self, answers):
        self.answers = list(answers)

    def info(self):
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_reader_retries_until_docker_answers():
    """The driver starts before Docker: the read is retried, and the
    listeners hear of the engine once."""
    down = exception.DockerUnavailable(url='x', reason='connection refused')
    view = _View([down, down, {'ServerVersion': '28.5.2'}])
    heard, done = [], threading.Event()

    def listener(info):
        heard.append(info)
        done.set()
    reader = engine.EngineReader(view, [listener], retry_interval=0.01)
    reader.start()
    assert done.wait(5)
    reader.stop()
    assert [i.version for i in heard] == [(28, 5, 2)]
    assert view.answers == []


def test_reader_gives_up_and_keeps_the_default(caplog):
    down = exception.DockerUnavailable(url='x', reason='connection refused')
    view = _View([down] * 10)
    reader = engine.EngineReader(view, [], retry_interval=0.01,
                                 give_up_after=0.03)
    reader.start()
    reader._thread.join(5)
    assert reader.info is None
    assert 'did not answer' in caplog.text


def test_a_failing_listener_does_not_stop_the_others():
    heard = []

    def broken(info):
        raise RuntimeError('boom')
    reader = engine.EngineReader(_View([{'ServerVersion': '29.0.3'}]),
                                 [broken, heard.append])
    assert reader.read_once().version == (29, 0, 3)
    assert len(heard) == 1
