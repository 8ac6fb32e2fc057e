"""The code base passes flake8 (the house style's mechanical part) and
mypy."""

import os
import subprocess
import sys

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
