"""Route targets from network labels (the seed README's ``--label rt=``).

Docker passes ``-o`` options to drivers but never ``--label``s. Labels are
read from the Docker Engine API once the network exists there, which is
only after CreateNetwork has answered: so in a thread of its own.
"""

import threading
import time

from oslo_log import log as logging

from opencontrail_net import docker_api
from opencontrail_net import exception
from opencontrail_net import netopts
from opencontrail_net import optnames

LOG = logging.getLogger(__name__)

# Label key → optnames.Option, in the table's order: of two keys of one
# setting, the later one's value is applied.
LABELS = optnames.accepted(optnames.LABEL)


class LabelReader:
    """Applies route-target labels of new networks to the backend."""

    def __init__(self, conf, backend, wait=10.0, interval=0.2):
        self.conf = conf
        self.backend = backend
        self.wait = wait
        self.interval = interval

    def enabled(self):
        return bool(self.conf.docker_url)

    def watch(self, network):
        """Read ``network``'s labels in the background and apply them."""
        if not self.enabled():
            return None
        thread = threading.Thread(target=self._run, args=(network,),
                                  name='ocn-labels', daemon=True)
        thread.start()
        return thread

    def _labels(self, network_id):
        docker = docker_api.docker_py()
        client = docker.APIClient(base_url=self.conf.docker_url, timeout=5)
        try:
            deadline = time.monotonic() + self.wait
            while True:
                try:
                    return client.inspect_network(network_id).get(
                        'Labels') or {}
                except docker.errors.NotFound:
                    if time.monotonic() > deadline:
                        raise
                time.sleep(self.interval)
        finally:
            client.close()

    def _changes(self, network, labels):
        """``{Network field: route targets}`` the labels set: a bad label,
        or one of a setting "-o" gave, is logged and left out."""
        changes = {}
        for key, option in LABELS.items():
            if key not in labels:
                continue
            if getattr(network, option.field):
                LOG.warning('Network %s: label %s ignored, "-o" options '
                            'set its route targets', network.id, key)
                continue
            try:
                changes[option.field] = netopts.route_targets(
                    key, labels[key], self.backend.route_target_rules)
            except exception.InvalidOption as exc:
                LOG.error('Network %s: label not applied: %s', network.id,
                          exc)
        return changes

    def _run(self, network):
        try:
            labels = self._labels(network.id)
        except Exception as exc:
            LOG.warning('Cannot read the labels of network %s from Docker '
                        'at %s: %s', network.id, self.conf.docker_url, exc)
            return
        changes = self._changes(network, labels)
        if not changes:
            return
        try:
            self.backend.set_route_targets(network.id, **changes)
        except exception.OpenContrailNetError as exc:
            LOG.error('Network %s: route targets from labels not applied: '
                      '%s', network.id, exc)
            return
        LOG.info('Network %s: route targets from labels %s', network.id,
                 changes)
