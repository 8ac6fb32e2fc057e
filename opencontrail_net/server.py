"""Transport: CherryPy serving the libnetwork calls on a Unix socket.

Knows nothing of networks: it decodes bodies, dispatches by call name and
turns every exception into Docker's error body, in this one place.
"""

import http
import json
import os
import threading
import time

from cheroot import errors as cheroot_errors
from cheroot import server as cheroot_server
import cherrypy
from cherrypy import _cpwsgi_server
from oslo_context import context as oslo_context
from oslo_log import log as logging

from opencontrail_net import exception
from opencontrail_net import metrics
from opencontrail_net import unix_socket

LOG = logging.getLogger(__name__)

CONTENT_TYPE = 'application/vnd.docker.plugins.v1+json'

# Past max_request_body, this much more is read and dropped before the 413:
# Go's and Python's clients write the whole body before they read, and a
# reply they cannot read is no reply. A body longer still is cut off.
DRAIN_LIMIT = 16 * 1024 * 1024
_READ_SIZE = 64 * 1024
# The calls sent without a body (Docker's, and the one the driver's
# manage command sends); any other arrives empty only when Docker
# re-sends one whose first try the driver's stop cut short.
BODILESS = frozenset(('Plugin.Activate', 'NetworkDriver.GetCapabilities',
                      'IpamDriver.GetCapabilities',
                      'IpamDriver.GetDefaultAddressSpaces',
                      'OpenContrailNet.InFlight'))


def error_body(exc, request_id=None):
    """Status and body for ``exc``: both Err (network) and Error (IPAM),
    ending with the call's request ID, as OpenStack's clients show it:
    the same ID is on every log line of the call and in the
    ``X-Request-Id`` header of each request it sent the Contrail API."""
    if isinstance(exc, exception.OpenContrailNetError):
        status, message = exc.code, exc.message
    else:
        status = 500
        message = 'internal error: %s: %s' % (type(exc).__name__, exc)
    if request_id:
        message = '%s (Request-ID: %s)' % (message, request_id)
    return status, {'Err': message, 'Error': message}


class _CutOff(Exception):
    """cheroot stopped reading at its own limit, set past ours."""


def _read(fp):
    try:
        return fp.read(_READ_SIZE)
    except cheroot_errors.MaxSizeExceeded:
        raise _CutOff()
    except OSError as exc:
        # cheroot's chunked reader says so with a bare IOError.
        if type(exc) is OSError and exc.args == ('Request Entity Too Large',):
            raise _CutOff()
        raise


