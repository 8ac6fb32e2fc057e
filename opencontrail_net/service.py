"""Puts the pieces together: plugins, the libnetwork layer, the server.

The socket is served first; the start (the backend's, the port driver's
and the resync of this host's endpoints) follows behind it, and every
call but the handshake's waits for it. Docker finds the socket at once:
a connection it cannot make it retries only 1, 2, 4 s later.
"""

import threading
import time

from oslo_log import log as logging

from opencontrail_net.audit import periodic
from opencontrail_net.backends import base as backend_base
from opencontrail_net import config
from opencontrail_net import engine
from opencontrail_net import exception
from opencontrail_net import ipam
from opencontrail_net import metrics
from opencontrail_net import network
from opencontrail_net import pacing
from opencontrail_net import plugin
from opencontrail_net.port_drivers import base as port_base
from opencontrail_net import server
from opencontrail_net import systemd
from opencontrail_net import unix_socket

LOG = logging.getLogger(__name__)

# Answered while the start is under way: they need the configuration
# alone. Every other call waits for the start to be over.
EARLY_CALLS = frozenset(('Plugin.Activate', 'NetworkDriver.GetCapabilities',
                         'IpamDriver.GetCapabilities',
                         'IpamDriver.GetDefaultAddressSpaces'))
# How long a call waits for the start before it is refused (503). The
# start's own waits are shorter: a Contrail backend's first look at the
# API server is bounded at 0.2 s.
START_WAIT = 25.0
# How long a stop waits for a start under way to end.
START_JOIN = 30.0


class StartGate:
    """Holds the calls that need the start until it is over, or refuses
    them (503) when it never will be."""

    def __init__(self, wait=START_WAIT):
        self.wait = wait
        self.refusing = None
        self._over = threading.Event()

    @property
    def over(self):
        return self._over.is_set()

    def open(self):
        self._over.set()

    def refuse(self, reason):
        """From now on every held call is refused: the driver ``reason``."""
        self.refusing = reason
        self._over.set()

    def wrap(self, name, handler):
        def call(body):
            if self.refusing is not None or not self._over.is_set():
                self._hold(name)
            return handler(body)
        return call

    def _hold(self, name):
        since = time.monotonic()
        if not self._over.wait(self.wait):
            raise exception.NotStarted(
                call=name, reason='is still starting after %d s; run the '
                'command again, and see the driver\'s log' % self.wait)
        if self.refusing is not None:
            raise exception.NotStarted(call=name, reason=self.refusing)
        LOG.debug('%s waited %.3f s for the start', name,
                  time.monotonic() - since)


