"""The Contrail API client: a pool of bounded vnc_api clients, errors mapped.

vnc_api's client is not thread-safe and, left alone, retries for about
30 s on a dead server: each Docker call borrows its own client from the
pool and every request it sends is bounded by the call's deadline, and
sent again only as :mod:`.retries` says.
"""

import contextlib
import os
import threading
import time

from oslo_context import context as oslo_context
from oslo_log import log as logging
import requests
from vnc_api import exceptions as vnc_exc
from vnc_api import vnc_api

from opencontrail_net.backends.contrail import keystone
from opencontrail_net.backends.contrail import retries
from opencontrail_net.backends.contrail import transport
from opencontrail_net import exception
from opencontrail_net import metrics

LOG = logging.getLogger(__name__)

_METHODS = {1: 'POST', 2: 'GET', 3: 'PUT', 4: 'DELETE'}


def unavailable(why):
    return exception.BackendUnavailable(reason='Contrail API: %s' % why)


def tls_settings(opts):
    """(verify, cert) for requests' sessions, or None without use_ssl.

    Files named are checked now: a missing or unreadable one is a
    configuration error, not a failed request later.
    """
    if not opts.use_ssl:
        return None
    for name in ('cafile', 'certfile', 'keyfile'):
        path = getattr(opts, name)
        if path and not os.access(path, os.R_OK):
            raise exception.InvalidConfig(
                option='[contrail] %s' % name, value=path,
                reason='it cannot be read')
    if opts.keyfile and not opts.certfile:
        raise exception.InvalidConfig(
            option='[contrail] keyfile', value=opts.keyfile,
            reason='it is set without certfile')
    verify = False if opts.insecure else (opts.cafile or True)
    cert = None
    if opts.certfile:
        cert = ((opts.certfile, opts.keyfile) if opts.keyfile
                else opts.certfile)
    return verify, cert


def tls_reason(exc, opts):
    """What a failed TLS handshake means, in an operator's words."""
    text = str(exc)
    if 'CERTIFICATE_VERIFY_FAILED' in text or 'certificate verify' in text:
        return ('TLS: the API server\'s certificate is not trusted (%s): '
                '%s' % ('[contrail] cafile %s' % opts.cafile if opts.cafile
                        else 'the system\'s CAs; set [contrail] cafile',
                        _ssl_detail(text)))
    # A server that wants a client certificate ends the handshake with an
    # alert (TLS 1.2) or, once it has read what came (TLS 1.3), closes.
    if any(word in text for word in (
            'certificate required', 'CERTIFICATE_REQUIRED',
            'handshake failure', 'unknown ca', 'bad certificate',
            'EOF occurred in violation of protocol')):
        return ('TLS: the API server refused this client\'s certificate '
                '(%s): %s' % (
                    '[contrail] certfile %s' % opts.certfile
                    if opts.certfile else 'none sent: set [contrail] '
                    'certfile and keyfile', _ssl_detail(text)))
    return 'TLS: %s' % _ssl_detail(text)


