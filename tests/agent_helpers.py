"""Calls on the vrouter agent and its ports directory that only tests make.

The driver's client (:mod:`opencontrail_net.vrouter_agent`) holds just what
the driver runs. Tests also start the agent's stale-port cleanup, post
several ports at once and read the ports directory back, to check the fake
agent and what the driver left behind.
"""

import json
import os
import re

from opencontrail_net import vrouter_agent

_UUID_NAME = re.compile(
    r'^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z')


def list_port_files(ports_dir):
    """Return the uuids of the port files in ``ports_dir``, sorted.

    Only regular files named by a lowercase uuid (the agent's and the
    driver's naming) count; the agent's ``vm/`` directory and temp files are
    skipped.
    """
    try:
        names = os.listdir(ports_dir)
    except FileNotFoundError:
        return []
    return sorted(name for name in names
                  if _UUID_NAME.match(name)
                  and os.path.isfile(os.path.join(ports_dir, name)))


def read_port_file(ports_dir, vmi_uuid):
    """Return the JSON object in a port file, or None if there is none."""
    path = os.path.join(ports_dir, vrouter_agent.normalize_uuid(vmi_uuid))
    try:
        with open(path, encoding='utf-8') as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None


class AgentTestClient(vrouter_agent.AgentClient):
    """The driver's agent client with the calls only tests make."""

    def add_port(self, port):
        """``POST /port`` one port (a dict) or several (a list, all or none).

        The agent answers 200 to a list even when it rejected it (and then
        adds none of its ports), so each port of a list is checked here
        first (ValueError naming the port's index).
        """
        if not isinstance(port, (list, tuple)):
            super().add_port(port)
            return
        for index, item in enumerate(port):
            try:
                vrouter_agent.validate_port(item)
            except ValueError as exc:
                raise ValueError('port %d: %s' % (index, exc)) from None
        self._call('POST', '/port', list(port))

    def sync_ports(self):
        """``POST /syncports``: start the agent's stale-port cleanup.

        Ports not added again before the agent's stale timeout (60 s by
        default) are removed, with their files.
        """
        self._call('POST', '/syncports')

    def read_port_file(self, vmi_uuid):
        """Return the JSON object in a port file, or None if there is none."""
        return read_port_file(self.ports_dir, vmi_uuid)

    def list_port_files(self):
        """Return the uuids of the port files, sorted."""
        return list_port_files(self.ports_dir)
