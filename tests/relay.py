"""A TCP relay from 127.0.0.1 of a network namespace to a server outside.

A driver the test runs in a namespace reaches the Contrail API (the fake
in this process, or a real server) on the machine's loopback through it.
"""

import socket
import threading

from opencontrail_net.backends.contrail import transport
from tests.multihost.testbed import in_netns


class Relay:
    """Listens on 127.0.0.1:``port`` of ``netns``; each connection is
    passed on to ``host``:``port_to`` of this process's namespace."""

    def __init__(self, netns, host, port_to):
        self.target = (host, port_to)
        self._sock = in_netns('/run/netns/' + netns, self._listen)
        self.port = self._sock.getsockname()[1]
        self._conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    @staticmethod
    def _listen():
        sock = socket.socket()
        sock.bind(('127.0.0.1', 0))
        sock.listen(64)
        return sock

    def _accept(self):
        while True:
            try:
                inner, _addr = self._sock.accept()
            except OSError:
                return
            try:
                outer = socket.create_connection(self.target, timeout=10)
            except OSError:
                inner.close()
                continue
            self._conns += splice(inner, outer)

    def close(self):
        self._sock.close()
        for sock in self._conns:
            sock.close()


def splice(inner, outer, nagle_inner=False):
    """Pass bytes both ways between two connected sockets, each way in a
    thread of its own, until either side closes; returns both.

    The relay adds no wait of its own: it sends what it has at once (no
    Nagle; ``nagle_inner``: Nagle on towards the client, as a server that
    the relay stands for has it), and acknowledges the server's
    (``outer``'s) answers at once, as the client it stands between does;
    an answer whose headers and body the server writes apart would
    otherwise wait 40 ms for the relay's delayed acknowledgement of the
    headers."""
    outer.settimeout(None)
    inner.settimeout(None)
    outer.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if not nagle_inner:
        inner.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for a, b in ((inner, outer), (outer, inner)):
        threading.Thread(target=_pipe, args=(a, b, b is outer),
                         daemon=True).start()
    return [inner, outer]


def _pipe(src, dst, upstream):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
            if upstream:
                transport.acknowledge_now(dst)
    except OSError:
        pass
    finally:
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