def _ssl_detail(text):
    """The SSL library's own words out of requests' nested message."""
    for marker in ('SSLError(', 'SSLCertVerificationError('):
        if marker in text:
            text = text[text.rindex(marker) + len(marker):]
    return text.strip("()'\" ")[:300]


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
    tls = None
    opts = None

    def __init__(self, *args, deadline=None, request_timeout=None,
                 keystone=None, tls=None, opts=None, **kwargs):
        # Set before the constructor's own first request (GET /).
        self.deadline = deadline
        if request_timeout is not None:
            self.request_timeout = request_timeout
        self.keystone = keystone
        self.tls = tls
        self.opts = opts
        # vnc_api's session swallows the cause of a failed connection
        # (it raises a bare ConnectionError): kept here; and what the
        # server said with a 502 or 503, which vnc_api drops.
        self.last_error = None
        self.last_refusal = None
        super().__init__(*args, **kwargs)

    def _create_api_server_session(self):
        """vnc_api's sessions, verified by the driver: vnc_api is given
        no certificate file (it would copy them into a bundle under
        /tmp), and each request gets ``verify`` and ``cert``."""
        super()._create_api_server_session()
        for host, session in \
                self._api_server_session.api_server_sessions.items():
            # What requests would read from the environment on every
            # request (proxy variables, REQUESTS_CA_BUNDLE), read once
            # here: the environment of a running driver does not change,
            # and reading it (and ~/.netrc) was a sixth of the driver's
            # CPU per container start.
            env = session.merge_environment_settings(
                '%s://%s:%s' % (self._api_connect_protocol, host,
                                self._web_port), {}, None, None, None)
            session.proxies.update(env['proxies'])
            session.trust_env = False
            session.request = self._keeping_errors(
                transport.sender(session, self.tls, env['proxies']))
            if self.tls is not None:
                verify, cert = self.tls
                # The environment's CA bundle where no cafile is set.
                self._tls_kwargs = {'cert': cert, 'verify': (
                    env['verify'] if verify is True else verify)}

    def _keeping_errors(self, request):
        def keep(*args, **kwargs):
            ctx = oslo_context.get_current()
            if ctx is not None and ctx.request_id:
                # The Docker call's ID, for the API server's log.
                kwargs['headers'] = dict(kwargs.get('headers') or {},
                                         **{'X-Request-Id': ctx.request_id})
            if self.tls is not None:
                # Per request: vnc_api passes a verify of its own with
                # each request, which would win over the session's.
                kwargs.update(self._tls_kwargs)
            try:
                response = request(*args, **kwargs)
            except requests.exceptions.RequestException as exc:
                self.last_error = exc
                raise
            if response.status_code in (502, 503):
                self.last_refusal = '%s %s: %s' % (
                    response.status_code, response.reason,
                    ' '.join(response.text.split())[:200])
            return response
        return keep

    def failure(self, exc):
        """Why a request (or the connection) failed, for the operator."""
        cause = self.last_error or exc
        if isinstance(cause, requests.exceptions.SSLError) and self.opts:
            return tls_reason(cause, self.opts)
        return '%s at %s' % (type(cause).__name__, self._web_host)

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
        retried = retries.retrying(self.deadline)
        try:
            return retried(self._request_once, op, url, data,
                           retry_after_authn)
        except vnc_exc.ServiceUnavailableError:
            raise unavailable(retries.refusal(retried, self.last_refusal))

    def _request_once(self, op, url, data, retry_after_authn):
        if self.keystone is not None and \
                'X-AUTH-TOKEN' not in self._headers:
            # Spares the 401 every first request would get.
            self._headers = self._authenticate(headers=self._headers)
        session = self._api_server_session
        if self.deadline is not None:
            remaining = self.deadline - time.monotonic()
            if remaining <= retries.LEAST:
                raise unavailable('no answer in time')
            session.timeout = min(self.request_timeout, remaining)
            session.connection_timeout = min(2.0, remaining)
        method = _METHODS.get(op, str(op))
        self.last_error = None
        self.last_refusal = None
        try:
            result = super()._request(op, url, data=data,
                                      retry_on_error=False,
                                      retry_after_authn=retry_after_authn,
                                      retry_count=0)
        except vnc_exc.ServiceUnavailableError:
            metrics.CONTRAIL_REQUESTS.labels(method, '503').inc()
            raise
        except requests.exceptions.RequestException as exc:
            metrics.CONTRAIL_REQUESTS.labels(method, 'none').inc()
            raise unavailable(self.failure(exc))
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
        self.tls = tls_settings(opts)
        if self.tls is not None and self.tls[0] is False:
            LOG.warning('[contrail] insecure: the API server\'s certificate '
                        'is not verified; anyone on the path can read the '
                        'token and change what the driver makes')
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
            # conf_file: vnc_api would read /etc/contrail/vnc_api_lib.ini
            # and, with its cafile, write a bundle under /tmp. TLS is the
            # driver's own (BoundedVncApi._create_api_server_session).
            client = BoundedVncApi(
                api_server_host=list(opts.api_server),
                api_server_port=str(opts.api_port),
                api_server_use_ssl=opts.use_ssl, apicafile=None,
                apiinsecure=False, conf_file=os.devnull,
                timeout=min(remaining, int(request_timeout)),
                connection_timeout=2, deadline=deadline,
                request_timeout=request_timeout, keystone=self.keystone,
                tls=self.tls, opts=opts, **auth)
        except exception.OpenContrailNetError:
            raise
        except vnc_exc.AuthFailed:
            raise self._refused()
        except (requests.exceptions.RequestException,
                vnc_exc.VncError) as exc:
            # (Its first request, the homepage, fails in _request, with
            # the reason: this is what vnc_api raises by itself.)
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
