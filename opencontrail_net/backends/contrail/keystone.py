"""Keystone v3 tokens for the Contrail API, bounded like every request.

vnc_api's own Keystone code falls short for a daemon: its token request
has no timeout, it names one domain (Contrail's) as both the user's and
the project's Keystone domain, it builds the JSON body by string
formatting, and every failure is a bare ``RuntimeError``. keystoneauth1
(the library OpenStack services use) does the token request here; vnc_api
keeps its part: the header it sends and one retry after a 401.

A token is renewed at a random point between 75 % and 90 % of its life
(:data:`RENEW_SHARE`), not at its end: hosts that got their tokens
together renew them apart.
"""

import datetime
import os
import threading
import time

from keystoneauth1 import exceptions as ks_exc
from keystoneauth1.identity import v3
from keystoneauth1 import session as ks_session
from oslo_log import log as logging

from opencontrail_net import exception
from opencontrail_net import jitter

LOG = logging.getLogger(__name__)

TOKEN_PATH = '/auth/tokens'
# The share of a token's life left when it is renewed, drawn per token.
RENEW_SHARE = (0.10, 0.25)


def identity_url(opts):
    """Keystone's v3 identity URL from the ``[contrail]`` options.

    ``auth_url`` may be a whole URL, or a path (the former default
    ``/v3/auth/tokens``, vnc_api's token path) joined to
    ``auth_protocol://auth_host:auth_port``; unset means ``/v3`` there.
    """
    url = (opts.auth_url or '/v3').strip()
    if '://' not in url:
        host = opts.auth_host
        if ':' in host and not host.startswith('['):
            host = '[%s]' % host
        url = '%s://%s:%s/%s' % (opts.auth_protocol, host, opts.auth_port,
                                 url.lstrip('/'))
    url = url.rstrip('/')
    if url.endswith(TOKEN_PATH):
        url = url[:-len(TOKEN_PATH)]
    if '/v2.0' in url:
        raise exception.InvalidConfig(
            option='[contrail] auth_url', value=opts.auth_url,
            reason='Keystone v2.0 is gone: give the v3 URL')
    return url


def password(opts):
    """admin_password, or the first line of admin_password_file.

    The file must belong to root (or to the driver's own user) and be
    readable by its owner only: a password others can read is refused.
    """
    path = opts.admin_password_file
    if not path:
        return opts.admin_password
    if opts.admin_password:
        raise exception.InvalidConfig(
            option='[contrail] admin_password_file', value=path,
            reason='admin_password (or -p) is set too: give one of them')
    try:
        st = os.stat(path)
        with open(path) as f:
            secret = f.readline().rstrip('\r\n')
    except OSError as exc:
        raise exception.InvalidConfig(
            option='[contrail] admin_password_file', value=path,
            reason=exc.strerror or str(exc))
    if st.st_uid not in (0, os.geteuid()) or st.st_mode & 0o077:
        raise exception.InvalidConfig(
            option='[contrail] admin_password_file', value=path,
            reason='mode %o, owner uid %d: it must be readable by its '
            'owner (root) only (chmod 600)' % (st.st_mode & 0o777,
                                               st.st_uid))
    if not secret:
        raise exception.InvalidConfig(
            option='[contrail] admin_password_file', value=path,
            reason='its first line is empty')
    return secret


class KeystoneAuth:
    """One token for every client of the pool, renewed when refused.

    Thread-safe: the clients of concurrent Docker calls share it.
    """

    def __init__(self, opts):
        self.url = identity_url(opts)
        self.user = opts.admin_user
        self._plugin = v3.Password(
            auth_url=self.url, username=opts.admin_user,
            password=password(opts), project_name=opts.admin_tenant,
            user_domain_name=opts.user_domain_name,
            project_domain_name=opts.project_domain_name)
        if opts.auth_insecure:
            verify = False
        else:
            verify = opts.auth_cafile or True
        cert = None
        if opts.auth_certfile:
            cert = ((opts.auth_certfile, opts.auth_keyfile)
                    if opts.auth_keyfile else opts.auth_certfile)
        self._session = ks_session.Session(verify=verify, cert=cert)
        self._lock = threading.Lock()
        self._last = None
        # When (UTC) the token in hand is renewed.
        self._renew_at = None

    def _unavailable(self, why):
        return exception.BackendUnavailable(
            reason='Keystone at %s: %s' % (self.url, why))

    def token(self, deadline, request_timeout, stale=None):
        """A valid token; ``stale`` is one the API refused: not that one.

        Waits until ``deadline`` (``time.monotonic()``) at most, each
        request to Keystone ``request_timeout`` seconds at most.
        """
        remaining = deadline - time.monotonic()
        if remaining <= 0.05 or not self._lock.acquire(timeout=remaining):
            raise self._unavailable('no token in time')
        try:
            if stale is not None and self._plugin.auth_ref is not None \
                    and self._plugin.auth_ref.auth_token == stale:
                LOG.info('The Contrail API refused the Keystone token of '
                         'user %s: asking Keystone for a new one', self.user)
                self._plugin.invalidate()
            elif self._renew_at is not None and _utcnow() >= self._renew_at:
                self._plugin.invalidate()
            remaining = deadline - time.monotonic()
            if remaining <= 0.05:
                raise self._unavailable('no token in time')
            self._session.timeout = min(request_timeout, remaining)
            return self._fetch()
        finally:
            self._lock.release()

    def _fetch(self):
        try:
            token = self._plugin.get_token(self._session)
        except ks_exc.Unauthorized:
            raise exception.BackendError(
                reason='Keystone at %s refused the credentials of user %s '
                       '(project %s)' % (self.url, self.user,
                                         self._plugin.project_name))
        except ks_exc.ConnectTimeout:
            raise self._unavailable('no answer in time')
        except ks_exc.ConnectFailure as exc:
            raise self._unavailable('cannot connect (%s)' %
                                    type(exc).__name__)
        except ks_exc.HttpError as exc:
            raise self._unavailable('answered %s %s' % (
                exc.http_status, exc.message))
        except ks_exc.ClientException as exc:
            raise self._unavailable(type(exc).__name__)
        if token != self._last:
            self._last = token
            self._renew_at = renewal(self._plugin.auth_ref)
            LOG.info('Keystone at %s gave user %s a token', self.url,
                     self.user)
        return token


def _utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def renewal(auth_ref, rng=None):
    """When (UTC) to renew the token of ``auth_ref``: a random point
    between 75 % and 90 % of its life; None if it does not say."""
    try:
        expires, issued = auth_ref.expires, auth_ref.issued
    except Exception:
        return None
    if expires is None or issued is None:
        return None
    life = (expires - issued).total_seconds()
    if life <= 0:
        return None
    share = (jitter.share(*RENEW_SHARE) if rng is None
             else jitter.share(*RENEW_SHARE, rng=rng))
    return expires - datetime.timedelta(seconds=life * share)
