"""Network namespaces and interfaces that tests make and always remove."""

import subprocess
import uuid


def sh(*args, check=True):
    res = subprocess.run(args, capture_output=True, text=True)
    if check and res.returncode:
        raise RuntimeError('%s: %s%s' % (' '.join(args), res.stdout,
                                         res.stderr))
    return res


def unique(prefix='ocnt'):
    return prefix + uuid.uuid4().hex[:6]


class Namespaces:
    """Creates named netns on demand and deletes all of them on close."""

    def __init__(self):
        self.names = []

    def add(self, name=None):
        name = name or unique()
        sh('ip', 'netns', 'add', name)
        self.names.append(name)
        sh('ip', '-n', name, 'link', 'set', 'lo', 'up')
        return name

    def run(self, name, *args, check=True):
        return sh('ip', 'netns', 'exec', name, *args, check=check)

    def close(self):
        for name in reversed(self.names):
            sh('ip', 'netns', 'del', name, check=False)
        self.names = []


def links(netns):
    """Names of the interfaces in ``netns``."""
    out = sh('ip', '-n', netns, '-o', 'link', 'show').stdout
    return {line.split(':')[1].strip().split('@')[0]
            for line in out.splitlines()}
