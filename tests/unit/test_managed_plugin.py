"""The managed plugin's config.json."""

import json
import os

from opencontrail_net import managed_plugin
from opencontrail_net import network

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def test_shipped_config_json_is_current():
    with open(os.path.join(ROOT, 'plugin', 'config.json')) as f:
        shipped = json.load(f)
    assert shipped == managed_plugin.config(), (
        'regenerate: python -m opencontrail_net.managed_plugin > '
        'plugin/config.json')


def test_interfaces_follow_activate(monkeypatch, conf):
    assert managed_plugin.config()['Interface']['Types'] == [
        'docker.networkdriver/1.0', 'docker.ipamdriver/1.0']
    assert network.NetworkDriver(conf, None, None).activate({}) == {
        'Implements': ['NetworkDriver', 'IpamDriver']}
    monkeypatch.setattr(network, 'IMPLEMENTS', ('NetworkDriver',))
    assert managed_plugin.interface_types() == ['docker.networkdriver/1.0']


def test_config_directory_is_settable():
    mounts = {m['Name']: m for m in managed_plugin.config()['Mounts']}
    assert mounts['etc']['Destination'] == '/etc/opencontrail-net'
    assert mounts['etc']['Settable'] == ['source']
    assert managed_plugin.config()['Network'] == {'Type': 'host'}
