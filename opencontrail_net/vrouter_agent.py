"""Client of the vrouter agent's port API (port control on 127.0.0.1:9091).

The agent learns about a host interface through ``POST /port``; it then
subscribes to the interface's configuration on the control node and attaches
the interface to the vrouter.  It also keeps one file per port in its ports
directory and re-adds those ports when it starts.  What this module relies on
was read from the agent's sources (Tungsten Fabric ``tf-controller``,
``src/vnsw/agent/port_ipc/port_ipc_handler.cc`` and ``rest_server.cc``).
"""

import datetime
import ipaddress
import json
import os
import re
import tempfile
import time
import uuid

import requests

from opencontrail_net import exception
from opencontrail_net import metrics

DEFAULT_URL = 'http://127.0.0.1:9091'
DEFAULT_PORTS_DIR = '/var/lib/contrail/ports'

# The "type" of a container's port: only for a VM port does the agent
# subscribe to the VM's and the network's config.
PORT_TYPE_VM = 0

NO_VLAN = -1
# The agent keeps vlan ids in 16 bits: -1 becomes 0xffff, and that is what it
# writes to its port files.
_VLAN_MASK = 0xffff
_IFNAMSIZ = 15
_AUTHOR = 'opencontrail-net'
_TMP_PREFIX = '.tmp-'
_NIL_UUID = str(uuid.UUID(int=0))


class AgentError(exception.OpenContrailNetError):
    """The agent refused a request, or answered something unexpected.

    ``detail`` is the agent's own error text (without the ``{ }`` it wraps
    around it), ``status`` the HTTP status (None when no answer came).
    """

    code = 500

    def __init__(self, detail, status=None, method=None, path=None):
        self.detail = detail
        self.status = status
        self.method = method
        self.path = path
        where = '%s %s' % (method, path) if method else 'request'
        if status is None:
            text = 'vrouter agent: %s failed: %s' % (where, detail)
        else:
            text = 'vrouter agent: %s answered %s: %s' % (where, status,
                                                          detail)
        super().__init__(text)


class AgentUnreachable(AgentError):
    """No answer from the agent: refused connection, reset, or timeout."""

    code = 503


def normalize_uuid(value, field='uuid'):
    """Return ``value`` as the lowercase dashed uuid the agent's URLs need.

    The agent routes ``/port/<uuid>`` only for lowercase uuids, and it turns a
    string that is not a uuid into the nil uuid without complaint, so every id
    is checked here before it is sent.
    """
    try:
        text = str(uuid.UUID(str(value)))
    except (TypeError, ValueError, AttributeError):
        raise ValueError('%s: %r is not a uuid' % (field, value)) from None
    if text == _NIL_UUID:
        raise ValueError('%s: the nil uuid is not allowed' % field)
    return text


def normalize_mac(value):
    """Return ``value`` as a lowercase ``xx:xx:xx:xx:xx:xx`` unicast MAC."""
    parts = re.split(r'[:-]', str(value).strip())
    if len(parts) != 6 or not all(re.fullmatch(r'[0-9a-fA-F]{1,2}', p)
                                  for p in parts):
        raise ValueError('mac-address: %r is not a MAC address' % (value,))
    octets = [int(p, 16) for p in parts]
    if not any(octets):
        # The agent rejects the zero MAC ("Invalid MAC").
        raise ValueError('mac-address: the zero MAC is not allowed')
    if octets[0] & 1:
        # A multicast MAC cannot be set on the container's interface.
        raise ValueError('mac-address: %r is a multicast MAC' % (value,))
    return ':'.join('%02x' % o for o in octets)


def _normalize_ip(value, version, field):
    """Return the bare address of ``value`` (prefix length dropped), or ''."""
    if value is None or value == '':
        return ''
    try:
        # Docker hands addresses out as "10.0.0.3/24"; the agent reads a
        # prefixed address as no address at all, so the prefix is cut here.
        addr = ipaddress.ip_interface(str(value)).ip
    except ValueError:
        raise ValueError('%s: %r is not an IP address' % (field, value)) \
            from None
    if addr.version != version:
        raise ValueError('%s: %r is not an IPv%d address'
                         % (field, value, version))
    return str(addr)


def _boost_duration(usecs):
    """Format microseconds like boost's time_duration: ``H:MM:SS[.ffffff]``."""
    secs, frac = divmod(usecs, 1000000)
    mins, secs = divmod(secs, 60)
    hours, mins = divmod(mins, 60)
    text = '%02d:%02d:%02d' % (hours, mins, secs)
    if frac:
        text += '.%06d' % frac
    return text


