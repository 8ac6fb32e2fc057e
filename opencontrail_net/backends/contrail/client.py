"""The Contrail API client: a pool of bounded vnc_api clients, errors mapped.

vnc_api's client is not thread-safe and, left alone, retries for about
30 s on a dead server: each Docker call borrows its own client from the
pool and every request it sends is bounded by the call's deadline.
"""

import contextlib
import threading
import time

from oslo_config import cfg
from oslo_log import log as logging
import requests
from vnc_api import exceptions as vnc_exc
from vnc_api import vnc_api

from opencontrail_net.backends.contrail import keystone
from opencontrail_net import exception
from opencontrail_net import metrics
from opencontrail_net import optnames

LOG = logging.getLogger(__name__)

DEFAULT_IPAM = ['default-domain', 'default-project', 'default-network-ipam']

CONFIG_OPTS = [
    cfg.ListOpt('api_server', default=['127.0.0.1'],
                help='Contrail config API servers; several give failover.'),
    cfg.PortOpt('api_port', default=8082, help='Config API port.'),
    cfg.BoolOpt('use_ssl', default=False, help='Talk HTTPS to the API.'),
    cfg.StrOpt('cafile', help='CA bundle to verify the API server with.'),
    cfg.BoolOpt('insecure', default=False,
                help='Do not verify the API server\'s certificate.'),
    cfg.StrOpt('auth_type', default='noauth',
               choices=[('noauth', 'the API server runs without auth'),
                        ('keystone', 'a Keystone v3 token with every '
                                     'request')],
               help='How to authenticate to the config API.'),
    cfg.StrOpt('auth_url',
               help='Keystone v3 identity URL, e.g. '
                    'https://keystone.example:5000/v3. A path alone (such '
                    'as the former default /v3/auth/tokens) is joined to '
                    'auth_protocol://auth_host:auth_port. Unset: '
                    'auth_protocol://auth_host:auth_port/v3.'),
    cfg.HostAddressOpt('auth_host', default='127.0.0.1',
                       help='Keystone host, when auth_url is no URL.'),
    cfg.PortOpt('auth_port', default=5000,
                help='Keystone port, when auth_url is no URL.'),
    cfg.StrOpt('auth_protocol', default='http', choices=['http', 'https'],
               help='Keystone protocol, when auth_url is no URL.'),
    cfg.StrOpt('admin_user', default='admin', help='Keystone user.'),
    cfg.StrOpt('admin_password', secret=True, default='',
               help='Keystone password of admin_user.'),
    cfg.StrOpt('admin_tenant', default='admin',
               help='Keystone project the token is scoped to.'),
    cfg.StrOpt('user_domain_name', default='Default',
               help='Keystone domain of admin_user (Keystone\'s, not '
                    'Contrail\'s "domain").'),
    cfg.StrOpt('project_domain_name', default='Default',
               help='Keystone domain of admin_tenant (Keystone\'s, not '
                    'Contrail\'s "domain").'),
    cfg.StrOpt('auth_cafile',
               help='CA bundle to verify Keystone\'s certificate with '
                    '(default: the system\'s).'),
    cfg.StrOpt('auth_certfile',
               help='Client certificate (PEM) to present to Keystone.'),
    cfg.StrOpt('auth_keyfile',
               help='Private key of auth_certfile, if not in it.'),
    cfg.BoolOpt('auth_insecure', default=False,
                help='Do not verify Keystone\'s certificate.'),
    cfg.StrOpt('domain', default='default-domain',
               help='Contrail domain of projects given without one.'),
    cfg.StrOpt('project', default='admin',
               help='Project of new networks, PROJECT or DOMAIN:PROJECT; '
                    '"%s" overrides it per network.'
                    % optnames.spelling('project')),
    cfg.StrOpt('network_ipam',
               default=':'.join(DEFAULT_IPAM),
               help='network-ipam of new networks (DOMAIN:PROJECT:NAME); '
                    '"%s" overrides it per network.'
                    % optnames.spelling('ipam')),
    cfg.FloatOpt('timeout', default=10.0, min=1.0,
                 help='Longest time one Docker call may wait for the API '
                      '(and Keystone) before it fails with a clear '
                      'error.'),
    cfg.ListOpt('audit_projects', default=[],
                help='Projects (PROJECT or DOMAIN:PROJECT) whose networks '
                     'the audit checks for networks Docker no longer has; '
                     'empty: the "project" option\'s. Only networks this '
                     'host made are considered.'),
    cfg.StrOpt('floating_ip_pool',
               help='floating-ip-pool that published ports (docker run -p) '
                    'take a floating IP from, DOMAIN:PROJECT:NETWORK:POOL '
                    '(or PROJECT:NETWORK:POOL in "domain"); its network is '
                    'usually a router_external one. Each container with '
                    '-p gets its own floating IP with one port mapping '
                    'per -p (HOSTPORT on the floating IP to the '
                    'container\'s PORT). "%s" overrides it per network. '
                    'Unset: -p is refused on networks without that '
                    'option.' % optnames.spelling('floating_ip_pool')),
    cfg.IntOpt('retry_interval', default=30, min=0,
               help='Seconds between attempts to delete a network that '
                    'Docker removed while objects of others still held '
                    'it in Contrail (0: only at start).'),
]


