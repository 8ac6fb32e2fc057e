"""Unix sockets the driver listens on (Docker's, the metrics')."""

import os
import stat

from oslo_log import log as logging

from opencontrail_net import exception

LOG = logging.getLogger(__name__)


def remove_stale(path):
    """Remove a socket a process that is gone left at ``path``; anything
    else there is refused, never replaced."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise exception.OpenContrailNetError(
            '%s exists and is not a socket; refusing to replace it' % path)
    LOG.info('Removing stale socket %s', path)
    os.unlink(path)
