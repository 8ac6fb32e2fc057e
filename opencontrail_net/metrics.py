"""Prometheus metrics of the driver, served at ``[DEFAULT] metrics_address``.

Off by default: with no address nothing listens, nothing is counted and
prometheus_client is not imported. Once an :class:`Exporter` is made (at
start, before any call), the instruments count (a few microseconds a
call) in a registry of the driver's own, served by prometheus_client's
WSGI app on CherryPy's server (cheroot), on loopback or a Unix socket.
"""

import importlib
import ipaddress
import os
import threading

from cheroot import wsgi
from oslo_log import log as logging

from opencontrail_net import exception
from opencontrail_net import unix_socket

LOG = logging.getLogger(__name__)

_NS = 'opencontrail_net'
_INSTRUMENTS: list = []
# prometheus_client's registry once the metrics are served, else None.
REGISTRY = None


class _Uncounted:
    """What an instrument's labels give while nothing is counted."""

    def inc(self, amount=1):
        pass

    def set(self, value):
        pass

    def observe(self, value):
        pass


_UNCOUNTED = _Uncounted()


class _Instrument(_Uncounted):
    """One instrument: prometheus_client's once :func:`enable` made it,
    counting nothing before."""

    def __init__(self, kind, name, documentation, labelnames=(), **kwargs):
        self._spec = (kind, name, documentation, tuple(labelnames), kwargs)
        self._made = None
        self._function = None
        _INSTRUMENTS.append(self)

    def make(self, prom, registry):
        kind, name, documentation, labelnames, kwargs = self._spec
        self._made = getattr(prom, kind)(
            name, documentation, labelnames, namespace=_NS,
            registry=registry, **kwargs)
        if self._function is not None:
            self._made.set_function(self._function)

    def labels(self, *values):
        return _UNCOUNTED if self._made is None else self._made.labels(
            *values)

    def inc(self, amount=1):
        if self._made is not None:
            self._made.inc(amount)

    def set_function(self, function):
        self._function = function
        if self._made is not None:
            self._made.set_function(function)


def enable():
    """Count from now on, in :data:`REGISTRY`; returns prometheus_client."""
    global REGISTRY
    prom = importlib.import_module('prometheus_client')
    if REGISTRY is None:
        REGISTRY = prom.CollectorRegistry(auto_describe=True)
        for instrument in _INSTRUMENTS:
            instrument.make(prom, REGISTRY)
    return prom


CALL_SECONDS = _Instrument(
    'Histogram', 'call_seconds',
    'Time the driver took to answer a libnetwork call', ['call'],
    buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5,
             10, 30))
CALL_ERRORS = _Instrument(
    'Counter', 'call_errors', 'libnetwork calls answered with an error, by '
    'the error\'s kind (InvalidOption, BackendUnavailable, ...)',
    ['call', 'reason'])
CONTRAIL_REQUESTS = _Instrument(
    'Counter', 'contrail_requests', 'Requests to the Contrail config API, '
    'by HTTP method and status ("none": no answer)', ['method', 'status'])
CONTRAIL_RENEWALS = _Instrument(
    'Counter', 'contrail_token_renewals', 'Keystone tokens renewed after '
    'the API refused one (401); the request is then sent again')
AGENT_CALLS = _Instrument(
    'Counter', 'agent_calls', 'Calls to the vrouter agent\'s port API, by '
    'HTTP method and status ("none": no answer)', ['method', 'status'])
PACED_BURSTS = _Instrument(
    'Counter', 'paced_bursts', 'Bursts of DeleteEndpoint calls on one '
    'network whose answers were spaced (delete_spacing_ms)')
PACED_ANSWERS = _Instrument(
    'Counter', 'paced_answers', 'DeleteEndpoint answers held for their '
    'turn')
AUDIT_RUNS = _Instrument(
    'Counter', 'audit_runs', 'Periodic audits, by outcome (done, skipped, '
    'unsure)', ['outcome'])
AUDIT_FINDINGS = _Instrument(
    'Gauge', 'audit_findings', 'What the latest periodic audit found out '
    'of step, by kind', ['kind'])
AUDIT_REPAIRS = _Instrument(
    'Counter', 'audit_repairs', 'Periodic audit actions, by finding kind '
    'and outcome (repaired, left, failed)', ['kind', 'outcome'])
NETWORKS = _Instrument(
    'Gauge', 'networks', 'Networks of this driver in use on this host '
    '(known to this process)')
ENDPOINTS = _Instrument(
    'Gauge', 'endpoints', 'Endpoints of this driver joined on this host')

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
        self._prom = enable()
        self._server = None
        self._thread = None

    def start(self):
        if isinstance(self.bind, str):
            unix_socket.remove_stale(self.bind)
        app = self._prom.make_wsgi_app(REGISTRY)
        server = wsgi.Server(self.bind, app, numthreads=2)
        try:
            server.prepare()
        except OSError as exc:
            # Another program listens there.
            raise _bad(self.address, 'cannot listen there: %s' % exc)
        self._server = server
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
