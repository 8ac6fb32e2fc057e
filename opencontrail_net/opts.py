"""Options for oslo-config-generator (namespace opencontrail-net)."""

import itertools

from opencontrail_net.backends import mock  # noqa: F401
from opencontrail_net import config
from opencontrail_net import ipam
from opencontrail_net import plugin


def _plugin_groups():
    groups = {}
    for namespace in (plugin.BACKENDS, plugin.PORT_DRIVERS):
        for name in plugin.installed(namespace):
            try:
                cls = plugin.load(namespace, name, plugin.PluginBase,
                                  config.cfg.ConfigOpts(), namespace)
            except Exception:
                continue
            if cls.CONFIG_GROUP and cls.CONFIG_OPTS:
                groups.setdefault(cls.CONFIG_GROUP, []).extend(
                    cls.CONFIG_OPTS)
    return sorted(groups.items())


def list_opts():
    # config.cli_opts are command-line spellings of file options: not
    # listed, their targets are.
    return [('DEFAULT', itertools.chain(config.default_cli_opts,
                                        config.default_opts)),
            ('ipam', ipam.OPTS)] + _plugin_groups()
