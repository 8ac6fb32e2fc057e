"""Prometheus metrics of the driver, served at ``[DEFAULT] metrics_address``.

Off by default: with no address nothing listens. The instruments are
counted all the same (a few microseconds a call) and live in a registry of
the driver's own, served by prometheus_client's WSGI app on CherryPy's
server (cheroot), on loopback or a Unix socket.
"""

import ipaddress
import os
import threading

from cheroot import wsgi
from oslo_log import log as logging
import prometheus_client as prom

from opencontrail_net import exception
from opencontrail_net import unix_socket

LOG = logging.getLogger(__name__)

REGISTRY = prom.CollectorRegistry(auto_describe=True)
_NS = 'opencontrail_net'

CALL_SECONDS = prom.Histogram(
    'call_seconds', 'Time the driver took to answer a libnetwork call',
    ['call'], namespace=_NS, registry=REGISTRY,
    buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5,
             10, 30))
CALL_ERRORS = prom.Counter(
    'call_errors', 'libnetwork calls answered with an error, by the '
    'error\'s kind (InvalidOption, BackendUnavailable, ...)',
    ['call', 'reason'], namespace=_NS, registry=REGISTRY)
CONTRAIL_REQUESTS = prom.Counter(
    'contrail_requests', 'Requests to the Contrail config API, by HTTP '
    'method and status ("none": no answer)', ['method', 'status'],
    namespace=_NS, registry=REGISTRY)
CONTRAIL_RENEWALS = prom.Counter(
    'contrail_token_renewals', 'Keystone tokens renewed after the API '
    'refused one (401); the request is then sent again',
    namespace=_NS, registry=REGISTRY)
AGENT_CALLS = prom.Counter(
    'agent_calls', 'Calls to the vrouter agent\'s port API, by HTTP method '
    'and status ("none": no answer)', ['method', 'status'],
    namespace=_NS, registry=REGISTRY)
PACED_BURSTS = prom.Counter(
    'paced_bursts', 'Bursts of DeleteEndpoint calls on one network whose '
    'answers were spaced (delete_spacing_ms)', namespace=_NS,
    registry=REGISTRY)
PACED_ANSWERS = prom.Counter(
    'paced_answers', 'DeleteEndpoint answers held for their turn',
    namespace=_NS, registry=REGISTRY)
AUDIT_RUNS = prom.Counter(
    'audit_runs', 'Periodic audits, by outcome (done, skipped, unsure)',
    ['outcome'], namespace=_NS, registry=REGISTRY)
AUDIT_FINDINGS = prom.Gauge(
    'audit_findings', 'What the latest periodic audit found out of step, '
    'by kind', ['kind'], namespace=_NS, registry=REGISTRY)
AUDIT_REPAIRS = prom.Counter(
    'audit_repairs', 'Periodic audit actions, by finding kind and outcome '
    '(repaired, left, failed)', ['kind', 'outcome'], namespace=_NS,
    registry=REGISTRY)
NETWORKS = prom.Gauge(
    'networks', 'Networks of this driver in use on this host (known to '
    'this process)', namespace=_NS, registry=REGISTRY)
ENDPOINTS = prom.Gauge(
    'endpoints', 'Endpoints of this driver joined on this host',
    namespace=_NS, registry=REGISTRY)

UNIX_PREFIX = 'unix:'


def parse_address(value):
    """``[DEFAULT] metrics_address`` as a bind address for cheroot: a path
    (``unix:/run/x.sock``) or ``(loopback address, port)``."""
    if value.startswith(UNIX_PREFIX):
        path = value[len(UNIX_PREFIX):]
        if not path.startswith('/'):
            raise _bad(value, 'a Unix socket needs an absolute path')
        return path
    host, sep, port = value.rpartition(':')
    host = host.strip('[]')
    try:
        address = ipaddress.ip_address(host)
        port = int(port)
    except ValueError:
        address = None
    if not sep or address is None or not 0 < port < 65536:
        raise _bad(value, 'expected ADDRESS:PORT ([ADDRESS]:PORT for '
                   'IPv6) or unix:/PATH')
    if not address.is_loopback:
        raise _bad(value, 'metrics are served on loopback only (they are '
                   'not authenticated): a scraper on another host reaches '
                   'them through a proxy of its own')
    return str(address), port


def _bad(value, reason):
    return exception.InvalidConfig(option='[DEFAULT] metrics_address',
                                   value=value, reason=reason)


class Exporter:
    """Serves the registry at ``address`` in a thread of its own."""

    def __init__(self, address):
        self.address = address
        self.bind = parse_address(address)
        self._server = None
        self._thread = None

    def start(self):
        if isinstance(self.bind, str):
            unix_socket.remove_stale(self.bind)
        app = prom.make_wsgi_app(REGISTRY)
        self._server = wsgi.Server(self.bind, app, numthreads=2)
        self._server.prepare()
        if isinstance(self.bind, str):
            os.chmod(self.bind, 0o660)
        self._thread = threading.Thread(target=self._server.serve,
                                        name='ocn-metrics', daemon=True)
        self._thread.start()
        LOG.info('Prometheus metrics at %s', self.address)

    def stop(self):
        """Stop serving; idempotent."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()
            if isinstance(self.bind, str):
                try:
                    os.unlink(self.bind)
                except FileNotFoundError:
                    pass


def contrail_status(exc):
    """The HTTP status a vnc_api error stands for; "none" for no answer."""
    code = getattr(exc, 'status_code', None)
    if isinstance(code, int):
        return str(code)
    for name, code in (('NoIdError', 404), ('RefsExistError', 409),
                       ('BadRequest', 400), ('PermissionDenied', 403),
                       ('AuthFailed', 401), ('ServiceUnavailableError', 503),
                       ('OverQuota', 409)):
        if type(exc).__name__ == name:
            return str(code)
    return 'none'
