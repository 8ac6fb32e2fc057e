"""Plain-HTTP requests to the Contrail API, sent by libcurl (pycurl).

vnc_api sends each request through a requests session: requests,
urllib3 and http.client (which parses every response's headers with the
email package) cost a driver about 0.6 ms of CPU per request when it is
busy, and several times that when the request comes after a pause, as
most of a host's do. :class:`CurlTransport` answers a session's
``request`` with the same arguments and a :class:`requests.Response`,
on a libcurl handle that keeps its connection alive; failures are
requests' own exceptions, so vnc_api (it tries the next server on a
``ConnectionError``) and the driver read them as before.

It serves ``http://`` URLs with no proxy only; TLS and proxies stay with
requests (:func:`sender` chooses).

When a kept-alive connection closes before any answer, libcurl sends the
request once more on a fresh connection (the server may have closed it
as idle just then); vnc_api sends a request that failed so once more.

The Contrail API server (gevent's WSGI server) sends an answer with a
body in two writes, its headers and then its body, with Nagle's
algorithm on: the body leaves only once the client has acknowledged the
headers, and Linux delays that acknowledgement by 40 ms on a connection
that has carried a request and an answer before. Every answer with a
body on a kept-alive connection (a create, an update, a read) took 42
to 45 ms instead of 1 to 2. When an answer's status line arrives, the
transport asks the kernel to acknowledge at once (``TCP_QUICKACK``, on
each of the handle's connections; it has to be asked again after every
request the connection sends). Over TLS and through a proxy,
:func:`quick_acks` has the requests session's connections ask the same
once each request is sent.
"""

import io
import os
import socket

import pycurl
import requests
from requests import structures
from requests import utils as requests_utils
from urllib3 import connection as urllib3_connection
from urllib3 import connectionpool
from urllib3 import poolmanager

# What a failed transfer is, in requests' terms: the rest are a
# ConnectionError (refused, reset, no route, nothing answered).
_TIMED_OUT = pycurl.E_OPERATION_TIMEDOUT
# Linux only; elsewhere the answers wait as they did.
_QUICKACK = getattr(socket, 'TCP_QUICKACK', None)


def sender(session, tls, proxies):
    """What sends the requests of vnc_api's ``session``: libcurl for plain
    HTTP with no proxy, else the session itself, its answers acknowledged
    at once too (``tls``: the driver's TLS settings or None; ``proxies``:
    those of the environment for the API server, read once)."""
    if tls is None and not proxies:
        return CurlTransport(session.headers['User-Agent']).request
    quick_acks(session)
    return session.request


def acknowledge_now(sock):
    """Ask the kernel to acknowledge what ``sock`` receives at once: the
    headers of the answer to the request just sent."""
    if _QUICKACK is None:
        return
    try:
        sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
    except (AttributeError, OSError):
        pass  # not a TCP socket of its own (TLS inside a TLS proxy)


class _QuickAck:
    def getresponse(self):
        # Called once the request is sent.
        acknowledge_now(self.sock)
        return super().getresponse()


class _QuickHTTPConnection(_QuickAck, urllib3_connection.HTTPConnection):
    pass


class _QuickHTTPSConnection(_QuickAck, urllib3_connection.HTTPSConnection):
    pass


class _QuickHTTPPool(connectionpool.HTTPConnectionPool):
    ConnectionCls = _QuickHTTPConnection


class _QuickHTTPSPool(connectionpool.HTTPSConnectionPool):
    ConnectionCls = _QuickHTTPSConnection


_QUICK_POOLS = {'http': _QuickHTTPPool, 'https': _QuickHTTPSPool}


def _quick_pools(manager):
    # Only a manager with urllib3's own pools (not a SOCKS proxy's).
    if manager.pool_classes_by_scheme is poolmanager.pool_classes_by_scheme:
        manager.pool_classes_by_scheme = _QUICK_POOLS
    return manager


def quick_acks(session):
    """Make the connections of a requests ``session`` (its adapters' and
    their proxies') acknowledge each answer's headers at once, as
    :class:`CurlTransport` does."""
    for adapter in set(session.adapters.values()):
        _quick_pools(adapter.poolmanager)
        make = adapter.proxy_manager_for

        def proxy_manager_for(proxy, _make=make, **kwargs):
            return _quick_pools(_make(proxy, **kwargs))
        adapter.proxy_manager_for = proxy_manager_for


