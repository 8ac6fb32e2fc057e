"""Options, the generated sample and plugin loading."""

import os
import subprocess
import sys

import pytest

from opencontrail_net.backends import base as backend_base
from opencontrail_net.backends.contrail import backend as contrail
from opencontrail_net.backends import mock
from opencontrail_net import exception
from opencontrail_net import plugin
from opencontrail_net.port_drivers import base as port_base

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def test_sample_config_is_current(tmp_path):
    out = tmp_path / 'sample.conf'
    subprocess.run(
        [sys.executable, '-m', 'oslo_config.generator', '--config-file',
         os.path.join(ROOT, 'etc/oslo-config-generator/opencontrail-net.conf'),
         '--output-file', str(out)], check=True, cwd=ROOT)
    with open(os.path.join(ROOT, 'etc/opencontrail-net.conf.sample')) as f:
        assert f.read() == out.read_text(), (
            'etc/opencontrail-net.conf.sample is out of date: run '
            'oslo-config-generator --config-file '
            'etc/oslo-config-generator/opencontrail-net.conf')


def test_fixed_option_names_and_defaults(conf):
    assert conf.socket_path == '/run/docker/plugins/opencontrail.sock'
    assert conf.socket_mode == '0660'
    assert conf.scope == 'local'
    assert conf.backend == 'mock'
    assert conf.port_driver == 'bridge'
    assert conf.debug is False


def test_load_known_plugins(conf):
    assert plugin.load(plugin.BACKENDS, 'mock', backend_base.Backend, conf,
                       'backend') is mock.MockBackend
    for name in ('veth', 'bridge'):
        cls = plugin.load(plugin.PORT_DRIVERS, name, port_base.PortDriver,
                          conf, 'port driver')
        assert issubclass(cls, port_base.PortDriver)


def test_unknown_plugin_names_the_choices(conf):
    with pytest.raises(exception.PluginLoadError) as err:
        plugin.load(plugin.BACKENDS, 'nope', backend_base.Backend, conf,
                    'backend')
    assert "'nope'" in str(err.value) and 'mock' in str(err.value)


def test_wrong_kind_of_plugin_is_refused(conf):
    with pytest.raises(exception.PluginLoadError) as err:
        plugin.load(plugin.PORT_DRIVERS, 'veth', backend_base.Backend, conf,
                    'backend')
    assert 'is not a Backend' in str(err.value)


def test_original_command_line_overrides_the_file(tmp_path):
    from oslo_config import cfg

    from opencontrail_net import config
    conf_file = tmp_path / 'driver.conf'
    conf_file.write_text('[DEFAULT]\nscope = local\n'
                         '[contrail]\napi_server = 10.0.0.1\n'
                         'admin_user = alice\nproject = blue\n')
    conf = cfg.ConfigOpts()
    config.parse_args(['--config-file', str(conf_file), '-a', '10.0.0.5,'
                       '10.0.0.6', '-x', '9100', '-u', 'bob', '-t', 'ops',
                       '-p', 's3cret', '-y', 'red', '-s', '/tmp/x.sock',
                       '-g', 'global', '-d'], conf)
    plugin.load(plugin.BACKENDS, 'contrail', backend_base.Backend, conf,
                'backend')
    config.apply_cli_overrides(conf)
    assert conf.contrail.api_server == ['10.0.0.5', '10.0.0.6']
    assert conf.contrail.api_port == 9100
    assert (conf.contrail.admin_user, conf.contrail.admin_tenant,
            conf.contrail.admin_password) == ('bob', 'ops', 's3cret')
    assert conf.contrail.project == 'red'
    assert (conf.socket_path, conf.scope, conf.debug) == (
        '/tmp/x.sock', 'global', True)


def test_file_values_stand_without_flags(tmp_path):
    from oslo_config import cfg

    from opencontrail_net import config
    conf_file = tmp_path / 'driver.conf'
    conf_file.write_text('[contrail]\napi_server = 10.0.0.1\n')
    conf = cfg.ConfigOpts()
    config.parse_args(['--config-file', str(conf_file)], conf)
    plugin.load(plugin.BACKENDS, 'contrail', backend_base.Backend, conf,
                'backend')
    config.apply_cli_overrides(conf)
    assert conf.contrail.api_server == ['10.0.0.1']
    assert conf.contrail.api_port == 8082


@pytest.mark.parametrize('value,ok', [
    ('default-domain:admin:public:pool', True), ('admin:public:pool', True),
    ('public:pool', False), ('a:b:c:d:e', False), ('a::c:d', False)])
def test_floating_ip_pool_option(conf, value, ok):
    """A malformed [contrail] floating_ip_pool stops the driver at start."""
    conf.register_opts(contrail.ContrailBackend.CONFIG_OPTS,
                       group='contrail')
    conf.set_override('floating_ip_pool', value, group='contrail')
    if ok:
        contrail.ContrailBackend(conf)
        return
    with pytest.raises(exception.InvalidConfig) as err:
        contrail.ContrailBackend(conf)
    assert '[contrail] floating_ip_pool' in str(err.value)
    assert value in str(err.value)
