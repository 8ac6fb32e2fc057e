"""Fixtures shared by every suite."""

import pytest
from oslo_config import cfg

from opencontrail_net import config


def make_conf(tmp_path, **overrides):
    """A private ConfigOpts with every option of the driver registered."""
    conf = cfg.ConfigOpts()
    config.register_opts(conf)
    conf.register_cli_opts(config.cli_opts)
    conf([], project='opencontrail-net', default_config_files=[])
    conf.set_override('state_path', str(tmp_path / 'state'))
    conf.set_override('host', 'testhost')
    conf.set_override('docker_url', '')
    for key, value in overrides.items():
        conf.set_override(key, value)
    return conf


@pytest.fixture
def conf(tmp_path):
    return make_conf(tmp_path)