class App:
    """The WSGI application: every call is a POST to /<call name>.

    A plain WSGI callable behind CherryPy's server: Docker's calls need
    no more than the path and the body, and a call then costs little
    more than the socket round trip.
    """

    def __init__(self, calls, max_body):
        self.calls = calls
        self.max_body = max_body

    def __call__(self, environ, start_response):
        call = environ.get('PATH_INFO', '').strip('/')
        headers = [('Content-Type', CONTENT_TYPE)]
        status = 200
        # Unknown paths count as one: a scan must not grow the metrics.
        known = call if call in self.calls else 'unknown'
        start = time.perf_counter()
        # A request ID per call, on every log line of it (oslo.log reads
        # it from the thread's context) and sent on to the Contrail API.
        ctx = oslo_context.RequestContext(overwrite=True)
        try:
            reply = self._handle(environ, call, headers)
        except Exception as exc:
            if not isinstance(exc, exception.OpenContrailNetError):
                LOG.exception('%s crashed', call)
            metrics.CALL_ERRORS.labels(known, type(exc).__name__).inc()
            status, reply = error_body(exc, ctx.request_id)
            if status >= 500:
                LOG.error('%s failed: %s', call, reply['Err'])
            else:
                LOG.warning('%s refused: %s', call, reply['Err'])
        body = json.dumps(reply).encode()
        headers.append(('Content-Length', str(len(body))))
        metrics.CALL_SECONDS.labels(known).observe(
            time.perf_counter() - start)
        start_response('%d %s' % (status, _phrase(status)), headers)
        return [body]

    def _handle(self, environ, call, headers):
        raw = self._read_body(environ, headers)
        if environ.get('REQUEST_METHOD') != 'POST':
            raise exception.InvalidRequest(reason='only POST is served')
        handler = self.calls.get(call)
        if handler is None:
            raise exception.UnknownCall(call=call)
        if call not in BODILESS and not raw.strip():
            raise exception.EmptyRequest(call=call)
        body = self._decode(raw)
        if _debug():
            LOG.debug('%s %s', call, body)
        reply = handler(body)
        if _debug():
            LOG.debug('%s -> %s', call, reply)
        return reply

    def _read_body(self, environ, headers):
        """The raw body, read in bounded pieces, chunked or not.

        Always read in full (or the connection closed) before anything is
        answered, so that no byte of it is taken for a next request.
        """
        close = ('Connection', 'close')
        if 'HTTP_TRANSFER_ENCODING' in environ:
            # Docker never chunks, and cheroot reads chunks leniently
            # (a size of -1 ends the body): nothing after one is trusted.
            headers.append(close)
        fp = environ['wsgi.input']
        pieces, size = [], 0
        try:
            while True:
                piece = _read(fp)
                if not piece:
                    return b''.join(pieces)
                size += len(piece)
                if size > self.max_body:
                    size = self._drain(fp, size)
                    break
                pieces.append(piece)
        except _CutOff:
            size = None
        except (ValueError, OSError) as exc:
            # A broken chunked coding, a client gone quiet: the rest of
            # the stream cannot be trusted.
            if close not in headers:
                headers.append(close)
            raise exception.InvalidRequest(
                reason='body could not be read: %s' % (exc,))
        if close not in headers:
            headers.append(close)
        raise exception.BodyTooLarge(
            size=size or 'more than %d' % (self.max_body + DRAIN_LIMIT),
            limit=self.max_body)

    def _drain(self, fp, size):
        """Read and drop the rest; return the size, or None if cut off."""
        while size <= self.max_body + DRAIN_LIMIT:
            piece = _read(fp)
            if not piece:
                return size
            size += len(piece)
        return None

    @staticmethod
    def _decode(raw):
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise exception.InvalidRequest(reason='body is not JSON: %s'
                                           % exc)
        if not isinstance(body, dict):
            raise exception.InvalidRequest(reason='body is not an object')
        return body


def _phrase(status):
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return 'Error'


def _debug():
    return LOG.isEnabledFor(logging.DEBUG)


class _Request(_cpwsgi_server.CPWSGIHTTPRequest):
    """cheroot's request, answering what it refuses itself as Docker reads.

    It also closes the connection when the app's reply says so.
    """

    def simple_response(self, status, msg=''):
        status = str(status)
        if isinstance(msg, bytes):
            msg = msg.decode('latin-1')
        # A 5xx here carries a traceback: that goes to the log only.
        text = status[4:] if status[:1] == '5' or not msg else msg
        message = 'HTTP %s: %s' % (status[:3], text)
        if status[:1] != '1':
            LOG.warning('Refused before reaching the driver: %s', message)
        body = json.dumps({'Err': message, 'Error': message}).encode()
        # What follows on this connection is not known to be a request.
        self.close_connection = True
        head = ('%s %s\r\nContent-Length: %d\r\nContent-Type: %s\r\n'
                'Connection: close\r\n\r\n' % (
                    self.server.protocol, status, len(body), CONTENT_TYPE))
        try:
            self.conn.wfile.write(head.encode('latin-1') + body)
        except OSError as exc:
            if exc.args[0] not in cheroot_errors.socket_errors_to_ignore:
                raise

    def send_headers(self):
        if (b'Connection', b'close') in self.outheaders:
            self.close_connection = True
        super().send_headers()


class _Connection(cheroot_server.HTTPConnection):
    pass