def format_port_file(port):
    """Return the text the agent writes to ``<ports_dir>/<id>`` for ``port``
    (a port ``build_port`` made).

    The agent (``PortIpcHandler::MakeVmiUuidJson``) writes a rapidjson
    PrettyWriter object: 4-space indent, ``"key": value``, no final newline,
    keys in this order, no address as ``0.0.0.0`` and ``::`` (the others
    are as it parses them, as ``build_port`` made them), vlan ids in 16 bits
    (-1 -> 65535), then ``author`` (this program) and ``time``
    (microseconds since the epoch printed as a boost duration).  It reads
    every field back at start except ``author`` and ``time``.
    """
    data = {
        'id': port['id'],
        'instance-id': port['instance-id'],
        'display-name': port['display-name'],
        'ip-address': port['ip-address'] or '0.0.0.0',
        'ip6-address': port['ip6-address'] or '::',
        'vn-id': port['vn-id'],
        'vm-project-id': port['vm-project-id'],
        'mac-address': port['mac-address'],
        'system-name': port['system-name'],
        'type': port['type'],
        'rx-vlan-id': port['rx-vlan-id'] & _VLAN_MASK,
        'tx-vlan-id': port['tx-vlan-id'] & _VLAN_MASK,
        'vhostuser-mode': port['vhostuser-mode'],
    }
    now = datetime.datetime.now(datetime.timezone.utc)
    epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
    usecs = (now - epoch) // datetime.timedelta(microseconds=1)
    data['author'] = _AUTHOR
    data['time'] = _boost_duration(usecs)
    return json.dumps(data, indent=4, ensure_ascii=False)


_HEADERS = {'Connection': 'close', 'Content-Type': 'application/json'}


