"""Transport: CherryPy serving the libnetwork calls on a Unix socket.

Knows nothing of networks: it decodes bodies, dispatches by call name and
turns every exception into Docker's error body, in this one place.
"""

import json
import os
import stat

import cherrypy
from oslo_log import log as logging

from opencontrail_net import exception

LOG = logging.getLogger(__name__)

CONTENT_TYPE = 'application/vnd.docker.plugins.v1+json'


def error_body(exc):
    """Status and body for ``exc``: both Err (network) and Error (IPAM)."""
    if isinstance(exc, exception.OpenContrailNetError):
        status, message = exc.code, exc.message
    else:
        status = 500
        message = 'internal error: %s: %s' % (type(exc).__name__, exc)
    return status, {'Err': message, 'Error': message}


class Root:
    """Every request lands in ``default``; the table picks the handler."""

    def __init__(self, calls, max_body):
        self.calls = calls
        self.max_body = max_body

    def _body(self):
        request = cherrypy.request
        length = request.headers.get('Content-Length')
        try:
            length = int(length) if length is not None else None
        except ValueError:
            raise exception.InvalidRequest(reason='bad Content-Length')
        if length is not None and length > self.max_body:
            raise exception.InvalidRequest(
                reason='body of %d bytes exceeds %d' % (length,
                                                        self.max_body))
        raw = request.body.fp.read(self.max_body + 1)
        if len(raw) > self.max_body:
            raise exception.InvalidRequest(
                reason='body exceeds %d bytes' % self.max_body)
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise exception.InvalidRequest(reason='body is not JSON: %s'
                                           % exc)
        if not isinstance(body, dict):
            raise exception.InvalidRequest(reason='body is not an object')
        return body

    @cherrypy.expose
    def default(self, *path, **params):
        call = '/'.join(path)
        response = cherrypy.response
        response.headers['Content-Type'] = CONTENT_TYPE
        failure = None
        try:
            reply = self._handle(call)
        except Exception as exc:
            failure = exc
            if not isinstance(exc, exception.OpenContrailNetError):
                LOG.exception('%s crashed', call)
        if failure is not None:
            response.status, reply = error_body(failure)
            if response.status >= 500:
                LOG.error('%s failed: %s', call, reply['Err'])
            else:
                LOG.warning('%s refused: %s', call, reply['Err'])
        return json.dumps(reply).encode()

    def _handle(self, call):
        if cherrypy.request.method != 'POST':
            raise exception.InvalidRequest(reason='only POST is served')
        handler = self.calls.get(call)
        if handler is None:
            raise exception.UnknownCall(call=call)
        body = self._body()
        LOG.debug('%s %s', call, body)
        reply = handler(body)
        LOG.debug('%s -> %s', call, reply)
        return reply


def make_app(calls, max_body):
    config = {'/': {'request.process_request_body': False,
                    'tools.encode.on': False}}
    return cherrypy.Application(Root(calls, max_body), script_name='',
                                config=config)


def _remove_stale(path):
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise exception.OpenContrailNetError(
            '%s exists and is not a socket; refusing to replace it' % path)
    LOG.info('Removing stale socket %s', path)
    os.unlink(path)


def serve(calls, socket_path, socket_mode, threads, max_body):
    """Serve ``calls`` on ``socket_path`` until SIGTERM or SIGINT."""
    os.makedirs(os.path.dirname(socket_path) or '.', exist_ok=True)
    _remove_stale(socket_path)
    cherrypy.tree.graft(make_app(calls, max_body), '')
    cherrypy.config.update({
        'server.socket_file': socket_path,
        'server.thread_pool': threads,
        # Docker fires calls in bursts; a short backlog makes connect()
        # fail with EAGAIN on a Unix socket.
        'server.socket_queue_size': 128,
        'server.max_request_body_size': max_body,
        'engine.autoreload.on': False,
        'checker.on': False,
        'log.screen': False,
        'environment': 'production',
    })
    mode = int(socket_mode, 8)

    def on_exit():
        try:
            os.unlink(socket_path)
        except FileNotFoundError:
            pass
        LOG.info('Stopped serving %s', socket_path)

    cherrypy.engine.subscribe('exit', on_exit)
    # SIGHUP would re-exec the process (CherryPy's default): not wanted
    # for a daemon Docker depends on.
    handler = cherrypy.engine.signal_handler
    handler.handlers = {'SIGTERM': cherrypy.engine.exit,
                        'SIGINT': cherrypy.engine.exit}
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
    LOG.info('Serving %s (mode %s)', socket_path, socket_mode)
    cherrypy.engine.block()
