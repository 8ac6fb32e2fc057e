"""The two plugin points and how they are loaded (stevedore)."""

import abc
from importlib import metadata
from typing import List, Optional, Sequence, Type, TypeVar

from oslo_config import cfg
from oslo_log import log as logging
from stevedore import driver

from opencontrail_net import exception

LOG = logging.getLogger(__name__)

BACKENDS = 'opencontrail_net.backends'
PORT_DRIVERS = 'opencontrail_net.port_drivers'

Plugin = TypeVar('Plugin', bound='PluginBase')


class PluginBase(metaclass=abc.ABCMeta):
    """What every plugin shares: its own option group and the config."""

    #: Options of this plugin, registered in CONFIG_GROUP before it starts.
    CONFIG_OPTS: Sequence[cfg.Opt] = ()
    CONFIG_GROUP: Optional[str] = None

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        self.conf = conf

    def start(self) -> None:
        """Called once the service is ready to serve; may do I/O."""

    def stop(self) -> None:
        """Called when the service shuts down."""


def installed(namespace: str) -> List[str]:
    return sorted({ep.name for ep in metadata.entry_points(group=namespace)})


def load(namespace: str, name: str, base: Type[Plugin],
         conf: cfg.ConfigOpts, kind: str) -> Type[Plugin]:
    """Load the plugin ``name`` of ``namespace``, a subclass of ``base``."""
    failures: List[BaseException] = []

    def on_failure(manager: object, entrypoint: metadata.EntryPoint,
                   exc: BaseException) -> None:
        failures.append(exc)

    def choices() -> str:
        # Only an error names them: listing every installed package's
        # entry points is no part of a start that succeeds.
        return ', '.join(installed(namespace)) or 'none'

    try:
        mgr: driver.DriverManager[object] = driver.DriverManager(
            namespace, name, invoke_on_load=False,
            on_load_failure_callback=on_failure)
    except Exception as exc:
        reason: object = failures[0] if failures else exc
        if not failures and name not in installed(namespace):
            reason = 'no such %s' % kind
        raise exception.PluginLoadError(kind=kind, name=name,
                                        reason=reason, choices=choices())
    cls = mgr.driver
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise exception.PluginLoadError(
            kind=kind, name=name, choices=choices(),
            reason='%r is not a %s' % (cls, base.__name__))
    if cls.CONFIG_GROUP and cls.CONFIG_OPTS:
        conf.register_opts(list(cls.CONFIG_OPTS), group=cls.CONFIG_GROUP)
    return cls