class CurlTransport:
    """``requests.Session.request`` for one session, over one handle.

    Not thread-safe, like the vnc_api client it serves (each Docker call
    borrows a client of its own).
    """

    def __init__(self, user_agent):
        self.user_agent = user_agent
        self._curl = pycurl.Curl()
        # libcurl's own file descriptors of this handle's connections,
        # from when it makes each socket until it closes it.
        self._sockets = set()

    def request(self, method, url, params=None, data=None, headers=None,
                timeout=None, json=None, **ignored):
        # ``ignored``: allow_redirects (the API server does not
        # redirect), and verify and cert, which plain HTTP has no use for.
        if json is not None:
            raise ValueError('CurlTransport sends data, not json')
        if params:
            url = requests.Request('GET', url, params=params).prepare().url
        curl = self._curl
        curl.reset()
        head = []
        body = io.BytesIO()

        def header(line):
            if line.startswith(b'HTTP/'):
                self._acknowledge_now()
            head.append(line)
        curl.setopt(pycurl.URL, url)
        curl.setopt(pycurl.NOSIGNAL, 1)
        # The environment's proxy variables were read by the session: none
        # applies, or this transport would not be used.
        curl.setopt(pycurl.PROXY, '')
        curl.setopt(pycurl.USERAGENT, self.user_agent)
        curl.setopt(pycurl.HEADERFUNCTION, header)
        curl.setopt(pycurl.SOCKOPTFUNCTION, self._opened)
        curl.setopt(pycurl.CLOSESOCKETFUNCTION, self._closed)
        curl.setopt(pycurl.WRITEDATA, body)
        if method == 'GET':
            curl.setopt(pycurl.HTTPGET, 1)
        else:
            curl.setopt(pycurl.CUSTOMREQUEST, method)
            if data is not None:
                curl.setopt(pycurl.POSTFIELDS, data.encode('utf-8')
                            if isinstance(data, str) else data)
        # No "Expect: 100-continue" on a large body: the server never
        # answers it, and libcurl would wait a second for it.
        curl.setopt(pycurl.HTTPHEADER, [
            '%s: %s' % item for item in (headers or {}).items()
        ] + ['Expect:'])
        if timeout is not None:
            connect, read = (timeout if isinstance(timeout, tuple)
                             else (timeout, timeout))
            # libcurl bounds the whole request, connect included: by the
            # read timeout, which the driver sets to what is left of the
            # Docker call's time (requests would wait for the connect,
            # then as long again for the answer).
            curl.setopt(pycurl.CONNECTTIMEOUT_MS, int(min(connect, read)
                                                      * 1000))
            curl.setopt(pycurl.TIMEOUT_MS, int(read * 1000))
        try:
            curl.perform()
        except pycurl.error as exc:
            raise self._failure(exc, method, url) from None
        return self._response(curl.getinfo(pycurl.RESPONSE_CODE), head,
                              body.getvalue(), url)

    def _opened(self, fd, purpose):
        self._sockets.add(fd)
        return pycurl.SOCKOPT_OK

    def _closed(self, fd):
        self._sockets.discard(fd)
        try:
            os.close(fd)
        except OSError:
            return 1
        return 0

    def _acknowledge_now(self):
        """Acknowledge what the connections have received, and what they
        receive next, at once (not 40 ms later)."""
        if _QUICKACK is None:
            return
        for fd in self._sockets:
            try:
                # A view of libcurl's socket: detached, never closed here.
                sock = socket.socket(fileno=fd)
            except OSError:
                continue
            try:
                acknowledge_now(sock)
            finally:
                sock.detach()

    def _failure(self, exc, method, url):
        code, message = exc.args[0], exc.args[1]
        text = '%s %s: %s' % (method, url, message)
        if code == _TIMED_OUT:
            # Sent (a reused connection has no connect time of its own):
            # the server took too long to answer.
            if self._curl.getinfo(pycurl.REQUEST_SIZE) > 0:
                return requests.exceptions.ReadTimeout(text)
            return requests.exceptions.ConnectTimeout(text)
        return requests.exceptions.ConnectionError(text)

    @staticmethod
    def _response(status, head, content, url):
        response = requests.Response()
        response.status_code = status
        fields = structures.CaseInsensitiveDict()
        for raw in head:
            line = raw.decode('iso-8859-1').rstrip('\r\n')
            name, colon, value = line.partition(':')
            if line.startswith('HTTP/'):
                # A status line: the last one's headers are the answer's.
                fields = structures.CaseInsensitiveDict()
                parts = line.split(' ', 2)
                response.reason = parts[2] if len(parts) > 2 else ''
            elif colon:
                fields[name.strip()] = value.strip()
        response.headers = fields
        response.encoding = requests_utils.get_encoding_from_headers(fields)
        response._content = content
        response.url = url
        return response

    def close(self):
        self._curl.close()