class _HTTPServer(_cpwsgi_server.CPWSGIServer):
    ConnectionClass = _Connection
    _ready = False

    def __init__(self, server_adapter):
        self._listening = threading.Event()
        super().__init__(server_adapter)
        # CherryPy's own __init__ sets its request class here.
        self.ConnectionClass.RequestHandlerClass = _Request

    # CherryPy's start polls ``ready`` every 0.1 s until the server
    # listens: until it first does, a read waits for it (as long as one
    # poll would), so serving starts, and is logged, once it listens.
    @property
    def ready(self):
        if not self._listening.is_set():
            self._listening.wait(0.1)
        return self._ready

    @ready.setter
    def ready(self, value):
        self._ready = value
        if value:
            self._listening.set()


def stop():
    """Stop serving: what SIGTERM does."""
    cherrypy.engine.exit()


def make_app(calls, max_body):
    return App(calls, max_body)


def serve(calls, socket_path, socket_mode, threads, max_body,
          on_ready=None, on_stop=None, on_reload=None, on_pool=None):
    """Serve ``calls`` on ``socket_path`` until SIGTERM or SIGINT.

    ``on_ready`` is called once the socket is bound, has its mode and is
    served (in the main thread: it must not wait); ``on_stop`` when the
    engine begins to stop; ``on_reload`` at SIGHUP; ``on_pool`` with the
    server's thread pool (cheroot's ThreadPool) once serving.
    """
    os.makedirs(os.path.dirname(socket_path) or '.', exist_ok=True)
    unix_socket.remove_stale(socket_path)
    cherrypy.tree.graft(make_app(calls, max_body), '')
    cherrypy.config.update({
        'server.socket_file': socket_path,
        'server.thread_pool': threads,
        # Docker fires calls in bursts; a short backlog makes connect()
        # fail with EAGAIN on a Unix socket.
        'server.socket_queue_size': 128,
        # The app enforces max_body, reading past it to answer cleanly;
        # cheroot's limit only caps how far.
        'server.max_request_body_size': max_body + DRAIN_LIMIT,
        'engine.autoreload.on': False,
        'checker.on': False,
        'log.screen': False,
        'environment': 'production',
    })
    cherrypy.server.httpserver = _HTTPServer(cherrypy.server)
    mode = int(socket_mode, 8)

    def on_exit():
        try:
            os.unlink(socket_path)
        except FileNotFoundError:
            pass
        LOG.info('Stopped serving %s', socket_path)

    cherrypy.engine.subscribe('exit', on_exit)
    # CherryPy's block() wakes every 0.1 s to look for the end: five of
    # every six wakeups of an idle driver. The main thread sleeps until
    # the bus exits instead (a signal's handler still runs at once: the
    # wait is interruptible).
    exited = threading.Event()
    cherrypy.engine.subscribe('exit', exited.set, priority=90)
    if on_stop is not None:
        cherrypy.engine.subscribe('stop', on_stop, priority=10)
    # SIGHUP reloads, as an OpenStack service does; never CherryPy's
    # default (re-exec), nor the kernel's (the process ends, and systemd
    # counts that as a clean exit: Restart=on-failure would not restart).
    handler = cherrypy.engine.signal_handler
    handler.handlers = {'SIGTERM': cherrypy.engine.exit,
                        'SIGINT': cherrypy.engine.exit,
                        'SIGHUP': on_reload or (lambda: None)}
    handler.subscribe()
    cherrypy.log.access_log.propagate = False
    # The umask gives the socket its mode at bind time: it is never
    # briefly wider than configured, not even while Docker can connect.
    old_umask = os.umask(0o777 & ~mode)
    try:
        cherrypy.engine.start()
    finally:
        os.umask(old_umask)
    os.chmod(socket_path, mode)
    if on_pool is not None:
        on_pool(cherrypy.server.httpserver.requests)
    LOG.info('Listening on %s (mode %s)', socket_path, socket_mode)
    if on_ready is not None:
        on_ready()
    exited.wait()
    # What is left of block(): it sees the bus exited and waits for the
    # engine's threads to end.
    cherrypy.engine.block()
