"""Options of the driver service (oslo.config)."""

import logging as std_logging
import os

from oslo_config import cfg
from oslo_log import log as logging

from opencontrail_net import optnames

LOG = logging.getLogger(__name__)

CONF = cfg.CONF

# Set in a managed plugin's environment (its config.json): the driver
# runs in a filesystem of its own there.
MANAGED_ENV = 'OPENCONTRAIL_NET_MANAGED_PLUGIN'

# Options that may also be given on the command line.
default_cli_opts = [
    cfg.StrOpt('scope', short='g', default='local',
               choices=[('local', 'networks of one host'),
                        ('global', 'networks every host of a cluster '
                                   'store or swarm sees')],
               help='Scope answered to Docker: "global" for multi-host '
                    'networks through a cluster store or swarm.'),
]

default_opts = [
    cfg.StrOpt('socket_path',
               default='/run/docker/plugins/opencontrail.sock',
               help='Unix socket the driver serves. Docker finds the driver '
                    'by the socket\'s basename without ".sock", the name '
                    'users give to "docker network create -d".'),
    cfg.StrOpt('socket_mode', default='0660',
               help='Octal permissions of the socket after bind.'),
    cfg.StrOpt('driver_name', sample_default='<socket basename>',
               help='The name Docker knows the driver by (a network\'s '
                    '"Driver"), which the audit finds this driver\'s '
                    'networks with. Defaults to the socket\'s basename '
                    'without ".sock"; set it for a managed plugin '
                    '("NAME:latest").'),
    cfg.IntOpt('audit_interval', default=300, min=0, mutable=True,
               help='Seconds between audits of Docker against the backend '
                    'inside the driver: what was out of step on two '
                    'audits in a row is repaired (the driver\'s own '
                    'objects only) and logged. The first audit comes at '
                    'a random point within this time, the next ones 0.8 '
                    'to 1.2 times it apart, so that hosts never audit in '
                    'step. 0 turns it off. Needs docker_url. SIGHUP '
                    'applies a new value.'),
    cfg.StrOpt('backend', default='mock',
               help='Config backend, by entry point name in '
                    'opencontrail_net.backends ("mock", "contrail").'),
    cfg.StrOpt('port_driver', default='bridge',
               help='Port driver, by entry point name in '
                    'opencontrail_net.port_drivers ("bridge", "veth", '
                    '"vrouter").'),
    cfg.StrOpt('state_path', default='/var/lib/opencontrail-net',
               help='Directory of this host\'s driver state: the mock '
                    'backend\'s database, and the contrail backend\'s '
                    'endpoint deletes still to do (contrail-deletes/, one '
                    'file each; a restarted driver does them).'),
    cfg.StrOpt('host', sample_default='<hostname>',
               help='Name of this host, recorded in the bindings of the '
                    'interfaces it plugs. Defaults to the hostname.'),
    cfg.IntOpt('max_request_body', default=1024 * 1024, min=1024,
               help='Largest request body accepted, in bytes.'),
    cfg.IntOpt('server_threads', default=16, min=2,
               help='Requests served at once; Docker calls concurrently.'),
    cfg.StrOpt('metrics_address',
               help='Where Prometheus metrics are served: a loopback '
                    'ADDRESS:PORT ([::1]:PORT for IPv6) or unix:/PATH. '
                    'Unset: nothing listens.'),
    cfg.IntOpt('default_mtu', default=1500, min=68, max=65535,
               help='MTU of container interfaces when a network sets none.'),
    cfg.IntOpt('global_asn', default=64512, min=1, max=4294967295,
               help='The ASN whose route targets from 8000000 up are '
                    'refused as Contrail\'s own, on the mock backend (the '
                    'contrail backend reads the cluster\'s from its '
                    'global-system-config).'),
    cfg.IntOpt('delete_spacing_ms', min=0, max=1000,
               mutable=True,
               help='When DeleteEndpoint calls of one network come at once '
                    '(e.g. "docker rm -f" of many containers), answer them '
                    'this many milliseconds apart; a lone call is answered '
                    'at once. Docker before 28.1 loses endpoint-count '
                    'updates when many endpoints of a network go at once, '
                    'and then refuses to remove the network ("has active '
                    'endpoints") until dockerd restarts. Unset: 0 on an '
                    'engine of 28.1 or later (read once through '
                    'docker_url), else 50. 0 turns it off. SIGHUP applies '
                    'a new value.'),
    cfg.StrOpt('docker_url', default='unix:///run/docker.sock',
               help='Docker Engine API, read for network labels (the seed '
                    'README\'s "%s...") and by the audit. Empty '
                    'disables both.' % optnames.spelling('route_targets',
                                                         optnames.LABEL)),
]

