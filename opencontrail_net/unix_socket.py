"""Unix sockets the driver listens on (Docker's, the metrics')."""

import errno
import os
import socket
import stat
import struct

from oslo_log import log as logging

from opencontrail_net import exception

LOG = logging.getLogger(__name__)


def serving_pid(path):
    """Whether a process serves the socket at ``path``: the pid of the
    process that answers (SO_PEERCRED), 0 when one answers but its pid is
    not known, None when none does (no socket, or a stale one)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(1)
    try:
        sock.connect(path)
    except OSError as exc:
        if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
            return None
        if exc.errno in (errno.EAGAIN, errno.ETIMEDOUT) or isinstance(
                exc, socket.timeout):
            return 0    # Listening, with its backlog full: alive.
        raise
    else:
        try:
            cred = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                   struct.calcsize('3i'))
            return struct.unpack('3i', cred)[0]
        except OSError:
            return 0
    finally:
        sock.close()


def ensure_free(path):
    """Refuse a socket another process serves: never taken over."""
    try:
        pid = serving_pid(path)
    except OSError as exc:
        raise exception.OpenContrailNetError(
            'cannot tell whether %s is in use: %s' % (path, exc))
    if pid is not None:
        raise exception.SocketInUse(
            path=path, by=' by pid %d' % pid if pid else '')


def remove_stale(path):
    """Remove a socket a process that is gone left at ``path``; a socket
    another process serves, and anything else there, is refused, never
    replaced."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise exception.OpenContrailNetError(
            '%s exists and is not a socket; refusing to replace it' % path)
    ensure_free(path)
    LOG.info('Removing stale socket %s', path)
    os.unlink(path)
