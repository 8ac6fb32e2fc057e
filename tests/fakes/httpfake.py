"""What the fake HTTP services share: a server in a thread that can die.

A fake listens on loopback, serves each request in a thread, and can go
"down" (listening socket closed, open connections cut) and come back on the
same port, as a restarted daemon does.
"""

import http.server
import socket
import socketserver
import threading


class TrackingServer(http.server.ThreadingHTTPServer):
    """A threading HTTP server that can cut its open connections."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, handler, fake):
        self.fake = fake
        self._conns = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, handler)

    def server_bind(self):
        # No getfqdn(): no name lookups.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def process_request(self, request, client_address):
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        # Connections cut by set_down() end in socket errors: not news.
        pass

    def drop_connections(self):
        """Close kept-alive connections too, as a dying daemon would."""
        with self._conns_lock:
            conns, self._conns = list(self._conns), set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()


class ServedFake:
    """Life cycle of a fake service; subclasses set ``handler``."""

    handler = None
    thread_name = 'fake-http'

    def __init__(self, host='127.0.0.1', port=0):
        self.host = host
        self.port = port
        self._server = None
        self._thread = None

    @property
    def url(self):
        return 'http://%s:%d' % (self.host, self.port)

    def _listen(self):
        server = TrackingServer((self.host, self.port), self.handler, self)
        self.port = server.server_address[1]
        self._listening()
        thread = threading.Thread(target=server.serve_forever,
                                  kwargs={'poll_interval': 0.05},
                                  name=self.thread_name, daemon=True)
        thread.start()
        self._server, self._thread = server, thread

    def _listening(self):
        """Called once the port is known, before serving."""

    def _unlisten(self):
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.drop_connections()
        thread.join(5)

    def set_down(self, down=True):
        """Down: connections refused and open ones cut; up: same port."""
        if down:
            self._unlisten()
        elif self._server is None:
            self._listen()

    @property
    def is_down(self):
        return self._server is None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
