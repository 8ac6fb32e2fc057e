"""The driver as Docker finds it: a socket in /run/docker/plugins."""

import json
import os
import shutil
import signal
import sqlite3
import tempfile
import threading
import time

from tests import driverproc
from tests import netns as nsmod

PLUGIN_DIR = '/run/docker/plugins'


class DockerPlugin(driverproc.DriverProcess):
    """A driver process whose socket name is the Docker driver name."""

    def __init__(self, name, **options):
        self.name = name
        self.tmp = tempfile.mkdtemp(prefix='ocne-')
        os.makedirs(PLUGIN_DIR, exist_ok=True)
        super().__init__(self.tmp, os.path.join(PLUGIN_DIR, name + '.sock'),
                         **options)

    def close(self):
        # Stopped as a service is: the pairs of a last Leave go with it.
        self.stop()
        try:
            os.unlink(self.socket_path)
        except FileNotFoundError:
            pass
        shutil.rmtree(self.tmp, ignore_errors=True)

    def mock_rows(self, table):
        """Rows of the mock backend's state, read as an operator would."""
        path = os.path.join(self.options['state_path'], 'mock-backend.sqlite')
        db = sqlite3.connect('file:%s?mode=ro' % path, uri=True)
        try:
            return [json.loads(r[0]) for r in db.execute(
                'SELECT data FROM %s' % table)]
        finally:
            db.close()


def leftovers(endpoint_ids=(), network_ids=(), settle=10):
    """Host interfaces still standing for these endpoints and networks,
    after up to ``settle`` seconds for them to go (the driver deletes
    veth pairs after its answer).

    Named checks, not a diff of the whole host: other daemons and tests may
    make and remove interfaces at the same time.
    """
    return nsmod.settle(lambda: _standing(endpoint_ids, network_ids), [],
                        settle)


def _standing(endpoint_ids, network_ids):
    names = {}
    for eid in endpoint_ids:
        names['veth%sp0' % eid[:8]] = eid
        names['veth%sc0' % eid[:8]] = eid
    for nid in network_ids:
        names['ocbr' + nid[:11]] = nid
    out = nsmod.sh('ip', '-o', 'link', 'show').stdout
    present = {line.split(':')[1].strip().split('@')[0]
               for line in out.splitlines()}
    return sorted(set(names) & present)


def host_links(prefixes=('veth', 'ocbr')):
    """Host interfaces a driver may have made."""
    out = nsmod.sh('ip', '-o', 'link', 'show').stdout
    names = {line.split(':')[1].strip().split('@')[0]
             for line in out.splitlines()}
    return {n for n in names if n.startswith(prefixes)}


def pings(dockerd, container, address, tries=15):
    """Whether ``container`` reaches ``address``, retried briefly."""
    cmd = ['ping6' if ':' in address else 'ping', '-c', '1', '-W', '1',
           address]
    for _ in range(tries):
        if dockerd.cli('exec', container, *cmd, check=False).returncode == 0:
            return True
        time.sleep(0.3)
    return False


def host_name_of(endpoint_id):
    """The host end's name the veth port drivers give an endpoint first."""
    return 'veth%sp0' % endpoint_id[:8]


def kill_during(drv, action):
    """Freeze the driver, start ``action``, kill the driver while Docker
    waits on it, start it again: Docker's re-sent call then comes with
    no body and is refused, and Docker swallows the error."""
    os.kill(drv.proc.pid, signal.SIGSTOP)
    thread = threading.Thread(target=action)
    thread.start()
    time.sleep(1.5)
    drv.kill()
    drv.start()
    thread.join(60)
    assert not thread.is_alive()
