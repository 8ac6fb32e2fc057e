"""Kernel parameters under /proc/sys, written only where they differ.

A managed plugin sees /proc/sys read-only, and on a host with the usual
defaults nothing needs writing: a value already there is left alone.
"""

from oslo_log import log as logging

LOG = logging.getLogger(__name__)


def write(path, value):
    """Write ``value`` to ``path`` unless it holds it already; whether it
    was written.

    OSError is the caller's: FileNotFoundError where the kernel has no
    such parameter (IPv6's, in a kernel without IPv6), another where
    /proc/sys is read-only.
    """
    with open(path) as f:
        if f.read().strip() == value:
            return False
    with open(path, 'w') as f:
        f.write(value)
    return True


def ensure(path, value, why):
    """Set a sysctl if it differs, with a log line; False if it cannot be.

    A managed plugin sees /proc/sys read-only: that is logged, not fatal.
    """
    try:
        written = write(path, value)
    except OSError as exc:
        LOG.warning('Cannot set %s to %s (%s): %s', path, value, why,
                    exc.strerror or exc)
        return False
    if written:
        LOG.info('Set %s to %s: %s', path, value, why)
    return True