class AgentClient(object):
    """Talks to one vrouter agent's port API and keeps its port files."""

    def __init__(self, url=DEFAULT_URL, ports_dir=DEFAULT_PORTS_DIR,
                 timeout=5.0):
        self.url = url.rstrip('/')
        self.ports_dir = ports_dir
        self.timeout = timeout

    # -- HTTP ---------------------------------------------------------------

    def _request(self, method, path, body=None, timeout=None):
        """Send one request; return (status, parsed JSON or None, raw text)."""
        data = None if body is None else json.dumps(body)
        # A session of its own per call, so calls run side by side (no
        # lock: a hung agent holds up only the calls made to it, each for
        # its own timeout) and no connection is kept for the next call:
        # the agent restarts on its own, and a connection kept to the old
        # process would fail that call. A loopback connection costs
        # nothing.
        session = requests.Session()
        # Proxy variables from the environment must not divert loopback
        # calls to the agent.
        session.trust_env = False
        try:
            try:
                resp = session.request(
                    method, self.url + path, data=data, headers=_HEADERS,
                    timeout=self.timeout if timeout is None else timeout)
            finally:
                session.close()
        except (requests.ConnectionError, requests.Timeout) as exc:
            metrics.AGENT_CALLS.labels(method, 'none').inc()
            raise AgentUnreachable(str(exc), method=method, path=path) \
                from exc
        except requests.RequestException as exc:
            metrics.AGENT_CALLS.labels(method, 'none').inc()
            raise AgentError(str(exc), method=method, path=path) from exc
        metrics.AGENT_CALLS.labels(method, str(resp.status_code)).inc()
        try:
            parsed = resp.json()
        except ValueError:
            parsed = None
        return resp.status_code, parsed, resp.text

    @staticmethod
    def _error_text(parsed, text):
        if isinstance(parsed, dict) and isinstance(parsed.get('error'), str):
            detail = parsed['error'].strip()
            # The agent wraps most of its messages in "{ ... }".
            if detail.startswith('{') and detail.endswith('}'):
                detail = detail[1:-1].strip()
            return detail
        return text.strip() or '(empty answer)'

    def _call(self, method, path, body=None, timeout=None, missing_ok=False):
        status, parsed, text = self._request(method, path, body, timeout)
        if status == 200:
            return parsed
        if status == 404 and missing_ok:
            return None
        raise AgentError(self._error_text(parsed, text), status=status,
                         method=method, path=path)

    # -- ports --------------------------------------------------------------

    @staticmethod
    def build_port(vmi_uuid, vm_uuid, vn_uuid, project_uuid, vm_name, ipv4,
                   ipv6, system_name, mac):
        """Return the ``POST /port`` body for a container's interface.

        ``ipv4``/``ipv6`` may be None, '' or carry a prefix length (dropped).
        ``system_name`` is the host-side interface the vrouter attaches,
        ``mac`` the VMI's MAC (the container-side interface must carry it).
        Raises ValueError for anything the agent would refuse or would
        silently turn into nothing (a non-uuid id becomes the nil uuid).
        The port is a VM port without vlans: only for a VM port does the
        agent fetch the VM's and the network's config.
        """
        if not isinstance(system_name, str) or not system_name \
                or len(system_name) > _IFNAMSIZ or '/' in system_name \
                or any(c.isspace() for c in system_name):
            raise ValueError('system-name: %r is not a Linux interface name'
                             % (system_name,))
        return {
            'id': normalize_uuid(vmi_uuid, 'id'),
            'instance-id': normalize_uuid(vm_uuid, 'instance-id'),
            'vn-id': normalize_uuid(vn_uuid, 'vn-id'),
            'vm-project-id': normalize_uuid(project_uuid, 'vm-project-id'),
            'display-name': '' if vm_name is None else str(vm_name),
            'ip-address': _normalize_ip(ipv4, 4, 'ip-address'),
            'ip6-address': _normalize_ip(ipv6, 6, 'ip6-address'),
            'system-name': system_name,
            'mac-address': normalize_mac(mac),
            'type': PORT_TYPE_VM,
            'rx-vlan-id': NO_VLAN,
            'tx-vlan-id': NO_VLAN,
            'vhostuser-mode': 0,
        }

    def add_port(self, port):
        """``POST /port`` one port (a dict, as ``build_port`` makes it).

        The agent checks the port and answers 500 with its reason, raised
        here as AgentError.
        """
        self._call('POST', '/port', port)

    def delete_port(self, vmi_uuid):
        """``DELETE /port/<uuid>``; the agent answers 200 for unknown ports.

        The agent also removes its port file for that uuid.
        """
        self._call('DELETE', '/port/' + normalize_uuid(vmi_uuid, 'id'))

    def get_port(self, vmi_uuid, timeout=None):
        """Return the agent's view of a port, or None while it has none.

        The agent answers 404 until it has the interface, its VM, network and
        IPAM from the control node; then ``ip-address``, ``plen``,
        ``gateway``, ``dns-server`` (and ``v6-ip-address``, ``v6-gateway``,
        ``v6-dns-server``) come with the port.
        """
        result = self._call('GET', '/port/' + normalize_uuid(vmi_uuid, 'id'),
                            timeout=timeout, missing_ok=True)
        if result is not None and not isinstance(result, dict):
            raise AgentError('not a JSON object: %r' % (result,), status=200,
                             method='GET', path='/port/' + str(vmi_uuid))
        return result

    def wait_ready(self, vmi_uuid, timeout, interval=0.1, max_interval=0.5):
        """Poll ``GET /port/<uuid>`` until the agent knows the port.

        Returns True once it does, False when ``timeout`` seconds pass first.
        An unreachable agent counts as not ready (it may be restarting).
        """
        vmi_uuid = normalize_uuid(vmi_uuid, 'id')
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                if self.get_port(vmi_uuid, timeout=max(
                        0.05, min(self.timeout, remaining))) is not None:
                    return True
            except AgentUnreachable:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(interval, remaining))
            interval = min(interval * 2, max_interval)

    # -- port files -------------------------------------------------------

    def _port_path(self, vmi_uuid):
        return os.path.join(self.ports_dir, normalize_uuid(vmi_uuid, 'id'))

    def write_port_file(self, port):
        """Write ``port`` to ``<ports_dir>/<id>`` in the agent's format.

        The agent re-adds these ports when it starts (if the interface
        exists).  It never overwrites an existing file on ``POST /port``, so a
        file written here first stays.  The write is atomic: temp file, fsync,
        rename.  Returns the path.
        """
        text = format_port_file(port)
        path = self._port_path(port['id'])
        os.makedirs(self.ports_dir, exist_ok=True)
        # The temp name must not begin with a uuid: the agent loads every
        # file whose name starts with one, so a leftover "<uuid>.tmp" would
        # come back as a port.
        fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=self.ports_dir)
        try:
            with os.fdopen(fd, 'w', encoding='utf-8') as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        self._fsync_dir()
        return path

    def _fsync_dir(self):
        # Makes the rename itself survive a crash.
        try:
            dir_fd = os.open(self.ports_dir, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(dir_fd)
        except OSError:
            pass
        finally:
            os.close(dir_fd)

    def remove_port_file(self, vmi_uuid):
        """Remove a port file; no error if it is already gone."""
        try:
            os.unlink(self._port_path(vmi_uuid))
        except FileNotFoundError:
            pass