# The original tool's command line, kept for operators' scripts.
cli_opts = [
    cfg.StrOpt('socketpath', short='s', dest='socket_path_cli',
               help='Overrides [DEFAULT] socket_path.'),
    cfg.StrOpt('tenant', short='y', dest='project_cli',
               help='Overrides [contrail] project.'),
    cfg.StrOpt('api_server', short='a', dest='api_server_cli',
               help='Overrides [contrail] api_server.'),
    cfg.PortOpt('api_port', short='x', dest='api_port_cli',
                help='Overrides [contrail] api_port.'),
    cfg.StrOpt('admin_user', short='u', dest='admin_user_cli',
               help='Overrides [contrail] admin_user.'),
    cfg.StrOpt('admin_tenant', short='t', dest='admin_tenant_cli',
               help='Overrides [contrail] admin_tenant.'),
    cfg.StrOpt('admin_password', short='p', dest='admin_password_cli',
               secret=True, help='Overrides [contrail] admin_password.'),
]


# Netlink and HTTP internals drown the driver's own debug lines.
QUIET_LOGGERS = ['pyroute2=WARNING', 'asyncio=WARNING',
                 'cherrypy.access=WARNING']


def register_opts(conf=CONF):
    from opencontrail_net import ipam
    conf.register_opts(default_opts)
    ipam.register_opts(conf)
    conf.register_cli_opts(default_cli_opts)
    logging.register_options(conf)
    logging.set_defaults(default_log_levels=(
        logging.get_default_log_levels() + QUIET_LOGGERS))


def parse_args(argv, conf=CONF, default_config_files=None):
    """Register every option, parse the command line and config files."""
    register_opts(conf)
    conf.register_cli_opts(cli_opts)
    conf(argv, project='opencontrail-net',
         default_config_files=default_config_files)


def apply_cli_overrides(conf=CONF):
    """Let the original tool's command-line flags win over the file.

    Called once the plugins have registered their option groups.
    """
    if conf.socket_path_cli:
        conf.set_override('socket_path', conf.socket_path_cli)
    group = getattr(conf, 'contrail', None)
    if group is None:
        return
    for cli, opt in (('project_cli', 'project'),
                     ('api_port_cli', 'api_port'),
                     ('admin_user_cli', 'admin_user'),
                     ('admin_tenant_cli', 'admin_tenant'),
                     ('admin_password_cli', 'admin_password')):
        value = getattr(conf, cli)
        if value is not None:
            conf.set_override(opt, value, group='contrail')
    if conf.admin_password_cli is not None:
        LOG.warning('The admin password was given on the command line '
                    '(-p): every local user can read it in '
                    '/proc/%d/cmdline. Put it in a file readable by root '
                    'only, named by [contrail] admin_password_file',
                    os.getpid())
    if conf.api_server_cli:
        conf.set_override('api_server', conf.api_server_cli.split(','),
                          group='contrail')


class _Redact(std_logging.Filter):
    """Replaces each of ``secrets`` in a record's message by ****."""

    def __init__(self, secrets):
        super().__init__()
        self.secrets = [x for x in secrets if x]

    def filter(self, record):
        message = record.getMessage()
        for secret in self.secrets:
            message = message.replace(secret, '****')
        record.msg, record.args = message, None
        return True


def log_options(conf, logger):
    """Every option's value at DEBUG, as oslo.config logs them: secret
    options print as ****, and so do secrets in the command line it
    logs as it was given (``-p PASSWORD``)."""
    secrets = [conf.admin_password_cli]
    group = getattr(conf, 'contrail', None)
    if group is not None:
        secrets.append(group.admin_password)
    redact = _Redact(secrets)
    std = logger.logger if hasattr(logger, 'logger') else logger
    std.addFilter(redact)
    try:
        conf.log_opt_values(logger, std_logging.DEBUG)
    finally:
        std.removeFilter(redact)


def driver_name(conf=CONF):
    """The name Docker knows this driver by."""
    if conf.driver_name:
        return conf.driver_name
    base = os.path.basename(conf.socket_path)
    return base[:-len('.sock')] if base.endswith('.sock') else base
