"""Counting and fault injection in front of any Contrail config API.

An HTTP proxy on loopback that forwards every request, unchanged, to an
upstream API server (the in-process fake or a real Tungsten Fabric
server) and keeps the test controls that make a request budget or a
fault at every request measurable against either:

* ``requests``: (method, path) of every request received, path without
  query; ``reset_requests()``, ``count(method, path)``; ``answered()``:
  the bytes of each answer's body, in the same order;
* ``fail_request(k, kind)``: the k-th request from now (1-based) fails
  before it reaches the upstream, so it has no effect: '500', '503'
  (error answers), 'timeout' (held without an answer for
  ``timeout_hold`` seconds, then closed), 'drop' (the connection closed
  without an answer); ``fail_all(kind)``: every request from now on, so;
  ``clear_faults()`` ends both;
* ``delay``: seconds each request waits before it is forwarded (a slow
  server);
* ``set_down(True)``: connections refused and open ones cut, as a dead
  API server's; ``set_down(False)``: back on the same port.

The client's ``Host`` header goes upstream as it came, so the links of
the server's homepage (which ``vnc_api`` learns every URL from) name the
proxy, not the server behind it.

A request whose target is a whole URL (what a client sends the proxy of
its ``http_proxy``) goes upstream with the path alone, as a forward
proxy sends it on: the same proxy serves as a driver's ``http_proxy``.
"""

import http.client
import socket
import threading
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

from opencontrail_net.backends.contrail import transport
from tests.fakes import httpfake

FAULT_KINDS = ('500', '503', 'timeout', 'drop')
# Hop-by-hop headers (RFC 9110 7.6.1): never forwarded.
_HOP = frozenset(('connection', 'keep-alive', 'proxy-connection',
                  'transfer-encoding', 'te', 'trailer', 'upgrade'))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.fake.handle(self)

    do_POST = do_PUT = do_DELETE = do_GET

    def read_body(self):
        length = int(self.headers.get('Content-Length') or 0)
        return self.rfile.read(length) if length else b''

    def answer(self, status, data, headers=()):
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in _HOP and name.lower() != 'content-length':
                self.send_header(name, value)
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def drop(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class ApiProxy(httpfake.ServedFake):
    """A counting, fault-injecting proxy to ``upstream_host:upstream_port``."""

    handler = _Handler
    thread_name = 'contrail-api-proxy'

    def __init__(self, upstream_host, upstream_port, timeout_hold=30.0,
                 host='127.0.0.1', port=0):
        super().__init__(host, port)
        self.upstream = (upstream_host, int(upstream_port))
        self.timeout_hold = timeout_hold
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._requests = []
        self._request_ids = []
        self._answered = []
        self._seq = 0
        self._faults = {}
        self._fail_all = None
        self.delay = 0.0
        self._local = threading.local()

    def start(self):
        self._release.clear()
        self._listen()
        return self

    def stop(self):
        """Stop serving; requests held by a 'timeout' fault are closed."""
        self._release.set()
        self._unlisten()

    # -- controls ------------------------------------------------------

    @property
    def requests(self):
        with self._lock:
            return list(self._requests)

    def reset_requests(self):
        with self._lock:
            self._requests = []
            self._request_ids = []
            self._answered = []

    def request_ids(self):
        """The X-Request-Id header of each request, in order (None where
        there was none)."""
        with self._lock:
            return list(self._request_ids)

    def answered(self):
        """The size (bytes) of each answer's body, in order (0 where none
        came)."""
        with self._lock:
            return list(self._answered)

    def count(self, method=None, path=None):
        with self._lock:
            return len([1 for m, p in self._requests
                        if (method is None or m == method.upper()) and
                        (path is None or p == path)])

    def fail_request(self, k, kind):
        if kind not in FAULT_KINDS:
            raise ValueError('kind must be one of %s' % (FAULT_KINDS,))
        if int(k) < 1:
            raise ValueError('k is 1-based')
        with self._lock:
            self._faults[self._seq + int(k)] = kind

    def fail_all(self, kind):
        if kind not in FAULT_KINDS:
            raise ValueError('kind must be one of %s' % (FAULT_KINDS,))
        with self._lock:
            self._fail_all = kind

    def clear_faults(self):
        with self._lock:
            self._faults.clear()
            self._fail_all = None

    # -- forwarding ----------------------------------------------------

    def _conn(self):
        conn = getattr(self._local, 'conn', None)
        if conn is None:
            conn = http.client.HTTPConnection(*self.upstream, timeout=120)
            self._local.conn = conn
        return conn

    def _forward(self, handler, body):
        headers = {k: v for k, v in handler.headers.items()
                   if k.lower() not in _HOP}
        for attempt in (1, 2):
            conn = self._conn()
            try:
                conn.request(handler.command, handler.path, body=body,
                             headers=headers)
                # The server writes an answer's headers and body apart,
                # with Nagle's algorithm on: acknowledge the headers at
                # once, or the body waits 40 ms for it (as the driver's
                # transport does).
                transport.acknowledge_now(conn.sock)
                res = conn.getresponse()
                return res.status, res.read(), res.getheaders()
            except (http.client.HTTPException, OSError):
                # A kept-alive connection the server closed: once more on
                # a new one.
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise

    def handle(self, handler):
        if handler.path.startswith(('http://', 'https://')):
            target = urlsplit(handler.path)
            handler.path = target.path + (
                '?' + target.query if target.query else '')
        path = handler.path.split('?', 1)[0].rstrip('/') or '/'
        body = handler.read_body()
        with self._lock:
            self._seq += 1
            self._requests.append((handler.command, path))
            self._request_ids.append(handler.headers.get('X-Request-Id'))
            self._answered.append(0)
            index = len(self._answered) - 1
            fault = self._faults.pop(self._seq, None) or self._fail_all
            delay = self.delay
        if fault == 'drop':
            handler.drop()
            return
        if fault == 'timeout':
            self._release.wait(self.timeout_hold)
            handler.drop()
            return
        if fault in ('500', '503'):
            handler.answer(int(fault), ('Injected fault %s' % fault).encode(),
                           [('Content-Type', 'text/html; charset=UTF-8')])
            return
        if delay and self._release.wait(delay):
            handler.drop()
            return
        try:
            status, data, headers = self._forward(handler, body)
        except (http.client.HTTPException, OSError):
            handler.drop()
            return
        with self._lock:
            if index < len(self._answered):
                self._answered[index] = len(data)
        handler.answer(status, data, headers)
