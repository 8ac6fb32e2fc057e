"""What the driver learns of the Docker Engine it serves, once.

Some of Docker's behaviour that the driver works around changed between
releases: the endpoint-count race that DeleteEndpoint answers are spaced
for is fixed in 28.1, and Docker 29 can run its firewall on nftables,
where there is no DOCKER-USER chain. The engine's version and firewall
backend are read once through ``docker_url`` (``docker info``: its
``ServerVersion`` and, from API 1.49, ``FirewallBackend.Driver``). The
driver usually starts before Docker does, so the read is retried in the
background until Docker answers; until then the driver behaves as for
an engine it does not know (DeleteEndpoint answers spaced).
"""

import dataclasses
import re
import threading
from typing import Callable, List, Optional, Tuple

from oslo_log import log as logging

from opencontrail_net import exception

LOG = logging.getLogger(__name__)

# The engine release that fixed the endpoint-count race (moby#49736).
RACE_FIXED = (28, 1)
# Spacing of DeleteEndpoint answers where the engine has the race or is
# not known, in milliseconds.
RACE_SPACING_MS = 50


@dataclasses.dataclass(frozen=True)
class EngineInfo:
    """The Docker Engine: its version and firewall backend."""

    version: Tuple[int, ...]
    # 'iptables', 'iptables+firewalld', 'nftables', ...; '' where the
    # engine does not say (before API 1.49: iptables, if any).
    firewall: str = ''
    version_text: str = ''

    @property
    def has_delete_race(self) -> bool:
        return self.version < RACE_FIXED

    @property
    def nftables(self) -> bool:
        return self.firewall.startswith('nftables')

    @classmethod
    def from_info(cls, info: dict) -> 'EngineInfo':
        """From the body of ``GET /info``."""
        text = str(info.get('ServerVersion') or '')
        found = re.match(r'(\d+)\.(\d+)(?:\.(\d+))?', text)
        if found is None:
            raise ValueError('no engine version in %r' % text)
        version = tuple(int(n or 0) for n in found.groups())
        backend = info.get('FirewallBackend') or {}
        return cls(version, str(backend.get('Driver') or ''), text)


def delete_spacing_ms(configured: Optional[int],
                      engine: Optional[EngineInfo]) -> int:
    """The spacing of DeleteEndpoint answers: the option where it is set,
    else 0 on an engine with the race fixed, else RACE_SPACING_MS."""
    if configured is not None:
        return configured
    if engine is not None and not engine.has_delete_race:
        return 0
    return RACE_SPACING_MS


class EngineReader:
    """Reads the engine once, retrying until Docker answers, then tells
    each listener (a callable taking an EngineInfo) in turn."""

    def __init__(self, docker_view, listeners: List[Callable],
                 retry_interval: float = 2.0, give_up_after: float = 600.0):
        self.docker = docker_view
        self.listeners = list(listeners)
        self.retry_interval = retry_interval
        self.give_up_after = give_up_after
        self.info: Optional[EngineInfo] = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def read_once(self) -> Optional[EngineInfo]:
        """Read the engine; tell the listeners; None if Docker can't say."""
        try:
            raw = self.docker.info()
            info = EngineInfo.from_info(raw)
        except (exception.DockerUnavailable, ValueError) as exc:
            LOG.debug('Docker Engine not read yet: %s', exc)
            return None
        self.info = info
        LOG.info('Docker Engine %s at %s, firewall backend %s',
                 info.version_text, self.docker.url,
                 info.firewall or '(not reported: iptables)')
        for listener in self.listeners:
            try:
                listener(info)
            except Exception:
                LOG.exception('Applying what the engine is failed')
        return info

    def _run(self):
        waited = 0.0
        while not self._stop.is_set():
            if self.read_once() is not None:
                return
            if waited >= self.give_up_after:
                LOG.warning('Docker Engine at %s did not answer in %d s: '
                            'behaving as for an engine before %s',
                            self.docker.url, self.give_up_after,
                            '.'.join(map(str, RACE_FIXED)))
                return
            self._stop.wait(self.retry_interval)
            waited += self.retry_interval

    def start(self):
        if not self.docker.url:
            LOG.info('docker_url is not set: the Docker Engine\'s version '
                     'is not read (DeleteEndpoint answers spaced as for '
                     'an engine before %s)', '.'.join(map(str, RACE_FIXED)))
            return
        self._thread = threading.Thread(target=self._run,
                                        name='engine-reader', daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
