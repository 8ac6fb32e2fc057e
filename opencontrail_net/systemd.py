"""Readiness for systemd (``Type=notify``): the sd_notify protocol.

One datagram to the socket systemd names in ``$NOTIFY_SOCKET``; a name
starting with ``@`` is in the abstract namespace. Written here rather
than taken from oslo.service, whose systemd helper is the same few lines
but whose package brings eventlet and a service framework this driver
does not use.
"""

import os
import socket

from oslo_log import log as logging

LOG = logging.getLogger(__name__)


_UNSET = object()
_socket = _UNSET


def notify(state):
    """Send ``state`` (e.g. ``READY=1``) to systemd; False if not under it.

    ``$NOTIFY_SOCKET`` is taken out of the environment at the first call,
    so that no child process speaks for the driver.
    """
    global _socket
    if _socket is _UNSET:
        _socket = os.environ.pop('NOTIFY_SOCKET', None)
    path = _socket
    if not path:
        return False
    if path.startswith('@'):
        path = '\0' + path[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(path)
            sock.sendall(state.encode())
    except OSError as exc:
        LOG.warning('Could not notify systemd at %s: %s', _socket, exc)
        return False
    return True
