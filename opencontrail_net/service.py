"""Puts the pieces together: plugins, the libnetwork layer, the server."""


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
        return dict(self.driver.calls(), **self.ipam.calls())

    def _ready(self):
        if systemd.notify('READY=1\nSTATUS=Serving %s' %
                          self.conf.socket_path):
            LOG.info('Told systemd the driver is ready')
        # Once serving: reading the engine first imports docker-py, which
        # the start-up has no need to wait for.
        self.engine.start()

    def _stopping(self):
        systemd.notify('STOPPING=1')
        # Before CherryPy waits for the process's threads: the metrics
        # server's among them.
        if self.exporter is not None:
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
        self.backend.start()
        self.ports.start()
        try:
            self.driver.start()
        except exception.OpenContrailNetError as exc:
            # A backend that is down at start must not keep Docker from
            # reaching the driver; the resync runs on what it can. Its
            # error says it all: no traceback.
            LOG.warning('Resync at start failed; continuing: %s', exc)
        except Exception:
            LOG.exception('Resync at start failed; continuing')
        self.audit.start()
        if self.exporter is not None:
            self.exporter.start()
        try:
            server.serve(self.calls(), self.conf.socket_path,
                         self.conf.socket_mode, self.conf.server_threads,
                         self.conf.max_request_body,
                         on_ready=self._ready, on_stop=self._stopping,
                         on_reload=self.reload,
                         on_pool=self.held_threads.attach)
        finally:
            if self.exporter is not None:
                self.exporter.stop()    # A failed start: never stopped.
            self.audit.stop()
            self.engine.stop()
            self.ports.stop()
            self.backend.stop()
        return 0
