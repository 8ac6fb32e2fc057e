"""Puts the pieces together: plugins, the libnetwork layer, the server."""

import logging as std_logging

from oslo_log import log as logging

from opencontrail_net.backends import base as backend_base
from opencontrail_net import config
from opencontrail_net import exception
from opencontrail_net import network
from opencontrail_net import plugin
from opencontrail_net.port_drivers import base as port_base
from opencontrail_net import server

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

    def calls(self):
        return self.driver.calls()

    def run(self):
        LOG.info('Starting: backend %s, port driver %s, scope %s',
                 self.conf.backend, self.conf.port_driver, self.conf.scope)
        # Secret options (passwords) print as "****".
        self.conf.log_opt_values(LOG, std_logging.DEBUG)
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
        try:
            server.serve(self.calls(), self.conf.socket_path,
                         self.conf.socket_mode, self.conf.server_threads,
                         self.conf.max_request_body)
        finally:
            self.ports.stop()
            self.backend.stop()
        return 0
