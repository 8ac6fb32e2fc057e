"""The managed (v2) plugin's ``config.json``.

``python -m opencontrail_net.managed_plugin`` prints it. Its interface
types follow what Plugin.Activate answers, so a driver that starts
answering ``IpamDriver`` is installed as an IPAM driver too.
"""

import json
import sys

from opencontrail_net import config as config_mod
from opencontrail_net import network

SOCKET = 'opencontrail.sock'
CONFIG_DIR = '/etc/opencontrail-net'
CONFIG_FILE = CONFIG_DIR + '/opencontrail-net.conf'
SITE_PACKAGES = '/opt/opencontrail-net/site-packages'
MANAGED_ENV = config_mod.MANAGED_ENV

# Plugin.Activate's names → the plugin interface types Docker knows.
INTERFACE_TYPES = {
    'NetworkDriver': 'docker.networkdriver/1.0',
    'IpamDriver': 'docker.ipamdriver/1.0',
}


def interface_types():
    """The interface types of what Plugin.Activate answers."""
    return [INTERFACE_TYPES[name] for name in network.IMPLEMENTS]


def config():
    """The plugin's config.json, as a dict."""
    return {
        'Description': 'OpenContrail / Tungsten Fabric network driver',
        'Documentation': '',
        'Entrypoint': ['/usr/local/bin/python3', '-m',
                       'opencontrail_net.cmd.driver',
                       '--config-file', CONFIG_FILE],
        'WorkDir': '/',
        # Containers' interfaces are made in the host's namespace and
        # handed to Docker, which moves them into the container.
        'Network': {'Type': 'host'},
        'Interface': {'Types': interface_types(), 'Socket': SOCKET},
        # Links, bridges and addresses. /proc/sys stays read-only: the
        # driver writes there only what differs from the host's defaults.
        'Linux': {'Capabilities': ['CAP_NET_ADMIN']},
        'Env': [
            {'Name': 'PYTHONPATH', 'Description': 'where the packages are',
             'Settable': ['value'], 'Value': SITE_PACKAGES},
            {'Name': MANAGED_ENV, 'Description': 'runs as a managed plugin',
             'Settable': [], 'Value': '1'},
        ],
        'Mounts': [
            {'Name': 'etc', 'Description':
                'directory holding opencontrail-net.conf',
             'Source': CONFIG_DIR, 'Destination': CONFIG_DIR,
             'Type': 'bind', 'Options': ['rbind', 'ro'],
             'Settable': ['source']},
        ],
    }


def main():
    json.dump(config(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write('\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
