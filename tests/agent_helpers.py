"""Calls on the vrouter agent and its ports directory that only tests make.

The driver's client (:mod:`opencontrail_net.vrouter_agent`) holds just what
the driver runs. Tests also start the agent's stale-port cleanup, post
several ports at once, write ports they made by hand (checked first as the
agent would) and read the ports directory back, to check the fake agent and
what the driver left behind.
"""

import json
import os
import re

from opencontrail_net import vrouter_agent
from tests.fakes.vrouter_agent import NAMESPACE_PORT
from tests.fakes.vrouter_agent import NIL_UUID
from tests.fakes.vrouter_agent import REMOTE_PORT

_UUID_NAME = re.compile(
    r'^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z')


def _is_json_int(value):
    # The agent reads these fields as 32-bit JSON integers; a bool, a float or
    # a numeric string is "Invalid or missing field".
    return (isinstance(value, int) and not isinstance(value, bool)
            and -2 ** 31 <= value < 2 ** 31)


def validate_port(port):
    """Raise ValueError unless the agent would accept ``port``.

    The agent answers ``200 {}`` to an array even when it refuses it, and it
    reads a port file only at its start, skipping a port it refuses without
    a word: a port made by hand is checked before either. Stricter than the
    agent about uuids, which it would turn into the nil uuid.
    """
    if not isinstance(port, dict):
        raise ValueError('a port must be a JSON object, not %s'
                         % type(port).__name__)
    for field in ('id', 'instance-id', 'vn-id', 'vm-project-id'):
        value = port.get(field)
        if not isinstance(value, str):
            raise ValueError('Invalid or missing data for <%s>' % field)
        if not _UUID_NAME.match(value):
            raise ValueError('%s: %r is not a lowercase dashed uuid'
                             % (field, value))
    for field in ('display-name', 'ip-address', 'ip6-address'):
        if not isinstance(port.get(field), str):
            raise ValueError('Invalid or missing field for <%s>' % field)
    if not _is_json_int(port.get('type')):
        raise ValueError('Invalid or missing field for <type>')
    if port['type'] not in (NAMESPACE_PORT, REMOTE_PORT) \
            and port['vn-id'] == NIL_UUID:
        raise ValueError('Invalid VN uuid')
    if not isinstance(port.get('system-name'), str):
        raise ValueError('Invalid or missing field for <system-name>')
    mac = port.get('mac-address')
    if not isinstance(mac, str):
        raise ValueError('Invalid or missing field for <mac-address>')
    if mac.count(':') != 5:
        raise ValueError('Invalid MAC, Use xx:xx:xx:xx:xx:xx format')
    try:
        vrouter_agent.normalize_mac(mac)
    except ValueError as exc:
        raise ValueError('Invalid MAC, Use xx:xx:xx:xx:xx:xx format (%s)'
                         % exc) from None
    for field in ('rx-vlan-id', 'tx-vlan-id'):
        if not _is_json_int(port.get(field)):
            raise ValueError('Invalid or missing field for <%s>' % field)


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
                validate_port(item)
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
