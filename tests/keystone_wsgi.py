"""Serve a real Keystone on loopback, for tests: run by Keystone's python.

Usage: python -I keystone_wsgi.py KEYSTONE_CONF

Binds 127.0.0.1 on a free port, prints "PORT <n>" once it listens, and
serves Keystone's public WSGI application until killed or until its
standard input closes (the test run that started it is gone). Not imported
by the tests (Keystone has a virtualenv of its own).
"""

import os
import socketserver
import sys
import threading
from wsgiref import simple_server


class QuietHandler(simple_server.WSGIRequestHandler):
    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    os.environ['OS_KEYSTONE_CONFIG_FILES'] = os.path.abspath(sys.argv[1])
    # Keystone parses the command line itself.
    del sys.argv[1:]
    from keystone.server import wsgi
    app = wsgi.initialize_public_application()
    server = simple_server.make_server('127.0.0.1', 0, app,
                                       server_class=Server,
                                       handler_class=QuietHandler)
    print('PORT %d' % server.server_port, flush=True)
    threading.Thread(target=exit_with_parent, daemon=True).start()
    server.serve_forever()


def exit_with_parent():
    sys.stdin.read()
    os._exit(0)


if __name__ == '__main__':
    main()