# vnc_api's request operations (vnc_api.utils.OP_*), as HTTP methods.
_METHODS = {1: 'POST', 2: 'GET', 3: 'PUT', 4: 'DELETE'}


def unavailable(why):
    return exception.BackendUnavailable(reason='Contrail API: %s' % why)


class BoundedVncApi(vnc_api.VncApi):
    """VncApi without its hidden retry loops, bounded by a deadline.

    The stock client sleeps and retries for about 30 s on a dead server:
    Docker must hear of it long before that. With ``keystone`` (a
    :class:`~.keystone.KeystoneAuth`) every request carries its token,
    and a 401 gets a new one once, within the same deadline.
    """

    deadline = None
    request_timeout = 5.0
    keystone = None

    def __init__(self, *args, deadline=None, request_timeout=None,
                 keystone=None, **kwargs):
        # Set before the constructor's own first request (GET /).
        self.deadline = deadline
        if request_timeout is not None:
            self.request_timeout = request_timeout
        self.keystone = keystone
        super().__init__(*args, **kwargs)

    def _authenticate(self, response=None, headers=None):
        if self.keystone is None:
            return super()._authenticate(response, headers)
        headers = {} if headers is None else headers
        deadline = self.deadline
        if deadline is None:
            deadline = time.monotonic() + self.request_timeout
        stale = headers.get('X-AUTH-TOKEN')
        if stale is not None:
            metrics.CONTRAIL_RENEWALS.inc()
        headers['X-AUTH-TOKEN'] = self.keystone.token(
            deadline, self.request_timeout, stale=stale)
        return headers

    def _request(self, op, url, data=None, retry_on_error=True,
                 retry_after_authn=False, retry_count=0):
        if self.keystone is not None and \
                'X-AUTH-TOKEN' not in self._headers:
            # Spares the 401 every first request would get.
            self._headers = self._authenticate(headers=self._headers)
        session = self._api_server_session
        if self.deadline is not None:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0.05:
                raise unavailable('no answer in time')
            session.timeout = min(self.request_timeout, remaining)
            session.connection_timeout = min(2.0, remaining)
        method = _METHODS.get(op, str(op))
        try:
            result = super()._request(op, url, data=data,
                                      retry_on_error=False,
                                      retry_after_authn=retry_after_authn,
                                      retry_count=0)
        except vnc_exc.ServiceUnavailableError as exc:
            metrics.CONTRAIL_REQUESTS.labels(method, '503').inc()
            raise unavailable('service unavailable (%s)' % exc)
        except requests.exceptions.RequestException as exc:
            metrics.CONTRAIL_REQUESTS.labels(method, 'none').inc()
            raise unavailable('%s at %s' % (type(exc).__name__,
                                            self._web_host))
        except Exception as exc:
            metrics.CONTRAIL_REQUESTS.labels(
                method, metrics.contrail_status(exc)).inc()
            raise
        metrics.CONTRAIL_REQUESTS.labels(method, '200').inc()
        return result


