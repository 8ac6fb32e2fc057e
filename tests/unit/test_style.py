"""The code base passes flake8 (the house style's mechanical part) and
mypy, strict for the plugin interfaces and the records they pass."""

import io
import os
import subprocess
import sys

from mypy import main as mypy_main
from mypy import options as mypy_options

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def test_flake8():
    res = subprocess.run(
        [sys.executable, '-m', 'flake8', 'opencontrail_net', 'tests',
         'benchmarks'], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_mypy():
    """The product type-checks (setup.cfg's [mypy]); its cache stays out
    of the tree."""
    res = subprocess.run(
        [sys.executable, '-m', 'mypy', '--cache-dir', os.devnull],
        cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


# Held to every per-module check of mypy --strict by setup.cfg.
STRICT_MODULES = ('opencontrail_net.plugin', 'opencontrail_net.model',
                  'opencontrail_net.backends.base',
                  'opencontrail_net.port_drivers.base')


def _mypy_options(*args):
    out = io.StringIO()
    _sources, options = mypy_main.process_options(
        list(args), stdout=out, stderr=out, require_targets=False)
    return options


def test_mypy_strict_modules():
    """Every option --strict sets that a module may set on its own is set
    for each of STRICT_MODULES, as mypy reads setup.cfg (test_mypy then
    checks them under it)."""
    strict = _mypy_options('--strict', '--config-file', os.devnull)
    plain = _mypy_options('--config-file', os.devnull)
    wanted = {name: getattr(strict, name)
              for name in mypy_options.PER_MODULE_OPTIONS
              if getattr(strict, name) != getattr(plain, name)}
    assert 'disallow_untyped_defs' in wanted
    ours = _mypy_options('--config-file', os.path.join(ROOT, 'setup.cfg'))
    for module in STRICT_MODULES:
        path = os.path.join(ROOT, *module.split('.')) + '.py'
        assert os.path.isfile(path), path
        found = ours.clone_for_module(module)
        missing = sorted('%s = %s' % (name, value)
                         for name, value in wanted.items()
                         if getattr(found, name) != value)
        assert not missing, '%s lacks %s' % (module, ', '.join(missing))
