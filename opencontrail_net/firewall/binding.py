"""Loading libnftables' own Python binding, the ``nftables`` module.

Distributions install it with libnftables (Debian's python3-nftables).
No PyPI package carries it, and a virtualenv does not see it; it is pure
Python over ctypes, so any Python 3 can load it from where the system
keeps it.
"""

import importlib.util
import os
import sys

from oslo_log import log as logging

from opencontrail_net import exception

LOG = logging.getLogger(__name__)

# Where distributions install the binding.
SYSTEM_BINDINGS = ('/usr/lib/python3/dist-packages/nftables',)


def load_binding(paths=SYSTEM_BINDINGS):
    """The ``nftables`` module: the importable one, else the system's."""
    try:
        import nftables
        return nftables
    except ImportError as exc:
        missing = exc
    for path in paths:
        init = os.path.join(path, '__init__.py')
        if not os.path.exists(init):
            continue
        spec = importlib.util.spec_from_file_location(
            'nftables', init, submodule_search_locations=[path])
        module = importlib.util.module_from_spec(spec)
        sys.modules['nftables'] = module
        try:
            spec.loader.exec_module(module)
        except Exception:
            del sys.modules['nftables']
            raise
        return module
    raise exception.PortError(
        reason='the nftables Python module is missing (%s; not in %s '
        'either): install Debian\'s python3-nftables, or set [bridge] '
        'firewall = false to publish no ports and masquerade nothing'
        % (missing, ', '.join(paths)))


def context():
    """A new libnftables context, logging where its binding came from."""
    module = load_binding()
    LOG.info('nftables: libnftables\' Python binding from %s',
             os.path.dirname(module.__file__))
    return module.Nftables()