class ClientPool:
    """vnc_api clients are not thread-safe: each call borrows its own."""

    def __init__(self, factory):
        self._factory = factory
        self._free = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def client(self, deadline):
        with self._lock:
            client = self._free.pop() if self._free else None
        if client is None:
            client = self._factory(deadline)
        client.deadline = deadline
        try:
            yield client
        except exception.BackendUnavailable:
            # Its session may hold a dead connection: let it go.
            raise
        except BaseException:
            self._give_back(client)
            raise
        self._give_back(client)

    def _give_back(self, client):
        client.deadline = None
        with self._lock:
            self._free.append(client)


class Client:
    """Borrows a bounded client for one step of a Docker call."""

    def __init__(self, opts):
        self.opts = opts
        self.keystone = None
        if opts.auth_type == 'keystone':
            self.keystone = keystone.KeystoneAuth(opts)
        self.pool = ClientPool(self._connect)

    def _connect(self, deadline):
        opts = self.opts
        request_timeout = max(1.0, opts.timeout / 3)
        remaining = max(1, int(deadline - time.monotonic()))
        where = '%s:%s' % (','.join(opts.api_server), opts.api_port)
        auth = {'auth_type': 'noauth'}
        if self.keystone is not None:
            # vnc_api's own token request is replaced (see keystone.py):
            # it gets no password, and a token path so it does not probe
            # Keystone by itself.
            auth = {'auth_type': 'keystone', 'username': opts.admin_user,
                    'password': '-', 'tenant_name': opts.admin_tenant,
                    'auth_url': keystone.TOKEN_PATH}
        try:
            client = BoundedVncApi(
                api_server_host=list(opts.api_server),
                api_server_port=str(opts.api_port),
                api_server_use_ssl=opts.use_ssl, apicafile=opts.cafile,
                apiinsecure=opts.insecure,
                timeout=min(remaining, int(request_timeout)),
                connection_timeout=2, deadline=deadline,
                request_timeout=request_timeout, keystone=self.keystone,
                **auth)
        except exception.OpenContrailNetError:
            raise
        except vnc_exc.AuthFailed:
            raise self._refused()
        except (requests.exceptions.RequestException,
                vnc_exc.VncError) as exc:
            raise unavailable('cannot connect to %s: %s' % (
                where, type(exc).__name__))
        if getattr(client, '_srv_root_url', None) is None:
            raise unavailable('no homepage from %s' % where)
        LOG.info('Connected to the Contrail API at %s', where)
        return client

    def _refused(self):
        if self.keystone is None:
            return unavailable('it asks for authentication: set [contrail] '
                               'auth_type = keystone')
        return unavailable('it refused a fresh Keystone token of user %s '
                           'from %s' % (self.keystone.user,
                                        self.keystone.url))

    @contextlib.contextmanager
    def api(self, budget=1.0):
        """A client for one step of a Docker call, Contrail errors mapped.

        ``budget`` is the share of the timeout this step may use; undo
        steps get what is left after the main path.
        """
        deadline = time.monotonic() + self.opts.timeout * budget
        with self.pool.client(deadline) as client:
            try:
                yield client
            except vnc_exc.PermissionDenied as exc:
                raise exception.BackendError(
                    reason='permission denied: %s' % exc)
            except vnc_exc.AuthFailed:
                raise self._refused()
            except vnc_exc.TimeOutError as exc:
                raise unavailable(str(exc))
            except vnc_exc.NoIdError as exc:
                raise exception.NotFound(kind='Contrail object', id=exc)
            except vnc_exc.RefsExistError as exc:
                raise exception.Conflict(reason='Contrail: %s' % exc)
            except vnc_exc.BadRequest as exc:
                raise exception.InvalidRequest(
                    reason='Contrail refused it: %s' % exc.content)
            except vnc_exc.HttpError as exc:
                raise exception.BackendError(
                    reason='Contrail API answered %s: %s' % (
                        exc.status_code, exc.content))


def ignore_missing(func, uuid):
    """Delete ``uuid`` with ``func``; gone already is fine."""
    try:
        func(id=uuid)
    except vnc_exc.NoIdError:
        return False
    return True