class Service:
    """The driver service: load the configured plugins, then serve."""

    def __init__(self, conf):
        self.conf = conf
        backend_cls = plugin.load(plugin.BACKENDS, conf.backend,
                                  backend_base.Backend, conf, 'backend')
        port_cls = plugin.load(plugin.PORT_DRIVERS, conf.port_driver,
                               port_base.PortDriver, conf, 'port driver')
        config.apply_cli_overrides(conf)
        self.backend = backend_cls(conf)
        self.ports = port_cls(conf)
        self.driver = network.NetworkDriver(conf, self.backend, self.ports)
        # Answers waiting their turn hold a quarter of the server's
        # threads at most: other calls never queue behind them.
        self.held_threads = pacing.HeldThreads(
            few=max(1, conf.server_threads // 4))
        self.driver.delete_pacer.threads = self.held_threads
        self.ipam = ipam.IpamDriver(conf, self.backend)
        self.audit = periodic.PeriodicAudit(conf, self.backend, self.ports,
                                            self.driver.inflight)
        # The engine's version and firewall backend, read once Docker
        # answers: the DeleteEndpoint spacing and the port driver's
        # firewall follow them.
        self.engine = engine.EngineReader(
            self.driver.docker, [self._engine_known, self.ports.engine_known])
        self.exporter = (metrics.Exporter(conf.metrics_address)
                         if conf.metrics_address else None)
        metrics.NETWORKS.set_function(self.driver.networks_held)
        metrics.ENDPOINTS.set_function(self.driver.endpoints_held)
        self.gate = StartGate()
        self._start_error = None
        self._start_thread = None
        self._started = []     # What started, to be stopped.

    def _spacing(self):
        ms = engine.delete_spacing_ms(self.conf.delete_spacing_ms,
                                      self.engine.info)
        self.driver.delete_pacer.spacing = ms / 1000.0
        # Where the engine has no race to space for, a burst is no news.
        self.driver.delete_pacer.race_fixed = (
            self.engine.info is not None and
            not self.engine.info.has_delete_race)
        return ms

    def _engine_known(self, info):
        ms = self._spacing()
        if self.conf.delete_spacing_ms is None:
            LOG.info('DeleteEndpoint answers of one network %s on Docker '
                     '%s (delete_spacing_ms unset)',
                     'are spaced %d ms apart' % ms if ms else
                     'are not spaced', info.version_text)

    def calls(self):
        calls = dict(self.driver.calls(), **self.ipam.calls())
        return {name: handler if name in EARLY_CALLS else
                self.gate.wrap(name, handler)
                for name, handler in calls.items()}

    def _ready(self):
        """The socket is served: the rest of the start, behind it."""
        self._start_thread = threading.Thread(
            target=self._finish_start, name='ocn-start', daemon=True)
        self._start_thread.start()

    def _finish_start(self):
        began = time.monotonic()
        try:
            for part in (self.backend, self.ports):
                if self.gate.refusing is not None:
                    return
                part.start()
                self._started.append(part)
            self._resync()
            for part in (self.audit, self.exporter):
                if part is not None and self.gate.refusing is None:
                    part.start()
                    self._started.append(part)
        except Exception as exc:
            self._start_error = exc
            if isinstance(exc, exception.OpenContrailNetError):
                LOG.error('Start failed: %s', exc)
            else:
                LOG.exception('Start failed')
            self.gate.refuse('could not start (%s); see its log' % (exc,))
            server.stop()
            return
        if self.gate.refusing is not None:
            return
        self.gate.open()
        LOG.info('Serving %s (mode %s): started in %.3f s',
                 self.conf.socket_path, self.conf.socket_mode,
                 time.monotonic() - began)
        if systemd.notify('READY=1\nSTATUS=Serving %s' %
                          self.conf.socket_path):
            LOG.info('Told systemd the driver is ready')
        # Reading the engine first imports docker-py, which the start has
        # no need to wait for.
        self.engine.start()

    def _resync(self):
        try:
            self.driver.start()
        except exception.OpenContrailNetError as exc:
            # A backend that is down at start must not keep Docker from
            # the driver; the resync runs on what it can. Its error says
            # it all: no traceback.
            LOG.warning('Resync at start failed; continuing: %s', exc)
        except Exception:
            LOG.exception('Resync at start failed; continuing')

    def _stopping(self):
        if not self.gate.over:
            self.gate.refuse('is stopping')
        systemd.notify('STOPPING=1')
        # Before CherryPy waits for the process's threads: the metrics
        # server's among them.
        if self.exporter in self._started:
            self.exporter.stop()

    def reload(self):
        """SIGHUP: read the config files again and apply what may change
        while running (``debug``, ``audit_interval``, ``delete_spacing_ms``);
        a change of any other option waits for a restart, and says so."""
        systemd.notify('RELOADING=1')
        try:
            self.conf.mutate_config_files()
        except Exception as exc:
            LOG.error('Reload (SIGHUP) failed, nothing changed: %s', exc)
        else:
            spacing = self._spacing()
            if self.audit in self._started:
                self.audit.start()
            LOG.info('Reloaded the configuration (SIGHUP): debug %s, '
                     'audit_interval %s, delete_spacing_ms %s',
                     self.conf.debug, self.conf.audit_interval,
                     spacing if self.conf.delete_spacing_ms is not None
                     else '%d (unset)' % spacing)
        systemd.notify('READY=1')

    def run(self):
        # Before anything starts: a second instance on a socket in use
        # touches nothing of the first's (host state, firewall, backend).
        unix_socket.ensure_free(self.conf.socket_path)
        LOG.info('Starting: backend %s, port driver %s, scope %s',
                 self.conf.backend, self.conf.port_driver, self.conf.scope)
        config.log_options(self.conf, LOG)
        try:
            server.serve(self.calls(), self.conf.socket_path,
                         self.conf.socket_mode, self.conf.server_threads,
                         self.conf.max_request_body,
                         on_ready=self._ready, on_stop=self._stopping,
                         on_reload=self.reload,
                         on_pool=self.held_threads.attach)
        finally:
            if self._start_thread is not None:
                self._start_thread.join(START_JOIN)
            # A start that failed after it never stopped it.
            if self.exporter in self._started:
                self.exporter.stop()
            self.audit.stop()
            self.engine.stop()
            for part in (self.ports, self.backend):
                if part in self._started:
                    part.stop()
        if self._start_error is not None:
            raise self._start_error
        return 0
