"""The code base passes flake8 (the house style's mechanical part)."""

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
