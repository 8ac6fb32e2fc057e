"""Network namespaces and interfaces that tests make and always remove."""

import subprocess
import time
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


def settle(read, want, timeout=10):
    """``read()`` once it equals ``want``, or what it is at the timeout.

    Interfaces go after the driver's answer (the kernel is slow to delete
    a veth pair): tests wait for them as a user would.
    """
    deadline = time.monotonic() + timeout
    while True:
        found = read()
        if found == want or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def wait_links(netns, want, timeout=10):
    """The interfaces of ``netns`` once they are ``want`` (see settle)."""
    return settle(lambda: links(netns), want, timeout)
